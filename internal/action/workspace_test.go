package action

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
)

// runnerUID is the uid and gid of the runner's user that owns the
// workspace in these tests.
const runnerUID = 1001

const testDigest = "sha256:390bd86e91fe45ab879c59d2c9b18e1d45ce727058ebad1c41ffd9bc3f9bf7b5"

// runnerWorkspace returns a workspace owned by runnerUID, as the runner's
// user owns it on a self-hosted runner, with preexisting, an entry the
// action did not create, owned by root.
func runnerWorkspace(t *testing.T) (ws, preexisting string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("giving files another owner needs root, as the action has in its container")
	}
	ws = filepath.Join(t.TempDir(), "workspace")
	preexisting = filepath.Join(ws, "reports")
	if err := os.MkdirAll(preexisting, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, runnerUID, runnerUID); err != nil {
		t.Fatal(err)
	}
	return ws, preexisting
}

// owners maps every entry under ws (ws itself left out), relative to it,
// to its "uid:gid".
func owners(t *testing.T, ws string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(ws, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == ws {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(ws, p)
		out[rel] = fmt.Sprintf("%d:%d", sys.Uid, sys.Gid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSupplyChainFilesBelongToTheWorkspaceOwner runs the SBOM and scan
// steps with stand-ins for phialo-sbom and Trivy that write what the real
// ones write, and checks that everything created under the workspace
// belongs to the workspace's owner, that what was there before is left
// alone, and that the outputs name the files relative to the workspace.
func TestSupplyChainFilesBelongToTheWorkspaceOwner(t *testing.T) {
	ws, preexisting := runnerWorkspace(t)
	sbomDir := filepath.Join(ws, "out", "sbom")
	sbomFile := filepath.Join(sbomDir, "app_linux-amd64.spdx.json")
	sbomBin := writeScript(t, "phialo-sbom", `cat >/dev/null
echo '{}' >'`+sbomFile+`'
echo '{"platforms":[{"platform":"linux/amd64","files":["`+sbomFile+`"]}]}'
`)
	trivyBin := writeScript(t, "trivy", `out= cache= download=
while [ $# -gt 0 ]; do
  case $1 in
    --output) out=$2; shift ;;
    --cache-dir) cache=$2; shift ;;
    --download-db-only) download=1 ;;
  esac
  shift
done
if [ -n "$download" ]; then
  mkdir -p "$cache/db"
  echo db >"$cache/db/trivy.db"
  exit 0
fi
mkdir -p "$cache/java-db"
echo '{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}},"results":[]}]}' >"$out"
`)
	env := map[string]string{"PHIALO_SBOM_BIN": sbomBin, "TRIVY_BIN": trivyBin}
	var log bytes.Buffer
	gha := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }), githubactions.WithWriter(&log))
	cfg := &config.Config{
		Build: config.Build{Context: "."},
		Supply: config.Supply{
			SBOM: true, SBOMFormats: []string{"spdx-json"}, SBOMDir: sbomDir,
			Scan: true, ScanSeverities: []string{"CRITICAL", "HIGH"},
			SARIFDir:      filepath.Join(preexisting, "sarif"),
			TrivyCacheDir: filepath.Join(ws, ".cache", "trivy"),
		},
	}
	ev := &ghevent.Context{Workspace: ws}
	img := registry.Image{Platforms: []registry.Platform{{Platform: "linux/amd64", Digest: testDigest}}}
	s := &session{work: t.TempDir(), dockerConfig: t.TempDir()}
	out := runSupplyChain(context.Background(), gha, &log, cfg, ev, nil, "registry.example/owner/app", img, s)
	if out.SBOMErr != nil || out.ScanErr != nil || len(out.Scans) != 1 || out.Scans[0].Err != nil {
		t.Fatalf("SBOM error %v, scan error %v, scans %+v\nlog:\n%s", out.SBOMErr, out.ScanErr, out.Scans, log.String())
	}

	runner := "1001:1001"
	want := map[string]string{
		"out":                                 runner,
		"out/sbom":                            runner,
		"out/sbom/app_linux-amd64.spdx.json":  runner,
		"reports":                             "0:0", // there before: not the action's
		"reports/sarif":                       runner,
		"reports/sarif/app_linux-amd64.sarif": runner,
		".cache":                              runner,
		".cache/trivy":                        runner,
		".cache/trivy/db":                     runner,
		".cache/trivy/db/trivy.db":            runner,
		".cache/trivy/java-db":                runner,
	}
	if diff := cmp.Diff(want, owners(t, ws)); diff != "" {
		t.Errorf("owners of the workspace's entries (-want +got):\n%s", diff)
	}
	if strings.Contains(log.String(), "::warning::") {
		t.Errorf("warnings:\n%s", log.String())
	}

	got := map[string]string{}
	for _, o := range report.SupplyOutputs(out) {
		got[o.Name] = o.Value
	}
	wantOuts := map[string]string{
		"sbom-files":      "out/sbom/app_linux-amd64.spdx.json",
		"sarif-files":     "reports/sarif/app_linux-amd64.sarif",
		"vulnerabilities": `{"linux/amd64":{}}`,
	}
	if diff := cmp.Diff(wantOuts, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}

func TestDigestFileBelongsToTheWorkspaceOwner(t *testing.T) {
	ws, _ := runnerWorkspace(t)
	var log bytes.Buffer
	gha := githubactions.New(githubactions.WithGetenv(func(string) string { return "" }), githubactions.WithWriter(&log))
	if err := writeDigestFile(newWorkspaceOwner(ws, gha.Warningf), filepath.Join(ws, "dist", "digests"), testDigest); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"reports":      "0:0",
		"dist":         "1001:1001",
		"dist/digests": "1001:1001",
		"dist/digests/" + strings.TrimPrefix(testDigest, "sha256:"): "1001:1001",
	}
	if diff := cmp.Diff(want, owners(t, ws)); diff != "" {
		t.Errorf("owners of the workspace's entries (-want +got):\n%s", diff)
	}
	if log.Len() != 0 {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestWorkspaceOwnerInside(t *testing.T) {
	t.Parallel()
	o := &workspaceOwner{root: "/github/workspace"}
	tests := []struct {
		path string
		want bool
	}{
		{"/github/workspace/sbom", true},
		{"/github/workspace/a/../sbom/x.json", true},
		{"/github/workspace", false},
		{"/github/workspace/", false},
		{"/github/workspace-other/sbom", false},
		{"/github/workspace/../runner_temp", false},
		{"/github/runner_temp/x", false},
		{"sbom", false},
	}
	for _, tt := range tests {
		if got := o.inside(tt.path); got != tt.want {
			t.Errorf("inside(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if (&workspaceOwner{}).inside("/github/workspace/sbom") {
		t.Error("without a workspace, a path is inside it")
	}
}
