package proc

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTail(t *testing.T) {
	t.Parallel()
	var passed bytes.Buffer
	tl := &Tail{W: &passed, Max: 2}
	for _, s := range []string{"one\n", "\n", "two\r\nthr", "ee\nfour"} {
		if _, err := tl.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"three", "four"}, tl.Lines()); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
	if passed.String() != "one\n\ntwo\r\nthree\nfour" {
		t.Errorf("passed through %q", passed.String())
	}
}

// lineSignal closes ready once a line equal to line has been written.
type lineSignal struct {
	line  string
	ready chan struct{}
	mu    sync.Mutex
	buf   string
	done  bool
}

func (w *lineSignal) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf += string(p)
	if !w.done && strings.Contains("\n"+w.buf, "\n"+w.line+"\n") {
		w.done = true
		close(w.ready)
	}
	return len(p), nil
}

func TestExecInterruptsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := &lineSignal{line: "ready", ready: make(chan struct{})}
	tl := &Tail{W: ready, Max: 5}
	// Cancel once the shell says its SIGINT handler is set, not before:
	// a signal that comes first kills the shell.
	go func() {
		select {
		case <-ready.ready:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}()
	start := time.Now()
	// The shell traps SIGINT, says so and exits: the command was
	// interrupted, not killed.
	err := Exec(ctx, "/bin/sh", []string{"-c", `trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.05; done`}, nil, tl, tl)
	if err == nil {
		t.Fatal("Exec returned nil for a cancelled command")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop", took)
	}
	if diff := cmp.Diff([]string{"ready", "interrupted"}, tl.Lines()); diff != "" {
		t.Errorf("output (-want +got), want the command's SIGINT handler to have run:\n%s", diff)
	}
}
