// Package bindscan reads the kernel's socket tables the way `ss -ltun`
// does, without exec and without cgo, to prove which sockets of a pod
// listen beyond loopback.
//
// A pod is found through its cgroup path: the kubelet puts every container
// of a pod under a cgroup that carries the pod UID, with both cgroup drivers
// (cgroupfs: kubepods/<qos>/pod<uid>/<container-id>; systemd:
// kubepods-<qos>-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope)
// and both cgroup versions. One process of the pod is enough to read the
// pod's network namespace (all its containers share it) through
// <proc>/<pid>/net/{tcp,tcp6,udp,udp6}; the pod's processes alone are
// searched for the socket inodes, so a scan costs what the node's pods cost,
// not what the node runs.
//
// ProcRoot and CgroupRoot are parameters so that the same code reads the
// host's /proc and cgroup tree from a container (hostPID, read-only host
// mounts) and in tests.
package bindscan
