package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// e2eEnv is what an end-to-end test needs: the services hack/e2e/up.sh
// started (read from the file PHIALO_E2E_ENV names) and the tools on PATH.
type e2eEnv struct {
	buildkitHost, registry string
	buildx, trivy          string
}

// needE2E stops a test unless BuildKit, a registry, buildx and trivy are
// there (./hack/test.sh provides them): it fails when PHIALO_E2E_ENV is set,
// so a broken environment is a failure there, and skips with the reason
// otherwise (a plain `go test ./...`). It then takes the BuildKit daemon
// shared with the other packages' tests.
func needE2E(t *testing.T) e2eEnv {
	t.Helper()
	envFile := os.Getenv("PHIALO_E2E_ENV")
	if envFile == "" {
		t.Skip("end-to-end environment: PHIALO_E2E_ENV is not set: ./hack/test.sh starts BuildKit and a registry and sets it")
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("end-to-end environment: reading PHIALO_E2E_ENV: %v", err)
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
		t.Fatalf("end-to-end environment: %s lacks BUILDKIT_HOST or PHIALO_REGISTRY", envFile)
	}
	for name, p := range map[string]*string{"buildx": &e.buildx, "trivy": &e.trivy} {
		if *p, err = exec.LookPath(name); err != nil {
			t.Fatalf("end-to-end environment: %s is not on PATH: run hack/e2e/install.sh buildx trivy and source hack/e2e/env.sh", name)
		}
	}
	testutil.LockBuildKit(t, e.buildkitHost, testutil.BuildKitShared)
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

// plantedBusybox is the advisory the scan tests plant in their database:
// the testdata/scan image's busybox 1.36.1-r0 is vulnerable.
var plantedBusybox = testutil.PlantedVuln{
	ID: "CVE-2099-0001", Family: "alpine", Release: "3.19", Package: "busybox",
	FixedVersion: "1.36.1-r1", Severity: "CRITICAL", Title: "busybox: planted for the scan test",
}

// scanEnv is the environment Trivy runs with in the end-to-end tests.
func scanEnv(t *testing.T, dockerConfig string) []string {
	t.Helper()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TMPDIR=" + t.TempDir(),
		"DOCKER_CONFIG=" + dockerConfig,
	}
}

// slowFront is a front of the registry at host that answers every GET of a
// blob delay late, as a slow or distant registry does, and counts them.
type slowFront struct {
	host     string // the front's host:port
	blobGets atomic.Int64
}

func newSlowFront(t *testing.T, host string, delay time.Duration) *slowFront {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: host}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	f := &slowFront{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			f.blobGets.Add(1)
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// scanned is one platform's scan: when it ran and how it ended.
type scanned struct {
	platform   string
	start, end time.Time
	err        error
	counts     map[string]int
}

// scanAtOnce scans every platform of ref with tr at the same time and
// checks that each found the planted vulnerability.
func scanAtOnce(t *testing.T, tr *Trivy, image, ref string, platforms ...string) []scanned {
	t.Helper()
	out := t.TempDir()
	res := make([]scanned, len(platforms))
	var wg sync.WaitGroup
	for i, p := range platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := filepath.Join(out, strings.ReplaceAll(p, "/", "-")+".sarif")
			res[i] = scanned{platform: p, start: time.Now()}
			res[i].err = tr.Scan(context.Background(), ref, p, file)
			res[i].end = time.Now()
			if res[i].err != nil {
				return
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				res[i].err = err
				return
			}
			r, err := Process(raw, Options{Image: image, Platform: p, Severities: []string{"CRITICAL", "HIGH"}})
			res[i].err, res[i].counts = err, r.Counts
		}()
	}
	wg.Wait()
	for _, r := range res {
		t.Logf("%s scanned in %s", r.platform, r.end.Sub(r.start).Round(time.Millisecond))
		if r.err != nil {
			t.Errorf("scan of %s: %v", r.platform, r.err)
			continue
		}
		if diff := cmp.Diff(map[string]int{"CRITICAL": 1}, r.counts); diff != "" {
			t.Errorf("%s counts (-want +got):\n%s", r.platform, diff)
		}
	}
	return res
}

// overlap is how long all of scans ran at the same time.
func overlap(scans []scanned) time.Duration {
	start, end := scans[0].start, scans[0].end
	for _, s := range scans[1:] {
		if s.start.After(start) {
			start = s.start
		}
		if s.end.Before(end) {
			end = s.end
		}
	}
	return end.Sub(start)
}

// TestScansAtOnceE2E scans two platforms of an image at the same time on
// one cache directory, from a registry that answers blobs 6 s late, so each
// scan lasts longer than the 5 s Trivy waits for a lock in the cache
// directory. Neither may wait for the other, let alone fail with "cache may
// be in use by another process".
func TestScansAtOnceE2E(t *testing.T) {
	e := needE2E(t)
	image, ref, dockerConfig := pushFixture(t, e)
	const delay = 6 * time.Second
	front := newSlowFront(t, e.registry, delay)
	_, digest, _ := strings.Cut(ref, "@")
	slowImage := front.host + strings.TrimPrefix(image, e.registry)
	cache := t.TempDir()
	testutil.WriteTrivyDB(t, cache, plantedBusybox)
	tr := &Trivy{Bin: e.trivy, CacheDir: cache, Offline: true, Timeout: 2 * time.Minute, Env: scanEnv(t, dockerConfig)}

	scans := scanAtOnce(t, tr, slowImage, slowImage+"@"+digest, "linux/amd64", "linux/arm64")
	if t.Failed() {
		return
	}
	if n := front.blobGets.Load(); n < 2 {
		t.Errorf("the scans read %d blobs through the slow front, want at least one each", n)
	}
	if o := overlap(scans); o < delay {
		t.Errorf("the scans ran %s at the same time, want more than %s (longer than Trivy's 5 s lock timeout)", o.Round(time.Millisecond), delay)
	}
}

// dbRegistry is a registry holding a Trivy vulnerability database, as
// ghcr.io/aquasecurity/trivy-db does, that counts the downloads of it. A
// download takes dbDelay, as the real database's tens of megabytes do, so
// scans started together would all find it missing.
type dbRegistry struct {
	repo      string // host:port/trivy-db:2
	downloads atomic.Int64
}

// dbDelay is how long a download of the database takes.
const dbDelay = 2 * time.Second

// newDBRegistry serves a database holding vulns as the OCI artifact
// <registry>/trivy-db:2: one layer, db.tar.gz, with trivy.db and
// metadata.json.
func newDBRegistry(t *testing.T, vulns ...testutil.PlantedVuln) *dbRegistry {
	t.Helper()
	src := t.TempDir()
	testutil.WriteTrivyDB(t, src, vulns...)
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		data, err := os.ReadFile(filepath.Join(src, "db", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer(tgz.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"}})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.aquasec.trivy.config.v1+json")
	digest, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d := &dbRegistry{}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest.String()) {
			d.downloads.Add(1)
			select {
			case <-time.After(dbDelay):
			case <-r.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d.repo = strings.TrimPrefix(srv.URL, "http://") + "/trivy-db:2"
	tag, err := name.NewTag(d.repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDownloadDBOnceE2E downloads the database into an empty cache
// directory once, then scans two platforms at the same time with it: the
// scans download nothing, and a second DownloadDB finds it up to date.
func TestDownloadDBOnceE2E(t *testing.T) {
	e := needE2E(t)
	image, ref, dockerConfig := pushFixture(t, e)
	db := newDBRegistry(t, plantedBusybox)
	cache := filepath.Join(t.TempDir(), "trivy")
	tr := &Trivy{Bin: e.trivy, CacheDir: cache, DBRepository: db.repo, Timeout: 2 * time.Minute, Env: scanEnv(t, dockerConfig)}

	if err := tr.DownloadDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := db.downloads.Load(); n != 1 {
		t.Fatalf("DownloadDB downloaded the database %d times, want once", n)
	}
	scanAtOnce(t, tr, image, ref, "linux/amd64", "linux/arm64")
	if err := tr.DownloadDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := db.downloads.Load(); n != 1 {
		t.Errorf("the database was downloaded %d times in all, want once: the scans and a second DownloadDB must use it as it is", n)
	}
}
