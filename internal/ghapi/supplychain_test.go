package ghapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	token = "ghs_supplyChainTest0123456789TOKEN"
	sha   = "8f3e5a1c9b2d4e6f7a8b9c0d1e2f3a4b5c6d7e8f"
	// api is the path of the REST API on GitHub Enterprise Server, the
	// layout the fake serves (uploads under /api/uploads).
	api  = "/api/v3/repos/barde/phialoastro"
	upls = "/api/uploads/repos/barde/phialoastro"
)

// request is one request the fake GitHub received.
type request struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// line is the request as "METHOD /path?query".
func (r request) line() string {
	if r.query == "" {
		return r.method + " " + r.path
	}
	return r.method + " " + r.path + "?" + r.query
}

// fakeGitHub is a GitHub REST API that serves the handlers it is given,
// records every request and fails the test on any request it has no handler
// for.
type fakeGitHub struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

// newFake starts a fake GitHub whose routes are http.ServeMux patterns
// ("POST /api/v3/repos/...").
func newFake(t *testing.T, routes map[string]http.HandlerFunc) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected GitHub API request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// requests returns the requests received so far.
func (f *fakeGitHub) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// lines returns the requests received so far as "METHOD /path?query".
func (f *fakeGitHub) lines() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.line())
	}
	return out
}

// client returns a client of the fake at its GitHub Enterprise Server
// address, whose upload URL the client derives.
func (f *fakeGitHub) client(t *testing.T) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(f.URL+"/api/v3", "barde/phialoastro", token, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer replies with status and body as GitHub does: JSON, with the rate
// limit headers GitHub sends on every response.
func answer(status int, body string) http.HandlerFunc {
	return answerHeader(status, nil, body)
}

// answerHeader is answer with the headers in header set last.
func answerHeader(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		w.Header().Set("X-RateLimit-Reset", "1893456000")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// checkHeaders compares the headers GitHub documents for a request: the token
// as a Bearer credential, the REST media type and API version, and the body's
// Content-Type (empty for none).
func checkHeaders(t *testing.T, r request, contentType string) {
	t.Helper()
	want := map[string]string{
		"Authorization":        "Bearer " + token,
		"Accept":               "application/vnd.github.v3+json",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "phialo-image-action",
		"Content-Type":         contentType,
	}
	got := map[string]string{}
	for k := range want {
		got[k] = r.header.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s headers (-want +got):\n%s", r.line(), diff)
	}
}

// readSARIF reads testdata/trivy.sarif.
func readSARIF(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "trivy.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Error bodies as GitHub sends them.
const (
	bodyAdvancedSecurity = `{"message":"Advanced Security must be enabled for this repository to use code scanning.","documentation_url":"https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data","status":"403"}`
	bodyNotAccessible    = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data","status":"403"}`
	bodyNotFound         = `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data","status":"404"}`
	bodyUnavailable      = `{"code":"503","message":"Service unavailable","documentation_url":"https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data"}`
	bodyRateLimited      = `{"message":"API rate limit exceeded for installation ID 1234567.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}`
	sarifAccepted        = `{"id":"47177e22-5596-11eb-80a1-c1e54ef945c6","url":"https://api.github.com/repos/barde/phialoastro/code-scanning/sarifs/47177e22-5596-11eb-80a1-c1e54ef945c6"}`
)

// wantErr describes an expected error.
type wantErr struct {
	forbidden bool     // errors.Is(err, ghapi.ErrForbidden)
	status    int      // the status of the wrapped *github.ErrorResponse, or 0
	contains  []string // substrings of the message
}

// checkErr compares err with want; a nil want expects no error.
func checkErr(t *testing.T, err error, want *wantErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("no error, want one")
	}
	if got := errors.Is(err, ghapi.ErrForbidden); got != want.forbidden {
		t.Errorf("errors.Is(err, ErrForbidden) = %v, want %v; err: %v", got, want.forbidden, err)
	}
	status := 0
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		status = er.Response.StatusCode
	}
	if status != want.status {
		t.Errorf("wrapped GitHub status = %d, want %d; err: %v", status, want.status, err)
	}
	for _, s := range want.contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error %q contains the token", err)
	}
}

var hex40 = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// checkSARIFBody checks a code scanning upload body as GitHub documents it:
// exactly commit_sha (40 hex), ref (refs/...) and sarif (base64 of the gzipped
// SARIF 2.1.0 document, equal to sent).
func checkSARIFBody(t *testing.T, body []byte, wantRef string, sent []byte) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("decoding the request body %q: %v", body, err)
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{"commit_sha", "ref", "sarif"}, keys, cmpSorted); diff != "" {
		t.Errorf("body fields (-want +got):\n%s", diff)
	}
	var got struct {
		CommitSHA string `json:"commit_sha"`
		Ref       string `json:"ref"`
		Sarif     string `json:"sarif"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if !hex40.MatchString(got.CommitSHA) || got.CommitSHA != sha {
		t.Errorf("commit_sha = %q, want %q (40 hex digits)", got.CommitSHA, sha)
	}
	if !strings.HasPrefix(got.Ref, "refs/") || got.Ref != wantRef {
		t.Errorf("ref = %q, want %q", got.Ref, wantRef)
	}
	gz, err := base64.StdEncoding.DecodeString(got.Sarif)
	if err != nil {
		t.Fatalf("sarif is not base64: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("sarif is not gzip: %v", err)
	}
	doc, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzipping sarif: %v", err)
	}
	var sarif struct {
		Version string            `json:"version"`
		Runs    []json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(doc, &sarif); err != nil {
		t.Fatalf("the uploaded SARIF is not JSON: %v", err)
	}
	if sarif.Version != "2.1.0" || len(sarif.Runs) == 0 {
		t.Errorf("uploaded SARIF has version %q and %d runs, want 2.1.0 with runs", sarif.Version, len(sarif.Runs))
	}
	if diff := cmp.Diff(string(sent), string(doc)); diff != "" {
		t.Errorf("uploaded SARIF differs from the one sent (-want +got):\n%s", diff)
	}
}

// cmpSorted compares string slices regardless of order.
var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestUploadSARIF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		wantID  string
		wantErr *wantErr
	}{
		{
			name:   "202 accepted as GitHub answers",
			status: http.StatusAccepted,
			body:   sarifAccepted,
			wantID: "47177e22-5596-11eb-80a1-c1e54ef945c6",
		},
		{
			name:   "201 created",
			status: http.StatusCreated,
			body:   sarifAccepted,
			wantID: "47177e22-5596-11eb-80a1-c1e54ef945c6",
		},
		{
			name:    "202 without an id",
			status:  http.StatusAccepted,
			body:    `{}`,
			wantErr: &wantErr{contains: []string{`uploading SARIF for "refs/heads/main"`, "no id"}},
		},
		{
			name:   "403 code scanning not enabled",
			status: http.StatusForbidden,
			body:   bodyAdvancedSecurity,
			wantErr: &wantErr{forbidden: true, status: 403, contains: []string{
				`uploading SARIF for "refs/heads/main"`, "security-events: write",
				"code scanning must be enabled for the repository",
				"Advanced Security must be enabled for this repository",
			}},
		},
		{
			name:   "403 token without security-events write",
			status: http.StatusForbidden,
			body:   bodyNotAccessible,
			wantErr: &wantErr{forbidden: true, status: 403, contains: []string{
				"security-events: write", "code scanning must be enabled for the repository",
				"Resource not accessible by integration",
			}},
		},
		{
			name:    "403 rate limit is not a permission problem",
			status:  http.StatusForbidden,
			header:  map[string]string{"X-RateLimit-Remaining": "0"},
			body:    bodyRateLimited,
			wantErr: &wantErr{contains: []string{"API rate limit exceeded"}},
		},
		{
			name:    "404 repository not found",
			status:  http.StatusNotFound,
			body:    bodyNotFound,
			wantErr: &wantErr{status: 404, contains: []string{`uploading SARIF for "refs/heads/main"`, "404 Not Found"}},
		},
		{
			name:    "503 service unavailable",
			status:  http.StatusServiceUnavailable,
			body:    bodyUnavailable,
			wantErr: &wantErr{status: 503, contains: []string{"503 Service unavailable"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, map[string]http.HandlerFunc{
				"POST " + api + "/code-scanning/sarifs": answerHeader(tt.status, tt.header, tt.body),
			})
			sarif := readSARIF(t)
			id, err := f.client(t).UploadSARIF(context.Background(), sha, "refs/heads/main", sarif)
			checkErr(t, err, tt.wantErr)
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %q, want one upload", f.lines())
			}
			checkHeaders(t, reqs[0], "application/json")
			checkSARIFBody(t, reqs[0].body, "refs/heads/main", sarif)
		})
	}
}

func TestUploadSARIFPullRequestRef(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[string]http.HandlerFunc{
		"POST " + api + "/code-scanning/sarifs": answer(http.StatusAccepted, sarifAccepted),
	})
	sarif := readSARIF(t)
	ref := ghapi.SARIFRef("pull_request", "refs/pull/123/merge", 123)
	if _, err := f.client(t).UploadSARIF(context.Background(), sha, ref, sarif); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %q, want one upload", f.lines())
	}
	checkSARIFBody(t, reqs[0].body, "refs/pull/123/head", sarif)
}

func TestUploadSARIFRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sha, ref, sarif string
		want                  string
	}{
		{"short commit SHA", "8f3e5a1", "refs/heads/main", `{"version":"2.1.0","runs":[]}`, `commit "8f3e5a1": want a 40 hex digit SHA`},
		{"commit SHA not hex", strings.Repeat("g", 40), "refs/heads/main", `{"version":"2.1.0","runs":[]}`, "want a 40 hex digit SHA"},
		{"branch name instead of a full ref", sha, "main", `{"version":"2.1.0","runs":[]}`, `ref "main": want a full ref`},
		{"SARIF not JSON", sha, "refs/heads/main", `version: 2.1.0`, "not a JSON document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, nil)
			_, err := f.client(t).UploadSARIF(context.Background(), tt.sha, tt.ref, []byte(tt.sarif))
			checkErr(t, err, &wantErr{contains: []string{fmt.Sprintf("uploading SARIF for %q", tt.ref), tt.want}})
			if got := f.lines(); len(got) != 0 {
				t.Errorf("requests = %q, want none", got)
			}
		})
	}
}

func TestSARIFRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, ref string
		pr               int
		want             string
	}{
		{"pull request uploads for the head ref", "pull_request", "refs/pull/123/merge", 123, "refs/pull/123/head"},
		{"pull_request_target uploads for the head ref", "pull_request_target", "refs/pull/7/merge", 7, "refs/pull/7/head"},
		{"pull request without a number keeps the ref", "pull_request", "refs/pull/123/merge", 0, "refs/pull/123/merge"},
		{"push to a branch", "push", "refs/heads/main", 0, "refs/heads/main"},
		{"push of a tag", "push", "refs/tags/v1.2.3", 0, "refs/tags/v1.2.3"},
		{"release", "release", "refs/tags/v2.0.0", 0, "refs/tags/v2.0.0"},
		{"schedule ignores a stray number", "schedule", "refs/heads/main", 5, "refs/heads/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, ghapi.SARIFRef(tt.event, tt.ref, tt.pr)); diff != "" {
				t.Errorf("SARIFRef(%q, %q, %d) (-want +got):\n%s", tt.event, tt.ref, tt.pr, diff)
			}
		})
	}
}

// scanned is the scan time of the test snapshots, in a zone other than UTC.
var scanned = time.Date(2024, 6, 21, 11, 30, 0, 0, time.FixedZone("CEST", 2*60*60))

// testSnapshot is the snapshot of an Alpine-based image the golden file holds.
func testSnapshot() *github.DependencyGraphSnapshot {
	return ghapi.NewSnapshot("9876543210", "docker-publish-build", sha, "refs/heads/main", map[string][]ghapi.Package{
		"Dockerfile": {
			{PURL: "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.1", Relationship: "indirect", Scope: "runtime"},
			{PURL: "pkg:apk/alpine/libssl3@3.3.1-r0?arch=x86_64&distro=3.20.1", Relationship: "indirect", Scope: "runtime"},
			{PURL: "pkg:npm/astro@4.11.0", Relationship: "direct", Scope: "runtime"},
		},
		"docker/nginx/Dockerfile": {
			{PURL: "pkg:apk/alpine/nginx@1.26.1-r0?arch=x86_64&distro=3.20.1", Relationship: "direct"},
		},
	}, "1.4.0", scanned)
}

func TestSubmitDependencySnapshotGolden(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[string]http.HandlerFunc{
		"POST " + api + "/dependency-graph/snapshots": answer(http.StatusCreated,
			`{"id":21,"created_at":"2024-06-21T09:30:01.123Z","result":"SUCCESS","message":"Dependency results for the repo have been successfully updated."}`),
	})
	id, err := f.client(t).SubmitDependencySnapshot(context.Background(), testSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if id != 21 {
		t.Errorf("id = %d, want 21", id)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %q, want one snapshot", f.lines())
	}
	checkHeaders(t, reqs[0], "application/json")

	// The fields GitHub documents, and no others.
	var doc struct {
		Version *int `json:"version"`
		Job     struct {
			Correlator, ID string
		} `json:"job"`
		Sha, Ref string
		Detector struct {
			Name, Version, URL string
		} `json:"detector"`
		Scanned   string `json:"scanned"`
		Manifests map[string]struct {
			Name string `json:"name"`
			File struct {
				SourceLocation string `json:"source_location"`
			} `json:"file"`
			Resolved map[string]struct {
				PackageURL   string `json:"package_url"`
				Relationship string `json:"relationship"`
				Scope        string `json:"scope"`
			} `json:"resolved"`
		} `json:"manifests"`
	}
	dec := json.NewDecoder(bytes.NewReader(reqs[0].body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding the snapshot as GitHub documents it: %v", err)
	}
	if doc.Version == nil || *doc.Version != 0 {
		t.Errorf("version = %v, want 0", doc.Version)
	}
	if _, err := time.Parse(time.RFC3339, doc.Scanned); err != nil {
		t.Errorf("scanned %q is not an RFC 3339 date-time: %v", doc.Scanned, err)
	}
	if !hex40.MatchString(doc.Sha) || !strings.HasPrefix(doc.Ref, "refs/") {
		t.Errorf("sha %q, ref %q: want 40 hex digits and refs/...", doc.Sha, doc.Ref)
	}
	for key, m := range doc.Manifests {
		if m.Name != key || m.File.SourceLocation != key {
			t.Errorf("manifest %q has name %q and source_location %q, want both %q", key, m.Name, m.File.SourceLocation, key)
		}
		for purl, d := range m.Resolved {
			if d.PackageURL != purl {
				t.Errorf("manifest %q: resolved %q has package_url %q", key, purl, d.PackageURL)
			}
		}
	}

	var indented bytes.Buffer
	if err := json.Indent(&indented, reqs[0].body, "", "  "); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", "dependency-snapshot.golden.json"), indented.String(), *update)
}

func TestSubmitDependencySnapshot(t *testing.T) {
	t.Parallel()
	const docURL = "https://docs.github.com/rest/dependency-graph/dependency-submission#create-a-snapshot-of-dependencies-for-a-repository"
	tests := []struct {
		name    string
		status  int
		body    string
		wantID  int64
		wantErr *wantErr
	}{
		{
			name:   "201 success",
			status: http.StatusCreated,
			body:   `{"id":21,"created_at":"2024-06-21T09:30:01.123Z","result":"SUCCESS","message":"Dependency results for the repo have been successfully updated."}`,
			wantID: 21,
		},
		{
			name:   "201 accepted but not yet applied",
			status: http.StatusCreated,
			body:   `{"id":22,"created_at":"2024-06-21T09:30:01.123Z","result":"ACCEPTED","message":"Snapshot accepted. Dependency results will be updated when the push is processed."}`,
			wantID: 22,
		},
		{
			name:   "202 accepted",
			status: http.StatusAccepted,
			body:   `{"id":23,"created_at":"2024-06-21T09:30:01.123Z","result":"ACCEPTED","message":"Snapshot accepted."}`,
			wantID: 23,
		},
		{
			name:    "201 invalid snapshot",
			status:  http.StatusCreated,
			body:    `{"id":24,"created_at":"2024-06-21T09:30:01.123Z","result":"INVALID","message":"Snapshot is invalid: manifests must not be empty"}`,
			wantErr: &wantErr{contains: []string{`submitting dependency snapshot for "refs/heads/main"`, "invalid", "manifests must not be empty"}},
		},
		{
			name:   "403 token without contents write",
			status: http.StatusForbidden,
			body:   `{"message":"Resource not accessible by integration","documentation_url":"` + docURL + `","status":"403"}`,
			wantErr: &wantErr{forbidden: true, status: 403, contains: []string{
				`submitting dependency snapshot for "refs/heads/main"`, "contents: write", "Resource not accessible by integration",
			}},
		},
		{
			name:    "404 repository not found",
			status:  http.StatusNotFound,
			body:    `{"message":"Not Found","documentation_url":"` + docURL + `","status":"404"}`,
			wantErr: &wantErr{status: 404, contains: []string{"404 Not Found"}},
		},
		{
			name:    "500 server error",
			status:  http.StatusInternalServerError,
			body:    `{"message":"Server Error"}`,
			wantErr: &wantErr{status: 500, contains: []string{"500 Server Error"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, map[string]http.HandlerFunc{
				"POST " + api + "/dependency-graph/snapshots": answer(tt.status, tt.body),
			})
			id, err := f.client(t).SubmitDependencySnapshot(context.Background(), testSnapshot())
			checkErr(t, err, tt.wantErr)
			if id != tt.wantID {
				t.Errorf("id = %d, want %d", id, tt.wantID)
			}
			if diff := cmp.Diff([]string{"POST " + api + "/dependency-graph/snapshots"}, f.lines()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubmitDependencySnapshotRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		snap *github.DependencyGraphSnapshot
		want string
	}{
		{"no snapshot", nil, "no snapshot"},
		{"abbreviated SHA", ghapi.NewSnapshot("1", "c", "8f3e5a1", "refs/heads/main", nil, "1.0.0", scanned), "want a 40 hex digit SHA"},
		{"branch name instead of a full ref", ghapi.NewSnapshot("1", "c", sha, "main", nil, "1.0.0", scanned), `ref "main": want a full ref`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, nil)
			_, err := f.client(t).SubmitDependencySnapshot(context.Background(), tt.snap)
			checkErr(t, err, &wantErr{contains: []string{"submitting dependency snapshot", tt.want}})
			if got := f.lines(); len(got) != 0 {
				t.Errorf("requests = %q, want none", got)
			}
		})
	}
}

func TestNewSnapshot(t *testing.T) {
	t.Parallel()
	s := github.String
	base := func(manifests map[string]*github.DependencyGraphSnapshotManifest) *github.DependencyGraphSnapshot {
		return &github.DependencyGraphSnapshot{
			Version:   0,
			Sha:       s(sha),
			Ref:       s("refs/tags/v1.2.3"),
			Job:       &github.DependencyGraphSnapshotJob{Correlator: s("release-image"), ID: s("42")},
			Detector:  &github.DependencyGraphSnapshotDetector{Name: s("phialo-image-action"), Version: s("1.4.0"), URL: s("https://github.com/barde/phialo-image-action")},
			Scanned:   &github.Timestamp{Time: time.Date(2024, 6, 21, 9, 30, 0, 0, time.UTC)},
			Manifests: manifests,
		}
	}
	dockerfile := func(resolved map[string]*github.DependencyGraphSnapshotResolvedDependency) map[string]*github.DependencyGraphSnapshotManifest {
		return map[string]*github.DependencyGraphSnapshotManifest{"Dockerfile": {
			Name:     s("Dockerfile"),
			File:     &github.DependencyGraphSnapshotManifestFile{SourceLocation: s("Dockerfile")},
			Resolved: resolved,
		}}
	}
	const musl = "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"
	tests := []struct {
		name      string
		manifests map[string][]ghapi.Package
		want      *github.DependencyGraphSnapshot
	}{
		{
			name:      "no manifests",
			manifests: nil,
			want:      base(map[string]*github.DependencyGraphSnapshotManifest{}),
		},
		{
			name:      "relationship and scope left out when empty",
			manifests: map[string][]ghapi.Package{"Dockerfile": {{PURL: musl}}},
			want: base(dockerfile(map[string]*github.DependencyGraphSnapshotResolvedDependency{
				musl: {PackageURL: s(musl)},
			})),
		},
		{
			name: "PURL listed twice is direct and runtime if either is",
			manifests: map[string][]ghapi.Package{"Dockerfile": {
				{PURL: musl, Relationship: "indirect", Scope: "runtime"},
				{PURL: musl, Relationship: "direct", Scope: "development"},
				{PURL: musl, Relationship: "indirect"},
			}},
			want: base(dockerfile(map[string]*github.DependencyGraphSnapshotResolvedDependency{
				musl: {PackageURL: s(musl), Relationship: s("direct"), Scope: s("runtime")},
			})),
		},
		{
			name: "package without a PURL skipped",
			manifests: map[string][]ghapi.Package{"Dockerfile": {
				{Relationship: "direct", Scope: "runtime"},
				{PURL: musl, Relationship: "indirect", Scope: "runtime"},
			}},
			want: base(dockerfile(map[string]*github.DependencyGraphSnapshotResolvedDependency{
				musl: {PackageURL: s(musl), Relationship: s("indirect"), Scope: s("runtime")},
			})),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ghapi.NewSnapshot("42", "release-image", sha, "refs/tags/v1.2.3", tt.manifests, "1.4.0",
				time.Date(2024, 6, 21, 11, 30, 0, 0, time.FixedZone("CEST", 2*60*60)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NewSnapshot (-want +got):\n%s", diff)
			}
			if loc := got.GetScanned().Location(); loc != time.UTC {
				t.Errorf("scanned is in %v, want UTC", loc)
			}
		})
	}
}

// assetJSON is GitHub's 201 body for an uploaded release asset.
func assetJSON(id int64, name, contentType string, size int) string {
	return fmt.Sprintf(`{"url":"https://api.github.com/repos/barde/phialoastro/releases/assets/%[1]d","browser_download_url":"https://github.com/barde/phialoastro/releases/download/v1.2.3/%[2]s","id":%[1]d,"node_id":"RA_kwDOAbCdEc4A","name":%[2]q,"label":"","state":"uploaded","content_type":%[3]q,"size":%[4]d,"download_count":0,"created_at":"2024-06-21T09:30:00Z","updated_at":"2024-06-21T09:30:01Z"}`,
		id, name, contentType, size)
}

const (
	bodyAlreadyExists   = `{"message":"Validation Failed","request_id":"C0DE:1234:5678:9ABC:66754A1B","documentation_url":"https://docs.github.com/rest/releases/assets#upload-a-release-asset","errors":[{"resource":"ReleaseAsset","code":"already_exists","field":"name"}]}`
	bodyAssetsForbidden = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/releases/assets#upload-a-release-asset","status":"403"}`
)

func TestUploadReleaseAsset(t *testing.T) {
	t.Parallel()
	const release = "/releases/42/assets"
	tests := []struct {
		name        string
		file        string
		contentType string
		// uploads answers the uploads in turn.
		uploads []http.HandlerFunc
		// pages answers GET .../releases/42/assets?page=N (1 when absent).
		pages map[string]http.HandlerFunc
		// deleteStatus answers DELETE .../releases/assets/{id}.
		deleteStatus int
		wantLines    []string
		wantErr      *wantErr
	}{
		{
			name:        "new SBOM asset",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads:     []http.HandlerFunc{answer(http.StatusCreated, assetJSON(7, "sbom.spdx.json", "application/json", 0))},
			wantLines:   []string{"POST " + upls + release + "?name=sbom.spdx.json"},
		},
		{
			name:        "new SARIF asset",
			file:        "trivy.sarif",
			contentType: "application/sarif+json",
			uploads:     []http.HandlerFunc{answer(http.StatusCreated, assetJSON(8, "trivy.sarif", "application/sarif+json", 0))},
			wantLines:   []string{"POST " + upls + release + "?name=trivy.sarif"},
		},
		{
			name:        "asset of unknown type",
			file:        "image.digest",
			contentType: "application/octet-stream",
			uploads:     []http.HandlerFunc{answer(http.StatusCreated, assetJSON(9, "image.digest", "application/octet-stream", 0))},
			wantLines:   []string{"POST " + upls + release + "?name=image.digest"},
		},
		{
			name:        "existing asset replaced",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads: []http.HandlerFunc{
				answer(http.StatusUnprocessableEntity, bodyAlreadyExists),
				answer(http.StatusCreated, assetJSON(11, "sbom.spdx.json", "application/json", 0)),
			},
			pages: map[string]http.HandlerFunc{
				"1": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Link", `<https://api.github.com/repositories/1/releases/42/assets?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/releases/42/assets?per_page=100&page=2>; rel="last"`)
					answer(http.StatusOK, "["+assetJSON(5, "trivy.sarif", "application/sarif+json", 10)+"]")(w, r)
				},
				"2": answer(http.StatusOK, "["+assetJSON(6, "sbom.spdx.json", "application/json", 10)+"]"),
			},
			deleteStatus: http.StatusNoContent,
			wantLines: []string{
				"POST " + upls + release + "?name=sbom.spdx.json",
				"GET " + api + release + "?per_page=100",
				"GET " + api + release + "?page=2&per_page=100",
				"DELETE " + api + "/releases/assets/6",
				"POST " + upls + release + "?name=sbom.spdx.json",
			},
		},
		{
			name:        "existing asset not listed",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads:     []http.HandlerFunc{answer(http.StatusUnprocessableEntity, bodyAlreadyExists)},
			pages:       map[string]http.HandlerFunc{"1": answer(http.StatusOK, "[]")},
			wantLines: []string{
				"POST " + upls + release + "?name=sbom.spdx.json",
				"GET " + api + release + "?per_page=100",
			},
			wantErr: &wantErr{contains: []string{`replacing release asset`, `finding asset "sbom.spdx.json"`}},
		},
		{
			name:        "existing asset the token cannot delete",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads:     []http.HandlerFunc{answer(http.StatusUnprocessableEntity, bodyAlreadyExists)},
			pages: map[string]http.HandlerFunc{
				"1": answer(http.StatusOK, "["+assetJSON(6, "sbom.spdx.json", "application/json", 10)+"]"),
			},
			deleteStatus: http.StatusForbidden,
			wantLines: []string{
				"POST " + upls + release + "?name=sbom.spdx.json",
				"GET " + api + release + "?per_page=100",
				"DELETE " + api + "/releases/assets/6",
			},
			wantErr: &wantErr{forbidden: true, status: 403, contains: []string{"contents: write", "deleting asset"}},
		},
		{
			name:        "422 other than already_exists",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads: []http.HandlerFunc{answer(http.StatusUnprocessableEntity,
				`{"message":"Validation Failed","documentation_url":"https://docs.github.com/rest/releases/assets#upload-a-release-asset","errors":[{"resource":"ReleaseAsset","code":"missing_field","field":"name"}]}`)},
			wantLines: []string{"POST " + upls + release + "?name=sbom.spdx.json"},
			wantErr:   &wantErr{status: 422, contains: []string{`uploading release asset`, "missing_field"}},
		},
		{
			name:        "403 token without contents write",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads:     []http.HandlerFunc{answer(http.StatusForbidden, bodyAssetsForbidden)},
			wantLines:   []string{"POST " + upls + release + "?name=sbom.spdx.json"},
			wantErr:     &wantErr{forbidden: true, status: 403, contains: []string{"contents: write", "Resource not accessible by integration"}},
		},
		{
			name:        "404 release not found",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads: []http.HandlerFunc{answer(http.StatusNotFound,
				`{"message":"Not Found","documentation_url":"https://docs.github.com/rest/releases/assets#upload-a-release-asset","status":"404"}`)},
			wantLines: []string{"POST " + upls + release + "?name=sbom.spdx.json"},
			wantErr:   &wantErr{status: 404, contains: []string{"404 Not Found"}},
		},
		{
			name:        "502 bad gateway",
			file:        "sbom.spdx.json",
			contentType: "application/json",
			uploads:     []http.HandlerFunc{answer(http.StatusBadGateway, `{"message":"Server Error"}`)},
			wantLines:   []string{"POST " + upls + release + "?name=sbom.spdx.json"},
			wantErr:     &wantErr{status: 502},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			content := []byte(`{"spdxVersion":"SPDX-2.3","name":"` + tt.name + `"}` + "\n")
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			uploads := 0
			f := newFake(t, map[string]http.HandlerFunc{
				"POST " + upls + release: func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					n := uploads
					uploads++
					mu.Unlock()
					if n >= len(tt.uploads) {
						t.Errorf("upload %d, want %d", n+1, len(tt.uploads))
						http.Error(w, "unexpected", http.StatusTeapot)
						return
					}
					tt.uploads[n](w, r)
				},
				"GET " + api + release: func(w http.ResponseWriter, r *http.Request) {
					page := r.URL.Query().Get("page")
					if page == "" {
						page = "1"
					}
					h, ok := tt.pages[page]
					if !ok {
						t.Errorf("unexpected page %q", page)
						http.NotFound(w, r)
						return
					}
					h(w, r)
				},
				"DELETE " + api + "/releases/assets/{id}": func(w http.ResponseWriter, r *http.Request) {
					if tt.deleteStatus == http.StatusNoContent {
						w.WriteHeader(http.StatusNoContent)
						return
					}
					answer(tt.deleteStatus, bodyAssetsForbidden)(w, r)
				},
			})
			err := f.client(t).UploadReleaseAsset(context.Background(), 42, path)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.wantLines, f.lines()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, r := range f.requests() {
				switch r.method {
				case http.MethodPost:
					checkHeaders(t, r, tt.contentType)
					if got, want := r.header.Get("Content-Length"), fmt.Sprint(len(content)); got != want {
						t.Errorf("%s Content-Length = %s, want %s", r.line(), got, want)
					}
					if diff := cmp.Diff(string(content), string(r.body)); diff != "" {
						t.Errorf("%s body (-want +got):\n%s", r.line(), diff)
					}
				default:
					checkHeaders(t, r, "")
				}
			}
		})
	}
}

func TestUploadReleaseAssetMissingFile(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	path := filepath.Join(t.TempDir(), "sbom.spdx.json")
	err := f.client(t).UploadReleaseAsset(context.Background(), 42, path)
	checkErr(t, err, &wantErr{contains: []string{fmt.Sprintf("uploading release asset %q", path)}})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("errors.Is(err, os.ErrNotExist) = false; err: %v", err)
	}
	if got := f.lines(); len(got) != 0 {
		t.Errorf("requests = %q, want none", got)
	}
}

func TestSetUploadURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		uploadURL func(srv string) string
		wantPath  string
	}{
		{"without a trailing slash", func(srv string) string { return srv + "/uploads" }, "/uploads/repos/barde/phialoastro/releases/42/assets"},
		{"with a trailing slash", func(srv string) string { return srv + "/uploads/" }, "/uploads/repos/barde/phialoastro/releases/42/assets"},
		{"the API URL itself", func(srv string) string { return srv }, "/repos/barde/phialoastro/releases/42/assets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, map[string]http.HandlerFunc{
				"POST " + tt.wantPath: answer(http.StatusCreated, assetJSON(7, "sbom.spdx.json", "application/json", 3)),
			})
			// The github.com layout: the API at the root, uploads elsewhere.
			c, err := ghapi.New(f.URL, "barde/phialoastro", token, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetUploadURL(tt.uploadURL(f.URL)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "sbom.spdx.json")
			if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := c.UploadReleaseAsset(context.Background(), 42, path); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"POST " + tt.wantPath + "?name=sbom.spdx.json"}, f.lines()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetUploadURLRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "uploads.github.com", "/api/uploads", "ftp://ghe.example.com/", "http://[::1"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			c, err := ghapi.New("https://api.github.com", "barde/phialoastro", token, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			err = c.SetUploadURL(u)
			checkErr(t, err, &wantErr{contains: []string{fmt.Sprintf("setting upload URL %q", u)}})
		})
	}
}

func TestUploadURLFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, apiURL, want string
	}{
		{"github.com", "https://api.github.com", "https://uploads.github.com/"},
		{"github.com with a trailing slash", "https://api.github.com/", "https://uploads.github.com/"},
		{"GitHub Enterprise Cloud with data residency", "https://api.octocorp.ghe.com", "https://uploads.octocorp.ghe.com/"},
		{"GitHub Enterprise Server", "https://ghe.example.com/api/v3", "https://ghe.example.com/api/uploads/"},
		{"GitHub Enterprise Server with a trailing slash", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"GitHub Enterprise Server on a port", "http://10.0.0.5:8080/api/v3", "http://10.0.0.5:8080/api/uploads/"},
		{"test server", "http://127.0.0.1:41234", "http://127.0.0.1:41234/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghapi.UploadURLFor(tt.apiURL)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("UploadURLFor(%q) (-want +got):\n%s", tt.apiURL, diff)
			}
		})
	}
}
