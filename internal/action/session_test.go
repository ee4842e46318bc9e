package action

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/config"
)

func TestNewSessionWorkDirectory(t *testing.T) {
	t.Parallel()
	runnerTemp := t.TempDir()
	hostPath := filepath.Join(t.TempDir(), "host", "work", "_temp")
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		runnerTemp string
		wantParent string // "" when newSession must fail
		wantDebug  bool
	}{
		{name: "under RUNNER_TEMP", runnerTemp: runnerTemp, wantParent: runnerTemp},
		{name: "no RUNNER_TEMP", wantParent: os.TempDir()},
		// Runners older than 2.331 pass the host's path, absent in the
		// action's container.
		{name: "RUNNER_TEMP missing in the container", runnerTemp: hostPath, wantParent: os.TempDir(), wantDebug: true},
		{name: "RUNNER_TEMP not a directory", runnerTemp: notADir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log bytes.Buffer
			env := map[string]string{"RUNNER_TEMP": tt.runnerTemp}
			gha := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }), githubactions.WithWriter(&log))
			s, err := newSession(gha, config.Build{Registry: "ghcr.io", Username: "u", Password: "p"})
			if tt.wantParent == "" {
				if err == nil {
					s.close()
					t.Fatal("newSession made a work directory under a file")
				}
				return
			}
			if err != nil {
				t.Fatalf("newSession: %v\nlog:\n%s", err, log.String())
			}
			defer func() {
				if err := s.close(); err != nil {
					t.Error(err)
				}
				if _, err := os.Stat(s.work); !os.IsNotExist(err) {
					t.Errorf("the work directory is still there after close: %v", err)
				}
			}()
			if filepath.Dir(s.work) != filepath.Clean(tt.wantParent) || !strings.HasPrefix(filepath.Base(s.work), "phialo-image-action-") {
				t.Errorf("work directory %s, want one in %s", s.work, tt.wantParent)
			}
			st, err := os.Stat(s.work)
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("work directory: %v, %v: want a private directory", st, err)
			}
			if _, err := os.Stat(filepath.Join(s.dockerConfig, "config.json")); err != nil {
				t.Errorf("no Docker config with the login: %v", err)
			}
			debug := strings.Contains(log.String(), "::debug::RUNNER_TEMP \""+tt.runnerTemp+"\" does not exist")
			if debug != tt.wantDebug {
				t.Errorf("debug line about RUNNER_TEMP: %v, want %v; log:\n%s", debug, tt.wantDebug, log.String())
			}
			if strings.Contains(log.String(), "::warning::") || strings.Contains(log.String(), "::error::") {
				t.Errorf("more than a debug line:\n%s", log.String())
			}
		})
	}
}
