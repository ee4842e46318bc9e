package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// migrateRepo is the repository's path on both registries.
const migrateRepo = "user/image"

// migrateBackoff keeps the retries of the tests short.
var migrateBackoff = remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 3}

// rawManifest pushes manifest bytes as they are.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// migrateSource is what the source registry holds.
type migrateSource struct {
	// index is the digest of the multi-platform index (tags v1, latest),
	// image that of the single-platform image (v2), pr that of pr-3.
	index, image, pr string
	// blobs are, by tag, the digests of every manifest, config and layer
	// that copying the tag brings along, sorted.
	blobs map[string][]string
}

// indent re-serialises a manifest with indentation, as some tools push
// them: a copy that re-serialised it would change its digest.
func indent(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "   "); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// imageBlobs lists an image's manifest, config and layer digests.
func imageBlobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{d.String(), m.Config.Digest.String()}
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// seedMigrateSource pushes through host, an unguarded door to the source
// registry, a buildx-like index (two platform images and their attestation
// manifests) as v1 and latest, a single-platform image as v2 and another
// as pr-3. The tagged manifests are indented, so their bytes are not what
// go-containerregistry would write.
func seedMigrateSource(t *testing.T, host string) migrateSource {
	t.Helper()
	repo, err := name.NewRepository(host + "/" + migrateRepo)
	if err != nil {
		t.Fatal(err)
	}
	src := migrateSource{blobs: map[string][]string{}}
	var indexBlobs []string
	var adds []mutate.IndexAddendum
	var atts []mutate.IndexAddendum
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img, err := random.Image(700, 2)
		if err != nil {
			t.Fatal(err)
		}
		att, err := random.Image(200, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		p := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		atts = append(atts, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": d.String(),
			},
		}})
		indexBlobs = append(indexBlobs, imageBlobs(t, img)...)
		indexBlobs = append(indexBlobs, imageBlobs(t, att)...)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), append(adds, atts...)...)
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(repo.Digest(idxDigest.String()), idx); err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	indexed := rawManifest{indent(t, raw), types.OCIImageIndex}
	src.index = digestOf(indexed.raw)
	indexBlobs = append(indexBlobs, src.index)
	sort.Strings(indexBlobs)
	for _, tag := range []string{"v1", "latest"} {
		if err := remote.Put(repo.Tag(tag), indexed); err != nil {
			t.Fatal(err)
		}
		src.blobs[tag] = indexBlobs
	}

	for _, tc := range []struct {
		tag    string
		digest *string
	}{{"v2", &src.image}, {"pr-3", &src.pr}} {
		img, err := random.Image(500, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(repo.Digest(d.String()), img); err != nil {
			t.Fatal(err)
		}
		raw, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		mt, err := img.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		m := rawManifest{indent(t, raw), mt}
		if err := remote.Put(repo.Tag(tc.tag), m); err != nil {
			t.Fatal(err)
		}
		*tc.digest = digestOf(m.raw)
		blobs := imageBlobs(t, img)
		blobs[0] = *tc.digest
		sort.Strings(blobs)
		src.blobs[tc.tag] = blobs
	}
	return src
}

// requestLog counts what a registry was asked.
type requestLog struct {
	manifestPuts atomic.Int64 // PUT of a manifest
	writes       atomic.Int64 // any request but GET and HEAD
	blobReads    atomic.Int64 // GET of a blob
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
			l.manifestPuts.Add(1)
			l.writes.Add(1)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			l.writes.Add(1)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"):
			l.blobReads.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// migrateEnv is a seeded source registry and an empty destination.
type migrateEnv struct {
	src              migrateSource
	from, to         string // repositories
	seedFrom, seedTo string // the same through unguarded doors
	srcLog           requestLog
	dstLog           requestLog
}

type wrapper func(http.Handler) http.Handler

// newMigrateEnv starts the two registries: their served handlers are
// wrapped by srcWrap and dstWrap (when not nil) and then by the request
// logs; the source is seeded through a door of its own.
func newMigrateEnv(t *testing.T, srcWrap, dstWrap wrapper) *migrateEnv {
	t.Helper()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	e := &migrateEnv{}
	serve := func(h http.Handler) string {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	srcH, dstH := ggcrregistry.New(quiet), ggcrregistry.New(quiet)
	seedHost := serve(srcH)
	e.src = seedMigrateSource(t, seedHost)
	e.seedFrom = seedHost + "/" + migrateRepo
	e.seedTo = serve(dstH) + "/" + migrateRepo
	if srcWrap != nil {
		srcH = srcWrap(srcH)
	}
	if dstWrap != nil {
		dstH = dstWrap(dstH)
	}
	e.from = serve(e.srcLog.wrap(srcH)) + "/" + migrateRepo
	e.to = serve(e.dstLog.wrap(dstH)) + "/" + migrateRepo
	return e
}

// basicAuth answers 401 with a Basic challenge to requests without user and
// password.
func basicAuth(user, password string) wrapper {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="source"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// failing answers status to the first times requests (all of them when
// times is negative) whose method is method (any when empty) and whose path
// ends with suffix.
func failing(method, suffix string, status int, times int64) wrapper {
	return func(h http.Handler) http.Handler {
		var n atomic.Int64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (method == "" || r.Method == method) && strings.HasSuffix(r.URL.Path, suffix) && (times < 0 || n.Add(1) <= times) {
				http.Error(w, "unavailable", status)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// row is a Copied that cmp can compare: Err becomes whether it failed.
type row struct {
	Tag, Digest     string
	Skipped, Failed bool
}

func rows(cs []Copied) []row {
	var out []row
	for _, c := range cs {
		out = append(out, row{c.Tag, c.Digest, c.Skipped, c.Err != nil})
	}
	return out
}

// destinationTags lists the destination's tags, with their digests.
func destinationTags(t *testing.T, repo string) map[string]string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		if strings.Contains(err.Error(), "NAME_UNKNOWN") {
			return map[string]string{}
		}
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tag := range tags {
		d, err := remote.Head(r.Tag(tag))
		if err != nil {
			t.Fatal(err)
		}
		out[tag] = d.Digest.String()
	}
	return out
}

// pullEverything pulls from the destination every manifest that ref leads
// to, every config and every layer, checks that each one's bytes hash to
// its digest and that each manifest's bytes are the source's, and returns
// the digests pulled, sorted.
func pullEverything(t *testing.T, srcRepo, dstRepo, tag string) []string {
	t.Helper()
	src, err := name.NewRepository(srcRepo)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewRepository(dstRepo)
	if err != nil {
		t.Fatal(err)
	}
	var pulled []string
	var manifest func(ref, srcRef name.Reference)
	manifest = func(ref, srcRef name.Reference) {
		got, err := remote.Get(ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		want, err := remote.Get(srcRef)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want.Manifest), string(got.Manifest)); diff != "" {
			t.Errorf("manifest of %s differs from the source's (-want +got):\n%s", ref, diff)
		}
		if d := digestOf(got.Manifest); d != got.Digest.String() || d != want.Digest.String() {
			t.Errorf("%s: bytes hash to %s, destination says %s, source has %s", ref, d, got.Digest, want.Digest)
		}
		pulled = append(pulled, got.Digest.String())
		if got.MediaType.IsIndex() {
			idx, err := got.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				manifest(dst.Digest(d.Digest.String()), src.Digest(d.Digest.String()))
			}
			return
		}
		img, err := got.Image()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			t.Fatalf("pulling the config of %s: %v", ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if d := digestOf(cfg); d != m.Config.Digest.String() {
			t.Errorf("config of %s hashes to %s, want %s", ref, d, m.Config.Digest)
		}
		pulled = append(pulled, m.Config.Digest.String())
		for _, l := range m.Layers {
			layer, err := remote.Layer(dst.Digest(l.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatalf("pulling layer %s of %s: %v", l.Digest, ref, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("pulling layer %s of %s: %v", l.Digest, ref, err)
			}
			if d := digestOf(b); d != l.Digest.String() {
				t.Errorf("layer of %s hashes to %s, want %s", ref, d, l.Digest)
			}
			pulled = append(pulled, l.Digest.String())
		}
	}
	manifest(dst.Tag(tag), src.Tag(tag))
	sort.Strings(pulled)
	return pulled
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		srcWrap, dstWrap wrapper
		// seedDst puts the pr-3 image under v2 at the destination first.
		seedDst   bool
		tags      []string
		fromLogin *Login
		want      func(s migrateSource) []row
		wantErr   string
		// wantTags are the destination's tags afterwards.
		wantTags func(s migrateSource) map[string]string
	}{
		{
			name: "copies the matching tags byte for byte",
			tags: []string{"v*", "latest"},
			want: func(s migrateSource) []row {
				return []row{{Tag: "latest", Digest: s.index}, {Tag: "v1", Digest: s.index}, {Tag: "v2", Digest: s.image}}
			},
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"latest": s.index, "v1": s.index, "v2": s.image}
			},
		},
		{
			name: "no pattern copies every tag",
			want: func(s migrateSource) []row {
				return []row{{Tag: "latest", Digest: s.index}, {Tag: "pr-3", Digest: s.pr}, {Tag: "v1", Digest: s.index}, {Tag: "v2", Digest: s.image}}
			},
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"latest": s.index, "pr-3": s.pr, "v1": s.index, "v2": s.image}
			},
		},
		{
			name:    "a destination tag with another digest is overwritten",
			seedDst: true,
			tags:    []string{"v2"},
			want: func(s migrateSource) []row {
				return []row{{Tag: "v2", Digest: s.image}}
			},
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"v2": s.image}
			},
		},
		{
			name:      "a source behind basic auth is read with FromLogin",
			srcWrap:   basicAuth("user", "s3cret"),
			tags:      []string{"v*", "latest"},
			fromLogin: &Login{Username: "user", Password: "s3cret"},
			want: func(s migrateSource) []row {
				return []row{{Tag: "latest", Digest: s.index}, {Tag: "v1", Digest: s.index}, {Tag: "v2", Digest: s.image}}
			},
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"latest": s.index, "v1": s.index, "v2": s.image}
			},
		},
		{
			name:     "a source behind basic auth fails without FromLogin",
			srcWrap:  basicAuth("user", "s3cret"),
			tags:     []string{"v*", "latest"},
			want:     func(migrateSource) []row { return nil },
			wantErr:  "listing the tags",
			wantTags: func(migrateSource) map[string]string { return map[string]string{} },
		},
		{
			name:      "a source behind basic auth fails with a wrong password",
			srcWrap:   basicAuth("user", "s3cret"),
			tags:      []string{"v*", "latest"},
			fromLogin: &Login{Username: "user", Password: "wrong"},
			want:      func(migrateSource) []row { return nil },
			wantErr:   "listing the tags",
			wantTags:  func(migrateSource) map[string]string { return map[string]string{} },
		},
		{
			name:    "a tag whose manifest fails fails alone",
			srcWrap: failing("", "/manifests/v2", http.StatusInternalServerError, -1),
			tags:    []string{"v*", "latest"},
			want: func(s migrateSource) []row {
				return []row{{Tag: "latest", Digest: s.index}, {Tag: "v1", Digest: s.index}, {Tag: "v2", Failed: true}}
			},
			wantErr: "1 of 3 tags failed",
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"latest": s.index, "v1": s.index}
			},
		},
		{
			name:    "transient errors on both sides are retried",
			srcWrap: failing(http.MethodGet, "/manifests/v1", http.StatusServiceUnavailable, 2),
			dstWrap: failing(http.MethodPut, "/manifests/v2", http.StatusTooManyRequests, 1),
			tags:    []string{"v*"},
			want: func(s migrateSource) []row {
				return []row{{Tag: "v1", Digest: s.index}, {Tag: "v2", Digest: s.image}}
			},
			wantTags: func(s migrateSource) map[string]string {
				return map[string]string{"v1": s.index, "v2": s.image}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newMigrateEnv(t, tt.srcWrap, tt.dstWrap)
			if tt.seedDst {
				seed, err := name.NewRepository(e.seedTo)
				if err != nil {
					t.Fatal(err)
				}
				img, err := random.Image(300, 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.Write(seed.Tag("v2"), img); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Migrate(context.Background(), MigrateOptions{
				From: e.from, To: e.to, Tags: tt.tags, FromLogin: tt.fromLogin,
				ToLogins: []Login{{Registry: "ghcr.io", Username: "owner", Password: "ghs_x"}},
				backoff:  &migrateBackoff,
			})
			if tt.wantErr == "" && err != nil {
				t.Errorf("Migrate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Migrate error = %v, want one containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want(e.src), rows(got)); diff != "" {
				t.Errorf("Migrate results (-want +got):\n%s", diff)
			}
			for _, c := range got {
				if c.Err != nil && !strings.Contains(c.Err.Error(), c.Tag) {
					t.Errorf("error of %s does not name it: %v", c.Tag, c.Err)
				}
			}
			if diff := cmp.Diff(tt.wantTags(e.src), destinationTags(t, e.to)); diff != "" {
				t.Errorf("destination tags (-want +got):\n%s", diff)
			}
			for _, c := range got {
				if c.Err != nil {
					continue
				}
				if diff := cmp.Diff(e.src.blobs[c.Tag], pullEverything(t, e.seedFrom, e.to, c.Tag)); diff != "" {
					t.Errorf("blobs pulled from the destination's %s (-want +got):\n%s", c.Tag, diff)
				}
			}
		})
	}
}

func TestMigrateSkipsWhatIsThere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tags []string
	}{
		{"matching tags", []string{"v*", "latest"}},
		{"every tag", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newMigrateEnv(t, nil, nil)
			o := MigrateOptions{From: e.from, To: e.to, Tags: tt.tags, backoff: &migrateBackoff}
			first, err := Migrate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if e.dstLog.manifestPuts.Load() == 0 {
				t.Fatal("the first Migrate wrote no manifest")
			}
			var want []row
			for _, c := range first {
				if c.Skipped || c.Err != nil {
					t.Errorf("first Migrate: %+v, want it copied", c)
				}
				want = append(want, row{Tag: c.Tag, Digest: c.Digest, Skipped: true})
			}
			writes, puts, blobReads := e.dstLog.writes.Load(), e.dstLog.manifestPuts.Load(), e.srcLog.blobReads.Load()
			second, err := Migrate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, rows(second)); diff != "" {
				t.Errorf("second Migrate (-want +got):\n%s", diff)
			}
			if n := e.dstLog.manifestPuts.Load() - puts; n != 0 {
				t.Errorf("second Migrate put %d manifests, want none", n)
			}
			if n := e.dstLog.writes.Load() - writes; n != 0 {
				t.Errorf("second Migrate made %d writing requests to the destination, want none", n)
			}
			if n := e.srcLog.blobReads.Load() - blobReads; n != 0 {
				t.Errorf("second Migrate read %d blobs from the source, want none", n)
			}
		})
	}
}

// barrier holds each GET of a manifest by tag until want of them are held
// at once (or every one of the total tags left is), then lets that batch
// through; it keeps the largest number held at once. A batch that never
// fills is let through after a while, and stalled says so.
type barrier struct {
	want, total int
	mu          sync.Mutex
	held, done  int
	max         int
	gate        chan struct{} // closed when the batch being filled may go
	stalled     atomic.Bool
}

func (b *barrier) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "sha256:") {
			h.ServeHTTP(w, r)
			return
		}
		b.mu.Lock()
		b.held++
		b.max = max(b.max, b.held)
		if b.gate == nil {
			b.gate = make(chan struct{})
		}
		gate := b.gate
		if b.held == b.want || b.held+b.done == b.total {
			close(b.gate)
			b.gate = nil
		}
		b.mu.Unlock()
		select {
		case <-gate:
		case <-time.After(10 * time.Second):
			b.stalled.Store(true)
		}
		b.mu.Lock()
		b.held--
		b.done++
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func TestMigrateConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		concurrency int
		want        int // tags read at once, of the 4
	}{
		{"one at a time", 1, 1},
		{"two at a time", 2, 2},
		{"default is four", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &barrier{want: tt.want, total: 4}
			e := newMigrateEnv(t, b.wrap, nil)
			got, err := Migrate(context.Background(), MigrateOptions{From: e.from, To: e.to, Concurrency: tt.concurrency, backoff: &migrateBackoff})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 {
				t.Errorf("Migrate copied %d tags, want 4", len(got))
			}
			if b.stalled.Load() {
				t.Errorf("fewer than %d tags were read at once", tt.want)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if diff := cmp.Diff(tt.want, b.max); diff != "" {
				t.Errorf("tags read at once (-want +got):\n%s", diff)
			}
		})
	}
}

// cancelOn cancels the run's context on the first request to a manifest by
// tag with method, and then answers none of them: each is held until the
// client gives it up and closes its connection. So the request that saw
// the cancellation fails with it, always, instead of racing its answer.
// Other requests pass.
func cancelOn(method string, cancel context.CancelFunc) wrapper {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != method || !strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "sha256:") {
				h.ServeHTTP(w, r)
				return
			}
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
				http.Error(w, "the client did not give the request up on cancellation", http.StatusTeapot)
			}
		})
	}
}

func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	// A row carries the source's digest exactly when the source's manifest
	// was read before the cancellation; every row of a cancelled run
	// fails, and nothing is written to the destination.
	tests := []struct {
		name string
		// before cancels before Migrate starts; else srcAt (the source) or
		// dstAt (the destination) cancels on a request by tag with that
		// method.
		before       bool
		srcAt, dstAt string
		want         func(s migrateSource) []row
	}{
		{name: "before the start", before: true, want: func(migrateSource) []row { return nil }},
		{
			name:  "while reading the source",
			srcAt: http.MethodGet,
			want: func(migrateSource) []row {
				return []row{{Tag: "latest", Failed: true}, {Tag: "v1", Failed: true}, {Tag: "v2", Failed: true}}
			},
		},
		{
			name:  "after reading the source",
			dstAt: http.MethodHead,
			want: func(s migrateSource) []row {
				return []row{{Tag: "latest", Digest: s.index, Failed: true}, {Tag: "v1", Failed: true}, {Tag: "v2", Failed: true}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var srcWrap, dstWrap wrapper
			switch {
			case tt.before:
				cancel()
			case tt.srcAt != "":
				srcWrap = cancelOn(tt.srcAt, cancel)
			default:
				dstWrap = cancelOn(tt.dstAt, cancel)
			}
			e := newMigrateEnv(t, srcWrap, dstWrap)
			got, err := Migrate(ctx, MigrateOptions{From: e.from, To: e.to, Tags: []string{"v*", "latest"}, Concurrency: 1, backoff: &migrateBackoff})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Migrate error = %v, want context.Canceled", err)
			}
			if diff := cmp.Diff(tt.want(e.src), rows(got)); diff != "" {
				t.Errorf("Migrate results (-want +got):\n%s", diff)
			}
			for _, c := range got {
				if !errors.Is(c.Err, context.Canceled) {
					t.Errorf("%s: error %v, want context.Canceled", c.Tag, c.Err)
				}
			}
			if n := e.dstLog.writes.Load(); n != 0 {
				t.Errorf("%d writing requests reached the destination, want none", n)
			}
			if diff := cmp.Diff(map[string]string{}, destinationTags(t, e.seedTo)); diff != "" {
				t.Errorf("destination tags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMigrateRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		o       MigrateOptions
		wantErr string
	}{
		{"bad source", MigrateOptions{From: "ghcr.io/Owner/image:tag", To: "ghcr.io/owner/image"}, "parsing source repository"},
		{"bad destination", MigrateOptions{From: "docker.io/user/image", To: ""}, "parsing destination repository"},
		{"bad pattern", MigrateOptions{From: "docker.io/user/image", To: "ghcr.io/owner/image", Tags: []string{"v*", "[v"}}, `tag pattern "[v"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Migrate(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Migrate error = %v, want one containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff([]row(nil), rows(got)); diff != "" {
				t.Errorf("Migrate results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchTags(t *testing.T) {
	t.Parallel()
	tags := []string{"v2", "latest", "pr-3", "v1", "v1.2.3", "sha-abc"}
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{"no pattern is every tag, sorted", nil, []string{"latest", "pr-3", "sha-abc", "v1", "v1.2.3", "v2"}},
		{"any pattern matches", []string{"v*", "latest"}, []string{"latest", "v1", "v1.2.3", "v2"}},
		{"whole tag only", []string{"v1"}, []string{"v1"}},
		{"classes", []string{"v[0-9]"}, []string{"v1", "v2"}},
		{"nothing", []string{"release-*"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, matchTags(tags, tt.patterns)); diff != "" {
				t.Errorf("matchTags (-want +got):\n%s", diff)
			}
		})
	}
}
