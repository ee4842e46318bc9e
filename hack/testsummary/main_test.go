package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// module is a Go module of packages whose tests pass, fail, skip, have no
// test files or do not build.
var module = map[string]string{
	"go.mod": "module example\n\ngo 1.21\n",
	"pass/pass_test.go": `package pass

import "testing"

func TestPass(t *testing.T) { t.Log("a log line of a passing test") }

func TestParent(t *testing.T) {
	t.Run("sub", func(t *testing.T) {})
}
`,
	"skip/skip_test.go": `package skip

import "testing"

func TestRuns(t *testing.T) {}

func TestSkip(t *testing.T) { t.Skip("no database here") }
`,
	"fail/fail_test.go": `package fail

import "testing"

func TestOK(t *testing.T) {}

func TestFail(t *testing.T) { t.Error("the answer is wrong") }
`,
	"none/none.go": "package none\n",
	"broken/broken_test.go": `package broken

import "testing"

func TestBroken(t *testing.T) { undefinedName() }
`,
}

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	for name, content := range module {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTest := func(t *testing.T, pkgs []string) []byte {
		t.Helper()
		cmd := exec.Command("go", append([]string{"test", "-json", "-count=1"}, pkgs...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
		out, err := cmd.Output() // fails with the tests that fail
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("go test: %v", err)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		pkgs    []string
		allowed map[string]string
		wantOK  bool
		want    []string // lines of the summary, in order
		notWant []string
	}{
		{
			name:    "passing tests and subtests",
			pkgs:    []string{"./pass", "./none"},
			wantOK:  true,
			want:    []string{"?   \texample/none\t[no test files]", "ok  \texample/pass\t", "3 passed, 0 failed, 0 skipped"},
			notWant: []string{"a log line of a passing test", "=== RUN", "--- PASS"},
		},
		{
			name:   "a skip not in the allow-list fails",
			pkgs:   []string{"./skip"},
			wantOK: false,
			want: []string{"ok  \texample/skip\t", "SKIPPED: example/skip TestSkip: skip_test.go:7: no database here",
				"1 tests skipped that the allow-list in hack/testsummary does not name", "1 passed, 0 failed, 1 skipped"},
		},
		{
			name:    "an allowed skip",
			pkgs:    []string{"./skip"},
			allowed: map[string]string{"example/skip TestSkip": "the reason"},
			wantOK:  true,
			want:    []string{"skipped (allowed: the reason): example/skip TestSkip: skip_test.go:7: no database here", "1 passed, 0 failed, 1 skipped"},
			notWant: []string{"SKIPPED"},
		},
		{
			name:    "a failing test",
			pkgs:    []string{"./fail"},
			wantOK:  false,
			want:    []string{"--- FAIL: TestFail", "fail_test.go:7: the answer is wrong", "FAIL\texample/fail\t", "1 passed, 1 failed, 0 skipped"},
			notWant: []string{"=== RUN", "--- PASS"},
		},
		{
			name:   "a package that does not build",
			pkgs:   []string{"./broken"},
			wantOK: false,
			want:   []string{"undefined: undefinedName", "FAIL\texample/broken [build failed]", "0 passed, 0 failed, 0 skipped"},
		},
		{
			name:   "no test at all",
			pkgs:   []string{"./none"},
			wantOK: false,
			want:   []string{"[no test files]", "no test ran", "0 passed, 0 failed, 0 skipped"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			ok, err := summarize(bytes.NewReader(goTest(t, tc.pkgs)), &out, tc.allowed)
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v:\n%s", ok, tc.wantOK, got)
			}
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("the summary lacks %q after what came before:\n%s", w, got)
					continue
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("the summary has %q:\n%s", w, got)
				}
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasSuffix(last, " skipped") || strings.Count(last, ",") != 2 {
				t.Errorf("the last line %q is not the count line", last)
			}
		})
	}
}

func TestSummarizeCutStream(t *testing.T) {
	in := `{"Action":"start","Package":"example/a"}
{"Action":"run","Package":"example/a","Test":"TestA"}
{"Action":"output","Package":"example/a","Test":"TestA","Output":"=== RUN   TestA\n"}
`
	var out bytes.Buffer
	ok, err := summarize(strings.NewReader(in), &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok || !strings.Contains(out.String(), "FAIL\texample/a: the stream ended before the package did") {
		t.Errorf("ok = %v for a stream cut in the middle of a package:\n%s", ok, out.String())
	}
}
