package bindscan

import "testing"

func TestParseCgroupPath(t *testing.T) {
	const uid = "8d3e6c1a-1b2c-4d5e-8f90-0123456789ab"
	const cid = "4f1c0c8e9b1d2a3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e"
	tests := []struct {
		name, path string
		uid, cid   string
		wantFound  bool
	}{
		{"cgroupfs v1 container", "/kubepods/besteffort/pod" + uid + "/" + cid, uid, cid, true},
		{"cgroupfs guaranteed (no qos dir)", "/kubepods/pod" + uid + "/" + cid, uid, cid, true},
		{"cgroupfs pod cgroup itself", "/kubepods/burstable/pod" + uid, uid, "", true},
		{"systemd containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8d3e6c1a_1b2c_4d5e_8f90_0123456789ab.slice/cri-containerd-" + cid + ".scope", uid, cid, true},
		{"systemd guaranteed", "/kubepods.slice/kubepods-pod8d3e6c1a_1b2c_4d5e_8f90_0123456789ab.slice/crio-" + cid + ".scope", uid, cid, true},
		{"systemd docker", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8d3e6c1a_1b2c_4d5e_8f90_0123456789ab.slice/docker-" + cid + ".scope", uid, cid, true},
		{"cgroup namespace prefix", "/../../kubepods/besteffort/pod" + uid + "/" + cid, uid, cid, true},
		{"nested under a test root", "/loopguard-test/kubepods/besteffort/pod" + uid + "/" + cid, uid, cid, true},
		{"not a pod", "/system.slice/containerd.service", "", "", false},
		{"pod prefix without a UID", "/kubepods/besteffort/podcast", "", "", false},
		{"user slice", "/user.slice/user-1000.slice/session-2.scope", "", "", false},
		{"root", "/", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, ok := ParseCgroupPath(tt.path)
			if ok != tt.wantFound || pc.PodUID != tt.uid || pc.ContainerID != tt.cid {
				t.Errorf("ParseCgroupPath(%q) = %+v, %v, want {%s %s}, %v", tt.path, pc, ok, tt.uid, tt.cid, tt.wantFound)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	const uid = "8d3e6c1a-1b2c-4d5e-8f90-0123456789ab"
	tests := []struct {
		name, data string
		uid, cid   string
	}{
		{"cgroup v1 hybrid", "12:pids:/kubepods/besteffort/pod" + uid + "/abc\n11:memory:/kubepods/besteffort/pod" + uid + "/abc\n1:name=systemd:/kubepods/besteffort/pod" + uid + "/abc\n0::/\n", uid, "abc"},
		{"cgroup v2", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8d3e6c1a_1b2c_4d5e_8f90_0123456789ab.slice/cri-containerd-abc.scope\n", uid, "abc"},
		{"one v1 hierarchy only", "4:memory:/process_api/x\n8:pids:/t/kubepods/pod" + uid + "/abc\n0::/\n", uid, "abc"},
		{"host process", "0::/system.slice/kubelet.service\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, _ := parseProcCgroup([]byte(tt.data))
			if pc.PodUID != tt.uid || pc.ContainerID != tt.cid {
				t.Errorf("parseProcCgroup = %+v, want {%s %s}", pc, tt.uid, tt.cid)
			}
		})
	}
}
