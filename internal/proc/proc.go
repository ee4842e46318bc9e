// Package proc runs the external tools the action drives (buildx, trivy,
// phialo-sbom): cancellation that lets a tool clean up, and the last lines
// a tool printed for error messages.
package proc

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ExecFunc runs bin with args and exactly env. It is the seam unit tests
// replace; Exec runs the real binary.
type ExecFunc func(ctx context.Context, bin string, args, env []string, stdout, stderr io.Writer) error

// Exec runs a command. When ctx is cancelled the command gets SIGINT, on
// which buildx cancels its build and Trivy stops, and it is killed if it
// has not ended 20 s later.
func Exec(ctx context.Context, bin string, args, env []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	return cmd.Run()
}

// Tail passes what is written to W (when set) and keeps the last Max
// non-empty lines.
type Tail struct {
	W    io.Writer
	Max  int
	mu   sync.Mutex
	buf  []string
	part string
}

// Write implements io.Writer.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := strings.Split(t.part+string(p), "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.add(l)
	}
	if t.W == nil {
		return len(p), nil
	}
	return t.W.Write(p)
}

func (t *Tail) add(l string) {
	if strings.TrimSpace(l) == "" {
		return
	}
	t.buf = append(t.buf, strings.TrimRight(l, "\r"))
	if len(t.buf) > t.Max {
		t.buf = t.buf[1:]
	}
}

// Lines returns the kept lines, an unfinished last line included.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.buf...)
	if strings.TrimSpace(t.part) != "" {
		lines = append(lines, strings.TrimRight(t.part, "\r"))
		if len(lines) > t.Max {
			lines = lines[1:]
		}
	}
	return lines
}
