package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// binary is the action built once for the tests that run it as the runner does.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phialo-image-action-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "phialo-image-action")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("building the action: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the built action with exactly env, as the runner does
// (nothing of the test's own environment leaks in), and returns its
// combined output and exit code.
func runBinary(t *testing.T, env map[string]string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("running the action: %v", err)
	return "", -1
}

func runnerEnv(t *testing.T, apiURL string) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"GITHUB_ACTIONS":          "true",
		"GITHUB_EVENT_NAME":       "push",
		"GITHUB_REF":              "refs/tags/v1.2.3",
		"GITHUB_SHA":              "abc1234567890abcdef1234567890abcdef12345",
		"GITHUB_REPOSITORY":       "barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER": "barde",
		"GITHUB_API_URL":          apiURL,
		"GITHUB_EVENT_PATH":       filepath.Join("testdata", "events", "push-tag.json"),
		"GITHUB_OUTPUT":           filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY":     filepath.Join(dir, "summary"),
		"SOURCE_DATE_EPOCH":       "1719568800",
		"INPUT_DRY-RUN":           "true",
		"INPUT_GITHUB-TOKEN":      testutil.Token,
		"INPUT_IMAGES":            "ghcr.io/barde/phialoastro\ndocker.io/barde/phialoastro",
		"INPUT_SEP-TAGS":          ",",
	}
}

func TestBinaryAsRunner(t *testing.T) {
	gh := testutil.NewGitHub(t)
	env := runnerEnv(t, gh.URL)
	log, code := runBinary(t, env)
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, log)
	}
	outs := testutil.ReadOutputs(t, env["GITHUB_OUTPUT"])
	var tags []string
	for _, img := range []string{"ghcr.io/barde/phialoastro", "docker.io/barde/phialoastro"} {
		for _, tag := range []string{"v1.2.3", "1.2", "1", "20240628", "main-abc1234", "sha-abc1234567890abcdef1234567890abcdef12345", "latest"} {
			tags = append(tags, img+":"+tag)
		}
	}
	want := map[string]string{
		"version":   "v1.2.3",
		"tags":      strings.Join(tags, ","),
		"tag-names": "v1.2.3,1.2,1,20240628,main-abc1234,sha-abc1234567890abcdef1234567890abcdef12345,latest",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, outs[k]); diff != "" {
			t.Errorf("output %s (-want +got):\n%s", k, diff)
		}
	}
	if !strings.Contains(outs["labels"], "org.opencontainers.image.description=Phialo Design: handmade jewellery, the website") {
		t.Errorf("labels do not come from the API:\n%s", outs["labels"])
	}
	summary, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	if err != nil || !strings.Contains(string(summary), "| `docker.io/barde/phialoastro:1.2` |") {
		t.Errorf("step summary lacks the tag table (%v):\n%s", err, summary)
	}
	if strings.Count(log, testutil.Token) != 1 || !strings.Contains(log, "::add-mask::"+testutil.Token) {
		t.Errorf("the token is in the log other than in its ::add-mask:: command:\n%s", log)
	}
	if diff := cmp.Diff([]string{"GET /repos/barde/phialoastro auth=Bearer " + testutil.Token}, gh.Requests()); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
}

func TestBinaryBadInput(t *testing.T) {
	env := runnerEnv(t, "http://127.0.0.1:1")
	env["INPUT_TAGS"] = "type=semver"
	env["INPUT_IMAGES"] = "ghcr.io/barde/bad image"
	log, code := runBinary(t, env)
	if code != 1 {
		t.Fatalf("exit code %d, want 1\n%s", code, log)
	}
	if !strings.Contains(log, "::error::") || !strings.Contains(log, "type=semver needs a pattern") || !strings.Contains(log, `image "ghcr.io/barde/bad image"`) {
		t.Errorf("the error annotation does not name both bad inputs:\n%s", log)
	}
	if strings.Contains(log, "panic") || strings.Contains(log, "goroutine ") {
		t.Errorf("the action panicked:\n%s", log)
	}
}

func TestBinaryLocalRunWithoutRunnerFiles(t *testing.T) {
	env := runnerEnv(t, "http://127.0.0.1:1")
	delete(env, "GITHUB_OUTPUT")
	delete(env, "GITHUB_STEP_SUMMARY")
	log, code := runBinary(t, env)
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, log)
	}
	if !strings.Contains(log, "output tag-names:\n  v1.2.3,1.2,1,") {
		t.Errorf("a run without GITHUB_OUTPUT does not print the outputs:\n%s", log)
	}
}
