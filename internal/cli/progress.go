package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressAfter is how long audit works silently before it shows progress.
var progressAfter = time.Second

// progress shows what a long operation is doing on stderr, once it has
// taken longer than progressAfter: on a terminal, one line redrawn in place
// with a spinner; elsewhere (CI logs), a plain line when the step changes,
// at most once a second. A nil *progress does nothing.
type progress struct {
	w     io.Writer
	tty   bool
	after time.Duration
	start time.Time

	mu        sync.Mutex
	msg       string
	lastPrint time.Time
	drawn     bool
	stop      chan struct{}
	done      chan struct{}
}

func newProgress(w io.Writer, after time.Duration) *progress {
	f, ok := w.(*os.File)
	return startProgress(w, ok && term.IsTerminal(int(f.Fd())), after)
}

func startProgress(w io.Writer, tty bool, after time.Duration) *progress {
	p := &progress{w: w, tty: tty, after: after, start: time.Now()}
	if tty {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.spin()
	}
	return p
}

// Set names the current step.
func (p *progress) Set(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	changed := msg != p.msg
	p.msg = msg
	if p.tty || !changed {
		return
	}
	now := time.Now()
	if now.Sub(p.start) >= p.after && now.Sub(p.lastPrint) >= time.Second {
		fmt.Fprintf(p.w, "loopguard: %s (%s)\n", msg, now.Sub(p.start).Round(time.Second))
		p.lastPrint = now
	}
}

var spinnerFrames = []string{"|", "/", "-", "\\"}

func (p *progress) spin() {
	defer close(p.done)
	select {
	case <-time.After(p.after):
	case <-p.stop:
		return
	}
	t := time.NewTicker(120 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r\033[K%s %s (%s)", spinnerFrames[i%len(spinnerFrames)], p.msg, time.Since(p.start).Round(time.Second))
		p.drawn = true
		p.mu.Unlock()
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
	}
}

// Done stops the indicator and erases it from a terminal.
func (p *progress) Done() {
	if p == nil || !p.tty {
		return
	}
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
