package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// The services hack/e2e/up.sh started, read from the file PHIALO_E2E_ENV
// names; the action binary and the example app's build context.
var (
	buildkitHost string
	registryHost string
	binary       string
	sbomBinary   string
	appContext   string
	setupErr     error
)

const (
	root       = "../.."
	sourceDate = "1719568800" // 2024-06-28T10:00:00Z
	sha        = "abc1234567890abcdef1234567890abcdef12345"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phialo-e2e-")
	if err != nil {
		panic(err)
	}
	setupErr = setup(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) error {
	envFile := os.Getenv("PHIALO_E2E_ENV")
	if envFile == "" {
		return errors.New("PHIALO_E2E_ENV is not set: ./hack/test.sh starts BuildKit and a registry and sets it")
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		return fmt.Errorf("reading PHIALO_E2E_ENV: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "BUILDKIT_HOST":
			buildkitHost = v
		case "PHIALO_REGISTRY":
			registryHost = v
		}
	}
	if buildkitHost == "" || registryHost == "" {
		return fmt.Errorf("%s lacks BUILDKIT_HOST or PHIALO_REGISTRY", envFile)
	}
	binary = filepath.Join(dir, "phialo-image-action")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, root)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the action: %v\n%s", err, out)
	}
	sbomBinary = filepath.Join(dir, "phialo-sbom")
	build = exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", sbomBinary, root+"/cmd/phialo-sbom")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building phialo-sbom: %v\n%s", err, out)
	}
	appContext = filepath.Join(dir, "app")
	if out, err := exec.Command(filepath.Join(root, "testdata", "app", "build.sh"), appContext).CombinedOutput(); err != nil {
		return fmt.Errorf("building the example app: %v\n%s", err, out)
	}
	return nil
}

// needE2E stops a test whose end-to-end environment is missing: it fails
// when PHIALO_E2E_ENV is set (./hack/test.sh sets it, so there a broken
// environment is a failure) and skips with the reason otherwise (a plain
// `go test ./...`). It then takes the BuildKit daemon shared with the
// other packages' tests.
func needE2E(t *testing.T) {
	t.Helper()
	needEnv(t)
	testutil.LockBuildKit(t, buildkitHost, testutil.BuildKitShared)
}

// needE2EAlone is needE2E for a test that prunes BuildKit's cache (see
// prune): it holds the daemon alone.
func needE2EAlone(t *testing.T) {
	t.Helper()
	needEnv(t)
	testutil.LockBuildKit(t, buildkitHost, testutil.BuildKitAlone)
	alone.Store(t.Name())
	t.Cleanup(func() { alone.Store("") })
}

// alone is the name of the test that holds the BuildKit daemon alone.
var alone atomic.Value

// needEnv fails or skips the test, as needE2E says, when setup failed.
func needEnv(t *testing.T) {
	t.Helper()
	if setupErr == nil {
		return
	}
	if os.Getenv("PHIALO_E2E_ENV") != "" {
		t.Fatalf("end-to-end environment: %v", setupErr)
	}
	t.Skipf("end-to-end environment: %v", setupErr)
}

// result is one finished run of the action.
type result struct {
	log     string
	code    int
	outputs map[string]string
	summary string
	temp    string // RUNNER_TEMP
}

// action is a run of the action binary as GitHub's runner starts it.
type action struct {
	env map[string]string
}

// newAction prepares a run for an event fixture that builds image (a path
// in the local registry) with the example app, through the test's BuildKit.
func newAction(t *testing.T, fixture, image string, gh *testutil.GitHub) *action {
	t.Helper()
	temp := t.TempDir()
	env := map[string]string{
		"PATH":                    os.Getenv("PATH"),
		"HOME":                    os.Getenv("HOME"),
		"GITHUB_ACTIONS":          "true",
		"GITHUB_REPOSITORY":       "barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER": "barde",
		"GITHUB_ACTOR":            "barde",
		"GITHUB_RUN_ID":           "4242",
		"GITHUB_API_URL":          gh.URL,
		"GITHUB_EVENT_PATH":       filepath.Join(root, "testdata", "events", fixture+".json"),
		"GITHUB_OUTPUT":           filepath.Join(temp, "output"),
		"GITHUB_STEP_SUMMARY":     filepath.Join(temp, "summary"),
		"RUNNER_TEMP":             filepath.Join(temp, "runner"),
		"SOURCE_DATE_EPOCH":       sourceDate,
		"INPUT_GITHUB-TOKEN":      testutil.Token,
		"INPUT_IMAGES":            registryHost + "/" + image,
		"INPUT_BUILDKIT-ENDPOINT": buildkitHost,
		"INPUT_CONTEXT":           appContext,
		"INPUT_CACHE":             "registry",
		// The supply-chain steps have tests of their own below.
		"INPUT_SBOM":       "false",
		"INPUT_SCAN":       "false",
		"INPUT_CLEANUP":    "false",
		"GITHUB_WORKSPACE": temp,
		"PHIALO_SBOM_BIN":  sbomBinary,
	}
	if err := os.Mkdir(env["RUNNER_TEMP"], 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "testdata", "events", fixture+".env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	return &action{env: env}
}

func (a *action) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary)
	for k, v := range a.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// run runs the action to its end, bounded to five minutes.
func (a *action) run(t *testing.T) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := a.command(ctx)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return a.result(t, out.String(), err)
}

func (a *action) result(t *testing.T, log string, err error) result {
	t.Helper()
	r := result{log: log, temp: a.env["RUNNER_TEMP"], outputs: map[string]string{}}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running the action: %v", err)
	}
	if _, err := os.Stat(a.env["GITHUB_OUTPUT"]); err == nil {
		r.outputs = testutil.ReadOutputs(t, a.env["GITHUB_OUTPUT"])
	}
	if data, err := os.ReadFile(a.env["GITHUB_STEP_SUMMARY"]); err == nil {
		r.summary = string(data)
	}
	return r
}

// ok fails the test unless the run succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("the action failed with exit code %d:\n%s\nsummary:\n%s", r.code, r.log, r.summary)
	}
	return r
}

var stepsFromCache = regexp.MustCompile(`\| Steps from cache \| (\d+) of (\d+) \|`)

// cachedSteps fails the test unless the summary says exactly n of total
// build steps came from the cache. The example app's Dockerfile has two
// steps per platform (COPY and RUN).
func (r result) cachedSteps(t *testing.T, n, total int) {
	t.Helper()
	m := stepsFromCache.FindStringSubmatch(r.summary)
	if m == nil {
		t.Fatalf("the summary has no steps-from-cache row:\n%s", r.summary)
	}
	if got := m[1] + " of " + m[2]; got != fmt.Sprintf("%d of %d", n, total) {
		t.Errorf("%s steps from cache, want %d of %d:\n%s\nsummary:\n%s", got, n, total, r.log, r.summary)
	}
}

// failsWith fails the test unless the run failed and both its log and its
// summary say each of wants.
func (r result) failsWith(t *testing.T, wants ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("the action succeeded, want a failure saying %q:\n%s", wants, r.log)
	}
	for _, want := range wants {
		if !strings.Contains(r.log, want) || !strings.Contains(r.summary, want) {
			t.Errorf("log or summary lacks %q:\nlog:\n%s\nsummary:\n%s", want, r.log, r.summary)
		}
	}
}

// noLeftovers fails the test if RUNNER_TEMP still holds anything: the run
// must remove its Docker config (credentials) and its builder's state.
func (r result) noLeftovers(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(r.temp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in RUNNER_TEMP: %s", e.Name())
	}
}

// prune empties BuildKit's local cache, so that the next build can only
// take its steps from an imported cache. Only a test that called
// needE2EAlone (or its subtests) may prune.
func prune(t *testing.T) {
	t.Helper()
	if name, _ := alone.Load().(string); name == "" || (t.Name() != name && !strings.HasPrefix(t.Name(), name+"/")) {
		t.Fatalf("prune in %s, which does not hold BuildKit alone (needE2EAlone)", t.Name())
	}
	out, err := exec.Command("buildctl", "--addr", buildkitHost, "prune", "--all").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl prune --all: %v\n%s", err, out)
	}
}

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPushMainTwoPlatforms(t *testing.T) {
	needE2EAlone(t)
	gh := testutil.NewGitHub(t)
	image := registryHost + "/e2e/push-main"
	r := newAction(t, "push-main", "e2e/push-main", gh).run(t).ok(t)
	r.noLeftovers(t)

	digest := r.outputs["digest"]
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest output = %q", digest)
	}
	if r.outputs["image"] != image+"@"+digest {
		t.Errorf("image output = %q, want %s@%s", r.outputs["image"], image, digest)
	}
	tags := strings.Split(r.outputs["tags"], "\n")
	if len(tags) != 4 {
		t.Errorf("tags = %q, want latest, date, main-sha and sha-long", tags)
	}
	for _, tag := range tags {
		desc, err := remote.Get(ref(t, tag))
		if err != nil {
			t.Fatalf("pulling %s: %v", tag, err)
		}
		if desc.Digest.String() != digest {
			t.Errorf("%s resolves to %s, want the digest output %s", tag, desc.Digest, digest)
		}
	}

	idx, err := remote.Index(ref(t, image+"@"+digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations["org.opencontainers.image.description"]; got != "Phialo Design: handmade jewellery, the website" {
		t.Errorf("index annotation description = %q", got)
	}
	platforms := map[string]bool{}
	platformOf := map[string]string{} // image manifest digest -> platform
	var attestations []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			attestations = append(attestations, d)
			continue
		}
		platforms[d.Platform.String()] = true
		platformOf[d.Digest.String()] = d.Platform.String()
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  "latest",
			"org.opencontainers.image.revision": sha,
			"org.opencontainers.image.source":   "https://github.com/barde/phialoastro",
			"org.opencontainers.image.created":  "2024-06-28T10:00:00.000Z",
		} {
			if got := cf.Config.Labels[k]; got != want {
				t.Errorf("%s label %s = %q, want %q", d.Platform, k, got, want)
			}
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations["org.opencontainers.image.version"] != "latest" {
			t.Errorf("%s manifest annotations lack the version: %v", d.Platform, m.Annotations)
		}
		if err := pullLayers(img); err != nil {
			t.Errorf("%s: %v", d.Platform, err)
		}
	}
	if !platforms["linux/amd64"] || !platforms["linux/arm64"] || len(platforms) != 2 {
		t.Errorf("platforms = %v, want linux/amd64 and linux/arm64", platforms)
	}
	// Each platform's image has its SLSA provenance.
	attested := map[string]string{}
	for _, d := range attestations {
		platform, predicate, err := checkProvenance(idx, d, platformOf)
		if err != nil {
			t.Error(err)
			continue
		}
		if attested[platform] != "" {
			t.Errorf("%s has two provenance attestations", platform)
		}
		attested[platform] = predicate
		t.Logf("%s: provenance %s", platform, predicate)
	}
	if len(attestations) != 2 || attested["linux/amd64"] == "" || attested["linux/arm64"] == "" {
		t.Errorf("%d attestation manifests with provenance for %v, want one per platform", len(attestations), attested)
	}
	for _, want := range []string{"| linux/amd64 |", "| linux/arm64 |", "Compressed size", digest} {
		if !strings.Contains(r.summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.summary)
		}
	}
	if !strings.Contains(r.log, "RUN [\"/app\", \"stamp\", \"/built\"]") {
		t.Errorf("the log does not show the build steps:\n%s", r.log)
	}

	t.Run("feature branch imports main's registry cache", func(t *testing.T) {
		prune(t)
		a := newAction(t, "push-feature", "e2e/push-main", gh)
		r := a.run(t).ok(t)
		r.cachedSteps(t, 4, 4)
		if !strings.Contains(r.summary, "type=registry,ref="+image+":buildcache") {
			t.Errorf("summary does not name the registry cache:\n%s", r.summary)
		}
	})

	t.Run("force-rebuild from workflow_dispatch", func(t *testing.T) {
		before, err := remote.Get(ref(t, image+":buildcache"))
		if err != nil {
			t.Fatalf("reading the cache manifest: %v", err)
		}
		r := newAction(t, "workflow_dispatch", "e2e/push-main", gh).run(t).ok(t)
		r.cachedSteps(t, 0, 4)
		if !strings.Contains(r.summary, "force-rebuild (workflow_dispatch input force-rebuild)") {
			t.Errorf("summary does not say why nothing was imported:\n%s", r.summary)
		}
		after, err := remote.Get(ref(t, image+":buildcache"))
		if err != nil {
			t.Fatalf("reading the cache manifest: %v", err)
		}
		if after.Digest == before.Digest {
			t.Errorf("the registry cache %s was not exported again", before.Digest)
		}
		r.noLeftovers(t)
	})
}

// pullLayers downloads every layer, as a pull would.
func pullLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestGHACache(t *testing.T) {
	needE2EAlone(t)
	gh := testutil.NewGitHub(t)
	ghaCache := testutil.NewGHACache(t)
	withGHA := func(a *action) *action {
		a.env["INPUT_CACHE"] = "gha"
		for _, kv := range ghaCache.Env() {
			k, v, _ := strings.Cut(kv, "=")
			a.env[k] = v
		}
		return a
	}
	withGHA(newAction(t, "push-main", "e2e/gha", gh)).run(t).ok(t)
	entries, err := ghaCache.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("the build stored nothing in the gha cache")
	}
	if !containsSubstring(entries, "gha-main") {
		t.Errorf("no cache entry for scope gha-main: %q", entries)
	}

	prune(t)
	r := withGHA(newAction(t, "push-feature", "e2e/gha", gh)).run(t).ok(t)
	r.cachedSteps(t, 4, 4)
	if !strings.Contains(r.summary, "type=gha,scope=gha-feature-login` then `type=gha,scope=gha-main") {
		t.Errorf("summary does not show the gha hierarchy:\n%s", r.summary)
	}
	if strings.Contains(r.log, ghaCache.Token) {
		t.Error("the runtime token appears in the log")
	}
}

// TestGHACacheV2 is TestGHACache against GitHub's current cache service
// (protocol v2): the runner passes ACTIONS_RESULTS_URL and a token whose
// scopes are the pushed branch (read and write) and the default branch
// (read), and the action switches buildx to v2 itself.
func TestGHACacheV2(t *testing.T) {
	needE2EAlone(t)
	gh := testutil.NewGitHub(t)
	svc := testutil.NewGHACacheV2(t)
	withGHA := func(a *action, token string) *action {
		a.env["INPUT_CACHE"] = "gha"
		for _, kv := range svc.Env(token) {
			k, v, _ := strings.Cut(kv, "=")
			a.env[k] = v
		}
		return a
	}
	const (
		main    = "refs/heads/main"
		feature = "refs/heads/feature/login"
	)
	rw := testutil.GHACacheRead | testutil.GHACacheWrite
	mainToken := svc.Token(testutil.GHACacheGrant{Scope: main, Permission: rw})
	withGHA(newAction(t, "push-main", "e2e/gha-v2", gh), mainToken).run(t).ok(t)
	// The exporter ignores errors (ignore-error=true): only the service
	// tells whether it worked.
	if r := svc.Rejected(); len(r) != 0 {
		t.Errorf("the cache service refused requests of the main build:\n%s", strings.Join(r, "\n"))
	}
	entries := svc.Entries()
	if !hasEntry(entries, main, "index-gha-v2-main-") || !hasEntry(entries, main, "buildkit-blob-1-sha256:") {
		t.Fatalf("the main build stored no index or no blob of scope gha-v2-main in %s: %+v", main, entries)
	}

	prune(t)
	featureToken := svc.Token(
		testutil.GHACacheGrant{Scope: feature, Permission: rw},
		testutil.GHACacheGrant{Scope: main, Permission: testutil.GHACacheRead},
	)
	r := withGHA(newAction(t, "push-feature", "e2e/gha-v2", gh), featureToken).run(t).ok(t)
	r.cachedSteps(t, 4, 4)
	if !strings.Contains(r.summary, "type=gha,scope=gha-v2-feature-login` then `type=gha,scope=gha-v2-main") {
		t.Errorf("summary does not show the gha hierarchy:\n%s", r.summary)
	}
	if rej := svc.Rejected(); len(rej) != 0 {
		t.Errorf("the cache service refused requests:\n%s", strings.Join(rej, "\n"))
	}
	// The feature branch's export goes to its own scope, never to main's.
	entries = svc.Entries()
	if !hasEntry(entries, feature, "index-gha-v2-feature-login-") || hasEntry(entries, main, "index-gha-v2-feature-login-") {
		t.Errorf("the feature build's index is not in %s alone: %+v", feature, entries)
	}
	if strings.Contains(r.log, featureToken) {
		t.Error("the runtime token appears in the log")
	}
}

// hasEntry reports whether entries hold a key with prefix in scope.
func hasEntry(entries []testutil.GHACacheV2Entry, scope, prefix string) bool {
	for _, e := range entries {
		if e.Scope == scope && strings.HasPrefix(e.Key, prefix) {
			return true
		}
	}
	return false
}

func containsSubstring(list []string, p string) bool {
	for _, s := range list {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func TestFailingBuild(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := newAction(t, "push-feature", "e2e/fail", gh)
	a.env["INPUT_FILE"] = filepath.Join(appContext, "Dockerfile.fail")
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	r := a.run(t)
	if r.code == 0 {
		t.Fatalf("the action succeeded on a failing Dockerfile:\n%s", r.log)
	}
	for _, want := range []string{`RUN ["/app", "fail"]`, "gallery.go:12: undefined: Thumbnail", "error: the gallery does not compile"} {
		if !strings.Contains(r.log, "::error::") || !strings.Contains(r.log, want) {
			t.Errorf("the log lacks %q:\n%s", want, r.log)
		}
		if !strings.Contains(r.summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.summary)
		}
	}
	r.noLeftovers(t)
}

// frontRegistry puts a server in front of the real registry: answer
// handles a request itself and reports whether it did; the rest reach the
// registry. It returns the front's host:port.
func frontRegistry(t *testing.T, answer func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse("http://" + registryHost)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answer(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// registryError answers as a registry does, with one error.
func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, message)
}

// denyingRegistry forwards reads to the real registry and refuses every
// write as GHCR does for a token without write_package.
func denyingRegistry(t *testing.T) string {
	return frontRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return false
		}
		registryError(w, http.StatusForbidden, "DENIED", "permission_denied: write_package")
		return true
	})
}

func TestPushDenied(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	host := denyingRegistry(t)
	a := newAction(t, "push-main", "unused", gh)
	a.env["INPUT_IMAGES"] = host + "/barde/denied"
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	r := a.run(t)
	r.failsWith(t, "permissions: packages: write", "Manage Actions access")
	r.noLeftovers(t)
}

// cancelBound is how long the action may take to stop after SIGTERM.
const cancelBound = 10 * time.Second

func TestCancellation(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := newAction(t, "push-feature", "e2e/cancel", gh)
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	a.env["INPUT_BUILD-ARGS"] = "SLEEP=120"
	a.env["INPUT_FORCE-REBUILD"] = "true"
	a.env["INPUT_PASSWORD"] = "registry-password-for-cancel"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := a.command(ctx)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder // written by the reader until readerDone
	started, readerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "sleeping 120s") {
				once = true
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
		<-readerDone
		t.Fatalf("the build never reached its RUN step:\n%s", log.String())
	}
	// Credentials exist while the build runs.
	if entries, _ := os.ReadDir(a.env["RUNNER_TEMP"]); len(entries) == 0 {
		t.Error("RUNNER_TEMP is empty during the build: where are the credentials?")
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(start)
	pw.Close()
	<-readerDone
	r := a.result(t, log.String(), err)
	// The step fails (exit code 1, not a death by the signal, -1), and in
	// time: GitHub's runner sends a cancelled step SIGINT, SIGTERM 7.5 s
	// later and SIGKILL 2.5 s after that, so what the README promises
	// (buildx stopped, builder and credentials removed) must be done within
	// 10 s of the first signal.
	if r.code != 1 {
		t.Errorf("exit code %d after SIGTERM, want 1:\n%s", r.code, r.log)
	}
	t.Logf("the action stopped %s after SIGTERM", took.Round(time.Millisecond))
	if took > cancelBound {
		t.Errorf("the action took %s to stop after SIGTERM, want at most %s", took, cancelBound)
	}
	// The builder's state and the credentials lived in RUNNER_TEMP.
	r.noLeftovers(t)
}

func TestBuildWarningsBecomeAnnotations(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := newAction(t, "push-feature", "e2e/warn", gh)
	a.env["INPUT_FILE"] = filepath.Join(appContext, "Dockerfile.warn")
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	r := a.run(t).ok(t)
	file := a.env["INPUT_FILE"]
	for _, want := range []string{
		"::warning file=" + file + ",line=2,title=build warning::FromAsCasing",
		"::warning file=" + file + ",line=6,title=build warning::LegacyKeyValueFormat",
	} {
		if !strings.Contains(r.log, want) {
			t.Errorf("the log lacks the annotation %q:\n%s", want, r.log)
		}
	}
	if !strings.Contains(r.summary, "**Build warnings**") {
		t.Errorf("the summary lists no build warnings:\n%s", r.summary)
	}
}

// basicAuthRegistry forwards to the real registry only requests that carry
// the given credentials, and challenges the others as a registry with
// basic auth does.
func basicAuthRegistry(t *testing.T, user, pass string) string {
	return frontRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="phialo-e2e"`)
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return true
	})
}

func TestLoginToRegistry(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	const password = "registry-s3cret-for-login"
	host := basicAuthRegistry(t, "robot", password)
	a := newAction(t, "push-main", "unused", gh)
	a.env["INPUT_IMAGES"] = host + "/barde/login"
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	a.env["INPUT_USERNAME"] = "robot"
	a.env["INPUT_PASSWORD"] = password
	r := a.run(t).ok(t)
	if strings.Count(r.log, password) != 1 || !strings.Contains(r.log, "::add-mask::"+password) {
		t.Errorf("the password appears in the log other than in its ::add-mask:: command")
	}
	// The read-back of the pushed image authenticates too: the summary
	// lists its platform.
	if !strings.Contains(r.summary, "| linux/amd64 |") {
		t.Errorf("the summary lacks the pushed platform:\n%s", r.summary)
	}
	r.noLeftovers(t)

	t.Run("wrong password fails", func(t *testing.T) {
		a := newAction(t, "push-main", "unused", gh)
		a.env["INPUT_IMAGES"] = host + "/barde/login"
		a.env["INPUT_PLATFORMS"] = "linux/amd64"
		a.env["INPUT_USERNAME"] = "robot"
		a.env["INPUT_PASSWORD"] = "wrong"
		if r := a.run(t); r.code == 0 {
			t.Errorf("the push succeeded with a wrong password:\n%s", r.log)
		}
	})
}

func TestMissingPlatformIsExplained(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := newAction(t, "push-feature", "e2e/platform", gh)
	// The e2e BuildKit has QEMU for many platforms, but not this one.
	a.env["INPUT_PLATFORMS"] = "linux/amd64,linux/mips64le"
	r := a.run(t)
	r.failsWith(t, "does not support linux/mips64le", "install QEMU emulators on the BuildKit host")
	r.noLeftovers(t)
}

func TestDistributedBuildAndMerge(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	workspace := t.TempDir()
	// A repository of its own: the check that platform runners tag nothing
	// must not see an earlier run's tags.
	repo := "e2e/distributed-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	image := registryHost + "/" + repo
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		a := newAction(t, "push-main", repo, gh)
		a.env["GITHUB_WORKSPACE"] = workspace
		a.env["INPUT_PLATFORMS"] = platform
		a.env["INPUT_PUSH-BY-DIGEST"] = "true"
		a.env["INPUT_CACHE"] = "none" // the cache hierarchy has tests of its own
		r := a.run(t).ok(t)
		d := strings.TrimPrefix(r.outputs["digest"], "sha256:")
		if _, err := os.Stat(filepath.Join(workspace, "digests", d)); err != nil || d == "" {
			t.Fatalf("%s: no digest file for %q: %v", platform, r.outputs["digest"], err)
		}
		// Nothing is tagged by a platform runner.
		if _, err := remote.Head(ref(t, image+":latest")); err == nil {
			t.Fatalf("%s: a platform runner tagged the image", platform)
		}
	}
	m := newAction(t, "push-main", repo, gh)
	m.env["GITHUB_WORKSPACE"] = workspace
	m.env["INPUT_MODE"] = "merge"
	r := m.run(t).ok(t)
	digest := r.outputs["digest"]

	// The tags a single-runner build of this event gets, all on the index.
	single := newAction(t, "push-main", repo, gh)
	single.env["INPUT_DRY-RUN"] = "true"
	want := single.run(t).ok(t).outputs["tags"]
	if r.outputs["tags"] != want || want == "" {
		t.Errorf("merged tags %q, want the single-runner build's %q", r.outputs["tags"], want)
	}
	for _, tag := range strings.Split(want, "\n") {
		desc, err := remote.Get(ref(t, tag))
		if err != nil || desc.Digest.String() != digest {
			t.Errorf("%s: %v, want the merged index %s", tag, err, digest)
		}
	}
	idx, err := remote.Index(ref(t, image+"@"+digest))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	platforms := map[string]int{}
	for _, d := range im.Manifests {
		platforms[d.Platform.String()]++
	}
	if platforms["linux/amd64"] != 1 || platforms["linux/arm64"] != 1 || platforms["unknown/unknown"] != 2 {
		t.Errorf("merged index platforms %v, want both platforms and their two provenance attestations", platforms)
	}
	if im.Annotations["org.opencontainers.image.description"] == "" {
		t.Errorf("the merged index has no description annotation: %v", im.Annotations)
	}
	pullsCompletelyTag(t, strings.Split(want, "\n")[0])
}

// pullsCompletelyTag pulls every manifest and layer of one tag.
func pullsCompletelyTag(t *testing.T, tag string) {
	t.Helper()
	idx, err := remote.Index(ref(t, tag))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err == nil {
			err = pullLayers(img)
		}
		if err != nil {
			t.Errorf("%s: %s does not pull: %v", tag, d.Digest, err)
		}
	}
}

// flakyRegistry forwards to the real registry but answers the first
// manifest push as a registry that lost a blob upload does (concurrent
// uploads of one blob can make the distribution registry do that).
func flakyRegistry(t *testing.T) string {
	var failed atomic.Bool
	return frontRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") || !failed.CompareAndSwap(false, true) {
			return false
		}
		registryError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
		return true
	})
}

func TestTransientPushFailureIsRetried(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	host := flakyRegistry(t)
	a := newAction(t, "push-feature", "unused", gh)
	a.env["INPUT_IMAGES"] = host + "/barde/flaky"
	a.env["INPUT_PLATFORMS"] = "linux/amd64"
	a.env["INPUT_CACHE"] = "none"
	r := a.run(t).ok(t)
	if !strings.Contains(r.log, "::warning::the registry failed a push") || !strings.Contains(r.log, "pushing again") {
		t.Errorf("no warning about the retried push:\n%s", r.log)
	}
	if desc, err := remote.Get(ref(t, host+"/barde/flaky:feature-login")); err != nil || desc.Digest.String() != r.outputs["digest"] {
		t.Errorf("the tag after the retry: %v %v, want %s", desc, err, r.outputs["digest"])
	}
}
