package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestNewDockerConfig(t *testing.T) {
	t.Parallel()
	dir, err := NewDockerConfig(t.TempDir(), []Login{{Registry: "ghcr.io", Username: "barde", Password: "ghs_x"}, {Registry: "docker.io", Username: "b", Password: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode = %v, want 0600", st.Mode().Perm())
	}
	var cfg struct {
		Auths map[string]struct{ Auth string }
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"ghcr.io": "barde:ghs_x", "https://index.docker.io/v1/": "b:p"} {
		got, _ := base64.StdEncoding.DecodeString(cfg.Auths[key].Auth)
		if string(got) != want {
			t.Errorf("auth for %s = %q, want %q", key, got, want)
		}
	}
}

func pushIndex(t *testing.T, host string) (string, v1.Hash) {
	t.Helper()
	repo := host + "/barde/app"
	var idx v1.ImageIndex = empty.Index
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		img, err := random.Image(1000, 2)
		if err != nil {
			t.Fatal(err)
		}
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	att, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
	}})
	ref, err := name.ParseReference(repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return repo, d
}

func TestInspectRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	reg := ggcrregistry.New()
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	repo, digest := pushIndex(t, host)

	// The same registry behind a front that answers its first two requests
	// with 503: the reader retries past them.
	var failures atomic.Int32
	flakySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failures.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer flakySrv.Close()
	flakyRepo := strings.Replace(repo, host, strings.TrimPrefix(flakySrv.URL, "http://"), 1)

	img, err := NewReader(nil).Inspect(context.Background(), flakyRepo+"@"+digest.String())
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if failures.Load() < 3 {
		t.Errorf("%d requests, want the two 503s retried", failures.Load())
	}
	if img.Digest != digest.String() || len(img.Platforms) != 2 || img.Attestations != 1 {
		t.Errorf("Inspect = %+v, want 2 platforms and 1 attestation of %s", img, digest)
	}
	for _, p := range img.Platforms {
		if p.Size <= 2000 {
			t.Errorf("%s size %d, want the config and both layers counted", p.Platform, p.Size)
		}
	}
	if img.Platforms[0].Platform != "linux/amd64" || img.Platforms[1].Platform != "linux/arm64" {
		t.Errorf("platforms = %+v", img.Platforms)
	}
}

func TestInspectGivesUpOnPersistentErrors(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := NewReader(nil).Inspect(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/a/b:latest")
	if err == nil || !strings.Contains(err.Error(), "reading") {
		t.Fatalf("Inspect = %v, want an error", err)
	}
	if got := n.Load(); got < 2 || got > 10 {
		t.Errorf("%d requests, want a bounded number of retries", got)
	}
}

func TestHumanSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{512: "512 B", 2048: "2.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
