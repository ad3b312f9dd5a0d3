package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
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
	time.Sleep(300 * time.Millisecond)
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
