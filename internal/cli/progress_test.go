package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// syncBuffer is a bytes.Buffer safe for the spinner goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressTerminal(t *testing.T) {
	var buf syncBuffer
	p := startProgress(&buf, true, 0)
	p.Set("listing %s", "pods")
	// The spinner draws the step on its next tick: wait for it.
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return strings.Contains(buf.String(), "listing pods"), nil })
	if err != nil {
		t.Fatalf("the spinner never drew the step: %q", buf.String())
	}
	p.Done()
	out := buf.String()
	if !strings.Contains(out, "listing pods") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("want the step redrawn in place and erased at the end, got %q", out)
	}
}

func TestProgressQuietWhenFast(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var buf syncBuffer
		p := startProgress(&buf, tty, time.Hour)
		p.Set("reading policies")
		p.Set("listing pods")
		p.Done()
		if buf.String() != "" {
			t.Errorf("tty=%v: printed before the threshold: %q", tty, buf.String())
		}
	}
	var nilProgress *progress
	nilProgress.Set("ignored")
	nilProgress.Done()
}

func TestProgressLog(t *testing.T) {
	var buf syncBuffer
	p := startProgress(&buf, false, 0)
	p.Set("reading policies")
	p.Set("listing pods") // within a second of the last line: not printed
	p.Done()
	if out := buf.String(); !strings.HasPrefix(out, "loopguard: reading policies (") || strings.Count(out, "\n") != 1 {
		t.Errorf("want one plain line, got %q", out)
	}
}
