package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// TestActionImage builds the repository's Dockerfile with buildx against
// BuildKit, the way the release workflow builds the action's image, and runs
// the tools of the pushed image from its extracted filesystem. The public
// base images cannot be pulled here, so the test pushes stand-ins made from
// what this machine has: the e2e binaries (BINARIES skips the Go build),
// buildx and trivy from PATH, and a base with the host's CA certificates.
func TestActionImage(t *testing.T) {
	needE2E(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	bases := map[string]string{}
	push := func(arg, repo string, files []imageFile) {
		bases[arg] = pushFiles(t, registryHost+"/e2e/image-base/"+repo+":test", files)
	}
	push("BINARIES", "binaries", []imageFile{
		{path: "out/phialo-image-action", src: binary},
		{path: "out/phialo-sbom", src: sbomBinary},
	})
	push("BUILDX_IMAGE", "buildx", []imageFile{{path: "buildx", src: lookPath(t, "buildx")}})
	push("TRIVY_IMAGE", "trivy", []imageFile{{path: "usr/local/bin/trivy", src: lookPath(t, "trivy")}})
	push("BASE_IMAGE", "static", []imageFile{
		{path: "etc/ssl/certs/ca-certificates.crt", src: "/etc/ssl/certs/ca-certificates.crt"},
		{path: "tmp", dir: true},
	})
	// Unused once BINARIES names an image: BuildKit skips the build stage.
	bases["GO_IMAGE"] = bases["BASE_IMAGE"]
	t.Logf("stand-in bases pushed in %s", time.Since(start).Round(time.Millisecond))

	// buildx with a private configuration and a remote builder on the
	// test's BuildKit.
	cfg := t.TempDir()
	env := append(os.Environ(),
		"DOCKER_CONFIG="+filepath.Join(cfg, "docker"),
		"BUILDX_CONFIG="+filepath.Join(cfg, "buildx"),
		"BUILDX_NO_DEFAULT_ATTESTATIONS=1",
	)
	buildx := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "buildx", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("buildx %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	builder := fmt.Sprintf("e2e-image-%d", time.Now().UnixNano())
	buildx("create", "--name", builder, "--driver", "remote", buildkitHost)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "buildx", "rm", builder)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("buildx rm %s: %v\n%s", builder, err, out)
		}
	})

	image := registryHost + "/e2e/action-image:test"
	metadata := filepath.Join(cfg, "metadata.json")
	args := []string{"--builder", builder, "build", "--progress", "plain",
		"--platform", "linux/" + runtime.GOARCH,
		"--tag", image, "--push", "--metadata-file", metadata}
	for _, arg := range []string{"GO_IMAGE", "BASE_IMAGE", "BUILDX_IMAGE", "TRIVY_IMAGE", "BINARIES"} {
		args = append(args, "--build-arg", arg+"="+bases[arg])
	}
	buildStart := time.Now()
	log := buildx(append(args, root)...)
	t.Logf("buildx build and push: %s", time.Since(buildStart).Round(time.Millisecond))
	if strings.Contains(log, "go mod download") || strings.Contains(log, "go build") {
		t.Errorf("the Go build stage ran although BINARIES names an image:\n%s", log)
	}
	var meta map[string]any
	data, err := os.ReadFile(metadata)
	if err == nil {
		err = json.Unmarshal(data, &meta)
	}
	if err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	digest, _ := meta["containerimage.digest"].(string)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("metadata containerimage.digest = %q", digest)
	}

	img, err := remote.Image(ref(t, image+"@"+digest), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/phialo-image-action" {
		t.Errorf("Entrypoint = %q", cf.Config.Entrypoint)
	}
	if u := cf.Config.User; u != "" && u != "0" && u != "root" && !strings.HasPrefix(u, "0:") {
		t.Errorf("User = %q, want root", u)
	}
	path := ""
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	if !strings.Contains(":"+path+":", ":/usr/local/bin:") {
		t.Errorf("PATH = %q, want /usr/local/bin on it", path)
	}

	// Compressed size: what a runner pulls.
	compressed, err := imageSize(img)
	if err != nil {
		t.Fatal(err)
	}
	fs := t.TempDir()
	extracted, err := extract(img, fs)
	if err != nil {
		t.Fatalf("extracting the image: %v", err)
	}
	t.Logf("image: %d layers, %.1f MB compressed (layers + config), %.1f MB extracted",
		len(cf.RootFS.DiffIDs), mb(compressed), mb(extracted))
	for _, f := range []string{"phialo-image-action", "phialo-sbom", "trivy"} {
		st, err := os.Stat(filepath.Join(fs, "usr/local/bin", f))
		if err != nil {
			t.Errorf("the image lacks /usr/local/bin/%s: %v", f, err)
			continue
		}
		t.Logf("  /usr/local/bin/%s: %.1f MB", f, mb(st.Size()))
	}
	// buildx is there once, as Docker's CLI plugin, which the action also
	// runs standalone.
	if st, err := os.Stat(filepath.Join(fs, "usr/local/lib/docker/cli-plugins/docker-buildx")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("the docker-buildx CLI plugin is missing or not executable: %v", err)
	} else {
		t.Logf("  /usr/local/lib/docker/cli-plugins/docker-buildx: %.1f MB", mb(st.Size()))
	}

	// The image's tools, run from its filesystem.
	bin := filepath.Join(fs, "usr/local/bin")
	run := func(want string, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
			return
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s %s = %q, want %q in it", name, strings.Join(args, " "), out, want)
		}
	}
	run("v0.38.2", "../lib/docker/cli-plugins/docker-buildx", "version")
	run("0.74.0", "trivy", "--version")

	// The action itself, as the runner starts the container, in dry-run.
	gh := testutil.NewGitHub(t)
	temp := t.TempDir()
	output := filepath.Join(temp, "output")
	actionEnv := []string{
		"PATH=" + bin,
		"HOME=" + temp,
		"GITHUB_ACTIONS=true",
		"GITHUB_REPOSITORY=barde/phialoastro",
		"GITHUB_REPOSITORY_OWNER=barde",
		"GITHUB_ACTOR=barde",
		"GITHUB_RUN_ID=4242",
		"GITHUB_API_URL=" + gh.URL,
		"GITHUB_EVENT_PATH=" + filepath.Join(root, "testdata", "events", "push-tag.json"),
		"GITHUB_OUTPUT=" + output,
		"GITHUB_STEP_SUMMARY=" + filepath.Join(temp, "summary"),
		"RUNNER_TEMP=" + temp,
		"GITHUB_WORKSPACE=" + temp,
		"INPUT_GITHUB-TOKEN=" + testutil.Token,
		"INPUT_DRY-RUN=true",
		"INPUT_IMAGES=ghcr.io/barde/phialoastro",
	}
	data, err = os.ReadFile(filepath.Join(root, "testdata", "events", "push-tag.env"))
	if err != nil {
		t.Fatal(err)
	}
	actionEnv = append(actionEnv, strings.Split(strings.TrimSpace(string(data)), "\n")...)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "phialo-image-action"))
	cmd.Env = actionEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the image's action in dry-run: %v\n%s", err, out)
	}
	outputs := testutil.ReadOutputs(t, output)
	if tags := strings.Split(outputs["tags"], "\n"); !containsSubstring(tags, "ghcr.io/barde/phialoastro:v1.2.3") {
		t.Errorf("tags output = %q, want ghcr.io/barde/phialoastro:v1.2.3 among them\n%s", tags, out)
	}
	t.Logf("TestActionImage took %s", time.Since(start).Round(time.Millisecond))
}

// imageFile is one entry of a stand-in image: a copy of the host file src,
// or a directory.
type imageFile struct {
	path string
	src  string
	dir  bool
}

// pushFiles pushes a one-layer linux image of files to tag, returning the
// reference by digest.
func pushFiles(t *testing.T, tag string, files []imageFile) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdir := func(p string) {
		var parents []string
		for d := p; d != "." && !dirs[d]; d = filepath.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		if f.dir {
			mkdir(f.path)
			continue
		}
		mkdir(filepath.Dir(f.path))
		data, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: int64(st.Mode().Perm()), Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS:           "linux",
		Architecture: runtime.GOARCH,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := remote.Write(ref(t, tag), img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(tag, ":test") + "@" + d.String()
}

// lookPath finds a tool on PATH and resolves its symlinks.
func lookPath(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s: %v (run hack/e2e/install.sh and source hack/e2e/env.sh)", tool, err)
	}
	return resolve(t, p)
}

func resolve(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// imageSize is the sum of the compressed layers' sizes and the config's.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// extract writes img's flattened filesystem under dir, keeping modes and
// links, and returns the regular files' total size.
func extract(img v1.Image, dir string) (int64, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return total, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return total, err
			}
			if err := os.Chmod(p, h.FileInfo().Mode().Perm()|0o700); err != nil {
				return total, err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, h.FileInfo().Mode().Perm())
			if err != nil {
				return total, err
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return total, err
			}
			total += n
		case tar.TypeSymlink:
			os.Remove(p)
			if err := os.Symlink(h.Linkname, p); err != nil {
				return total, err
			}
		case tar.TypeLink:
			os.Remove(p)
			if err := os.Link(filepath.Join(dir, filepath.Clean(h.Linkname)), p); err != nil {
				return total, err
			}
		}
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }
