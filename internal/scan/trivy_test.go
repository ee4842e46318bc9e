package scan

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/proc"

	"github.com/barde/phialo-image-action/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const testRef = "ghcr.io/barde/phialoastro@sha256:390bd86e91fe45ab879c59d2c9b18e1d45ce727058ebad1c41ffd9bc3f9bf7b5"

func TestArgsGolden(t *testing.T) {
	t.Parallel()
	tests := map[string]Trivy{
		"defaults": {Bin: "trivy"},
		"offline": {
			Bin:           "trivy",
			CacheDir:      "/runner/temp/trivy",
			Offline:       true,
			Severities:    []string{"CRITICAL", "HIGH"},
			IgnoreUnfixed: true,
			Timeout:       4 * time.Minute,
		},
		"mirror": {
			Bin:          "trivy",
			CacheDir:     "/home/runner/.cache/trivy",
			DBRepository: "ghcr.io/aquasecurity/trivy-db:2",
			Severities:   []string{"CRITICAL"},
			Env:          []string{"DOCKER_CONFIG=/runner/temp/docker"},
		},
		"user-cache-backend": {
			Bin:      "trivy",
			CacheDir: "/runner/temp/trivy",
			Env:      []string{"DOCKER_CONFIG=/runner/temp/docker", "TRIVY_CACHE_BACKEND=redis://cache:6379"},
		},
	}
	for name, tr := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := Args(&tr, testRef, "linux/arm64", "/runner/temp/scan/linux-arm64.sarif")
			if args[0] != "image" || args[len(args)-1] != testRef {
				t.Errorf("argv does not start with image and end with the reference: %q", args)
			}
			testutil.Golden(t, filepath.Join("testdata", "args", name+".golden"), strings.Join(args, "\n")+"\n", *update)
			download := DownloadArgs(&tr)
			testutil.Golden(t, filepath.Join("testdata", "download-args", name+".golden"), strings.Join(download, "\n")+"\n", *update)
		})
	}
}

// TestArgsScansDoNotLock checks the flags that keep scans running at once
// on one cache directory from waiting on each other's locks: the scan cache
// in memory and the database only read.
func TestArgsScansDoNotLock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		trivy       Trivy
		wantBackend bool
	}{
		{"defaults", Trivy{Bin: "trivy"}, true},
		{"with a cache dir and env", Trivy{Bin: "trivy", CacheDir: "/c", Env: []string{"DOCKER_CONFIG=/d"}}, true},
		{"offline", Trivy{Bin: "trivy", CacheDir: "/c", Offline: true}, true},
		{"the user's backend", Trivy{Bin: "trivy", Env: []string{"TRIVY_CACHE_BACKEND=redis://cache:6379"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := strings.Join(Args(&tt.trivy, testRef, "linux/amd64", "/out.sarif"), " ")
			if !strings.Contains(args, " --skip-db-update ") {
				t.Errorf("argv lacks --skip-db-update: %s", args)
			}
			if got := strings.Contains(args, " --cache-backend memory "); got != tt.wantBackend {
				t.Errorf("argv has --cache-backend memory: %v, want %v: %s", got, tt.wantBackend, args)
			}
		})
	}
}

func TestDownloadDB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trivy   Trivy
		fake    fakeTrivy
		wantRun bool
		wantErr string
	}{
		{name: "downloads", trivy: Trivy{Bin: "/opt/trivy", CacheDir: "/c", DBRepository: "mirror.example/trivy-db:2"}, wantRun: true},
		{name: "offline", trivy: Trivy{Bin: "/opt/trivy", Offline: true}},
		{name: "TRIVY_SKIP_DB_UPDATE", trivy: Trivy{Bin: "/opt/trivy", Env: []string{"TRIVY_SKIP_DB_UPDATE=true"}}},
		{name: "TRIVY_SKIP_DB_UPDATE false", trivy: Trivy{Bin: "/opt/trivy", Env: []string{"TRIVY_SKIP_DB_UPDATE=false"}}, wantRun: true},
		{
			name:    "failure ends with trivy's last lines",
			trivy:   Trivy{Bin: "/opt/trivy", CacheDir: "/c"},
			fake:    fakeTrivy{stderr: "FATAL\tfailed to download vulnerability DB\n", err: errors.New("exit status 1")},
			wantRun: true,
			wantErr: "downloading Trivy's database to \"/c\": exit status 1\ntrivy said:\n  FATAL\tfailed to download vulnerability DB",
		},
		{name: "no binary", wantErr: "no trivy binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := tt.fake
			tr := tt.trivy
			tr.Exec = fake.exec
			err := tr.DownloadDB(context.Background())
			if tt.wantErr == "" && err != nil {
				t.Fatalf("DownloadDB: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("DownloadDB error = %v, want it to contain %q", err, tt.wantErr)
			}
			if (fake.calls == 1) != tt.wantRun || fake.calls > 1 {
				t.Fatalf("trivy ran %d times, want it to run: %v", fake.calls, tt.wantRun)
			}
			if !tt.wantRun {
				return
			}
			if diff := cmp.Diff(DownloadArgs(&tr), fake.args); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tr.Env, fake.env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeTrivy records a call and acts as a Trivy would.
type fakeTrivy struct {
	bin        string
	args, env  []string
	deadline   bool
	calls      int
	report     string // written to --output, if not ""
	empty      bool   // an empty file is written to --output
	stderr     string
	err        error
	waitCancel bool // returns when the context ends
}

func (f *fakeTrivy) exec(ctx context.Context, bin string, args, env []string, stdout, stderr io.Writer) error {
	f.calls++
	f.bin, f.args, f.env = bin, args, env
	_, f.deadline = ctx.Deadline()
	if f.waitCancel {
		<-ctx.Done()
		return errors.New("signal: interrupt")
	}
	fmt.Fprint(stderr, f.stderr)
	if f.report != "" || f.empty {
		for i, a := range args {
			if a == "--output" {
				if err := os.WriteFile(args[i+1], []byte(f.report), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return f.err
}

func TestScan(t *testing.T) {
	t.Parallel()
	trivyLog := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "2026-01-01T00:00:00Z\tINFO\tline %d\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name     string
		trivy    Trivy
		ref      string
		fake     fakeTrivy
		stale    bool   // an old report is at out before the scan
		wantErr  string // "" for success
		notInErr string
		noCall   bool
	}{
		{
			name:  "success",
			trivy: Trivy{Bin: "/opt/trivy", Env: []string{"DOCKER_CONFIG=/runner/temp/docker"}},
			fake:  fakeTrivy{report: `{"version":"2.1.0"}`, stderr: trivyLog(3)},
		},
		{
			name:     "failure ends with trivy's last lines",
			trivy:    Trivy{Bin: "/opt/trivy"},
			fake:     fakeTrivy{stderr: trivyLog(14) + "2026-01-01T00:00:00Z\tFATAL\tFatal error\trun error: init error: DB error: --skip-db-update cannot be specified on the first run", err: errors.New("exit status 1")},
			wantErr:  "scanning \"" + testRef + "\" for linux/arm64: exit status 1\ntrivy said:\n  2026-01-01T00:00:00Z\tINFO\tline 6\n",
			notInErr: "line 5\n",
		},
		{
			name:    "no report",
			trivy:   Trivy{Bin: "/opt/trivy"},
			fake:    fakeTrivy{stderr: "quiet\n"},
			wantErr: "trivy wrote no report",
		},
		{
			name:    "an empty report",
			trivy:   Trivy{Bin: "/opt/trivy"},
			fake:    fakeTrivy{empty: true},
			wantErr: "trivy wrote no report",
		},
		{
			name:    "a stale report does not pass for this scan's",
			trivy:   Trivy{Bin: "/opt/trivy"},
			stale:   true,
			wantErr: "trivy wrote no report",
		},
		{
			name:    "tag instead of digest",
			trivy:   Trivy{Bin: "/opt/trivy"},
			ref:     "ghcr.io/barde/phialoastro:latest",
			wantErr: "not a digest reference",
			noCall:  true,
		},
		{
			name:    "unknown severity",
			trivy:   Trivy{Bin: "/opt/trivy", Severities: []string{"CRITICAL", "SEVERE"}},
			wantErr: `unknown severity "SEVERE"`,
			noCall:  true,
		},
		{
			name:    "no binary",
			wantErr: "no trivy binary",
			noCall:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := tc.fake
			tr := tc.trivy
			tr.Exec = fake.exec
			ref := tc.ref
			if ref == "" {
				ref = testRef
			}
			out := filepath.Join(t.TempDir(), "linux-arm64.sarif")
			if tc.stale {
				if err := os.WriteFile(out, []byte(`{"stale":true}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := tr.Scan(context.Background(), ref, "linux/arm64", out)
			if tc.noCall != (fake.calls == 0) {
				t.Errorf("trivy ran %d times, want %v", fake.calls, map[bool]string{true: "never", false: "once"}[tc.noCall])
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				if fake.bin != tr.Bin {
					t.Errorf("ran %q, want %q", fake.bin, tr.Bin)
				}
				if diff := cmp.Diff(Args(&tr, ref, "linux/arm64", out), fake.args); diff != "" {
					t.Errorf("argv (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tr.Env, fake.env); diff != "" {
					t.Errorf("env (-want +got):\n%s", diff)
				}
				if data, _ := os.ReadFile(out); string(data) != fake.report {
					t.Errorf("report = %q, want %q", data, fake.report)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Scan error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.notInErr != "" && strings.Contains(err.Error(), tc.notInErr) {
				t.Errorf("Scan error keeps more than trivy's last lines:\n%v", err)
			}
		})
	}
}

func TestScanCancelled(t *testing.T) {
	t.Parallel()
	fake := &fakeTrivy{waitCancel: true}
	tr := Trivy{Bin: "/opt/trivy", Exec: fake.exec}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	err := tr.Scan(ctx, testRef, "linux/amd64", filepath.Join(t.TempDir(), "out.sarif"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scan error = %v, want context.Canceled", err)
	}
}

func TestScanTimeoutBoundsTheProcess(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, time.Minute} {
		fake := &fakeTrivy{report: "{}"}
		tr := Trivy{Bin: "/opt/trivy", Timeout: timeout, Exec: fake.exec}
		if err := tr.Scan(context.Background(), testRef, "linux/amd64", filepath.Join(t.TempDir(), "out.sarif")); err != nil {
			t.Fatal(err)
		}
		if fake.deadline != (timeout > 0) {
			t.Errorf("Timeout %s: the process's context has a deadline: %v", timeout, fake.deadline)
		}
	}
}

func TestSaid(t *testing.T) {
	t.Parallel()
	tw := &proc.Tail{Max: 2}
	for _, chunk := range []string{"one\ntw", "o\n\n  \nthree\r\n", "four"} {
		if _, err := tw.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff("\ntrivy said:\n  three\n  four", said(tw)); diff != "" {
		t.Errorf("said() (-want +got):\n%s", diff)
	}
	if got := said(&proc.Tail{Max: 2}); got != "" {
		t.Errorf("said() with nothing written = %q", got)
	}
}
