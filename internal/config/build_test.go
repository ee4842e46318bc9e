package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/config"
)

func TestLoadBuild(t *testing.T) {
	t.Parallel()
	got, err := config.Load(fake(map[string]string{
		"context":           "app",
		"file":              "app/Containerfile",
		"target":            "runtime",
		"build-args":        "GO_VERSION=1.26\nEMPTY=",
		"build-contexts":    "assets=../assets",
		"secrets":           "npm_token=s3cr=t\nother=x",
		"secret-files":      "netrc=/home/runner/.netrc",
		"platforms":         " linux/amd64 , linux/arm64/v8,linux/arm/v7",
		"cache":             "registry,gha,registry",
		"cache-scope":       "site",
		"cache-ref":         "ghcr.io/barde/cache:site",
		"cache-mode":        "MIN",
		"buildkit-endpoint": "tcp://127.0.0.1:1234",
		"buildkit-image":    "registry.example/buildkit:v0.34.2",
		"buildkitd-config":  "[registry.\"registry:5000\"]\n  ca = [\"/github/workspace/ca.pem\"]\n",
		"provenance":        "false",
		"sbom-attestation":  "true",
		"no-cache-filters":  "build,test",
		"build-timeout":     "45m",
		"github-token":      "ghs_token",
	}), fake(nil), loadEvent(t, "push-main"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Build{
		Context:          "app",
		File:             "app/Containerfile",
		Target:           "runtime",
		BuildArgs:        []string{"GO_VERSION=1.26", "EMPTY="},
		BuildContexts:    []string{"assets=../assets"},
		Secrets:          []config.KV{{Key: "npm_token", Value: "s3cr=t"}, {Key: "other", Value: "x"}},
		SecretFiles:      []config.KV{{Key: "netrc", Value: "/home/runner/.netrc"}},
		Platforms:        []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"},
		Registry:         "ghcr.io",
		Password:         "ghs_token", // ghcr.io logs in with github-token by default
		BuildKitEndpoint: "tcp://127.0.0.1:1234",
		BuildKitImage:    "registry.example/buildkit:v0.34.2",
		BinfmtImage:      config.DefaultBinfmtImage,
		BuildKitdConfig:  "[registry.\"registry:5000\"]\n  ca = [\"/github/workspace/ca.pem\"]\n",
		Cache:            []string{"registry", "gha"},
		CacheScope:       "site",
		CacheRef:         "ghcr.io/barde/cache:site",
		CacheMode:        "min",
		Provenance:       "false",
		SBOMAttestation:  "true",
		NoCacheFilters:   []string{"build", "test"},
		BuildTimeout:     45 * time.Minute,
	}
	if diff := cmp.Diff(want, got.Build); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
}

func TestLoadBuildLogin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		inputs     map[string]string
		registry   string
		user, pass string
	}{
		{"ghcr defaults to the actor and github-token",
			map[string]string{"github-token": "ghs_t"}, "ghcr.io", "", "ghs_t"},
		{"docker hub gets no github-token",
			map[string]string{"images": "docker.io/barde/app", "github-token": "ghs_t"}, "index.docker.io", "", ""},
		{"explicit login",
			map[string]string{"images": "registry.example.com/a/b", "username": "bot", "password": "pw"}, "registry.example.com", "bot", "pw"},
		{"registry input wins",
			map[string]string{"registry": "ghcr.io", "images": "127.0.0.1:5000/app", "github-token": "ghs_t"}, "ghcr.io", "", "ghs_t"},
		{"local registry without password: no login",
			map[string]string{"images": "127.0.0.1:5000/app"}, "127.0.0.1:5000", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(fake(tc.inputs), fake(nil), loadEvent(t, "push-main"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b := got.Build
			if b.Registry != tc.registry || b.Username != tc.user || b.Password != tc.pass {
				t.Errorf("login = %q %q %q, want %q %q %q", b.Registry, b.Username, b.Password, tc.registry, tc.user, tc.pass)
			}
		})
	}
}

func TestLoadForceRebuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		inputs  map[string]string
		force   bool
		reason  string
	}{
		{"input", "push-main", map[string]string{"force-rebuild": "true"}, true, "input force-rebuild"},
		{"dispatch payload true", "workflow_dispatch", nil, true, "workflow_dispatch input force-rebuild"},
		{"dispatch payload false", "workflow_dispatch-feature", nil, false, ""},
		{"dispatch payload without the input", "push-main", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(fake(tc.inputs), fake(nil), loadEvent(t, tc.fixture))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Build.ForceRebuild != tc.force || got.Build.ForceRebuildReason != tc.reason {
				t.Errorf("force-rebuild = %v (%q), want %v (%q)", got.Build.ForceRebuild, got.Build.ForceRebuildReason, tc.force, tc.reason)
			}
		})
	}
}

func TestLoadBuildBadInputs(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"platforms":         "linux/amd64,windows,linux/arm64",
		"cache":             "gha,s3",
		"cache-mode":        "medium",
		"cache-ref":         "ghcr.io/Bad Ref:x",
		"buildkit-endpoint": "http://buildkit:1234",
		"builder":           "mine",
		"buildkit-image":    "Not A Ref!",
		"binfmt-image":      "tonistiigi/binfmt:",
		"buildkitd-config":  "[registry.\"x\"\nca = 1",
		"build-args":        "NOEQUALS",
		"secrets":           "topsecretvalue-without-id",
		"build-timeout":     "soon",
		"provenance":        "maximal",
		"sbom-attestation":  "yes",
		"force-rebuild":     "please",
	}
	_, err := config.Load(fake(inputs), fake(nil), loadEvent(t, "push-main"))
	if err == nil {
		t.Fatal("Load: no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`input "platforms": "windows"`,
		`input "cache": "s3"`,
		`input "cache-mode": "medium"`,
		`input "cache-ref": "ghcr.io/Bad Ref:x"`,
		`input "buildkit-endpoint": "http://buildkit:1234"`,
		`inputs "builder" and "buildkit-endpoint": both set`,
		`input "buildkit-image": "Not A Ref!" is not valid; want an image reference such as moby/buildkit:buildx-stable-1`,
		`input "binfmt-image": "tonistiigi/binfmt:" is not valid`,
		`input "buildkitd-config": not valid TOML`,
		`input "build-args": "NOEQUALS"`,
		`input "secrets": "line 1"`,
		`input "build-timeout": "soon"`,
		`input "provenance": "maximal"`,
		`input "sbom-attestation": "yes"`,
		`input "force-rebuild": "please"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %s; got:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "topsecretvalue") {
		t.Errorf("a secret's value is in the error:\n%s", msg)
	}
}

func TestLoadSupply(t *testing.T) {
	t.Parallel()
	ev := loadEvent(t, "push-main")
	ev.Workspace = "/github/workspace"
	got, err := config.Load(fake(map[string]string{
		"sbom-format":         "cyclonedx-json, SPDX-JSON",
		"sbom-dir":            "out/sbom",
		"scan-severity":       "critical,medium",
		"scan-fail-on":        "High",
		"trivy-cache-dir":     ".trivy",
		"trivy-db-repository": "ghcr.io/mirror/trivy-db:2",
		"sarif-dir":           "/tmp/sarif",
		"upload-sarif":        "false",
		"dependency-snapshot": "true",
	}), fake(nil), ev)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Supply{
		SBOM:               true,
		SBOMFormats:        []string{"cyclonedx-json", "spdx-json"},
		SBOMDir:            "/github/workspace/out/sbom",
		DependencySnapshot: true,
		Scan:               true,
		ScanSeverities:     []string{"CRITICAL", "MEDIUM"},
		ScanFailOn:         "high",
		TrivyDBRepository:  "ghcr.io/mirror/trivy-db:2",
		TrivyCacheDir:      "/github/workspace/.trivy",
		SARIFDir:           "/tmp/sarif",
	}
	if diff := cmp.Diff(want, got.Supply); diff != "" {
		t.Errorf("Supply (-want +got):\n%s", diff)
	}

	_, err = config.Load(fake(map[string]string{"sbom-format": "spdx-tag", "scan-severity": "HIGHEST", "scan-fail-on": "medium", "scan": "sometimes"}), fake(nil), ev)
	for _, want := range []string{`input "sbom-format": "spdx-tag"`, `input "scan-severity": "HIGHEST"`, `input "scan-fail-on": "medium"`, `input "scan": "sometimes"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %s", err, want)
		}
	}
}

func TestLoadModes(t *testing.T) {
	t.Parallel()
	t.Run("cleanup", func(t *testing.T) {
		t.Parallel()
		got, err := config.Load(fake(map[string]string{
			"mode": "cleanup", "cleanup-keep": "3", "cleanup-older-than": "2w", "cleanup-tags": "pr-*, sha-*",
			"cleanup-exclude-tags": "sha-keep*", "cleanup-untagged": "false", "cleanup-package": "site",
			"platforms": "linux/riscv64", "context": ".", "sbom": "true",
		}), fake(nil), loadEvent(t, "schedule"))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := config.Cleanup{Enabled: true, Auto: true, Keep: 3, OlderThan: 14 * 24 * time.Hour,
			Tags: []string{"pr-*", "sha-*"}, ExcludeTags: []string{"sha-keep*"}, Package: "site"}
		if diff := cmp.Diff(want, got.Cleanup); diff != "" {
			t.Errorf("Cleanup (-want +got):\n%s", diff)
		}
		// platforms was set by the workflow; context and sbom are at their defaults.
		if diff := cmp.Diff([]string{`input "platforms" is set but mode cleanup does not read it`}, got.Warnings); diff != "" {
			t.Errorf("Warnings (-want +got):\n%s", diff)
		}
	})
	t.Run("migrate", func(t *testing.T) {
		t.Parallel()
		got, err := config.Load(fake(map[string]string{"mode": "migrate", "migrate-from": "docker.io/barde/site", "migrate-tags": "v*\nlatest",
			"migrate-username": "barde", "migrate-password": "hub-token"}), fake(nil), loadEvent(t, "push-main"))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := config.Migrate{From: "docker.io/barde/site", Tags: []string{"v*", "latest"}, Username: "barde", Password: "hub-token"}
		if diff := cmp.Diff(want, got.Migrate); diff != "" {
			t.Errorf("Migrate (-want +got):\n%s", diff)
		}
	})
	t.Run("bad values", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load(fake(map[string]string{"mode": "deploy", "cleanup-keep": "-1", "cleanup-older-than": "a month", "cleanup-tags": "pr-[", "cleanup": "maybe"}), fake(nil), loadEvent(t, "push-main"))
		for _, want := range []string{`input "mode": "deploy"`, `input "cleanup-keep": "-1"`, `input "cleanup-older-than": "a month"`, `input "cleanup-tags": "pr-["`, `input "cleanup": "maybe"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not contain %s", err, want)
			}
		}
		_, err = config.Load(fake(map[string]string{"mode": "migrate"}), fake(nil), loadEvent(t, "push-main"))
		if err == nil || !strings.Contains(err.Error(), `input "migrate-from": empty`) {
			t.Errorf("migrate without migrate-from: %v", err)
		}
	})
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := config.ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-3d", "0d", "soon", "-1h"} {
		if _, err := config.ParseAge(bad); err == nil {
			t.Errorf("ParseAge(%q) succeeded", bad)
		}
	}
}

func TestLoadDistributed(t *testing.T) {
	t.Parallel()
	ev := loadEvent(t, "push-main")
	ev.Workspace = "/github/workspace"
	d := "sha256:" + strings.Repeat("ab", 32)
	got, err := config.Load(fake(map[string]string{"mode": "merge", "digests": d}), fake(nil), ev)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(config.Distributed{Digests: []string{d}, DigestsDir: "/github/workspace/digests"}, got.Distributed); diff != "" {
		t.Errorf("Distributed (-want +got):\n%s", diff)
	}
	_, err = config.Load(fake(map[string]string{"push-by-digest": "true", "digests": "latest"}), fake(nil), ev)
	for _, want := range []string{`input "platforms": "linux/amd64,linux/arm64" is not valid; want exactly one platform`, `input "digests": "latest"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %s", err, want)
		}
	}
}
