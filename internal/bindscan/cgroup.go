package bindscan

import (
	"bytes"
	"strings"
)

// PodCgroup is what a cgroup path says about a process: the pod it belongs
// to and, below the pod's cgroup, its container.
type PodCgroup struct {
	// PodUID is the pod's UID with dashes, as the API server spells it.
	PodUID string
	// ContainerID is the runtime's container ID (the pod's sandbox too has
	// one), empty for a process in the pod's cgroup itself.
	ContainerID string
}

// ParseCgroupPath finds the pod and container in a cgroup path of either
// driver, at any depth (a cgroup namespace shows "/../.." prefixes, a
// nested kubelet a longer one):
//
//	cgroupfs: /kubepods/burstable/pod<uid>/<container-id>
//	systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
func ParseCgroupPath(path string) (PodCgroup, bool) {
	var pc PodCgroup
	found := false
	for seg := range strings.SplitSeq(path, "/") {
		if !found {
			if uid, ok := podSegment(seg); ok {
				pc.PodUID, found = uid, true
			}
			continue
		}
		// The first segment below the pod's is the container's.
		pc.ContainerID = containerSegment(seg)
		break
	}
	return pc, found
}

// podSegment recognises "pod<uid>" (cgroupfs) and
// "kubepods[-<qos>]-pod<uid_with_underscores>.slice" (systemd).
func podSegment(seg string) (string, bool) {
	if rest, ok := strings.CutSuffix(seg, ".slice"); ok {
		i := strings.LastIndex(rest, "-pod")
		if i < 0 || !strings.HasPrefix(rest, "kubepods") {
			return "", false
		}
		uid := strings.ReplaceAll(rest[i+len("-pod"):], "_", "-")
		return uid, validUID(uid)
	}
	if uid, ok := strings.CutPrefix(seg, "pod"); ok {
		return uid, validUID(uid)
	}
	return "", false
}

// validUID accepts the 36-character UUIDs the API server assigns.
func validUID(uid string) bool {
	if len(uid) != 36 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// containerSegment strips the systemd driver's runtime prefix and ".scope"
// suffix ("cri-containerd-<id>.scope", "crio-<id>.scope",
// "docker-<id>.scope"); a cgroupfs segment is the ID itself.
func containerSegment(seg string) string {
	rest, ok := strings.CutSuffix(seg, ".scope")
	if !ok {
		return seg
	}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		return rest[i+1:]
	}
	return rest
}

// parseProcCgroup parses /proc/<pid>/cgroup ("hierarchy-ID:controllers:path"
// per line; cgroup v2's line is "0::/path") and returns the pod of the first
// line whose path names one: every hierarchy puts a pod's process under
// the same pod, so any line will do.
func parseProcCgroup(data []byte) (PodCgroup, bool) {
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		// The path is after the second colon; controllers never contain one.
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		path := line[i+1+j+1:]
		if !bytes.Contains(path, []byte("pod")) {
			continue
		}
		if pc, ok := ParseCgroupPath(string(path)); ok {
			return pc, true
		}
	}
	return PodCgroup{}, false
}
