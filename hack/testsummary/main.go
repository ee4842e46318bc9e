// Command testsummary reads `go test -json` on stdin and prints what a plain
// `go test` prints (each package's ok or FAIL line, the output of the tests
// that failed and of a package that failed outside its tests), then the
// tests that skipped, with their reasons, then one line
// "N passed, N failed, N skipped" (tests and subtests). It exits 1 when a
// test or a package failed, when a test skipped that allowedSkips does not
// name, or when no test ran.
//
//	go test -json ./... | go run ./hack/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// allowedSkips names the tests that may skip in ./hack/test.sh, as
// "PACKAGE TEST" (TEST as go test names it, subtests with a slash), each
// with the reason it may. Any other skip fails the run: the test command
// provides every test's environment, so a skip there hides a broken one.
// Add an entry only with the reason the test cannot run in the test
// command.
var allowedSkips = map[string]string{}

func main() {
	ok, err := summarize(os.Stdin, os.Stdout, allowedSkips)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json), with the build
// events of the go command.
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// skip is a test that skipped and why.
type skip struct {
	name   string // "PACKAGE TEST"
	reason string
}

// pkgState is the output of a package that has not ended yet.
type pkgState struct {
	own   []string            // output outside any test
	tests map[string][]string // output of the tests still running
}

// summarize reads the event stream from in, writes the summary to out and
// reports whether the run passed with only allowed skips.
func summarize(in io.Reader, out io.Writer, allowed map[string]string) (bool, error) {
	var (
		passed, failed int
		pkgFailed      []string
		skips          []skip
		pkgs           = map[string]*pkgState{}
	)
	state := func(p string) *pkgState {
		if pkgs[p] == nil {
			pkgs[p] = &pkgState{tests: map[string][]string{}}
		}
		return pkgs[p]
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event: go test's own messages go through as they are.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "output" && e.Test != "":
			st := state(e.Package)
			st.tests[e.Test] = append(st.tests[e.Test], e.Output)
		case e.Action == "output":
			st := state(e.Package)
			st.own = append(st.own, e.Output)
		case e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			st := state(e.Package)
			lines := st.tests[e.Test]
			delete(st.tests, e.Test)
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				printLines(out, failFirst(lines))
			case "skip":
				skips = append(skips, skip{name: e.Package + " " + e.Test, reason: skipReason(lines)})
			}
		case e.Test == "" && e.Package != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			st := state(e.Package)
			delete(pkgs, e.Package)
			if e.Action != "fail" {
				// What a plain go test prints for it: "ok ..." or "? ... [no test files]".
				for _, l := range st.own {
					if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "?") {
						fmt.Fprint(out, l)
					}
				}
				continue
			}
			pkgFailed = append(pkgFailed, e.Package)
			// Tests that never ended (a panic, a timeout) first.
			names := make([]string, 0, len(st.tests))
			for n := range st.tests {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				printLines(out, st.tests[n])
			}
			printLines(out, st.own)
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading go test -json: %w", err)
	}
	ok := true
	var unfinished []string
	for p := range pkgs {
		unfinished = append(unfinished, p)
	}
	sort.Strings(unfinished)
	for _, p := range unfinished {
		fmt.Fprintf(out, "FAIL\t%s: the stream ended before the package did\n", p)
		ok = false
	}
	var unexpected int
	for _, s := range skips {
		why, allowedSkip := allowed[s.name]
		if allowedSkip {
			fmt.Fprintf(out, "skipped (allowed: %s): %s: %s\n", why, s.name, s.reason)
			continue
		}
		unexpected++
		fmt.Fprintf(out, "SKIPPED: %s: %s\n", s.name, s.reason)
	}
	if unexpected > 0 {
		fmt.Fprintf(out, "%d tests skipped that the allow-list in hack/testsummary does not name\n", unexpected)
		ok = false
	}
	if passed+failed+len(skips) == 0 {
		fmt.Fprintln(out, "no test ran")
		ok = false
	}
	if failed > 0 || len(pkgFailed) > 0 {
		ok = false
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, failed, len(skips))
	return ok, nil
}

// printLines prints a test's or package's output as a plain go test does,
// without the -v progress lines (=== RUN and the like).
func printLines(out io.Writer, lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") {
			continue
		}
		fmt.Fprint(out, l)
	}
}

// failFirst moves a failed test's "--- FAIL" line before its log, where
// a plain go test prints it.
func failFirst(lines []string) []string {
	var head, rest []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL: ") {
			head = append(head, l)
		} else {
			rest = append(rest, l)
		}
	}
	return append(head, rest...)
}

// skipReason is what a skipped test logged, on one line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}
