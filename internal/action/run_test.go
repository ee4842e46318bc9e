package action

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	token      = testutil.Token
	eventsDir  = "../../testdata/events"
	sourceDate = "1719568800" // 2024-06-28T10:00:00Z
)

// runnerEnv is the environment GitHub's runner gives the action for an
// event fixture, in dry-run, with output files in dir.
func runnerEnv(t *testing.T, fixture, apiURL, dir string) map[string]string {
	t.Helper()
	env := map[string]string{
		"GITHUB_ACTIONS":          "true",
		"GITHUB_REPOSITORY":       "barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER": "barde",
		"GITHUB_ACTOR":            "barde",
		"GITHUB_API_URL":          apiURL,
		"GITHUB_SERVER_URL":       "https://github.com",
		"GITHUB_EVENT_PATH":       filepath.Join(eventsDir, fixture+".json"),
		"GITHUB_OUTPUT":           filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY":     filepath.Join(dir, "summary"),
		"SOURCE_DATE_EPOCH":       sourceDate,
		"INPUT_DRY-RUN":           "true",
		"INPUT_GITHUB-TOKEN":      token,
	}
	data, err := os.ReadFile(filepath.Join(eventsDir, fixture+".env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	return env
}

// run runs the action in process and returns its log.
func run(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	var log bytes.Buffer
	getenv := func(k string) string { return env[k] }
	gha := githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(&log))
	err := Run(context.Background(), gha, &log)
	return log.String(), err
}

// names lists the files of dir that end in ext, without ext, sorted.
func names(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ext))
	}
	return out
}

// TestGoldenFilesMatchFixtures fails on an event fixture without both its
// files or without a golden file, and on a golden file without a fixture.
func TestGoldenFilesMatchFixtures(t *testing.T) {
	fixtures := names(t, eventsDir, ".env")
	if len(fixtures) == 0 {
		t.Fatalf("no event fixtures in %s", eventsDir)
	}
	if diff := cmp.Diff(fixtures, names(t, eventsDir, ".json")); diff != "" {
		t.Errorf("event fixtures without both NAME.env and NAME.json (-env +json):\n%s", diff)
	}
	goldens := names(t, filepath.Join("testdata", "golden"), ".golden")
	if *update {
		// TestGoldenEvents writes the missing ones; an orphan stays one.
		goldens = slices.DeleteFunc(goldens, func(g string) bool { return slices.Contains(fixtures, g) })
		goldens = append(goldens, fixtures...)
		slices.Sort(goldens)
	}
	if diff := cmp.Diff(fixtures, goldens); diff != "" {
		t.Errorf("event fixtures and golden files differ (-fixture +golden): delete a golden file whose fixture is gone, go test -update writes a missing one:\n%s", diff)
	}
}

func TestGoldenEvents(t *testing.T) {
	fixtures := names(t, eventsDir, ".env")
	if len(fixtures) == 0 {
		t.Fatalf("no event fixtures in %s", eventsDir)
	}
	gh := testutil.NewGitHub(t)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := runnerEnv(t, name, gh.URL, dir)
			log, err := run(t, env)
			if err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", err, log)
			}
			outs := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])
			var b strings.Builder
			for _, k := range []string{"version", "tags", "tag-names", "labels", "annotations", "json"} {
				fmt.Fprintf(&b, "== output %s\n%s\n", k, outs[k])
			}
			summary, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "== summary\n%s== log\n%s", summary, log)
			got := b.String()
			if strings.Count(got, token) != 1 || !strings.Contains(got, "::add-mask::"+token) {
				t.Errorf("the token appears other than in its ::add-mask:: command")
			}
			var j struct {
				Tags        []string          `json:"tags"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal([]byte(outs["json"]), &j); err != nil {
				t.Errorf("json output is not JSON: %v", err)
			}
			if diff := cmp.Diff(strings.Split(outs["tags"], "\n"), j.Tags); outs["tags"] != "" && diff != "" {
				t.Errorf("json tags and tags output differ (-tags +json):\n%s", diff)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", name+".golden"), got, *update)
		})
	}
}

func TestRepositoryFromAPI(t *testing.T) {
	gh := testutil.NewGitHub(t)
	dir := t.TempDir()
	env := runnerEnv(t, "push-main", gh.URL, dir)
	env["INPUT_LABELS"] = "com.example.committed={{commit_date 'YYYY-MM-DD'}}"
	if log, err := run(t, env); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	labels := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])["labels"]
	for _, want := range []string{
		"org.opencontainers.image.description=Phialo Design: handmade jewellery, the website",
		"org.opencontainers.image.licenses=MIT",
		// push payloads carry the commit: no API call for its date.
		"com.example.committed=2024-06-27",
	} {
		if !strings.Contains(labels, want) {
			t.Errorf("labels lack %q:\n%s", want, labels)
		}
	}
	want := []string{"GET /repos/barde/phialoastro auth=Bearer " + token}
	if diff := cmp.Diff(want, gh.Requests()); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
}

func TestCommitDateFromAPI(t *testing.T) {
	gh := testutil.NewGitHub(t)
	env := runnerEnv(t, "pull_request", gh.URL, t.TempDir())
	env["INPUT_TAGS"] = "type=raw,value={{commit_date 'YYYYMMDD-HHmm'}}"
	if log, err := run(t, env); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if got := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])["version"]; got != "20240621-0930" {
		t.Errorf("version = %q, want the committer date 20240621-0930", got)
	}
	want := []string{
		"GET /repos/barde/phialoastro auth=Bearer " + token,
		"GET /repos/barde/phialoastro/commits/f00dbabe0000000000000000000000000000cafe auth=Bearer " + token,
	}
	if diff := cmp.Diff(want, gh.Requests()); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
}

func TestAPIRefusedFallsBackToPayload(t *testing.T) {
	gh := testutil.NewGitHub(t)
	gh.RepoStatus = http.StatusForbidden
	env := runnerEnv(t, "push-main", gh.URL, t.TempDir())
	log, err := run(t, env)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if !strings.Contains(log, "::warning::GitHub API: getting repository \"barde/phialoastro\"") || !strings.Contains(log, "403") {
		t.Errorf("no warning about the refused API call in the log:\n%s", log)
	}
	labels := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])["labels"]
	if !strings.Contains(labels, "org.opencontainers.image.description=Astro site of the Phialo jewellery studio") {
		t.Errorf("labels do not describe the repository from the payload:\n%s", labels)
	}
}

func TestAPIUnreachableFallsBackToPayload(t *testing.T) {
	gh := testutil.NewGitHub(t)
	url := gh.URL
	gh.Close() // nothing listens there any more
	env := runnerEnv(t, "push-tag", url, t.TempDir())
	log, err := run(t, env)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	outs := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])
	if !strings.Contains(outs["labels"], "org.opencontainers.image.licenses=MIT") || outs["version"] != "v1.2.3" {
		t.Errorf("outputs without the API: version %q, labels:\n%s", outs["version"], outs["labels"])
	}
}

func TestBadInputsAllReported(t *testing.T) {
	env := runnerEnv(t, "push-main", "http://127.0.0.1:1", t.TempDir())
	env["INPUT_TAGS"] = "type=nope\ntype=match,pattern=(x"
	env["INPUT_FLAVOR"] = "latest=maybe"
	env["INPUT_SHORT-SHA-LENGTH"] = "99"
	env["INPUT_DRY-RUN"] = "perhaps"
	_, err := run(t, env)
	if err == nil {
		t.Fatal("Run succeeded with bad inputs")
	}
	for _, want := range []string{`"type=nope"`, `"latest=maybe"`, `"short-sha-length"`, `"99"`, `"dry-run"`, `"perhaps"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(env["GITHUB_OUTPUT"]); statErr == nil {
		t.Error("outputs were written although the inputs are bad")
	}
}

func TestEventFileErrors(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "event.json")
	if err := os.WriteFile(notJSON, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope.json"), "not JSON": notJSON} {
		t.Run(name, func(t *testing.T) {
			env := runnerEnv(t, "push-main", "http://127.0.0.1:1", t.TempDir())
			env["GITHUB_EVENT_PATH"] = path
			env["INPUT_FLAVOR"] = "latest=maybe"
			_, err := run(t, env)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "GITHUB_EVENT_PATH") || !strings.Contains(err.Error(), "latest=maybe") {
				t.Errorf("error = %v; want it to name the event file and the bad flavor", err)
			}
		})
	}
}

func TestNoEventFile(t *testing.T) {
	env := runnerEnv(t, "push-feature", "http://127.0.0.1:1", t.TempDir())
	delete(env, "GITHUB_EVENT_PATH")
	log, err := run(t, env)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if got := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])["tag-names"]; got != "feature-login\nfeature-login-abc1234\nsha-abc1234567890abcdef1234567890abcdef12345" {
		t.Errorf("tag-names = %q", got)
	}
}

func TestNoBuilderAvailable(t *testing.T) {
	env := runnerEnv(t, "push-main", "http://127.0.0.1:1", t.TempDir())
	env["INPUT_DRY-RUN"] = "false"
	env["BUILDX_BIN"] = "/bin/false"
	env["RUNNER_TEMP"] = t.TempDir()
	if dockerAvailable(func(k string) string { return env[k] }) {
		t.Skip("a Docker daemon is reachable here; this test is about machines without one")
	}
	log, err := run(t, env)
	if err == nil || !strings.Contains(err.Error(), "no builder: set buildkit-endpoint") {
		t.Errorf("Run = %v; want the error that names buildkit-endpoint and builder\n%s", err, log)
	}
	entries, _ := os.ReadDir(env["RUNNER_TEMP"])
	for _, e := range entries {
		t.Errorf("left in RUNNER_TEMP: %s", e.Name())
	}
	summary, _ := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	if !strings.Contains(string(summary), "The build failed") {
		t.Errorf("the summary does not report the failure:\n%s", summary)
	}
}
