package proc

import (
	"bytes"
	"context"
	"strings"
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

func TestExecInterruptsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	tl := &Tail{Max: 5}
	start := time.Now()
	// The shell traps SIGINT, says so and exits: the command was
	// interrupted, not killed.
	err := Exec(ctx, "/bin/sh", []string{"-c", `trap 'echo interrupted; exit 3' INT; while :; do sleep 0.05; done`}, nil, tl, tl)
	if err == nil {
		t.Fatal("Exec returned nil for a cancelled command")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop", took)
	}
	if got := strings.Join(tl.Lines(), "\n"); got != "interrupted" {
		t.Errorf("output %q, want the command's SIGINT handler to have run", got)
	}
}
