package ghapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/barde/phialo-image-action/internal/ghapi"
)

const (
	pkgToken = "ghs_packagesTest0123456789TOKEN"
	digestA  = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB  = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestC  = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	// Error bodies as GitHub sends them.
	bodyPackageNotFound = `{"message":"Package not found.","documentation_url":"https://docs.github.com/rest/packages/packages#get-a-package-version-for-a-user","status":"404"}`
	bodyPackageDenied   = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/packages/packages#delete-package-version-for-a-user","status":"403"}`
	bodySecondary       = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits","status":"403"}`
	bodyPrimary         = `{"message":"API rate limit exceeded for installation ID 1234567.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit","status":"403"}`
)

// created is the creation time of the test versions.
var created = time.Date(2024, 6, 28, 10, 0, 0, 0, time.UTC)

// pkgServer is a GitHub API whose every request handle answers; it records
// the requests as "METHOD /escaped/path?query" and checks the token.
type pkgServer struct {
	*httptest.Server
	mu    sync.Mutex
	lines []string
}

// newPkgServer starts a pkgServer; handle gets the 0-based number of the
// request.
func newPkgServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *pkgServer {
	t.Helper()
	s := &pkgServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+pkgToken {
			t.Errorf("%s %s: Authorization %q, want the token", r.Method, r.URL, got)
		}
		line := r.Method + " " + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			line += "?" + r.URL.RawQuery
		}
		s.mu.Lock()
		n := len(s.lines)
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns the requests received so far.
func (s *pkgServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// client returns a client of the server at its GitHub Enterprise Server
// address (/api/v3).
func (s *pkgServer) client(t *testing.T) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(s.URL+"/api/v3", "barde/phialoastro", pkgToken, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reply answers status and body as GitHub does, with its rate limit headers
// (still plenty left), then the headers in header.
func reply(w http.ResponseWriter, status int, header map[string]string, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4321")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// versionJSON is a container package version as GitHub documents it.
func versionJSON(id int64, digest string, tags ...string) string {
	quoted := make([]string, len(tags))
	for i, tag := range tags {
		quoted[i] = strconv.Quote(tag)
	}
	return fmt.Sprintf(`{
  "id": %[1]d, "name": %[2]q,
  "url": "https://api.github.com/users/barde/packages/container/phialoastro/versions/%[1]d",
  "package_html_url": "https://github.com/users/barde/packages/container/package/phialoastro",
  "created_at": %[3]q, "updated_at": "2024-06-29T11:00:00Z",
  "html_url": "https://github.com/users/barde/packages/container/phialoastro/%[1]d",
  "metadata": {"package_type": "container", "container": {"tags": [%[4]s]}}
}`, id, digest, created.Add(time.Duration(id)*time.Minute).Format(time.RFC3339), strings.Join(quoted, ", "))
}

// want is the PackageVersion of versionJSON.
func want(id int64, digest string, tags ...string) ghapi.PackageVersion {
	return ghapi.PackageVersion{ID: id, Digest: digest, Tags: tags, Created: created.Add(time.Duration(id) * time.Minute)}
}

func TestListVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ownerType, pkg string
		// path is the escaped path of the versions.
		path string
	}{
		{"user package", ghapi.OwnerUser, "phialoastro", "/api/v3/users/barde/packages/container/phialoastro/versions"},
		{"organization package", ghapi.OwnerOrganization, "phialoastro", "/api/v3/orgs/barde/packages/container/phialoastro/versions"},
		{"user package with a slash", ghapi.OwnerUser, "phialoastro/web", "/api/v3/users/barde/packages/container/phialoastro%2Fweb/versions"},
		{"organization package with a slash", ghapi.OwnerOrganization, "phialoastro/web", "/api/v3/orgs/barde/packages/container/phialoastro%2Fweb/versions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Three short pages: the client must follow the Link headers,
			// not stop at a page shorter than per_page.
			pages := map[string][]string{
				"":  {versionJSON(9, digestA, "latest", "v1.2.0"), versionJSON(8, digestB)},
				"2": {versionJSON(7, digestC, "v1.1.0")},
				"3": {versionJSON(6, digestB, "old")},
			}
			links := map[string]string{
				"":  `<%[1]s?page=2&per_page=100&state=active>; rel="next", <%[1]s?page=3&per_page=100&state=active>; rel="last"`,
				"2": `<%[1]s?page=1&per_page=100&state=active>; rel="prev", <%[1]s?page=3&per_page=100&state=active>; rel="next", <%[1]s?page=3&per_page=100&state=active>; rel="last", <%[1]s?page=1&per_page=100&state=active>; rel="first"`,
				"3": `<%[1]s?page=2&per_page=100&state=active>; rel="prev", <%[1]s?page=1&per_page=100&state=active>; rel="first"`,
			}
			var srv *pkgServer
			srv = newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				page := r.URL.Query().Get("page")
				body, ok := pages[page]
				if !ok || r.URL.EscapedPath() != tc.path {
					reply(w, http.StatusNotFound, nil, bodyPackageNotFound)
					return
				}
				reply(w, http.StatusOK, map[string]string{"Link": fmt.Sprintf(links[page], srv.URL+tc.path)},
					"["+strings.Join(body, ",")+"]")
			})
			got, err := srv.client(t).ListVersions(context.Background(), "barde", tc.ownerType, tc.pkg)
			if err != nil {
				t.Fatalf("ListVersions: %v", err)
			}
			wantVersions := []ghapi.PackageVersion{
				want(9, digestA, "latest", "v1.2.0"), want(8, digestB), want(7, digestC, "v1.1.0"), want(6, digestB, "old"),
			}
			if diff := cmp.Diff(wantVersions, got); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			wantRequests := []string{
				"GET " + tc.path + "?per_page=100&state=active",
				"GET " + tc.path + "?page=2&per_page=100&state=active",
				"GET " + tc.path + "?page=3&per_page=100&state=active",
			}
			if diff := cmp.Diff(wantRequests, srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListVersionsRejectsALinkBackwards(t *testing.T) {
	t.Parallel()
	var srv *pkgServer
	srv = newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		path := srv.URL + r.URL.EscapedPath()
		reply(w, http.StatusOK, map[string]string{"Link": `<` + path + `?page=1>; rel="next"`}, "["+versionJSON(1, digestA)+"]")
	})
	_, err := srv.client(t).ListVersions(context.Background(), "barde", ghapi.OwnerUser, "phialoastro")
	if err == nil || !strings.Contains(err.Error(), "links to page 1") {
		t.Fatalf("ListVersions = %v, want an error for the loop", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestOwnerType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
		// wantErr is a substring of the error; wantNotFound asks
		// errors.Is(err, ErrNotFound).
		wantErr      string
		wantNotFound bool
	}{
		{name: "user", status: 200, body: `{"login":"barde","id":1,"type":"User","site_admin":false}`, want: ghapi.OwnerUser},
		{name: "organization", status: 200, body: `{"login":"barde","id":2,"type":"Organization","site_admin":false}`, want: ghapi.OwnerOrganization},
		{name: "bot", status: 200, body: `{"login":"barde","id":3,"type":"Bot"}`, wantErr: `of type "Bot"`},
		{name: "no such account", status: 404, body: `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/users/users#get-a-user","status":"404"}`, wantErr: `getting owner "barde"`, wantNotFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				reply(w, tc.status, nil, tc.body)
			})
			got, err := srv.client(t).OwnerType(context.Background(), "barde")
			if tc.wantErr == "" && err != nil {
				t.Fatalf("OwnerType: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("OwnerType = %v, want an error with %q", err, tc.wantErr)
			}
			if errors.Is(err, ghapi.ErrNotFound) != tc.wantNotFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tc.wantNotFound, tc.wantNotFound)
			}
			if got != tc.want {
				t.Errorf("OwnerType = %q, want %q", got, tc.want)
			}
			if diff := cmp.Diff([]string{"GET /api/v3/users/barde"}, srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ownerType, pkg, path string
		status                     int
		body                       string
		want                       ghapi.PackageVersion
		wantNotFound               bool
	}{
		{
			name: "tagged version of a user package", ownerType: ghapi.OwnerUser, pkg: "phialoastro",
			path:   "/api/v3/users/barde/packages/container/phialoastro/versions/7",
			status: 200, body: versionJSON(7, digestC, "v1.1.0", "stable"), want: want(7, digestC, "v1.1.0", "stable"),
		},
		{
			name: "untagged version of an organization package with a slash", ownerType: ghapi.OwnerOrganization, pkg: "a/b",
			path:   "/api/v3/orgs/barde/packages/container/a%2Fb/versions/7",
			status: 200, body: versionJSON(7, digestC), want: want(7, digestC),
		},
		{
			name: "version deleted meanwhile", ownerType: ghapi.OwnerUser, pkg: "a/b",
			path:   "/api/v3/users/barde/packages/container/a%2Fb/versions/7",
			status: 404, body: bodyPackageNotFound, wantNotFound: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				reply(w, tc.status, nil, tc.body)
			})
			got, err := srv.client(t).GetVersion(context.Background(), "barde", tc.ownerType, tc.pkg, 7)
			if tc.wantNotFound {
				if !errors.Is(err, ghapi.ErrNotFound) || errors.Is(err, ghapi.ErrForbidden) || !strings.Contains(err.Error(), `getting version 7 of "a/b"`) {
					t.Errorf("GetVersion error = %v, want ErrNotFound", err)
				}
			} else if err != nil {
				t.Fatalf("GetVersion: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("version (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"GET " + tc.path}, srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeleteVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ownerType, pkg, path string
		status                     int
		body                       string
		// wantErr lists substrings of the error, none for no error.
		wantErr                 []string
		wantForbidden, wantGone bool
	}{
		{
			name: "user package", ownerType: ghapi.OwnerUser, pkg: "phialoastro",
			path: "/api/v3/users/barde/packages/container/phialoastro/versions/42", status: 204,
		},
		{
			name: "organization package with a slash", ownerType: ghapi.OwnerOrganization, pkg: "phialoastro/web",
			path: "/api/v3/orgs/barde/packages/container/phialoastro%2Fweb/versions/42", status: 204,
		},
		{
			name: "token without packages: write", ownerType: ghapi.OwnerUser, pkg: "phialoastro",
			path: "/api/v3/users/barde/packages/container/phialoastro/versions/42", status: 403, body: bodyPackageDenied,
			wantErr: []string{`deleting version 42 of "phialoastro"`, "packages: write", "Resource not accessible by integration"}, wantForbidden: true,
		},
		{
			name: "version already gone", ownerType: ghapi.OwnerUser, pkg: "phialoastro",
			path: "/api/v3/users/barde/packages/container/phialoastro/versions/42", status: 404, body: bodyPackageNotFound,
			wantErr: []string{`deleting version 42 of "phialoastro"`, "Package not found."}, wantGone: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tc.status == http.StatusNoContent {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				reply(w, tc.status, nil, tc.body)
			})
			err := srv.client(t).DeleteVersion(context.Background(), "barde", tc.ownerType, tc.pkg, 42)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("DeleteVersion: %v", err)
			}
			if len(tc.wantErr) > 0 && err == nil {
				t.Fatal("DeleteVersion succeeded, want an error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if errors.Is(err, ghapi.ErrForbidden) != tc.wantForbidden || errors.Is(err, ghapi.ErrNotFound) != tc.wantGone {
				t.Errorf("error %v: ErrForbidden %v (want %v), ErrNotFound %v (want %v)", err,
					errors.Is(err, ghapi.ErrForbidden), tc.wantForbidden, errors.Is(err, ghapi.ErrNotFound), tc.wantGone)
			}
			if diff := cmp.Diff([]string{"DELETE " + tc.path}, srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPackageCallsRejectBadArguments(t *testing.T) {
	t.Parallel()
	srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
	})
	c := srv.client(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"no owner":           func() error { _, err := c.ListVersions(ctx, "", ghapi.OwnerUser, "p"); return err }(),
		"no package":         func() error { _, err := c.GetVersion(ctx, "barde", ghapi.OwnerUser, "", 1); return err }(),
		"unknown owner type": c.DeleteVersion(ctx, "barde", "Bot", "p", 1),
		"no owner to type":   func() error { _, err := c.OwnerType(ctx, ""); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// rateLimitStep is one answer of the rate limit tests' server.
type rateLimitStep struct {
	status int
	header map[string]string
	body   string
}

// inSeconds is a Unix time d from now, as X-RateLimit-Reset has it.
func inSeconds(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }

// TestRateLimits replaces ghapi.Sleep, so it does not run in parallel.
func TestRateLimits(t *testing.T) {
	const path = "/api/v3/users/barde/packages/container/phialoastro/versions"
	ok := rateLimitStep{status: 200, body: "[" + versionJSON(1, digestA, "latest") + "]"}
	tooMany := func(retryAfter string) rateLimitStep {
		return rateLimitStep{status: 429, header: map[string]string{"Retry-After": retryAfter}, body: bodySecondary}
	}
	primary := func(status int, reset time.Duration) rateLimitStep {
		return rateLimitStep{status: status, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": inSeconds(reset)}, body: bodyPrimary}
	}
	for _, tc := range []struct {
		name string
		// steps answer the requests in turn, the last one all further.
		steps     []rateLimitStep
		wantWaits []time.Duration
		// wantRequests counts the requests.
		wantRequests int
		// wantErr is a substring of the error, "" for success.
		wantErr       string
		wantForbidden bool
	}{
		{
			name:      "429 with Retry-After, then success",
			steps:     []rateLimitStep{tooMany("7"), ok},
			wantWaits: []time.Duration{7 * time.Second}, wantRequests: 2,
		},
		{
			name:      "429 with Retry-After twice",
			steps:     []rateLimitStep{tooMany("2"), tooMany("3"), ok},
			wantWaits: []time.Duration{2 * time.Second, 3 * time.Second}, wantRequests: 3,
		},
		{
			name:      "403 secondary rate limit with Retry-After",
			steps:     []rateLimitStep{{status: 403, header: map[string]string{"Retry-After": "4"}, body: bodySecondary}, ok},
			wantWaits: []time.Duration{4 * time.Second}, wantRequests: 2,
		},
		{
			name:      "403 secondary rate limit without Retry-After waits a minute",
			steps:     []rateLimitStep{{status: 403, body: bodySecondary}, ok},
			wantWaits: []time.Duration{time.Minute}, wantRequests: 2,
		},
		{
			name:      "403 primary rate limit waits until the reset",
			steps:     []rateLimitStep{primary(403, 30*time.Second), ok},
			wantWaits: []time.Duration{31 * time.Second}, wantRequests: 2,
		},
		{
			name:      "429 primary rate limit waits until the reset",
			steps:     []rateLimitStep{primary(429, 50*time.Second), ok},
			wantWaits: []time.Duration{51 * time.Second}, wantRequests: 2,
		},
		{
			name:      "gives up after 5 retries",
			steps:     []rateLimitStep{tooMany("1")},
			wantWaits: []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}, wantRequests: 6,
			wantErr: "gave up after 5 retries",
		},
		{
			name:      "gives up before waiting past 2 minutes in all",
			steps:     []rateLimitStep{tooMany("50")},
			wantWaits: []time.Duration{50 * time.Second, 50 * time.Second}, wantRequests: 3,
			wantErr: "asks to wait 50s",
		},
		{
			name:         "a reset an hour away is not waited for",
			steps:        []rateLimitStep{primary(403, time.Hour)},
			wantRequests: 1, wantErr: "API rate limit exceeded",
		},
		{
			name:         "403 without a rate limit is not retried",
			steps:        []rateLimitStep{{status: 403, body: bodyPackageDenied}},
			wantRequests: 1, wantErr: "packages: read", wantForbidden: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var waits []time.Duration
			old := ghapi.Sleep
			ghapi.Sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}
			t.Cleanup(func() { ghapi.Sleep = old })
			srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.URL.Path != path {
					t.Errorf("unexpected request %s %s", r.Method, r.URL)
				}
				s := tc.steps[min(n, len(tc.steps)-1)]
				reply(w, s.status, s.header, s.body)
			})
			got, err := srv.client(t).ListVersions(context.Background(), "barde", ghapi.OwnerUser, "phialoastro")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ListVersions: %v", err)
			case tc.wantErr == "" && len(got) != 1:
				t.Errorf("ListVersions = %+v, want the version", got)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ListVersions error = %v, want one with %q", err, tc.wantErr)
			}
			if errors.Is(err, ghapi.ErrForbidden) != tc.wantForbidden {
				t.Errorf("errors.Is(%v, ErrForbidden) = %v, want %v", err, !tc.wantForbidden, tc.wantForbidden)
			}
			// A wait until a reset is computed against the clock: 1.5s
			// of tolerance.
			approx := cmp.Comparer(func(a, b time.Duration) bool { return (a - b).Abs() <= 1500*time.Millisecond })
			if diff := cmp.Diff(tc.wantWaits, waits, approx); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if n := len(srv.requests()); n != tc.wantRequests {
				t.Errorf("%d requests, want %d", n, tc.wantRequests)
			}
		})
	}
}

// TestRateLimitsOnEveryCall replaces ghapi.Sleep, so it does not run in
// parallel.
func TestRateLimitsOnEveryCall(t *testing.T) {
	var waits []time.Duration
	old := ghapi.Sleep
	ghapi.Sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}
	t.Cleanup(func() { ghapi.Sleep = old })
	// Every first attempt is rate limited, every retry answered.
	srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n%2 == 0 {
			reply(w, 429, map[string]string{"Retry-After": "3"}, bodySecondary)
			return
		}
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/versions/1"):
			reply(w, 200, nil, versionJSON(1, digestA))
		default:
			reply(w, 200, nil, `{"login":"barde","type":"Organization"}`)
		}
	})
	c := srv.client(t)
	ctx := context.Background()
	if _, err := c.OwnerType(ctx, "barde"); err != nil {
		t.Errorf("OwnerType: %v", err)
	}
	if _, err := c.GetVersion(ctx, "barde", ghapi.OwnerOrganization, "p", 1); err != nil {
		t.Errorf("GetVersion: %v", err)
	}
	if err := c.DeleteVersion(ctx, "barde", ghapi.OwnerOrganization, "p", 1); err != nil {
		t.Errorf("DeleteVersion: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

// TestRateLimitWaitEndsWithTheContext replaces ghapi.Sleep, so it does not
// run in parallel.
func TestRateLimitWaitEndsWithTheContext(t *testing.T) {
	old := ghapi.Sleep
	ghapi.Sleep = func(ctx context.Context, _ time.Duration) error { return context.Canceled }
	t.Cleanup(func() { ghapi.Sleep = old })
	srv := newPkgServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 429, map[string]string{"Retry-After": "1"}, bodySecondary)
	})
	err := srv.client(t).DeleteVersion(context.Background(), "barde", ghapi.OwnerUser, "p", 1)
	var er *github.ErrorResponse
	if !errors.Is(err, context.Canceled) || !errors.As(err, &er) || er.Response.StatusCode != 429 {
		t.Errorf("DeleteVersion = %v, want the cancellation and the 429", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := ghapi.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep did not return at once")
	}
	if err := ghapi.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
}
