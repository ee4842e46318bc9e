// Command benchdryrun measures the whole action process in dry-run, from
// start to written outputs, the way the runner starts it: a fresh process
// with env only, an event file and GITHUB_OUTPUT, against a local fake of
// GitHub's REST API. It prints min, median and p95 wall time.
//
//	go run ./hack/benchdryrun -bin ./phialo-image-action -n 100
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

func main() {
	bin := flag.String("bin", "", "the action binary")
	n := flag.Int("n", 100, "runs")
	event := flag.String("event", "testdata/events/push-tag", "event fixture, without .json")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "benchdryrun: -bin is required")
		os.Exit(2)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"phialoastro","full_name":"barde/phialoastro","html_url":"https://github.com/barde/phialoastro","description":"Phialo","default_branch":"main","license":{"spdx_id":"MIT"}}`)
	}))
	defer api.Close()
	dir, err := os.MkdirTemp("", "benchdryrun")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	evPath, _ := filepath.Abs(*event + ".json")
	env := []string{
		"GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/tags/v1.2.3",
		"GITHUB_SHA=abc1234567890abcdef1234567890abcdef12345", "GITHUB_REPOSITORY=barde/phialoastro",
		"GITHUB_API_URL=" + api.URL, "GITHUB_EVENT_PATH=" + evPath,
		"GITHUB_OUTPUT=" + filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary"),
		"INPUT_DRY-RUN=true", "INPUT_GITHUB-TOKEN=ghs_bench",
	}
	var times []time.Duration
	for i := 0; i < *n; i++ {
		os.Remove(filepath.Join(dir, "output"))
		cmd := exec.Command(*bin)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			fmt.Fprintf(os.Stderr, "run %d: %v\n%s", i, err, out)
			os.Exit(1)
		}
		if st, err := os.Stat(filepath.Join(dir, "output")); err != nil || st.Size() == 0 {
			fmt.Fprintf(os.Stderr, "run %d wrote no outputs\n", i)
			os.Exit(1)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("dry-run, whole process, %d runs: min %s, median %s, p95 %s (target: under 20 ms)\n",
		*n, ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)*95/100]))
}
