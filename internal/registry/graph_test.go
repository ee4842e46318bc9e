package registry

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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

// newGraphRegistry starts an in-process registry, with the OCI 1.1
// referrers API or without it (as ghcr.io), behind wrap when it is not nil,
// and returns its host.
func newGraphRegistry(t *testing.T, referrers bool, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = ggcrregistry.New(
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
		ggcrregistry.WithReferrersSupport(referrers),
	)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// graphDigest is the digest of a manifest, as a string.
func graphDigest(t *testing.T, m interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// graphImage is a small random image.
func graphImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// graphPush writes img (v1.Image or v1.ImageIndex) to ref, a tag or a digest.
func graphPush(t *testing.T, ref string, m any) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	switch m := m.(type) {
	case v1.Image:
		err = remote.Write(r, m)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, m)
	default:
		t.Fatalf("push: %T is neither an image nor an index", m)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// graphTag is the tag of digest d with suffix, as cosign names them.
func graphTag(d, suffix string) string { return strings.Replace(d, ":", "-", 1) + suffix }

// buildxGraph is what a buildx build with attestations, an SBOM attached as
// an OCI 1.1 referrer and a cosign signature leave in a repository.
type buildxGraph struct {
	index, amd64, arm64, attAMD64, attARM64 string
	// sbom is a referrer of index; fallback is the index tagged
	// sha256-<index hex> that lists it on a registry without the
	// referrers API ("" on one with it).
	sbom, fallback string
	// sig is tagged sha256-<index hex>.sig, att sha256-<amd64 hex>.att.
	sig, att string
	// lone is an image nothing refers to, odd one tagged
	// sha256-<index hex>.foo (not cosign's).
	lone, odd string
}

// all lists the digests of the graph, as GitHub lists the package's versions.
func (g buildxGraph) all() []string {
	out := []string{g.index, g.amd64, g.arm64, g.attAMD64, g.attARM64, g.sbom, g.sig, g.att, g.lone, g.odd}
	if g.fallback != "" {
		out = append(out, g.fallback)
	}
	return out
}

// pushBuildxGraph pushes a buildxGraph to repo.
func pushBuildxGraph(t *testing.T, repo string) buildxGraph {
	t.Helper()
	var g buildxGraph
	var idx v1.ImageIndex = empty.Index
	for _, p := range []struct {
		platform  v1.Platform
		img, att  *string
		imageType types.MediaType
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, &g.amd64, &g.attAMD64, types.OCIManifestSchema1},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, &g.arm64, &g.attARM64, types.OCIManifestSchema1},
	} {
		img := mutate.MediaType(graphImage(t), p.imageType)
		*p.img = graphDigest(t, img)
		// An attestation manifest as buildx makes it: platform
		// unknown/unknown, pointing at the image it attests.
		att := mutate.MediaType(graphImage(t), types.OCIManifestSchema1)
		*p.att = graphDigest(t, att)
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p.platform}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{
					"vnd.docker.reference.type":   "attestation-manifest",
					"vnd.docker.reference.digest": *p.img,
				},
			}})
	}
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	g.index = graphDigest(t, idx)
	graphPush(t, repo+":latest", idx)

	// An SBOM attached with OCI 1.1's subject.
	desc, err := graphSubject(idx)
	if err != nil {
		t.Fatal(err)
	}
	sbom := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(graphImage(t), types.OCIManifestSchema1), "application/spdx+json"), desc).(v1.Image)
	g.sbom = graphDigest(t, sbom)
	graphPush(t, repo+"@"+g.sbom, sbom)

	sig := graphImage(t)
	g.sig = graphDigest(t, sig)
	graphPush(t, repo+":"+graphTag(g.index, ".sig"), sig)
	att := graphImage(t)
	g.att = graphDigest(t, att)
	graphPush(t, repo+":"+graphTag(g.amd64, ".att"), att)

	lone := graphImage(t)
	g.lone = graphDigest(t, lone)
	graphPush(t, repo+":v1", lone)
	odd := graphImage(t)
	g.odd = graphDigest(t, odd)
	graphPush(t, repo+":"+graphTag(g.index, ".foo"), odd)
	// A signature of a digest that is not a version: left out.
	graphPush(t, repo+":"+graphTag("sha256:"+strings.Repeat("e", 64), ".sig"), graphImage(t))
	return g
}

// graphSubject is the descriptor of an index, as a subject.
func graphSubject(idx v1.ImageIndex) (v1.Descriptor, error) {
	d, err := idx.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := idx.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

func TestGraph(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		referrers bool
	}{
		{"registry without the referrers API, as ghcr.io", false},
		{"registry with the referrers API", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := newGraphRegistry(t, tc.referrers, nil) + "/barde/app"
			g := pushBuildxGraph(t, repo)
			if !tc.referrers {
				ref, err := name.ParseReference(repo + ":" + graphTag(g.index, ""))
				if err != nil {
					t.Fatal(err)
				}
				fb, err := remote.Head(ref)
				if err != nil {
					t.Fatalf("the referrers tag schema's index: %v", err)
				}
				g.fallback = fb.Digest.String()
			}

			got, err := NewReader(nil).Graph(context.Background(), repo, g.all(), 4)
			if err != nil {
				t.Fatalf("Graph: %v", err)
			}
			want := map[string][]string{
				g.index:    graphSorted(g.amd64, g.arm64, g.attAMD64, g.attARM64, g.sbom, g.sig),
				g.amd64:    {g.att},
				g.arm64:    nil,
				g.attAMD64: nil,
				g.attARM64: nil,
				g.sbom:     nil,
				g.sig:      nil,
				g.att:      nil,
				g.lone:     nil,
				g.odd:      nil,
			}
			if !tc.referrers {
				// The index of the referrers tag schema lives as long
				// as its subject, and keeps the SBOM.
				want[g.index] = graphSorted(append(want[g.index], g.fallback)...)
				want[g.fallback] = []string{g.sbom}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Graph (-want +got):\n%s", diff)
			}
		})
	}
}

// graphSorted returns ds sorted.
func graphSorted(ds ...string) []string {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

func TestGraphOfNoDigests(t *testing.T) {
	t.Parallel()
	got, err := NewReader(nil).Graph(context.Background(), "127.0.0.1:1/barde/app", nil, 4)
	if err != nil || len(got) != 0 {
		t.Errorf("Graph = %v, %v; want an empty graph and no request", got, err)
	}
	if _, err := NewReader(nil).Graph(context.Background(), "127.0.0.1:1/barde/app", []string{"latest"}, 4); err == nil {
		t.Error("Graph of a tag succeeded, want an error")
	}
}

func TestGraphFailsOnAnyError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// fail says whether to answer 500 to a request, given the
		// graph.
		fail func(g buildxGraph, r *http.Request) bool
		// missing adds a digest the registry does not have.
		missing bool
		// wantErr is a substring of the error, given the graph.
		wantErr func(g buildxGraph) string
		// wantRetried asks that the 500 was retried.
		wantRetried bool
	}{
		{
			name: "a manifest answered with 500",
			fail: func(g buildxGraph, r *http.Request) bool {
				return strings.HasSuffix(r.URL.Path, "/manifests/"+g.arm64)
			},
			wantErr:     func(g buildxGraph) string { return "reading " + g.arm64 },
			wantRetried: true,
		},
		{
			name:        "the tag list answered with 500",
			fail:        func(_ buildxGraph, r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/tags/list") },
			wantErr:     func(buildxGraph) string { return "listing tags" },
			wantRetried: true,
		},
		{
			name:    "a version the registry does not have",
			missing: true,
			wantErr: func(buildxGraph) string { return "reading sha256:" + strings.Repeat("d", 64) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g buildxGraph
			var armed atomic.Bool
			var failed atomic.Int32
			host := newGraphRegistry(t, false, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if armed.Load() && tc.fail != nil && tc.fail(g, r) {
						failed.Add(1)
						http.Error(w, "boom", http.StatusInternalServerError)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			repo := host + "/barde/app"
			g = pushBuildxGraph(t, repo)
			armed.Store(true)
			digests := g.all()
			if tc.missing {
				digests = append(digests, "sha256:"+strings.Repeat("d", 64))
			}
			got, err := NewReader(nil).Graph(context.Background(), repo, digests, 4)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr(g)) {
				t.Fatalf("Graph error = %v, want one with %q", err, tc.wantErr(g))
			}
			if got != nil {
				t.Errorf("Graph = %v with the error, want nil", got)
			}
			if n := failed.Load(); tc.wantRetried && n < 2 {
				t.Errorf("%d requests answered 500, want the first retried", n)
			}
		})
	}
}

func TestGraphBoundsConcurrency(t *testing.T) {
	t.Parallel()
	for _, concurrency := range []int{1, 3} {
		t.Run("concurrency "+strconv.Itoa(concurrency), func(t *testing.T) {
			t.Parallel()
			var counting atomic.Bool
			var mu sync.Mutex
			inFlight, maxInFlight := 0, 0
			host := newGraphRegistry(t, false, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !counting.Load() {
						h.ServeHTTP(w, r)
						return
					}
					mu.Lock()
					inFlight++
					maxInFlight = max(maxInFlight, inFlight)
					mu.Unlock()
					defer func() {
						mu.Lock()
						inFlight--
						mu.Unlock()
					}()
					time.Sleep(10 * time.Millisecond)
					h.ServeHTTP(w, r)
				})
			})
			repo := host + "/barde/app"
			var digests []string
			for i := range 12 {
				img := graphImage(t)
				digests = append(digests, graphDigest(t, img))
				graphPush(t, repo+":v"+strconv.Itoa(i), img)
			}
			counting.Store(true)
			got, err := NewReader(nil).Graph(context.Background(), repo, digests, concurrency)
			if err != nil {
				t.Fatalf("Graph: %v", err)
			}
			if len(got) != len(digests) {
				t.Errorf("Graph has %d digests, want %d", len(got), len(digests))
			}
			mu.Lock()
			defer mu.Unlock()
			if maxInFlight > concurrency {
				t.Errorf("%d requests in flight at most, want at most %d", maxInFlight, concurrency)
			}
			if concurrency > 1 && maxInFlight < 2 {
				t.Errorf("%d requests in flight at most, want the reads to run concurrently", maxInFlight)
			}
		})
	}
}
