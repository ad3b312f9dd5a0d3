package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/testenv"
)

// TestRun runs the whole agent in-process against a real API server and
// this machine's kernel (root): a pod object on the agent's node whose UID
// names a cgroup the test creates, holding a real listener on 0.0.0.0:15000
// in a network namespace of its own, is reported with its process; a
// running pod without processes is listed as unchecked; a pod of another
// node is not looked at. Cancelling the context stops the agent cleanly.
func TestRun(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	const nodeName = "run-node"
	mustCreate(t, c, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}})
	mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	mustCreate(t, c, &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "admin"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
		},
	})
	exposed := runningPod(t, c, "exposed", nodeName)
	idle := runningPod(t, c, "idle", nodeName)
	runningPod(t, c, "elsewhere", "other-node")
	pid := listenerInPodCgroup(t, string(exposed.UID))

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, env.Config, options{
			nodeName: nodeName, procRoot: "/proc", metricsAddr: "0", probeAddr: "0",
			scanInterval: time.Second, reportRefresh: time.Minute,
		})
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		msg := checkReport(t, c, nodeName, exposed, idle, pid)
		if msg == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report not as expected after 60s: %s", msg)
		}
		time.Sleep(200 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancel")
	}
}

func checkReport(t *testing.T, c client.Client, nodeName string, exposed, idle *corev1.Pod, pid int) string {
	var nbr v1alpha1.NodeBindReport
	if err := c.Get(context.Background(), client.ObjectKey{Name: nodeName}, &nbr); err != nil {
		return err.Error()
	}
	byName := map[string]v1alpha1.PodBindReport{}
	for _, p := range nbr.Status.Pods {
		byName[p.Name] = p
	}
	if _, ok := byName["elsewhere"]; ok {
		t.Fatalf("the report lists a pod of another node: %+v", nbr.Status.Pods)
	}
	e, ok := byName["exposed"]
	if !ok || e.UID != exposed.UID {
		return fmt.Sprintf("pod exposed not reported: %+v", nbr.Status.Pods)
	}
	want := v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000, PID: int64(pid), Process: "listener",
		Container: "server", ContainerID: "containerd://" + testContainerID}
	if len(e.Listeners) != 1 || e.Listeners[0] != want {
		return fmt.Sprintf("pod exposed: listeners %+v (unchecked %q), want %+v", e.Listeners, e.Unchecked, want)
	}
	if i, ok := byName["idle"]; !ok || i.Unchecked == "" || i.UID != idle.UID {
		return fmt.Sprintf("pod idle: %+v, want unchecked", i)
	}
	if nbr.Status.PodsChecked != 1 || nbr.Status.PodsBeyondLoopback != 1 {
		return fmt.Sprintf("podsChecked %d podsBeyondLoopback %d, want 1 and 1", nbr.Status.PodsChecked, nbr.Status.PodsBeyondLoopback)
	}
	return ""
}

func mustCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("failed to create %T %s: %v", obj, obj.GetName(), err)
	}
}

// testContainerID is the container ID of the test's pods, in their status
// and in the listener's cgroup path.
var testContainerID = strings.Repeat("ab", 32)

// runningPod creates a pod bound to node and marks it Running.
func runningPod(t *testing.T, c client.Client, name, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "server", Image: "loopguard-listener:dev"}}},
	}
	mustCreate(t, c, pod)
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "server", Image: "loopguard-listener:dev", ImageID: "sha256:0", ContainerID: "containerd://" + testContainerID,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("failed to mark pod %s Running: %v", name, err)
	}
	return pod
}

// listenerInPodCgroup starts cmd/listener on 0.0.0.0:15000 in a network
// namespace of its own and moves it into a cgroupfs-style pod cgroup
// named after uid (below a test root, not the kubelet's kubepods, which a
// running dev node would clean up).
func listenerInPodCgroup(t *testing.T, uid string) int {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "listener")
	build := exec.Command("go", "build", "-o", bin, "./cmd/listener")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/listener: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "tcp4://0.0.0.0:15000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start the listener in a new network namespace (root needed): %v", err)
	}
	root := filepath.Join("/sys/fs/cgroup/pids", fmt.Sprintf("loopguard-agent-test-%d", os.Getpid()))
	dir := filepath.Join(root, "kubepods", "besteffort", "pod"+uid, testContainerID)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for d := dir; d != filepath.Dir(root); d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Errorf("failed to remove cgroup %s: %v", d, err)
			}
		}
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("failed to create cgroup %s (root and cgroup v1 pids needed): %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatalf("failed to move the listener into %s: %v", dir, err)
	}
	return cmd.Process.Pid
}
