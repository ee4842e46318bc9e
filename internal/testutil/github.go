// Package testutil holds test helpers shared by the packages' tests: a fake
// of the GitHub REST API that answers with GitHub's documented payloads.
package testutil

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
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
	// SARIFStatus, when not 0, answers SARIF uploads with that status and
	// GitHub's error body for code scanning that is not enabled.
	SARIFStatus int
	sarifs      []SARIFUpload
	snapshots   [][]byte
	assets      map[string][]byte
	packages    *Packages
}

// SetPackages makes pk serve the Packages API endpoints (GET /users/...,
// /users|orgs/.../packages/...) on this server's address.
func (g *GitHub) SetPackages(pk *Packages) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.packages = pk
}

// SARIFUpload is one code scanning upload the fake received, decoded.
type SARIFUpload struct {
	CommitSHA, Ref string
	// SARIF is the gunzipped document.
	SARIF []byte
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
	mux.HandleFunc("POST /repos/barde/phialoastro/code-scanning/sarifs", func(w http.ResponseWriter, r *http.Request) {
		g.record(r)
		if g.SARIFStatus != 0 {
			w.WriteHeader(g.SARIFStatus)
			fmt.Fprint(w, `{"message":"Advanced Security must be enabled for this repository to use code scanning.","documentation_url":"https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data","status":"403"}`)
			return
		}
		var body struct {
			CommitSHA string `json:"commit_sha"`
			Ref       string `json:"ref"`
			SARIF     string `json:"sarif"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("SARIF upload: decoding the body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// As GitHub documents: the SARIF gzipped, then base64-encoded.
		gz, err := base64.StdEncoding.DecodeString(body.SARIF)
		var doc []byte
		if err == nil {
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(gz)); err == nil {
				doc, err = io.ReadAll(zr)
			}
		}
		if err != nil {
			t.Errorf("SARIF upload: the sarif field is not gzipped base64: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.sarifs = append(g.sarifs, SARIFUpload{CommitSHA: body.CommitSHA, Ref: body.Ref, SARIF: doc})
		n := len(g.sarifs)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"sarif-%d","url":"%s/repos/barde/phialoastro/code-scanning/sarifs/sarif-%d"}`, n, g.URL, n)
	})
	mux.HandleFunc("POST /repos/barde/phialoastro/dependency-graph/snapshots", func(w http.ResponseWriter, r *http.Request) {
		g.record(r)
		body, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(body) {
			t.Errorf("dependency snapshot: the body is not JSON (%v)", err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.snapshots = append(g.snapshots, body)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":4242,"created_at":"2024-06-28T10:00:00Z","result":"SUCCESS","message":"Dependency results for the repo have been successfully updated."}`)
	})
	// Release assets go to the uploads host, which for a GITHUB_API_URL like
	// this one is the same server.
	mux.HandleFunc("POST /repos/barde/phialoastro/releases/987654/assets", func(w http.ResponseWriter, r *http.Request) {
		g.record(r)
		name := r.URL.Query().Get("name")
		body, err := io.ReadAll(r.Body)
		if err != nil || name == "" {
			t.Errorf("release asset: no name or unreadable body (%v)", err)
			http.Error(w, "bad upload", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		if g.assets == nil {
			g.assets = map[string][]byte{}
		}
		g.assets[name] = body
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":1,"name":%q,"state":"uploaded","size":%d}`, name, len(body))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		pk := g.packages
		g.mu.Unlock()
		if pk != nil && (strings.HasPrefix(r.URL.Path, "/users/") || strings.HasPrefix(r.URL.Path, "/orgs/")) {
			target, _ := url.Parse(pk.URL)
			httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
			return
		}
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

// SARIFs lists the code scanning uploads received so far.
func (g *GitHub) SARIFs() []SARIFUpload {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]SARIFUpload(nil), g.sarifs...)
}

// Snapshots lists the dependency snapshots received so far (request bodies).
func (g *GitHub) Snapshots() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.snapshots...)
}

// Assets returns the release assets received so far by name.
func (g *GitHub) Assets() map[string][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]byte, len(g.assets))
	for k, v := range g.assets {
		out[k] = v
	}
	return out
}

// Requests lists the requests served so far as "METHOD /path auth=...".
func (g *GitHub) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}
