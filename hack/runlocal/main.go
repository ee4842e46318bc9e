// Command runlocal runs the action's main job on this machine for an event
// fixture of testdata/events, against a local stand-in of GitHub's API
// (nothing calls api.github.com), and prints the outputs and the step
// summary. ./hack/run-local.sh starts the services it needs and calls it.
//
//	runlocal -env STATE/env [-image] EVENT [INPUT_NAME=value ...]
//
// Without -image it runs the action's binary with the runner's environment
// against the BuildKit and registry of hack/e2e/up.sh. With -image it
// builds the action's image from the Dockerfile and starts it on the Docker
// daemon of hack/e2e/up.sh as GitHub's runner does (internal/runneremu):
// a job with a registry service (HTTPS, a test CA given in
// buildkitd-config) and the API stand-in as a service.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/barde/phialo-image-action/internal/runneremu"
)

func main() {
	envFile := flag.String("env", "", "hack/e2e/up.sh's env file")
	image := flag.Bool("image", false, "run the action's image through the Docker daemon, as the runner does")
	work := flag.String("work", "", "work directory (removed by the caller)")
	flag.Parse()
	if *envFile == "" || *work == "" || flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: runlocal -env STATE/env -work DIR [-image] EVENT [INPUT_NAME=value ...]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *image {
		err = runImage(ctx, *envFile, *work, flag.Arg(0), flag.Args()[1:])
	} else {
		err = runBinary(ctx, *envFile, *work, flag.Arg(0), flag.Args()[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runlocal:", err)
		os.Exit(1)
	}
}

// services reads KEY=value lines of up.sh's env file.
func services(envFile string) (map[string]string, error) {
	data, err := os.ReadFile(envFile)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", envFile, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// fixture reads an event fixture and its KEY=value environment.
func fixture(event string) ([]byte, map[string]string, error) {
	payload, err := os.ReadFile(filepath.Join("testdata", "events", event+".json"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the event fixture: %w", err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "events", event+".env"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the event fixture: %w", err)
	}
	env := map[string]string{
		"GITHUB_REPOSITORY":       "barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER": "barde",
		"GITHUB_ACTOR":            "barde",
		"GITHUB_RUN_ID":           "1",
		"GITHUB_RUN_ATTEMPT":      "1",
		"GITHUB_JOB":              "image",
		"RUNNER_NAME":             "local",
		"GITHUB_SERVER_URL":       "https://github.com",
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return payload, env, nil
}

// serveAPI serves the API stand-in on 127.0.0.1 and returns its address.
func serveAPI(ctx context.Context, payload []byte) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listening for the API stand-in: %w", err)
	}
	srv := &http.Server{Handler: runneremu.LocalAPI(payload, os.Stderr)}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return l.Addr().String(), nil
}

func extra(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q is not NAME=value", a)
		}
		m[k] = v
	}
	return m, nil
}

func runBinary(ctx context.Context, envFile, work, event string, args []string) error {
	svc, err := services(envFile)
	if err != nil {
		return err
	}
	payload, env, err := fixture(event)
	if err != nil {
		return err
	}
	api, err := serveAPI(ctx, payload)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(filepath.Join("testdata", "events", event+".json"))
	if err != nil {
		return err
	}
	for _, d := range []string{"runner", "workspace"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	for k, v := range map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "GITHUB_ACTIONS": "true",
		"GITHUB_API_URL":          "http://" + api,
		"GITHUB_EVENT_PATH":       abs,
		"GITHUB_OUTPUT":           filepath.Join(work, "output"),
		"GITHUB_STEP_SUMMARY":     filepath.Join(work, "summary"),
		"RUNNER_TEMP":             filepath.Join(work, "runner"),
		"GITHUB_WORKSPACE":        filepath.Join(work, "workspace"),
		"INPUT_IMAGES":            svc["PHIALO_REGISTRY"] + "/barde/phialoastro",
		"INPUT_CONTEXT":           filepath.Join(work, "app"),
		"INPUT_BUILDKIT-ENDPOINT": svc["BUILDKIT_HOST"],
		"INPUT_CACHE":             "registry",
		"INPUT_SCAN":              "false",
		"INPUT_UPLOAD-SARIF":      "false",
		"INPUT_CLEANUP":           "false",
		"PHIALO_SBOM_BIN":         filepath.Join(work, "phialo-sbom"),
	} {
		env[k] = v
	}
	more, err := extra(args)
	if err != nil {
		return err
	}
	for k, v := range more {
		env[k] = v
	}
	cmd := exec.CommandContext(ctx, filepath.Join(work, "phialo-image-action"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	runErr := cmd.Run()
	show("GITHUB_OUTPUT", filepath.Join(work, "output"))
	show("GITHUB_STEP_SUMMARY", filepath.Join(work, "summary"))
	return runErr
}

func show(title, path string) {
	data, _ := os.ReadFile(path)
	fmt.Printf("\n== %s\n%s\n", title, data)
}

func runImage(ctx context.Context, envFile, work, event string, args []string) error {
	svc, err := services(envFile)
	if err != nil {
		return err
	}
	sock, ok := strings.CutPrefix(svc["DOCKER_HOST"], "unix://")
	if !ok {
		return fmt.Errorf("%s has no Docker daemon (DOCKER_HOST): hack/e2e/install.sh docker", envFile)
	}
	payload, env, err := fixture(event)
	if err != nil {
		return err
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		return fmt.Errorf("no docker CLI: %w", err)
	}
	buildx, err := exec.LookPath("buildx")
	if err != nil {
		return fmt.Errorf("no buildx (hack/e2e/env.sh): %w", err)
	}
	plugins := filepath.Join(work, "docker-config", "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(buildx, filepath.Join(plugins, "docker-buildx")); err != nil {
		return err
	}
	dockerEnv := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_HOST=") || strings.HasPrefix(kv, "DOCKER_CONFIG=")
	})
	dockerEnv = append(dockerEnv, "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+filepath.Join(work, "docker-config"), "DOCKER_BUILDKIT=1")
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	r, err := runneremu.New(filepath.Join(work, "runner"), docker, sock, dockerEnv)
	if err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	fmt.Println("== docker build of the action, as the runner builds it")
	img, log, err := r.Build(ctx, root)
	fmt.Println(log)
	if err != nil {
		return err
	}
	defer r.RemoveImage(context.WithoutCancel(ctx), img)
	gateway, err := r.GatewayImage(ctx, root, work)
	if err != nil {
		return err
	}
	defer r.RemoveImage(context.WithoutCancel(ctx), gateway)
	api, err := serveAPI(ctx, payload)
	if err != nil {
		return err
	}
	apiDir := filepath.Join(work, "api")
	if err := os.MkdirAll(apiDir, 0o755); err != nil {
		return err
	}
	if err := runneremu.ServeUnix(ctx, filepath.Join(apiDir, "api.sock"), api); err != nil {
		return err
	}
	tls, err := runneremu.NewTLS("registry")
	if err != nil {
		return err
	}
	certs := filepath.Join(work, "certs")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		return err
	}
	registry, err := runneremu.RegistryService("registry", tls, certs)
	if err != nil {
		return err
	}
	job, err := r.NewJob(ctx, "barde/phialoastro", registry, runneremu.GatewayService("github-api", gateway, apiDir))
	if job != nil {
		defer job.Close()
	}
	if err != nil {
		return err
	}
	// actions/checkout: the example app and the registry's CA.
	if out, err := exec.Command("testdata/app/build.sh", filepath.Join(job.Workspace, "app")).CombinedOutput(); err != nil {
		return fmt.Errorf("building the example app: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(job.Workspace, "ca.pem"), tls.CAPEM, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", runneremu.RunnerUID, runneremu.RunnerGID), job.Workspace).CombinedOutput(); err != nil {
		return fmt.Errorf("chown: %w\n%s", err, out)
	}
	with := map[string]string{
		"images":           "registry:5000/barde/phialoastro",
		"context":          "app",
		"cache":            "registry",
		"buildkitd-config": fmt.Sprintf("[registry.\"registry:5000\"]\n  ca = [%q]\n", filepath.Join(job.Workspace, "ca.pem")),
		"scan":             "false",
		"upload-sarif":     "false",
		"cleanup":          "false",
	}
	more, err := extra(args)
	if err != nil {
		return err
	}
	for k, v := range more {
		with[strings.ToLower(strings.TrimPrefix(k, "INPUT_"))] = v
	}
	actionYML, err := os.ReadFile("action.yml")
	if err != nil {
		return err
	}
	inputs, err := runneremu.Inputs(actionYML, with, "ghs_local")
	if err != nil {
		return err
	}
	env["GITHUB_API_URL"] = "http://github-api"
	res, err := job.Run(ctx, runneremu.Step{Image: img, Inputs: inputs, Env: env, Event: payload}, nil)
	fmt.Printf("== docker %s\n\n%s", strings.Join(res.Args, " "), res.Log)
	fmt.Printf("\n== GITHUB_OUTPUT\n")
	keys := make([]string, 0, len(res.Outputs))
	for k := range res.Outputs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%s=%s\n", k, res.Outputs[k])
	}
	fmt.Printf("\n== GITHUB_STEP_SUMMARY\n%s\n", res.Summary)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("the action exited with code %d", res.ExitCode)
	}
	return nil
}
