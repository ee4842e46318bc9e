package buildx

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestBuildArgsGolden(t *testing.T) {
	t.Parallel()
	tests := map[string]BuildOptions{
		"minimal": {Context: ".", Platforms: []string{"linux/amd64"}},
		"push-main": {
			Builder:     "phialo-42-abcd",
			Context:     "app",
			File:        "app/Dockerfile",
			Target:      "runtime",
			Platforms:   []string{"linux/amd64", "linux/arm64"},
			Tags:        []string{"ghcr.io/barde/phialoastro:latest", "ghcr.io/barde/phialoastro:main-abc1234"},
			Labels:      []string{"org.opencontainers.image.title=phialoastro"},
			Annotations: []string{"manifest:org.opencontainers.image.title=phialoastro", "index:org.opencontainers.image.title=phialoastro"},
			BuildArgs:   []string{"GO_VERSION=1.26", "BUILDKIT_INLINE_CACHE=1"},
			BuildContexts: []string{
				"assets=../assets",
			},
			Secrets: []Secret{{ID: "npm_token", Env: "PHIALO_SECRET_0"}, {ID: "netrc", File: "/home/runner/.netrc"}},
			CacheFrom: []string{
				"type=gha,scope=phialoastro-main",
				"type=registry,ref=ghcr.io/barde/phialoastro:buildcache",
			},
			CacheTo: []string{
				"type=gha,scope=phialoastro-main,mode=max,ignore-error=true",
				"type=registry,ref=ghcr.io/barde/phialoastro:buildcache,mode=max,ignore-error=true",
			},
			NoCacheFilters: []string{"test"},
			Provenance:     "mode=max",
			SBOM:           "true",
			Push:           true,
			MetadataFile:   "/tmp/runner/metadata.json",
		},
		"force-rebuild": {
			Context:    ".",
			Platforms:  []string{"linux/amd64", "linux/arm64"},
			Tags:       []string{"ghcr.io/barde/phialoastro:latest"},
			CacheTo:    []string{"type=gha,scope=phialoastro-main,mode=max,ignore-error=true"},
			NoCache:    true,
			Provenance: "mode=min",
			Push:       true,
		},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := BuildArgs(o)
			for _, a := range args {
				if strings.Contains(a, "s3cr3t") {
					t.Errorf("a secret value is in argv: %q", a)
				}
			}
			testutil.Golden(t, filepath.Join("testdata", "args", name+".golden"), strings.Join(args, "\n")+"\n", *update)
		})
	}
}

func TestParsePlatforms(t *testing.T) {
	t.Parallel()
	out := `Name:          phialo-1
Driver:        remote

Nodes:
Name:                  phialo-10
Endpoint:              unix:///tmp/buildkitd.sock
Status:                running
BuildKit version:      v0.34.2
Platforms:             linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/386, linux/arm64*
Labels:
 org.mobyproject.buildkit.worker.executor: oci
`
	want := []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/386", "linux/arm64"}
	if diff := cmp.Diff(want, parsePlatforms(out)); diff != "" {
		t.Errorf("parsePlatforms (-want +got):\n%s", diff)
	}
	if got := missingPlatforms([]string{"linux/amd64", "linux/arm64/v8", "linux/riscv64"}, want); !cmp.Equal(got, []string{"linux/riscv64"}) {
		t.Errorf("missingPlatforms = %q, want [linux/riscv64]", got)
	}
}

// fakeBuildx answers buildx subcommands from a table and records the calls.
type fakeBuildx struct {
	calls     []string
	platforms string
	failOn    string
}

func (f *fakeBuildx) exec(_ context.Context, _ string, args, _ []string, stdout, _ io.Writer) error {
	call := strings.Join(args, " ")
	f.calls = append(f.calls, call)
	if f.failOn != "" && strings.HasPrefix(call, f.failOn) {
		io.WriteString(stdout, "ERROR: no such builder\n")
		return errors.New("exit status 1")
	}
	if args[0] == "inspect" {
		io.WriteString(stdout, "Name: x\nPlatforms: "+f.platforms+"\n")
	}
	return nil
}

func TestSetup(t *testing.T) {
	t.Parallel()
	t.Run("remote builder is recorded without a process and left to the work directory", func(t *testing.T) {
		t.Parallel()
		f := &fakeBuildx{platforms: "linux/amd64, linux/arm64"}
		dir := t.TempDir()
		b := &Buildx{Bin: "buildx", Exec: f.exec, ConfigDir: dir}
		bl, err := b.Setup(context.Background(), SetupOptions{Endpoint: "unix:///s.sock", Name: "phialo-1", Platforms: []string{"linux/amd64", "linux/arm64"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.calls) != 0 {
			t.Errorf("buildx was run: %q", f.calls)
		}
		if bl.Driver != "remote" || !bl.Created {
			t.Errorf("builder = %+v, want a created remote builder", bl)
		}
		data, err := os.ReadFile(filepath.Join(dir, "instances", "phialo-1"))
		if err != nil {
			t.Fatal(err)
		}
		// The record buildx v0.38 writes for `buildx create --name phialo-1
		// --driver remote unix:///s.sock`.
		want := `{"Name":"phialo-1","Driver":"remote","Nodes":[{"Name":"phialo-10","Endpoint":"unix:///s.sock","Platforms":null,"DriverOpts":null,"Flags":null,"Files":null}],"Dynamic":false}`
		if string(data) != want {
			t.Errorf("builder record:\n got %s\nwant %s", data, want)
		}
	})
	t.Run("existing builder is used as it is", func(t *testing.T) {
		t.Parallel()
		f := &fakeBuildx{platforms: "linux/amd64"}
		b := &Buildx{Bin: "buildx", Exec: f.exec}
		bl, err := b.Setup(context.Background(), SetupOptions{Existing: "mine", Platforms: []string{"linux/amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		if bl.Created {
			t.Error("an existing builder is marked as created")
		}
		if len(f.calls) != 0 {
			t.Errorf("buildx was run: %q", f.calls)
		}
	})
	t.Run("missing platform is explained with what to do", func(t *testing.T) {
		t.Parallel()
		f := &fakeBuildx{platforms: "linux/amd64"}
		b := &Buildx{Bin: "buildx", Exec: f.exec}
		missing, err := b.CheckPlatforms(context.Background(), &Builder{Name: "phialo-2"}, []string{"linux/amd64", "linux/arm64"})
		if !cmp.Equal(missing, []string{"linux/arm64"}) {
			t.Errorf("missing = %q", missing)
		}
		if err == nil || !strings.Contains(err.Error(), `builder "phialo-2" does not support linux/arm64`) || !strings.Contains(err.Error(), "install QEMU emulators") {
			t.Errorf("CheckPlatforms error = %v", err)
		}
	})
	t.Run("the run's own BuildKit gets QEMU for missing platforms", func(t *testing.T) {
		t.Parallel()
		f := &fakeBuildx{platforms: "linux/amd64"}
		b := &Buildx{Bin: "buildx", Exec: f.exec, ConfigDir: t.TempDir()}
		var installed []string
		bl, err := b.Setup(context.Background(), SetupOptions{Endpoint: "unix:///w/buildkitd.sock", Driver: "docker-container", CheckFirst: true,
			Name: "phialo-3", Platforms: []string{"linux/amd64", "linux/arm64"},
			InstallQEMU: func(_ context.Context, ps []string) error {
				installed = ps
				f.platforms = "linux/amd64, linux/arm64"
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(installed, []string{"linux/arm64"}) {
			t.Errorf("QEMU installed for %q, want [linux/arm64]", installed)
		}
		if bl.Driver != "docker-container" {
			t.Errorf("driver = %q", bl.Driver)
		}
		want := []string{
			"inspect --bootstrap --builder phialo-3",
			"inspect --bootstrap --builder phialo-3",
		}
		if diff := cmp.Diff(want, f.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
	t.Run("the run's own BuildKit without QEMU installer fails", func(t *testing.T) {
		t.Parallel()
		f := &fakeBuildx{platforms: "linux/amd64"}
		b := &Buildx{Bin: "buildx", Exec: f.exec, ConfigDir: t.TempDir()}
		bl, err := b.Setup(context.Background(), SetupOptions{Endpoint: "unix:///w/buildkitd.sock", CheckFirst: true, Name: "phialo-4", Platforms: []string{"linux/arm64"}})
		if err == nil || !strings.Contains(err.Error(), "does not support linux/arm64") {
			t.Errorf("Setup error = %v", err)
		}
		if bl == nil || !bl.Created {
			t.Error("the created builder is not returned for removal")
		}
	})
	t.Run("no builder, no endpoint, no docker", func(t *testing.T) {
		t.Parallel()
		b := &Buildx{Bin: "buildx", Exec: (&fakeBuildx{}).exec}
		_, err := b.Setup(context.Background(), SetupOptions{Name: "x"})
		if err == nil || !strings.Contains(err.Error(), "set buildkit-endpoint") {
			t.Errorf("Setup error = %v", err)
		}
	})
}

func TestDenied(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		`ERROR: failed to push 127.0.0.1:5000/a:latest: unexpected status from PUT request: 403 Forbidden`: true,
		`denied: permission_denied: write_package`:                                                         true,
		`error: failed to solve: process "/app fail" did not complete successfully: exit code: 1`:          false,
	} {
		if got := denied([]string{line}); got != want {
			t.Errorf("denied(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestReadProgressReportsFirstPush(t *testing.T) {
	t.Parallel()
	stream := `{"vertexes":[{"digest":"sha256:v1","name":"exporting to image","started":"2026-01-01T00:00:00Z"}]}
{"statuses":[{"id":"pushing manifest for r/app:latest@sha256:abc","vertex":"sha256:v1","started":"2026-01-01T00:00:00Z"}]}
{"statuses":[{"id":"pushing manifest for r/app:latest@sha256:abc","vertex":"sha256:v1","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z"}]}
{"statuses":[{"id":"pushing manifest for r/app:v1@sha256:abc","vertex":"sha256:v1","started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:02Z"}]}
`
	var got []string
	if _, err := readProgress(strings.NewReader(stream), io.Discard, func(ref string) { got = append(got, ref) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"r/app:latest@sha256:abc"}, got); diff != "" {
		t.Errorf("pushed (-want +got):\n%s", diff)
	}
}

func TestBuildArgsPushByDigest(t *testing.T) {
	t.Parallel()
	args := strings.Join(BuildArgs(BuildOptions{Context: ".", Platforms: []string{"linux/arm64"}, Tags: []string{"ghcr.io/a/b:latest"}, Push: true, PushByDigest: "ghcr.io/a/b"}), " ")
	want := "build --progress=rawjson --platform linux/arm64 --output type=image,name=ghcr.io/a/b,push-by-digest=true,name-canonical=true,push=true ."
	if args != want {
		t.Errorf("argv:\n got %s\nwant %s", args, want)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		"unknown: provided digest did not match uploaded content":                                   true,
		"unknown: blob unknown to registry - sha256:2714":                                           true,
		"failed to push: unexpected status from PUT request: 503 Service Unavailable":               true,
		"failed to push: unexpected status from PUT request: 403 Forbidden":                         false,
		`process "/app fail" did not complete successfully: exit code: 1`:                           false,
		"failed to copy: httpReadSeeker: failed open: unexpected status code 429 Too Many Requests": true,
	} {
		if got := transient([]string{line}) != ""; got != want {
			t.Errorf("transient(%q) = %v, want %v", line, got, want)
		}
	}
}
