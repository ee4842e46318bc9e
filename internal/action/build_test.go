package action

import (
	"slices"
	"strings"
	"testing"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
)

func TestBuildxEnv(t *testing.T) {
	t.Setenv("INPUT_PASSWORD", "registry-secret")
	t.Setenv("DOCKER_CONFIG", "/home/runner/.docker")
	t.Setenv("ACTIONS_RUNTIME_TOKEN", "runtime-jwt")
	getenv := func(k string) string {
		return map[string]string{"ACTIONS_RESULTS_URL": "https://results.example/", "DOCKER_CONFIG": "/home/runner/.docker"}[k]
	}
	env := buildxEnv(getenv, "/tmp/run/docker", "/tmp/run", false, []string{"PHIALO_SECRET_0=s3cret"})
	for _, want := range []string{
		"ACTIONS_CACHE_SERVICE_V2=true", // the runner does not pass it to container actions
		"DOCKER_CONFIG=/tmp/run/docker",
		"BUILDX_CONFIG=/tmp/run/buildx",
		"ACTIONS_RUNTIME_TOKEN=runtime-jwt", // buildx reads the token from its environment
		"PHIALO_SECRET_0=s3cret",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("buildx environment lacks %s", want)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "INPUT_") || kv == "DOCKER_CONFIG=/home/runner/.docker" {
			t.Errorf("buildx environment has %s", kv)
		}
	}
	if env := buildxEnv(func(string) string { return "" }, "d", "w", false, nil); slices.Contains(env, "ACTIONS_CACHE_SERVICE_V2=true") {
		t.Error("ACTIONS_CACHE_SERVICE_V2 set without ACTIONS_RESULTS_URL")
	}
	if env := buildxEnv(getenv, "d", "w", true, nil); !slices.Contains(env, "BUILDX_CONFIG=/home/runner/.docker/buildx") {
		t.Errorf("an existing builder is not looked up in the user's buildx state: %q", env)
	}
}

func TestPlanBuildKeepsSecretsOutOfArgv(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Push: true, Build: config.Build{
		Context: ".", Platforms: []string{"linux/amd64"}, Cache: []string{"gha"}, CacheMode: "max",
		Secrets: []config.KV{{Key: "npm", Value: "npm-s3cret"}},
	}}
	ev := &ghevent.Context{EventName: "push", Ref: "refs/heads/main", Payload: ghevent.Payload{Repository: &ghevent.Repository{DefaultBranch: "main"}}}
	p := planBuild(cfg, ev, meta.Result{Images: []string{"ghcr.io/barde/app"}, Tags: []string{"ghcr.io/barde/app:latest"}}, true)
	args := strings.Join(buildx.BuildArgs(p.opts), " ")
	if strings.Contains(args, "npm-s3cret") {
		t.Errorf("a secret value is in argv: %s", args)
	}
	if !strings.Contains(args, "--secret id=npm,env=PHIALO_SECRET_0") || !slices.Contains(p.secretEnv, "PHIALO_SECRET_0=npm-s3cret") {
		t.Errorf("the secret does not reach buildx by its environment: %s / %q", args, p.secretEnv)
	}
	// A private repository gets provenance mode=min by default.
	if !strings.Contains(args, "--provenance=mode=min") {
		t.Errorf("provenance of a private repository: %s", args)
	}
	if !strings.Contains(args, "--cache-to type=gha,scope=app-main,mode=max,ignore-error=true") {
		t.Errorf("cache export of a default-branch build: %s", args)
	}
}

func TestPlanBuildPushByDigest(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Push: true, Distributed: config.Distributed{PushByDigest: true}, Build: config.Build{
		Context: ".", Platforms: []string{"linux/arm64"}, Cache: []string{"gha", "registry"}, CacheMode: "max",
		CacheRef: "ghcr.io/barde/app:buildcache",
	}}
	ev := &ghevent.Context{EventName: "push", Ref: "refs/heads/main", Payload: ghevent.Payload{Repository: &ghevent.Repository{DefaultBranch: "main"}}}
	p := planBuild(cfg, ev, meta.Result{Images: []string{"ghcr.io/barde/app"}, Tags: []string{"ghcr.io/barde/app:latest"}}, false)
	args := strings.Join(buildx.BuildArgs(p.opts), " ")
	for _, want := range []string{
		"--output type=image,name=ghcr.io/barde/app,push-by-digest=true,name-canonical=true,push=true",
		"--cache-to type=gha,scope=app-linux-arm64-main,mode=max,ignore-error=true",
		"--cache-to type=registry,ref=ghcr.io/barde/app:buildcache-linux-arm64,mode=max,ignore-error=true",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("argv lacks %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "--tag") || strings.Contains(args, "--push ") {
		t.Errorf("a push-by-digest build tags or pushes tags:\n%s", args)
	}
}
