package testutil_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/testutil"
)

// packagesClient returns a ghapi client of the fake.
func packagesClient(t *testing.T, p *testutil.Packages) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(p.URL, "barde/phialoastro", testutil.Token, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// digest is a digest made of n.
func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// since is the creation time of the test versions.
var since = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// addVersions adds n versions of pkg, the i-th (from 1) with id 100+i,
// digest(i), created i minutes after since, tagged v<i> when i%tagEvery is
// 0, and returns them newest first, as GitHub lists them.
func addVersions(p *testutil.Packages, pkg string, n, tagEvery int) []ghapi.PackageVersion {
	var want []ghapi.PackageVersion
	for i := 1; i <= n; i++ {
		v := testutil.PackageVersion{ID: int64(100 + i), Digest: digest(i), Created: since.Add(time.Duration(i) * time.Minute)}
		if i%tagEvery == 0 {
			v.Tags = []string{fmt.Sprintf("v%d", i)}
		}
		p.Add(pkg, v)
		want = append([]ghapi.PackageVersion{{ID: v.ID, Digest: v.Digest, Tags: v.Tags, Created: v.Created}}, want...)
	}
	return want
}

func TestPackagesServesGhapi(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ownerType, pkg string
		versions, tagEvery   int
		wantLists            int
	}{
		{"user package over three pages", ghapi.OwnerUser, "phialoastro", 250, 7, 3},
		{"organization package with a slash", ghapi.OwnerOrganization, "phialoastro/web", 3, 2, 1},
		{"exactly one page", ghapi.OwnerUser, "phialoastro", 100, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testutil.NewPackages(t, "barde", tc.ownerType)
			want := addVersions(p, tc.pkg, tc.versions, tc.tagEvery)
			c := packagesClient(t, p)
			ctx := context.Background()

			ownerType, err := c.OwnerType(ctx, "barde")
			if err != nil || ownerType != tc.ownerType {
				t.Fatalf("OwnerType = %q, %v; want %q", ownerType, err, tc.ownerType)
			}
			got, err := c.ListVersions(ctx, "barde", ownerType, tc.pkg)
			if err != nil {
				t.Fatalf("ListVersions: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ListVersions (-want +got):\n%s", diff)
			}
			if n := p.ListCalls(); n != tc.wantLists {
				t.Errorf("ListCalls = %d, want %d", n, tc.wantLists)
			}

			// Another workflow tags the oldest version; a delete of the
			// newest.
			oldest, newest := want[len(want)-1], want[0]
			p.SetTags(tc.pkg, oldest.ID, []string{"pr-7"})
			v, err := c.GetVersion(ctx, "barde", ownerType, tc.pkg, oldest.ID)
			if err != nil {
				t.Fatalf("GetVersion: %v", err)
			}
			oldest.Tags = []string{"pr-7"}
			if diff := cmp.Diff(oldest, v); diff != "" {
				t.Errorf("GetVersion after SetTags (-want +got):\n%s", diff)
			}
			if err := c.DeleteVersion(ctx, "barde", ownerType, tc.pkg, newest.ID); err != nil {
				t.Fatalf("DeleteVersion: %v", err)
			}
			if diff := cmp.Diff([]int64{newest.ID}, p.Deleted(tc.pkg)); diff != "" {
				t.Errorf("Deleted (-want +got):\n%s", diff)
			}
			if _, err := c.GetVersion(ctx, "barde", ownerType, tc.pkg, newest.ID); !errors.Is(err, ghapi.ErrNotFound) {
				t.Errorf("GetVersion of the deleted version = %v, want ErrNotFound", err)
			}
			if err := c.DeleteVersion(ctx, "barde", ownerType, tc.pkg, newest.ID); !errors.Is(err, ghapi.ErrNotFound) {
				t.Errorf("DeleteVersion again = %v, want ErrNotFound", err)
			}
			left := p.Versions(tc.pkg)
			if len(left) != tc.versions-1 || left[0].ID != want[1].ID || left[len(left)-1].ID != oldest.ID {
				t.Errorf("Versions = %d versions from %d to %d, want %d from %d to %d",
					len(left), left[0].ID, left[len(left)-1].ID, tc.versions-1, want[1].ID, oldest.ID)
			}
			got, err = c.ListVersions(ctx, "barde", ownerType, tc.pkg)
			if err != nil {
				t.Fatalf("ListVersions after the delete: %v", err)
			}
			wantLeft := append(append([]ghapi.PackageVersion(nil), want[1:len(want)-1]...), oldest)
			if diff := cmp.Diff(wantLeft, got); diff != "" {
				t.Errorf("ListVersions after the delete (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPackagesUnknownPackage(t *testing.T) {
	t.Parallel()
	p := testutil.NewPackages(t, "barde", ghapi.OwnerUser)
	_, err := packagesClient(t, p).ListVersions(context.Background(), "barde", ghapi.OwnerUser, "nothing")
	if !errors.Is(err, ghapi.ErrNotFound) {
		t.Errorf("ListVersions = %v, want ErrNotFound", err)
	}
}

func TestPackagesFail(t *testing.T) {
	t.Parallel()
	p := testutil.NewPackages(t, "barde", ghapi.OwnerOrganization)
	id := p.Add("app", testutil.PackageVersion{Digest: digest(1)})
	p.Fail = func(r *http.Request) int {
		if r.Method == http.MethodDelete {
			return http.StatusForbidden
		}
		return 0
	}
	c := packagesClient(t, p)
	if _, err := c.GetVersion(context.Background(), "barde", ghapi.OwnerOrganization, "app", id); err != nil {
		t.Errorf("GetVersion: %v", err)
	}
	err := c.DeleteVersion(context.Background(), "barde", ghapi.OwnerOrganization, "app", id)
	if !errors.Is(err, ghapi.ErrForbidden) || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Errorf("DeleteVersion = %v, want ErrForbidden", err)
	}
	if d := p.Deleted("app"); len(d) != 0 {
		t.Errorf("Deleted = %v, want none", d)
	}
}

// TestPackagesRateLimitEvery replaces ghapi.Sleep, so it does not run in
// parallel.
func TestPackagesRateLimitEvery(t *testing.T) {
	var mu sync.Mutex
	var waits []time.Duration
	old := ghapi.Sleep
	ghapi.Sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return nil
	}
	t.Cleanup(func() { ghapi.Sleep = old })

	p := testutil.NewPackages(t, "barde", ghapi.OwnerUser)
	p.RateLimitEvery = 2
	want := addVersions(p, "app", 250, 10)
	c := packagesClient(t, p)
	// Requests 1 (page 1), 2 (429), 3 (page 2), 4 (429), 5 (page 3).
	got, err := c.ListVersions(context.Background(), "barde", ghapi.OwnerUser, "app")
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListVersions (-want +got):\n%s", diff)
	}
	if p.Requests() != 5 || p.ListCalls() != 3 {
		t.Errorf("Requests = %d, ListCalls = %d; want 5 and 3", p.Requests(), p.ListCalls())
	}
	if diff := cmp.Diff([]time.Duration{time.Second, time.Second}, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}

	// Every request rate limited: the client gives up.
	p.RateLimitEvery = 1
	if _, err := c.GetVersion(context.Background(), "barde", ghapi.OwnerUser, "app", want[0].ID); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("GetVersion = %v, want the 429", err)
	}
	if n := p.Requests(); n != 5+6 {
		t.Errorf("Requests = %d, want 6 more", n)
	}
}

func TestPackagesLatency(t *testing.T) {
	t.Parallel()
	p := testutil.NewPackages(t, "barde", ghapi.OwnerUser)
	p.Latency = 100 * time.Millisecond
	start := time.Now()
	if _, err := packagesClient(t, p).OwnerType(context.Background(), "barde"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < p.Latency {
		t.Errorf("the answer took %v, want at least %v", d, p.Latency)
	}
}

// get reads path from the fake as JSON into v and returns the response.
func get(t *testing.T, p *testutil.Packages, path string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(p.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return resp
}

func TestPackagesJSON(t *testing.T) {
	t.Parallel()
	p := testutil.NewPackages(t, "phialo", ghapi.OwnerOrganization)
	created := time.Date(2024, 6, 28, 10, 0, 0, 0, time.UTC)
	p.Add("a/b", testutil.PackageVersion{ID: 45763, Digest: digest(1), Tags: []string{"latest"}, Created: created})
	p.Add("a/b", testutil.PackageVersion{ID: 45764, Digest: digest(2), Created: created.Add(time.Hour)})

	var user map[string]any
	get(t, p, "/users/phialo", &user)
	if user["login"] != "phialo" || user["type"] != "Organization" {
		t.Errorf("GET /users/phialo = %v, want login and type", user)
	}

	var version map[string]any
	get(t, p, "/orgs/phialo/packages/container/a%2Fb/versions/45763", &version)
	want := map[string]any{
		"id":               45763.0,
		"name":             digest(1),
		"url":              p.URL + "/orgs/phialo/packages/container/a%2Fb/versions/45763",
		"package_html_url": "https://github.com/orgs/phialo/packages/container/package/a%2Fb",
		"created_at":       "2024-06-28T10:00:00Z",
		"updated_at":       "2024-06-28T10:00:00Z",
		"html_url":         "https://github.com/orgs/phialo/packages/container/a%2Fb/45763",
		"metadata":         map[string]any{"package_type": "container", "container": map[string]any{"tags": []any{"latest"}}},
	}
	if diff := cmp.Diff(want, version); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}

	// One a page: the Link header as GitHub writes it.
	var page []map[string]any
	resp := get(t, p, "/orgs/phialo/packages/container/a%2Fb/versions?per_page=1&state=active", &page)
	base := p.URL + "/orgs/phialo/packages/container/a%2Fb/versions"
	wantLink := `<` + base + `?page=2&per_page=1&state=active>; rel="next", <` + base + `?page=2&per_page=1&state=active>; rel="last"`
	if got := resp.Header.Get("Link"); got != wantLink {
		t.Errorf("Link = %s, want %s", got, wantLink)
	}
	if len(page) != 1 || page[0]["id"] != 45764.0 {
		t.Errorf("page 1 = %v, want the newest version", page)
	}
	resp = get(t, p, "/orgs/phialo/packages/container/a%2Fb/versions?page=2&per_page=1", &page)
	wantLink = `<` + base + `?page=1&per_page=1>; rel="prev", <` + base + `?page=1&per_page=1>; rel="first"`
	if got := resp.Header.Get("Link"); got != wantLink {
		t.Errorf("Link = %s, want %s", got, wantLink)
	}
	// An untagged version has "tags": [], not null.
	tags := page[0]["metadata"].(map[string]any)["container"].(map[string]any)["tags"]
	if len(page) != 1 || page[0]["id"] != 45763.0 || tags == nil {
		t.Errorf("page 2 = %v, want the oldest version", page)
	}
	resp = get(t, p, "/orgs/phialo/packages/container/a%2Fb/versions?page=3&per_page=1", &page)
	if len(page) != 0 || resp.Header.Get("Link") == "" {
		t.Errorf("page 3 = %v with Link %q, want none and a Link", page, resp.Header.Get("Link"))
	}
}

// recorder is a testing.TB that records the errors instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestPackagesFailsTheTestOnUnexpectedRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ownerType, path string
	}{
		{"organization path for a user", ghapi.OwnerUser, "/orgs/barde/packages/container/app/versions"},
		{"user path for an organization", ghapi.OwnerOrganization, "/users/barde/packages/container/app/versions"},
		{"package name not escaped", ghapi.OwnerUser, "/users/barde/packages/container/a/b/versions"},
		{"another owner", ghapi.OwnerUser, "/users/someone/packages/container/app/versions"},
		{"another package type", ghapi.OwnerUser, "/users/barde/packages/npm/app/versions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			p := testutil.NewPackages(rec, "barde", tc.ownerType)
			p.Add("app", testutil.PackageVersion{Digest: digest(1)})
			p.Add("a/b", testutil.PackageVersion{Digest: digest(1)})
			resp, err := http.Get(p.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", resp.StatusCode)
			}
			if errs := rec.errors(); len(errs) != 1 || !strings.Contains(errs[0], "unexpected") {
				t.Errorf("test errors %q, want one for the unexpected request", errs)
			}
		})
	}
}
