// Package testutil holds test helpers shared by the packages' tests: a fake
// of the GitHub REST API that answers with GitHub's documented payloads.
package testutil

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Token is the GitHub token the tests hand the action.
const Token = "ghs_test0123456789secretTOKEN"

// GitHub is a fake GitHub REST API for the repository barde/phialoastro.
type GitHub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
	// RepoStatus, when not 0, answers GET /repos/{owner}/{repo} with that
	// status and GitHub's error body.
	RepoStatus int
}

// NewGitHub starts a fake GitHub API that fails the test on any request it
// does not serve.
func NewGitHub(t testing.TB) *GitHub {
	t.Helper()
	g := &GitHub{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/barde/phialoastro", func(w http.ResponseWriter, r *http.Request) {
		g.record(r)
		if g.RepoStatus != 0 {
			w.WriteHeader(g.RepoStatus)
			fmt.Fprint(w, `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository","status":"403"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{
  "id": 123456789, "node_id": "R_kgDOAbCdEf", "name": "phialoastro", "full_name": "barde/phialoastro",
  "private": false, "owner": {"login": "barde", "id": 1, "type": "User"},
  "html_url": "https://github.com/barde/phialoastro",
  "description": "Phialo Design: handmade jewellery, the website",
  "fork": false, "default_branch": "main", "visibility": "public",
  "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT", "url": "https://api.github.com/licenses/mit"}
}`)
	})
	mux.HandleFunc("GET /repos/barde/phialoastro/commits/{sha}", func(w http.ResponseWriter, r *http.Request) {
		g.record(r)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"sha": %q, "commit": {
  "author": {"name": "Barde", "email": "barde@example.com", "date": "2024-06-20T08:00:00Z"},
  "committer": {"name": "GitHub", "email": "noreply@github.com", "date": "2024-06-21T09:30:00Z"},
  "message": "Merge pull request #123"}}`, r.PathValue("sha"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected GitHub API request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *GitHub) record(r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	auth := r.Header.Get("Authorization")
	if auth != "" && auth != "Bearer "+Token {
		auth = "unexpected"
	}
	g.requests = append(g.requests, r.Method+" "+r.URL.Path+" auth="+auth)
}

// Requests lists the requests served so far as "METHOD /path auth=...".
func (g *GitHub) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}
