package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// e2eEnv is what an end-to-end test needs: the services hack/e2e/up.sh
// started (read from the file PHIALO_E2E_ENV names) and the tools on PATH.
type e2eEnv struct {
	buildkitHost, registry string
	buildx, trivy          string
}

// needE2E skips a test with the reason unless BuildKit, a registry, buildx
// and trivy are there; ./hack/test.sh provides them.
func needE2E(t *testing.T) e2eEnv {
	t.Helper()
	envFile := os.Getenv("PHIALO_E2E_ENV")
	if envFile == "" {
		t.Skip("end-to-end environment: PHIALO_E2E_ENV is not set: ./hack/test.sh starts BuildKit and a registry and sets it")
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Skipf("end-to-end environment: reading PHIALO_E2E_ENV: %v", err)
	}
	var e e2eEnv
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "BUILDKIT_HOST":
			e.buildkitHost = v
		case "PHIALO_REGISTRY":
			e.registry = v
		}
	}
	if e.buildkitHost == "" || e.registry == "" {
		t.Skipf("end-to-end environment: %s lacks BUILDKIT_HOST or PHIALO_REGISTRY", envFile)
	}
	for name, p := range map[string]*string{"buildx": &e.buildx, "trivy": &e.trivy} {
		if *p, err = exec.LookPath(name); err != nil {
			t.Skipf("end-to-end environment: %s is not on PATH: run hack/e2e/install.sh buildx trivy and source hack/e2e/env.sh", name)
		}
	}
	return e
}

// pushFixture builds testdata/scan for linux/amd64 and linux/arm64 with a
// remote builder in private buildx and docker configs, pushes it, and
// returns the image's name and digest reference.
func pushFixture(t *testing.T, e e2eEnv) (image, ref string, dockerConfig string) {
	t.Helper()
	dir := t.TempDir()
	dockerConfig = filepath.Join(dir, "docker")
	if err := os.Mkdir(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"DOCKER_CONFIG=" + dockerConfig,
		"BUILDX_CONFIG=" + filepath.Join(dir, "buildx"),
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(e.buildx, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("buildx %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	builder := fmt.Sprintf("phialo-scan-%d", os.Getpid())
	run("create", "--name", builder, "--driver", "remote", e.buildkitHost)
	image = e.registry + "/e2e/scan-fixture"
	meta := filepath.Join(dir, "metadata.json")
	run("build", "--builder", builder, "--platform", "linux/amd64,linux/arm64", "--provenance=false",
		"--push", "-t", image+":"+time.Now().UTC().Format("20060102150405"), "--metadata-file", meta,
		filepath.Join("..", "..", "testdata", "scan"))
	data, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Digest string `json:"containerimage.digest"`
	}
	if err := json.Unmarshal(data, &m); err != nil || !strings.HasPrefix(m.Digest, "sha256:") {
		t.Fatalf("no digest in the metadata file (%v):\n%s", err, data)
	}
	return image, image + "@" + m.Digest, dockerConfig
}

func TestScanE2E(t *testing.T) {
	e := needE2E(t)
	image, ref, dockerConfig := pushFixture(t, e)
	cache := t.TempDir()
	testutil.WriteTrivyDB(t, cache, testutil.PlantedVuln{
		ID: "CVE-2099-0001", Family: "alpine", Release: "3.19", Package: "busybox",
		FixedVersion: "1.36.1-r1", Severity: "CRITICAL", Title: "busybox: planted for the scan test",
	})
	trivyEnv := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TMPDIR=" + t.TempDir(),
		"DOCKER_CONFIG=" + dockerConfig,
	}
	tr := &Trivy{Bin: e.trivy, CacheDir: cache, Offline: true, Timeout: 2 * time.Minute, Env: trivyEnv}
	ctx := context.Background()
	out := t.TempDir()

	ids := map[string]string{}
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		file := filepath.Join(out, strings.ReplaceAll(platform, "/", "-")+".sarif")
		start := time.Now()
		if err := tr.Scan(ctx, ref, platform, file); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s scanned in %s", platform, time.Since(start).Round(time.Millisecond))
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Process(raw, Options{Image: image, Platform: platform, Dockerfile: "testdata/scan/Dockerfile", Severities: []string{"CRITICAL", "HIGH"}})
		if err != nil {
			t.Fatalf("%s: %v", platform, err)
		}
		if diff := cmp.Diff(map[string]int{"CRITICAL": 1}, r.Counts); diff != "" {
			t.Errorf("%s counts (-want +got):\n%s", platform, diff)
		}
		want := []Finding{{ID: "CVE-2099-0001", Package: "busybox", Installed: "1.36.1-r0", Fixed: "1.36.1-r1", Severity: "CRITICAL", Title: "busybox: planted for the scan test"}}
		if diff := cmp.Diff(want, r.Top); diff != "" {
			t.Errorf("%s top findings (-want +got):\n%s", platform, diff)
		}
		run := decode(t, r.SARIF).Runs[0]
		if diff := cmp.Diff([]string{"CVE-2099-0001"}, ruleIDs(t, run)); diff != "" {
			t.Errorf("%s SARIF results (-want +got):\n%s", platform, diff)
		}
		if loc := run.Results[0].Locations[0]; loc.Message == nil || loc.Message.Text == nil || !strings.Contains(*loc.Message.Text, "busybox@1.36.1-r0") {
			t.Errorf("%s: the SARIF result does not name busybox 1.36.1-r0", platform)
		}
		if !bytes.Contains(r.SARIF, []byte(`"uri":"testdata/scan/Dockerfile"`)) {
			t.Errorf("%s: the result does not point at the Dockerfile", platform)
		}
		ids[platform] = *run.AutomationDetails.ID
	}
	want := map[string]string{"linux/amd64": image + "/linux/amd64/", "linux/arm64": image + "/linux/arm64/"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("automation ids (-want +got):\n%s", diff)
	}

	t.Run("without a database the scan fails", func(t *testing.T) {
		tr := *tr
		tr.CacheDir = t.TempDir()
		err := tr.Scan(ctx, ref, "linux/amd64", filepath.Join(t.TempDir(), "out.sarif"))
		if err == nil || !strings.Contains(err.Error(), "trivy said:") {
			t.Fatalf("Scan without a DB: error %v, want trivy's reason", err)
		}
		t.Logf("the caller turns this into a warning: %v", err)
	})

	t.Run("a platform the image lacks fails", func(t *testing.T) {
		err := tr.Scan(ctx, ref, "linux/s390x", filepath.Join(t.TempDir(), "out.sarif"))
		if err == nil || !strings.Contains(err.Error(), "no child with platform linux/s390x") {
			t.Fatalf("Scan of linux/s390x: error %v", err)
		}
	})
}
