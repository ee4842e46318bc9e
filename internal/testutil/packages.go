package testutil

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PackageVersion is a version of a container package the Packages fake
// serves.
type PackageVersion struct {
	// ID is GitHub's id of the version; 0 in Add picks the next free one.
	ID int64
	// Digest is the manifest's digest, the version's name.
	Digest string
	// Tags are the version's tags.
	Tags []string
	// Created is the version's creation time; zero in Add is the time of
	// the Add.
	Created time.Time
}

// Packages is a fake of GitHub's REST API for the container packages of one
// account, the owner, as GitHub documents it:
//
//   - GET /users/{owner}: {"login", "id", "type", ...};
//   - GET /users/{owner}/packages/container/{pkg}/versions when the owner
//     is a "User", /orgs/{owner}/... when it is an "Organization": the
//     active versions, newest first (state=deleted lists the deleted ones),
//     per_page at a time (30 by default, 100 at most) with GitHub's Link
//     header (rel next, last, first, prev);
//   - GET and DELETE .../versions/{id} (204 No Content).
//
// {pkg} is the package name path-escaped (a%2Fb for a/b), as GitHub wants
// it. Unknown packages and versions are 404 with GitHub's body; any other
// request fails the test.
//
// Set the exported fields before the requests they should apply to.
type Packages struct {
	*httptest.Server
	// Owner and OwnerType ("User" or "Organization") are the account.
	Owner, OwnerType string
	// Latency delays every answer.
	Latency time.Duration
	// RateLimitEvery, when not 0, answers every Nth request (the Nth, the
	// 2Nth...) with 429 Too Many Requests, Retry-After: 1 and GitHub's
	// secondary rate limit body instead of serving it. ghapi waits with
	// ghapi.Sleep, which tests replace to stay fast.
	RateLimitEvery int
	// Fail, when set and returning a status other than 0 for a request,
	// answers it with that status and a GitHub error body instead (for
	// example 403 on DELETE for a token without packages: write).
	Fail func(r *http.Request) int
	// OnDelete, when set, is called with each version deleted, as GHCR
	// deletes the manifest from the registry with its version.
	OnDelete func(pkg string, v PackageVersion)

	t        testing.TB
	mu       sync.Mutex
	versions map[string][]*fakeVersion
	deleted  map[string][]*fakeVersion
	nextID   int64
	requests int
	lists    int
}

// fakeVersion is a version as the fake keeps it.
type fakeVersion struct {
	PackageVersion
	updated time.Time
}

// NewPackages starts a fake GitHub Packages API for the account owner of
// type ownerType ("User" or "Organization"), closed when the test ends.
func NewPackages(t testing.TB, owner, ownerType string) *Packages {
	t.Helper()
	if ownerType != "User" && ownerType != "Organization" {
		t.Fatalf("NewPackages: owner type %q, want User or Organization", ownerType)
	}
	p := &Packages{
		Owner: owner, OwnerType: ownerType, t: t,
		versions: map[string][]*fakeVersion{},
		deleted:  map[string][]*fakeVersion{},
		nextID:   1000,
	}
	kind := "users"
	if ownerType == "Organization" {
		kind = "orgs"
	}
	base := "/" + kind + "/" + owner + "/packages/container/{pkg}/versions"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/"+owner, p.serveUser)
	mux.HandleFunc("GET "+base, p.serveList)
	mux.HandleFunc("GET "+base+"/{id}", p.serveVersion)
	mux.HandleFunc("DELETE "+base+"/{id}", p.serveDelete)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected GitHub Packages API request %s %s", r.Method, r.URL)
		p.fail(w, http.StatusNotFound, "Not Found")
	})
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		n, every, latency, fail := p.requests, p.RateLimitEvery, p.Latency, p.Fail
		p.mu.Unlock()
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		if every > 0 && n%every == 0 {
			w.Header().Set("Retry-After", "1")
			p.fail(w, http.StatusTooManyRequests, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
			return
		}
		if fail != nil {
			if status := fail(r); status != 0 {
				message := http.StatusText(status)
				switch status {
				case http.StatusForbidden:
					message = "Resource not accessible by integration"
				case http.StatusNotFound:
					message = "Package not found."
				}
				p.fail(w, status, message)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// Add adds version v to package pkg, creating the package, and returns the
// version's id.
func (p *Packages) Add(pkg string, v PackageVersion) int64 {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.ID == 0 {
		p.nextID++
		v.ID = p.nextID
	}
	if _, found := p.find(pkg, v.ID); found != nil {
		p.t.Errorf("Packages.Add: package %q already has version %d", pkg, v.ID)
		return v.ID
	}
	p.nextID = max(p.nextID, v.ID)
	if v.Created.IsZero() {
		v.Created = time.Now().UTC()
	}
	v.Tags = slices.Clone(v.Tags)
	p.versions[pkg] = append(p.versions[pkg], &fakeVersion{PackageVersion: v, updated: v.Created})
	return v.ID
}

// SetTags sets the tags of version id of package pkg, as another workflow
// pushing a tag would.
func (p *Packages) SetTags(pkg string, id int64, tags []string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	_, v := p.find(pkg, id)
	if v == nil {
		p.t.Errorf("Packages.SetTags: package %q has no version %d", pkg, id)
		return
	}
	v.Tags, v.updated = slices.Clone(tags), time.Now().UTC()
}

// SetOnDelete sets OnDelete while the server may be serving.
func (p *Packages) SetOnDelete(f func(pkg string, v PackageVersion)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.OnDelete = f
}

// Versions returns the active versions of package pkg, newest first.
func (p *Packages) Versions(pkg string) []PackageVersion {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PackageVersion
	for _, v := range sorted(p.versions[pkg]) {
		c := v.PackageVersion
		c.Tags = slices.Clone(c.Tags)
		out = append(out, c)
	}
	return out
}

// Deleted returns the ids of the versions of package pkg deleted so far, in
// the order of the deletions.
func (p *Packages) Deleted(pkg string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for _, v := range p.deleted[pkg] {
		out = append(out, v.ID)
	}
	return out
}

// Requests counts the requests received so far, rate limited ones included.
func (p *Packages) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// ListCalls counts the pages of versions served so far (the list requests
// not rate limited).
func (p *Packages) ListCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lists
}

// find returns the index of version id among the active versions of pkg and
// the version, or nil.
func (p *Packages) find(pkg string, id int64) (int, *fakeVersion) {
	for i, v := range p.versions[pkg] {
		if v.ID == id {
			return i, v
		}
	}
	return -1, nil
}

// sorted returns vs newest first, as GitHub lists them.
func sorted(vs []*fakeVersion) []*fakeVersion {
	out := slices.Clone(vs)
	slices.SortStableFunc(out, func(a, b *fakeVersion) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

func (p *Packages) serveUser(w http.ResponseWriter, r *http.Request) {
	id := 1
	if p.OwnerType == "Organization" {
		id = 2
	}
	p.json(w, http.StatusOK, map[string]any{
		"login":      p.Owner,
		"id":         id,
		"node_id":    "MDQ6VXNlcjE=",
		"type":       p.OwnerType,
		"site_admin": false,
		"url":        p.URL + "/users/" + p.Owner,
		"html_url":   "https://github.com/" + p.Owner,
	})
}

func (p *Packages) serveList(w http.ResponseWriter, r *http.Request) {
	pkg := r.PathValue("pkg")
	q := r.URL.Query()
	page, err := strconv.Atoi(cmp.Or(q.Get("page"), "1"))
	if err != nil || page < 1 {
		page = 1
	}
	perPage, err := strconv.Atoi(cmp.Or(q.Get("per_page"), "30"))
	if err != nil || perPage < 1 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	p.mu.Lock()
	all := p.versions[pkg]
	switch state := cmp.Or(q.Get("state"), "active"); state {
	case "active":
	case "deleted":
		all = p.deleted[pkg]
	default:
		p.mu.Unlock()
		p.fail(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	_, known := p.versions[pkg]
	if !known && len(p.deleted[pkg]) == 0 {
		p.mu.Unlock()
		p.fail(w, http.StatusNotFound, "Package not found.")
		return
	}
	p.lists++
	all = sorted(all)
	last := max((len(all)+perPage-1)/perPage, 1)
	var body []any
	for _, v := range all[min((page-1)*perPage, len(all)):min(page*perPage, len(all))] {
		body = append(body, p.versionJSON(pkg, v))
	}
	p.mu.Unlock()
	if body == nil {
		body = []any{}
	}
	// The Link header as GitHub writes it: the request's URL with page
	// and per_page set.
	link := func(n int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
		lq := r.URL.Query()
		lq.Set("page", strconv.Itoa(n))
		lq.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = lq.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	p.json(w, http.StatusOK, body)
}

func (p *Packages) serveVersion(w http.ResponseWriter, r *http.Request) {
	pkg := r.PathValue("pkg")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	p.mu.Lock()
	var v *fakeVersion
	if err == nil {
		_, v = p.find(pkg, id)
	}
	var body any
	if v != nil {
		body = p.versionJSON(pkg, v)
	}
	p.mu.Unlock()
	if body == nil {
		p.fail(w, http.StatusNotFound, "Package not found.")
		return
	}
	p.json(w, http.StatusOK, body)
}

func (p *Packages) serveDelete(w http.ResponseWriter, r *http.Request) {
	pkg := r.PathValue("pkg")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	p.mu.Lock()
	i := -1
	if err == nil {
		i, _ = p.find(pkg, id)
	}
	if i >= 0 {
		p.deleted[pkg] = append(p.deleted[pkg], p.versions[pkg][i])
		p.versions[pkg] = slices.Delete(p.versions[pkg], i, i+1)
	}
	p.mu.Unlock()
	if i < 0 {
		p.fail(w, http.StatusNotFound, "Package not found.")
		return
	}
	p.mu.Lock()
	onDelete := p.OnDelete
	v := p.deleted[pkg][len(p.deleted[pkg])-1].PackageVersion
	p.mu.Unlock()
	if onDelete != nil {
		onDelete(pkg, v)
	}
	w.WriteHeader(http.StatusNoContent)
}

// versionJSON is v as GitHub documents a container package version; p.mu is
// held.
func (p *Packages) versionJSON(pkg string, v *fakeVersion) map[string]any {
	kind := "users"
	if p.OwnerType == "Organization" {
		kind = "orgs"
	}
	escaped := url.PathEscape(pkg)
	tags := slices.Clone(v.Tags)
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id":               v.ID,
		"name":             v.Digest,
		"url":              fmt.Sprintf("%s/%s/%s/packages/container/%s/versions/%d", p.URL, kind, p.Owner, escaped, v.ID),
		"package_html_url": fmt.Sprintf("https://github.com/%s/%s/packages/container/package/%s", kind, p.Owner, escaped),
		"created_at":       v.Created.UTC().Format(time.RFC3339),
		"updated_at":       v.updated.UTC().Format(time.RFC3339),
		"html_url":         fmt.Sprintf("https://github.com/%s/%s/packages/container/%s/%d", kind, p.Owner, escaped, v.ID),
		"metadata": map[string]any{
			"package_type": "container",
			"container":    map[string]any{"tags": tags},
		},
	}
}

// json answers status and body as JSON, with GitHub's rate limit headers.
func (p *Packages) json(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		p.t.Errorf("Packages: encoding the answer: %v", err)
		status, data = http.StatusInternalServerError, []byte(`{"message":"Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	w.WriteHeader(status)
	w.Write(data)
}

// fail answers status with GitHub's error body carrying message.
func (p *Packages) fail(w http.ResponseWriter, status int, message string) {
	doc := "https://docs.github.com/rest/packages/packages"
	if status == http.StatusTooManyRequests {
		doc = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	}
	p.json(w, status, map[string]string{"message": message, "documentation_url": doc, "status": strconv.Itoa(status)})
}
