package action

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/barde/phialo-image-action/internal/cleanup"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/testutil"
)

// fixture is a package whose versions are manifests of an in-process
// registry: n two-platform indexes tagged sha-<i>, oldest first.
type fixture struct {
	repo   string
	pk     *testutil.Packages
	api    *ghapi.Client
	roots  []string
	reader *registry.Reader
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	f := &fixture{repo: strings.TrimPrefix(srv.URL, "http://") + "/barde/app", reader: registry.NewReader(nil)}
	f.pk = testutil.NewPackages(t, "barde", "User")
	api, err := ghapi.New(f.pk.URL, "barde/app", testutil.Token, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	start := time.Now().Add(-time.Duration(n) * time.Hour)
	for i := 0; i < n; i++ {
		var idx v1.ImageIndex = empty.Index
		var children []string
		for _, arch := range []string{"amd64", "arm64"} {
			img, err := random.Image(16, 1)
			if err != nil {
				t.Fatal(err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
			d, _ := img.Digest()
			children = append(children, d.String())
		}
		tag, err := name.NewTag(f.repo + ":sha-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(tag, idx); err != nil {
			t.Fatal(err)
		}
		d, _ := idx.Digest()
		at := start.Add(time.Duration(i) * time.Hour)
		for _, c := range children {
			f.pk.Add("app", testutil.PackageVersion{Digest: c, Created: at})
		}
		f.pk.Add("app", testutil.PackageVersion{Digest: d.String(), Tags: []string{tag.TagStr()}, Created: at})
		f.roots = append(f.roots, d.String())
	}
	return f
}

func (f *fixture) plan(t testing.TB, p cleanup.Policy) (cleanup.Plan, cleanup.Graph) {
	t.Helper()
	ctx := context.Background()
	versions, err := f.api.ListVersions(ctx, "barde", "User", "app")
	if err != nil {
		t.Fatal(err)
	}
	var vs []cleanup.Version
	var digests []string
	for _, v := range versions {
		vs = append(vs, cleanup.Version{ID: v.ID, Digest: v.Digest, Tags: v.Tags, Created: v.Created})
		digests = append(digests, v.Digest)
	}
	var g cleanup.Graph
	g.Refs, err = f.reader.Graph(ctx, f.repo, digests, cleanupConcurrency)
	if err != nil {
		t.Fatal(err)
	}
	return cleanup.Decide(vs, g, p, time.Now()), g
}

func TestDeleteSkipsAVersionTaggedSinceThePlan(t *testing.T) {
	f := newFixture(t, 4)
	plan, g := f.plan(t, cleanup.Policy{Keep: 1, Tags: []string{"sha-*"}})
	dels := plan.Deletions()
	if len(dels) != 9 {
		t.Fatalf("%d deletions planned, want 3 indexes with 2 children each", len(dels))
	}
	// Another workflow tags the oldest index after the plan was made.
	var oldest cleanup.Version
	for _, v := range dels {
		if v.Digest == f.roots[0] {
			oldest = v
		}
	}
	f.pk.SetTags("app", oldest.ID, append(oldest.Tags, "release-1"))
	deleted, skipped := deleteVersions(context.Background(), f.api, cleanupTarget{owner: "barde", pkg: "app", image: f.repo, reader: f.reader}, "User", plan, g)
	if len(deleted) != 6 {
		t.Errorf("%d deleted, want the other two indexes and their children", len(deleted))
	}
	if slices.Contains(deleted, f.roots[0]) {
		t.Error("the index tagged since the plan was deleted")
	}
	// The index is skipped, and its children are kept with it.
	if len(skipped) != 3 || skipped[0].Digest != f.roots[0] || !strings.Contains(skipped[0].Reason, "gained tags") {
		t.Errorf("skipped = %+v", skipped)
	}
}

func TestDeleteOrderAndRateLimits(t *testing.T) {
	old := ghapi.Sleep
	var waited atomic.Int64
	ghapi.Sleep = func(_ context.Context, d time.Duration) error { waited.Add(int64(d)); return nil }
	t.Cleanup(func() { ghapi.Sleep = old })

	f := newFixture(t, 3)
	plan, g := f.plan(t, cleanup.Policy{Keep: 0, Tags: []string{"sha-*"}})
	f.pk.RateLimitEvery = 4
	var mu sync.Mutex // deletions run concurrently
	var order []string
	f.pk.SetOnDelete(func(_ string, v testutil.PackageVersion) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, v.Digest)
	})
	deleted, skipped := deleteVersions(context.Background(), f.api, cleanupTarget{owner: "barde", pkg: "app", image: f.repo, reader: f.reader}, "User", plan, g)
	if len(deleted) != 9 || len(skipped) != 0 {
		t.Fatalf("deleted %d, skipped %+v; want all 9 despite the rate limit", len(deleted), skipped)
	}
	if waited.Load() == 0 {
		t.Error("the rate limit was never waited out")
	}
	// Every index goes before its children.
	pos := map[string]int{}
	for i, d := range order {
		pos[d] = i
	}
	for parent, children := range g.Refs {
		for _, c := range children {
			if pos[parent] > pos[c] {
				t.Errorf("child %s deleted before its index %s", c, parent)
			}
		}
	}
}

// BenchmarkPlanCleanup plans the cleanup of 10,000 versions across 1,000
// indexes (each with 2 platform manifests, plus 7,000 untagged orphans
// left by earlier builds... here: 3,000 versions of indexes and children,
// and 7,000 orphans), with 20 ms of latency on every API request. It
// reports the list calls and the peak of concurrent registry reads.
func BenchmarkPlanCleanup(b *testing.B) {
	f := newFixture(b, 1000)
	for i := 0; i < 7000; i++ {
		img, err := random.Image(8, 1)
		if err != nil {
			b.Fatal(err)
		}
		d, _ := img.Digest()
		ref, _ := name.ParseReference(f.repo + "@" + d.String())
		if err := remote.Write(ref, img); err != nil {
			b.Fatal(err)
		}
		f.pk.Add("app", testutil.PackageVersion{Digest: d.String(), Created: time.Now().Add(-48 * time.Hour)})
	}
	f.pk.Latency = 20 * time.Millisecond
	b.ResetTimer()
	for b.Loop() {
		before := f.pk.ListCalls()
		start := time.Now()
		plan, _ := f.plan(b, cleanup.Policy{Keep: 5, Untagged: true})
		b.ReportMetric(float64(f.pk.ListCalls()-before), "list-calls")
		b.ReportMetric(float64(len(plan.Decisions)), "versions")
		b.ReportMetric(float64(len(plan.Deletions())), "deletions")
		b.ReportMetric(time.Since(start).Seconds(), "s/plan")
	}
}
