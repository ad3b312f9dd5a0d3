package bindscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Process is one process of a pod, in the PID namespace of ProcRoot.
type Process struct {
	PID int
	// ContainerID is the container whose cgroup holds the process (the
	// pod's sandbox is a container too); empty for the pod's own cgroup.
	ContainerID string
}

// maxCgroupDepth bounds the cgroup tree walk: a systemd pod's container
// scope is 4 deep under kubepods.slice, a nested kubelet's a few more.
const maxCgroupDepth = 10

// Pods returns the processes of every pod on the node by pod UID. With a
// CgroupRoot it walks the cgroup tree (the pods' cgroup directories and
// their cgroup.procs), else it reads <proc>/<pid>/cgroup of every process.
func (s *Scanner) Pods() (map[string][]Process, error) {
	if s.CgroupRoot != "" {
		return s.podsFromCgroupTree()
	}
	return s.podsFromProc()
}

// podsFromProc reads the cgroup file of every process: one small read per
// process of the node, whatever the cgroup version, driver or namespace.
func (s *Scanner) podsFromProc() (map[string][]Process, error) {
	names, err := readDirNames(s.procRoot())
	if err != nil {
		return nil, fmt.Errorf("failed to list processes in %s: %w", s.procRoot(), err)
	}
	pods := map[string][]Process{}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process: self, net, sys, ...
		}
		data, err := s.read(filepath.Join(s.procRoot(), name, "cgroup"))
		if err != nil {
			continue // exited since the listing
		}
		if pc, ok := parseProcCgroup(data); ok {
			pods[pc.PodUID] = append(pods[pc.PodUID], Process{PID: pid, ContainerID: pc.ContainerID})
		}
	}
	return pods, nil
}

// podsFromCgroupTree walks each hierarchy under CgroupRoot (the root itself
// on a cgroup v2 host; cpu, memory, ..., unified on a v1 or hybrid one),
// stops at each pod's cgroup and reads the cgroup.procs of it and of its
// container cgroups. A process is listed once even when several v1
// hierarchies hold it.
func (s *Scanner) podsFromCgroupTree() (map[string][]Process, error) {
	roots, err := hierarchies(s.CgroupRoot)
	if err != nil {
		return nil, err
	}
	pods := map[string][]Process{}
	seen := map[int]bool{}
	for _, root := range roots {
		s.walkCgroups(root, 0, pods, seen)
	}
	return pods, nil
}

// hierarchies returns the hierarchy roots under root: root itself when it
// is a cgroup (it has cgroup.procs), else its subdirectories that are.
// Symbolic links (cpu -> cpu,cpuacct) are skipped, so no hierarchy is
// walked twice.
func hierarchies(root string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
		return []string{root}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("failed to list cgroup hierarchies in %s: %w", root, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			out = append(out, dir)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("failed to find a cgroup hierarchy in %s: no cgroup.procs in it or its subdirectories", root)
	}
	return out, nil
}

// walkCgroups descends dir. Unreadable
// directories are skipped: cgroups come and go during the walk.
func (s *Scanner) walkCgroups(dir string, depth int, pods map[string][]Process, seen map[int]bool) {
	if depth > maxCgroupDepth {
		return
	}
	subdirs, err := readSubdirs(dir)
	if err != nil {
		return
	}
	for _, name := range subdirs {
		uid, ok := podSegment(name)
		if !ok {
			s.walkCgroups(filepath.Join(dir, name), depth+1, pods, seen)
			continue
		}
		podDir := filepath.Join(dir, name)
		s.addProcs(podDir, uid, "", pods, seen)
		containers, err := readSubdirs(podDir)
		if err != nil {
			continue
		}
		for _, c := range containers {
			s.addProcs(filepath.Join(podDir, c), uid, containerSegment(c), pods, seen)
		}
	}
}

// addProcs lists the processes of one cgroup.
func (s *Scanner) addProcs(dir, uid, containerID string, pods map[string][]Process, seen map[int]bool) {
	data, err := s.read(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range bytes.Fields(data) {
		pid, err := strconv.Atoi(string(f))
		if err != nil || seen[pid] {
			continue
		}
		seen[pid] = true
		pods[uid] = append(pods[uid], Process{PID: pid, ContainerID: containerID})
	}
}

// readSubdirs lists the subdirectories of dir from the directory entries
// alone (no stat per entry; a cgroup has dozens of files).
func readSubdirs(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type()&fs.ModeDir != 0 {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// read reads a whole (proc or cgroup) file into the scanner's buffer; the
// result is valid until the next read. Such files report size 0, so it
// reads to EOF.
func (s *Scanner) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if s.buf == nil {
		s.buf = make([]byte, 0, 64<<10)
	}
	buf := s.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	s.buf = buf
	return buf, nil
}
