package runneremu_test

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/barde/phialo-image-action/internal/runneremu"
	"github.com/barde/phialo-image-action/internal/testutil"
)

const (
	root = "../.."
	sha  = "abc1234567890abcdef1234567890abcdef12345"
	// runLabel is internal/docker.RunLabel, spelled out: the test checks
	// what a user of the daemon sees.
	runLabel = "dev.phialo.image-action.run"
)

// env is the emulation's environment, made once by TestMain.
var env struct {
	err        error
	runner     *runneremu.Runner
	image      string // the action's image, built as the runner builds it
	buildTime  time.Duration
	actionYML  []byte
	appDir     string // the example app's build context
	gateway    string // image of the gateway service
	dockerHost string
	dir        string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phialo-runneremu-")
	if err != nil {
		panic(err)
	}
	env.dir = dir
	env.err = setup(dir)
	code := m.Run()
	if env.runner != nil {
		cleanupImages()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup builds the action's image with the daemon of hack/e2e/up.sh, as
// GitHub's runner builds `image: Dockerfile`, and prepares the example app.
func setup(dir string) error {
	envFile := os.Getenv("PHIALO_E2E_ENV")
	if envFile == "" {
		return errors.New("PHIALO_E2E_ENV is not set: ./hack/test.sh starts the Docker daemon and sets it")
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		return fmt.Errorf("reading PHIALO_E2E_ENV: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "DOCKER_HOST="); ok {
			env.dockerHost = v
		}
	}
	sock, ok := strings.CutPrefix(env.dockerHost, "unix://")
	if !ok {
		return fmt.Errorf("%s has no DOCKER_HOST=unix://...: hack/e2e/up.sh starts dockerd when hack/e2e/install.sh installed docker", envFile)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	docker, dockerEnv, err := dockerCLI(dir)
	if err != nil {
		return err
	}
	env.runner, err = runneremu.New(filepath.Join(dir, "runner"), docker, sock, dockerEnv)
	if err != nil {
		return err
	}
	if env.actionYML, err = os.ReadFile(filepath.Join(root, "action.yml")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	var log string
	env.image, log, err = env.runner.Build(ctx, abs)
	if err != nil {
		return fmt.Errorf("building the action's image as the runner does: %w", err)
	}
	env.buildTime = time.Since(start)
	if !strings.Contains(log, "go build") {
		return fmt.Errorf("the Dockerfile's Go build stage did not run:\n%s", log)
	}
	env.appDir = filepath.Join(dir, "app")
	if out, err := exec.Command(filepath.Join(root, "testdata", "app", "build.sh"), env.appDir, "amd64", "arm64", "riscv64").CombinedOutput(); err != nil {
		return fmt.Errorf("building the example app: %v\n%s", err, out)
	}
	abs, err = filepath.Abs(root)
	if err != nil {
		return err
	}
	if env.gateway, err = env.runner.GatewayImage(ctx, abs, dir); err != nil {
		return err
	}
	return nil
}

// dockerCLI is the docker CLI with BuildKit, as on GitHub's runners: the
// CLI on PATH with the e2e buildx as its plugin, in a config of its own.
func dockerCLI(dir string) (string, []string, error) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		return "", nil, fmt.Errorf("no docker CLI on PATH: hack/e2e/install.sh docker installs one: %w", err)
	}
	buildx, err := exec.LookPath("buildx")
	if err != nil {
		return "", nil, fmt.Errorf("no buildx on PATH (hack/e2e/env.sh): %w", err)
	}
	plugins := filepath.Join(dir, "docker-config", "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.Symlink(buildx, filepath.Join(plugins, "docker-buildx")); err != nil {
		return "", nil, err
	}
	var e []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "DOCKER_HOST" && k != "DOCKER_CONFIG" && !strings.HasPrefix(k, "BUILDX_") {
			e = append(e, kv)
		}
	}
	e = append(e, "DOCKER_HOST="+env.dockerHost, "DOCKER_CONFIG="+filepath.Join(dir, "docker-config"), "DOCKER_BUILDKIT=1")
	return docker, e, nil
}

func cleanupImages() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, image := range []string{env.image, env.gateway} {
		if image != "" {
			_ = env.runner.RemoveImage(ctx, image)
		}
	}
}

func needEmulation(t *testing.T) {
	t.Helper()
	if env.err != nil {
		if os.Getenv("PHIALO_E2E_ENV") != "" {
			t.Fatalf("runner emulation: %v", env.err)
		}
		t.Skipf("runner emulation: %v", env.err)
	}
}

// docker runs the docker CLI against the e2e daemon.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.runner.Docker, args...)
	cmd.Env = env.runner.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// job is a job with the services the scenarios use: a registry over HTTPS
// as `registry:5000` with a test CA, and GitHub's API (a fake on the host)
// behind the gateway as `http://github-api`.
type job struct {
	*runneremu.Job
	gh   *testutil.GitHub
	tls  runneremu.TLS
	port string // the registry's port on 127.0.0.1, for the test's reads
}

func newJob(t *testing.T) *job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j := &job{gh: testutil.NewGitHub(t)}
	var err error
	if j.tls, err = runneremu.NewTLS("registry"); err != nil {
		t.Fatal(err)
	}
	registry, err := runneremu.RegistryService("registry", j.tls, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The fake API listens on 127.0.0.1; the gateway reaches it through a
	// unix socket in a directory mounted into the gateway container.
	apiDir, err := os.MkdirTemp(env.dir, "api-")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	if err := runneremu.ServeUnix(sctx, filepath.Join(apiDir, "api.sock"), strings.TrimPrefix(j.gh.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	rj, err := env.runner.NewJob(ctx, "barde/phialoastro", registry, runneremu.GatewayService("github-api", env.gateway, apiDir))
	if rj != nil {
		t.Cleanup(func() {
			if err := rj.Close(); err != nil {
				t.Errorf("closing the job: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	j.Job = rj
	if j.port, err = rj.Port(ctx, "registry", "5000"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rj.Workspace, "ca.pem"), j.tls.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	// actions/checkout: the example app in the workspace, owned by the
	// runner's user.
	if out, err := exec.Command("cp", "-a", env.appDir, filepath.Join(rj.Workspace, "app")).CombinedOutput(); err != nil {
		t.Fatalf("copying the app: %v\n%s", err, out)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", runneremu.RunnerUID, runneremu.RunnerGID), rj.Workspace).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	return j
}

// remote reads the job's registry service as the action's container sees
// it (registry:5000, the test CA), through its port on 127.0.0.1.
func (j *job) remote(ctx context.Context) []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: j.tls.Pool, ServerName: "registry"}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+j.port)
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}
}

// step is a use of the action in the job for an event fixture.
func (j *job) step(t *testing.T, fixture string, with map[string]string) runneremu.Step {
	t.Helper()
	event, err := os.ReadFile(filepath.Join(root, "testdata", "events", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := runneremu.Inputs(env.actionYML, with, testutil.Token)
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{
		"GITHUB_REPOSITORY":       "barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER": "barde",
		"GITHUB_ACTOR":            "barde",
		"GITHUB_RUN_ID":           "4242",
		"GITHUB_RUN_ATTEMPT":      "1",
		"GITHUB_JOB":              "image",
		"RUNNER_NAME":             "emulated-runner",
		"GITHUB_API_URL":          "http://github-api",
		"GITHUB_SERVER_URL":       "https://github.com",
		"SOURCE_DATE_EPOCH":       "1719568800",
	}
	data, err := os.ReadFile(filepath.Join(root, "testdata", "events", fixture+".env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		e[k] = v
	}
	return runneremu.Step{Image: env.image, Inputs: in, Env: e, Event: event}
}

// buildInputs are the scenario's inputs: the example app for three
// platforms (arm64 runs under the host's QEMU, riscv64 only after the
// action installed its emulator), pushed to the registry service, whose CA
// comes from buildkitd-config by the runner's path.
func (j *job) buildInputs(extra map[string]string) map[string]string {
	in := map[string]string{
		"images":           "registry:5000/barde/app",
		"context":          "app",
		"platforms":        "linux/amd64,linux/arm64,linux/riscv64",
		"cache":            "registry",
		"buildkitd-config": fmt.Sprintf("[registry.\"registry:5000\"]\n  ca = [%q]\n", filepath.Join(j.Workspace, "ca.pem")),
		"sbom":             "false",
		"scan":             "false",
		"cleanup":          "false",
	}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

func logOnFailure(t *testing.T, res runneremu.Result) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("docker %s\n--- log\n%s\n--- summary\n%s", strings.Join(res.Args, " "), res.Log, res.Summary)
		}
	})
}

// leftovers lists the containers and volumes on the daemon that carry the
// action's run label.
func leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	for _, kind := range [][]string{{"ps", "-a", "--format", "{{.Names}}"}, {"volume", "ls", "--format", "{{.Name}}"}} {
		out := docker(t, append(kind, "--filter", "label="+runLabel)...)
		for _, l := range strings.Split(out, "\n") {
			if l != "" {
				left = append(left, kind[0]+" "+l)
			}
		}
	}
	return left
}

// TestPushMain is the main job of a push to main as GitHub runs it: the
// action's image built from the Dockerfile, started with the runner's
// `docker run`, a BuildKit container on the job's network, QEMU installed
// through the daemon, a three-platform build pushed over HTTPS to a
// registry service, SBOMs and scans of every platform, and what a later
// step sees.
func TestPushMain(t *testing.T) {
	needEmulation(t)
	t.Logf("the runner's docker build of the action: %s", env.buildTime.Round(time.Second))
	// A fresh runner has no riscv64 emulator (hack/e2e/up.sh registers
	// arm64 only); an earlier run of this test installed one.
	unregisterEmulator(t, "qemu-riscv64")
	j := newJob(t)
	cache := filepath.Join(j.Workspace, "trivy-cache")
	testutil.WriteTrivyDB(t, cache)
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", runneremu.RunnerUID, runneremu.RunnerGID), cache).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	// Runner paths inside values, which the runner does not translate.
	secret := filepath.Join(env.runner.Temp(), "npmrc")
	if err := os.WriteFile(secret, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(secret) })
	s := j.step(t, "push-main", j.buildInputs(map[string]string{
		"secret-files":    "npmrc=" + secret,
		"build-contexts":  "bins=" + filepath.Join(j.Workspace, "app", "bin"),
		"sbom":            "true",
		"scan":            "true",
		"trivy-cache-dir": cache, // the runner's path, as ${{ github.workspace }}/trivy-cache gives it
	}))
	s.Env["TRIVY_SKIP_DB_UPDATE"] = "true"
	s.Env["TRIVY_SKIP_JAVA_DB_UPDATE"] = "true"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := j.Run(ctx, s, nil)
	logOnFailure(t, res)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d", res.ExitCode)
	}
	for _, want := range []string{"on " + j.Network, "installing QEMU emulators for riscv64"} {
		if !strings.Contains(res.Log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}

	// The image: three platforms, each RUN step ran on its platform.
	digest := res.Outputs["digest"]
	ref, err := name.ParseReference("registry:5000/barde/app@" + digest)
	if err != nil {
		t.Fatalf("digest output %q: %v", digest, err)
	}
	idx, err := remote.Index(ref, j.remote(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		platforms = append(platforms, p)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		stamp := readFile(t, img, "built")
		if !strings.HasPrefix(stamp, "built for "+p+" ") {
			t.Errorf("%s: /built = %q, want it stamped on %s", p, stamp, p)
		}
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64", "linux/riscv64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms = %q, want %q", platforms, want)
	}

	// A later step: the outputs name files at workspace-relative paths.
	for _, o := range []string{"sbom-files", "sarif-files"} {
		files := strings.Fields(res.Outputs[o])
		if len(files) != 3 {
			t.Errorf("output %s = %q, want a file for each of the 3 platforms", o, res.Outputs[o])
		}
		for _, f := range files {
			if filepath.IsAbs(f) {
				t.Errorf("output %s names %q, want a path relative to the workspace", o, f)
				continue
			}
			if _, err := os.Stat(filepath.Join(j.Workspace, f)); err != nil {
				t.Errorf("output %s: %v", o, err)
			}
		}
	}
	if n := len(j.gh.SARIFs()); n != 3 {
		t.Errorf("%d SARIF uploads reached GitHub's API, want 3", n)
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left on the daemon: %q", left)
	}
	// The next job's checkout deletes the workspace as the runner's user.
	if left, err := runneremu.DeleteAsRunner(j.Workspace, env.runner.Temp()); err != nil || len(left) > 0 {
		t.Errorf("the runner's user cannot delete %q (%v)", left, err)
	}
}

// mirror copies images of the daemon to the registry service, each to the
// repository a registry mirror serves it under.
func (j *job) mirror(t *testing.T, ctx context.Context, images map[string]string) {
	t.Helper()
	for local, path := range images {
		tarPath := filepath.Join(t.TempDir(), "image.tar")
		docker(t, "save", "-o", tarPath, local)
		tag, err := name.NewTag(local)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(tarPath, &tag)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference("registry:5000/" + path)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, j.remote(ctx)...); err != nil {
			t.Fatalf("mirroring %s: %v", local, err)
		}
	}
}

// unregisterEmulator removes a binfmt_misc registration of the kernel.
func unregisterEmulator(t *testing.T, name string) {
	t.Helper()
	p := filepath.Join("/proc/sys/fs/binfmt_misc", name)
	if _, err := os.Stat(p); err != nil {
		return
	}
	if err := os.WriteFile(p, []byte("-1"), 0); err != nil {
		t.Fatalf("unregistering %s: %v", name, err)
	}
}

// readFile reads a file of an image's filesystem.
func readFile(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == path {
				data, err := io.ReadAll(tr)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				return string(data)
			}
		}
		rc.Close()
	}
	t.Fatalf("no %s in the image", path)
	return ""
}

// TestCancel cancels a build as the runner does (SIGINT, SIGTERM after
// 7.5 s, kill 2.5 s later): the action stops buildx, removes its BuildKit
// container and volume and its credentials, and fails the step. Then the
// action's container is killed outright, and the next run on the runner
// removes what it left.
func TestCancel(t *testing.T) {
	needEmulation(t)
	j := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	in := j.buildInputs(map[string]string{"platforms": "linux/amd64", "build-args": "SLEEP=300", "password": "s3cret-registry-password", "username": "barde"})

	start := time.Now()
	res, err := j.Run(ctx, j.step(t, "push-main", in), &runneremu.Cancel{After: "sleeping 300s"})
	logOnFailure(t, res)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", res.ExitCode)
	}
	if d := time.Since(start); d > 5*time.Minute {
		t.Errorf("the cancelled run took %s", d)
	}
	if strings.Contains(res.Log, "s3cret-registry-password") && !strings.Contains(res.Log, "::add-mask::s3cret-registry-password") {
		t.Error("the password reached the log unmasked")
	}
	// The container ends before the docker CLI does (--rm, signals
	// proxied); the daemon is left clean.
	waitGone(t, j)
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left on the daemon after SIGINT: %q", left)
	}
	if m, _ := filepath.Glob(filepath.Join(env.runner.Temp(), "phialo-image-action-*")); len(m) > 0 {
		t.Errorf("the run's directory with its credentials is left: %q", m)
	}

	// Killed outright: the next run on this runner removes what the killed
	// one left behind.
	go func() {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			cmd := exec.Command(env.runner.Docker, "ps", "--filter", "label="+env.runner.Label, "--filter", "ancestor="+env.image, "--format", "{{.Names}}")
			cmd.Env = env.runner.Env
			out, _ := cmd.Output()
			if name := strings.TrimSpace(string(out)); name != "" && len(leftoversQuiet()) > 0 {
				cmd := exec.Command(env.runner.Docker, "kill", "--signal", "KILL", strings.Split(name, "\n")[0])
				cmd.Env = env.runner.Env
				_ = cmd.Run()
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	killed, err := j.Run(ctx, j.step(t, "push-main", in), nil)
	logOnFailure(t, killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed.ExitCode == 0 {
		t.Fatal("the killed run succeeded")
	}
	if len(leftovers(t)) == 0 {
		t.Fatal("nothing was left behind: the kill came too late")
	}
	next := j.step(t, "push-main", j.buildInputs(map[string]string{"platforms": "linux/amd64"}))
	next.Env["GITHUB_RUN_ID"] = "4243"
	nres, err := j.Run(ctx, next, nil)
	logOnFailure(t, nres)
	if err != nil {
		t.Fatal(err)
	}
	if nres.ExitCode != 0 {
		t.Errorf("the next run: exit code %d", nres.ExitCode)
	}
	if !strings.Contains(nres.Log, "left behind by an earlier run on this runner") {
		t.Error("the next run removed nothing")
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left on the daemon after the next run: %q", left)
	}
}

// leftoversQuiet is leftovers without a test, for the killer goroutine.
func leftoversQuiet() []string {
	cmd := exec.Command(env.runner.Docker, "ps", "-a", "--format", "{{.Names}}", "--filter", "label="+runLabel)
	cmd.Env = env.runner.Env
	out, _ := cmd.Output()
	return strings.Fields(string(out))
}

// waitGone waits until no container of the action's image runs.
func waitGone(t *testing.T, j *job) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if docker(t, "ps", "-a", "--filter", "label="+j.Label, "--filter", "ancestor="+env.image, "--format", "{{.Names}}") == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the action's container still runs 2 minutes after the docker CLI ended")
}

// TestSetupBuildxBuilder names a builder that docker/setup-buildx-action
// made in an earlier step: its record lives in the runner's ~/.docker/buildx,
// which the runner does not mount, so the step fails and says what to do.
func TestSetupBuildxBuilder(t *testing.T) {
	needEmulation(t)
	j := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := j.Run(ctx, j.step(t, "push-main", j.buildInputs(map[string]string{"builder": "builder-1234"})), nil)
	logOnFailure(t, res)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", res.ExitCode)
	}
	for _, want := range []string{`builder "builder-1234" is not recorded`, "does not mount into container actions", "buildkit-endpoint"} {
		if !strings.Contains(res.Log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// TestDryRunAndCleanup runs a dry run, then mode: cleanup, through the
// emulation, as two jobs on one runner (the same _github_home): the
// cleanup reads the registry service over HTTPS with buildkitd-config's CA
// and deletes an untagged orphan through the Packages API.
func TestDryRunAndCleanup(t *testing.T) {
	needEmulation(t)
	j := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dry, err := j.Run(ctx, j.step(t, "push-main", j.buildInputs(map[string]string{"dry-run": "true"})), nil)
	logOnFailure(t, dry)
	if err != nil {
		t.Fatal(err)
	}
	if dry.ExitCode != 0 || !strings.Contains(dry.Outputs["tags"], "registry:5000/barde/app:latest") {
		t.Fatalf("dry run: exit code %d, tags %q", dry.ExitCode, dry.Outputs["tags"])
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("a dry run left %q on the daemon", left)
	}

	// A tagged image and an untagged orphan in the registry, and their
	// package versions.
	kept := pushImage(t, ctx, j, "v1")
	orphan := pushImage(t, ctx, j, "")
	pk := testutil.NewPackages(t, "barde", "User")
	j.gh.SetPackages(pk)
	pk.Add("app", testutil.PackageVersion{Digest: orphan, Created: time.Now().Add(-48 * time.Hour)})
	pk.Add("app", testutil.PackageVersion{Digest: kept, Tags: []string{"v1"}, Created: time.Now().Add(-time.Hour)})
	deleted := make(chan string, 4)
	pk.SetOnDelete(func(_ string, v testutil.PackageVersion) { deleted <- v.Digest })

	cl, err := j.Run(ctx, j.step(t, "push-main", map[string]string{
		"mode":             "cleanup",
		"images":           "registry:5000/barde/app",
		"cleanup-keep":     "1",
		"buildkitd-config": j.buildInputs(nil)["buildkitd-config"],
	}), nil)
	logOnFailure(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	if cl.ExitCode != 0 {
		t.Fatalf("cleanup exit code %d", cl.ExitCode)
	}
	select {
	case d := <-deleted:
		if d != orphan {
			t.Errorf("deleted %s, want the orphan %s", d, orphan)
		}
	default:
		t.Errorf("the orphan was not deleted; outputs %q", cl.Outputs)
	}
	if got := strings.Fields(cl.Outputs["cleanup-deleted"]); !slices.Equal(got, []string{orphan}) {
		t.Errorf("cleanup-deleted = %q, want the orphan %s", got, orphan)
	}
}

// pushImage pushes a random image to the registry service, tagged when tag
// is set, and returns its digest.
func pushImage(t *testing.T, ctx context.Context, j *job, tag string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	r := "registry:5000/barde/app@" + d.String()
	if tag != "" {
		r = "registry:5000/barde/app:" + tag
	}
	ref, err := name.ParseReference(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, j.remote(ctx)...); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestExampleTargets builds the example project's three images (the
// targets ci, dev and production of examples/site/Dockerfile) as
// docker-base-images.yml does, one step each, in one job.
func TestExampleTargets(t *testing.T) {
	needEmulation(t)
	j := newJob(t)
	if out, err := exec.Command("cp", "-a", filepath.Join(root, "examples", "site"), filepath.Join(j.Workspace, "site")).CombinedOutput(); err != nil {
		t.Fatalf("copying the example: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Its bases come from Docker Hub and gcr.io: here through the registry
	// service as their mirror, as a pull-through cache would serve them.
	j.mirror(t, ctx, map[string]string{
		"golang:1.26.8-bookworm":                   "library/golang:1.26.8-bookworm",
		"gcr.io/distroless/static-debian12:latest": "distroless/static-debian12:latest",
	})
	config := j.buildInputs(nil)["buildkitd-config"] + `[registry."docker.io"]
  mirrors = ["registry:5000"]
[registry."gcr.io"]
  mirrors = ["registry:5000"]
`
	for _, tc := range []struct{ target, image string }{
		{"ci", "registry:5000/barde/site-ci"},
		{"dev", "registry:5000/barde/site-dev"},
		{"production", "registry:5000/barde/site"},
	} {
		res, err := j.Run(ctx, j.step(t, "push-main", j.buildInputs(map[string]string{
			"images":           tc.image,
			"context":          "site",
			"file":             "site/Dockerfile",
			"target":           tc.target,
			"platforms":        "linux/amd64",
			"buildkitd-config": config,
		})), nil)
		logOnFailure(t, res)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 {
			t.Fatalf("target %s: exit code %d", tc.target, res.ExitCode)
		}
		ref, err := name.ParseReference(tc.image + ":latest")
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref, j.remote(ctx)...)
		if err != nil {
			t.Fatalf("target %s: %v", tc.target, err)
		}
		if got := desc.Digest.String(); got != res.Outputs["digest"] {
			t.Errorf("target %s: %s:latest is %s, the digest output %s", tc.target, tc.image, got, res.Outputs["digest"])
		}
	}
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("left on the daemon: %q", left)
	}
}

// TestPushByDigest is one platform of a distributed build: the digest
// file lands where a later actions/upload-artifact step reads it (the
// workspace's digests/), owned by the runner's user.
func TestPushByDigest(t *testing.T) {
	needEmulation(t)
	j := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := j.Run(ctx, j.step(t, "push-main", j.buildInputs(map[string]string{
		"platforms":      "linux/amd64",
		"push-by-digest": "true",
	})), nil)
	logOnFailure(t, res)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d", res.ExitCode)
	}
	digest := strings.TrimPrefix(res.Outputs["digest"], "sha256:")
	file := filepath.Join(j.Workspace, "digests", digest)
	st, err := os.Stat(file)
	if digest == "" || err != nil {
		t.Fatalf("digest output %q, digest file: %v", res.Outputs["digest"], err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != runneremu.RunnerUID {
		t.Errorf("the digest file belongs to uid %d, want the runner's %d", sys.Uid, runneremu.RunnerUID)
	}
	if left, err := runneremu.DeleteAsRunner(j.Workspace); err != nil || len(left) > 0 {
		t.Errorf("the runner's user cannot delete %q (%v)", left, err)
	}
}
