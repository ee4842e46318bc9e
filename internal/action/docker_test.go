package action

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/docker"
)

func TestBuildkitConfig(t *testing.T) {
	t.Parallel()
	// The workspace as the runner mounts it: host paths in the input, the
	// files at the container's paths.
	host := "/home/runner/work/app/app"
	ws := t.TempDir()
	self := &docker.Self{Mounts: []docker.Mount{{Source: host, Destination: ws}}}
	for f, data := range map[string]string{"ca.pem": "CA PEM\n", "client.key": "KEY\n", "client.pem": "CERT\n"} {
		if err := os.WriteFile(filepath.Join(ws, f), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in := `debug = true
[registry."registry:5000"]
  ca = ["` + host + `/ca.pem"]
  [[registry."registry:5000".keypair]]
    key = "` + ws + `/client.key"
    cert = "` + host + `/client.pem"
[registry."docker.io"]
  mirrors = ["mirror:5000"]
`
	dir := t.TempDir()
	out, cas, err := buildkitConfig(in, self, dir, "/run/phialo")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{[]byte("CA PEM\n")}, cas); diff != "" {
		t.Errorf("CAs (-want +got):\n%s", diff)
	}
	var got map[string]any
	if err := toml.Unmarshal(out, &got); err != nil {
		t.Fatalf("the written config is not TOML: %v\n%s", err, out)
	}
	reg := got["registry"].(map[string]any)["registry:5000"].(map[string]any)
	ca := reg["ca"].([]any)[0].(string)
	kp := reg["keypair"].([]any)[0].(map[string]any)
	for inner, want := range map[string]string{ca: "CA PEM\n", kp["key"].(string): "KEY\n", kp["cert"].(string): "CERT\n"} {
		rel, ok := strings.CutPrefix(inner, "/run/phialo/")
		if !ok {
			t.Errorf("path %q is not under the container's /run/phialo", inner)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || string(data) != want {
			t.Errorf("%s holds %q (%v), want %q", rel, data, err, want)
		}
	}
	if got["debug"] != true || got["registry"].(map[string]any)["docker.io"].(map[string]any)["mirrors"].([]any)[0] != "mirror:5000" {
		t.Errorf("other settings were lost:\n%s", out)
	}

	_, _, err = buildkitConfig(`[registry."r"]`+"\n"+`ca = ["/nowhere/ca.pem"]`, self, t.TempDir(), "/run/phialo")
	if err == nil || !strings.Contains(err.Error(), `input "buildkitd-config": reading "/nowhere/ca.pem" of registry "r"`) {
		t.Errorf("a missing CA: error = %v", err)
	}
}

func TestTranslateInputs(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "exists"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	self := &docker.Self{Mounts: []docker.Mount{
		{Source: "/home/runner/work/_temp", Destination: "/github/runner_temp"},
		{Source: "/home/runner/work/app/app", Destination: "/github/workspace"},
		{Source: "/srv/ws", Destination: ws},
	}}
	cfg := &config.Config{}
	cfg.Build.Context = "app"
	cfg.Build.File = "/home/runner/work/app/app/Dockerfile"
	cfg.Build.BuildContexts = []string{"assets=/home/runner/work/_temp/assets", "base=docker-image://alpine"}
	cfg.Build.SecretFiles = []config.KV{{Key: "npmrc", Value: "/home/runner/work/_temp/npmrc"}, {Key: "x", Value: ws + "/exists"}}
	cfg.Build.BuildKitEndpoint = "unix:///home/runner/work/_temp/bk.sock"
	cfg.Supply.SBOMDir = "/home/runner/work/app/app/sbom"
	gha := githubactions.New(githubactions.WithWriter(io.Discard), githubactions.WithGetenv(func(string) string { return "" }))
	translateInputs(gha, self, cfg)
	want := config.Build{
		Context:          "app",
		File:             "/github/workspace/Dockerfile",
		BuildContexts:    []string{"assets=/github/runner_temp/assets", "base=docker-image://alpine"},
		SecretFiles:      []config.KV{{Key: "npmrc", Value: "/github/runner_temp/npmrc"}, {Key: "x", Value: ws + "/exists"}},
		BuildKitEndpoint: "unix:///github/runner_temp/bk.sock",
	}
	if diff := cmp.Diff(want, cfg.Build); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
	if cfg.Supply.SBOMDir != "/github/workspace/sbom" {
		t.Errorf("SBOMDir = %q", cfg.Supply.SBOMDir)
	}
}
