package testutil

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nektos/act/pkg/artifactcache"
	"github.com/sirupsen/logrus"
	"github.com/timshannon/bolthold"
	"go.etcd.io/bbolt"
)

// GHACacheScope is the cache scope (the git ref) the token of a GHACache
// grants read and write access to, as GitHub does for a push to main.
const GHACacheScope = "refs/heads/main"

// GHACache is a GitHub Actions cache server (protocol v1) for tests: the
// cache server of nektos/act (package pkg/artifactcache), which BuildKit's
// type=gha cache exporter and importer talk to as to GitHub's.
type GHACache struct {
	// URL is the server's base URL with a trailing slash, as the runner sets
	// ACTIONS_CACHE_URL (the server expects the random path segment in it).
	URL string
	// Token is a JWT BuildKit accepts as ACTIONS_RUNTIME_TOKEN: unsigned
	// for all practical purposes (the server never checks it), with an "ac"
	// claim granting GHACacheScope read and write, valid for a day.
	Token string
	// Dir is the server's storage: bolt.db (the index of entries) and
	// cache/ (the blobs).
	Dir string

	handler *artifactcache.Handler
}

// NewGHACache starts a cache server on 127.0.0.1 (a free port) with its
// storage in t.TempDir(), and stops it with t.Cleanup. The server's log goes
// to t.Log at warning level and above.
func NewGHACache(t testing.TB) *GHACache {
	t.Helper()
	dir := t.TempDir()
	logs := &testLogWriter{t: t}
	logger := logrus.New()
	logger.SetOutput(logs)
	logger.SetLevel(logrus.WarnLevel)
	h, err := artifactcache.StartHandler(dir, "", "127.0.0.1", 0, logger)
	if err != nil {
		t.Fatalf("start GitHub Actions cache server: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("stop GitHub Actions cache server: %v", err)
		}
		// The handler's goroutines may still log; t.Log would then panic.
		logs.close()
	})
	token, err := ghaCacheToken(GHACacheScope, time.Now())
	if err != nil {
		t.Fatalf("GitHub Actions cache token: %v", err)
	}
	return &GHACache{
		URL:     h.ExternalURL() + "/",
		Token:   token,
		Dir:     dir,
		handler: h,
	}
}

// Env returns the variables a buildx process needs to use the cache with
// --cache-to/--cache-from type=gha: ACTIONS_CACHE_URL and
// ACTIONS_RUNTIME_TOKEN. Append them to the process's environment (later
// entries win in exec.Cmd.Env). An inherited ACTIONS_CACHE_SERVICE_V2=true
// would still switch buildx to the v2 protocol and ACTIONS_RESULTS_URL, so
// drop those from the inherited environment when tests run on a runner.
func (c *GHACache) Env() []string {
	return []string{
		"ACTIONS_CACHE_URL=" + c.URL,
		"ACTIONS_RUNTIME_TOKEN=" + c.Token,
	}
}

// Entries lists the keys of the cache entries stored so far (committed
// uploads only, lowercased as the server stores them), sorted. BuildKit
// writes "index-<scope>-1-<hash>" once per export to a scope and
// "buildkit-blob-1-sha256:<digest>" per layer or cache blob.
//
// act's server has no endpoint to list entries (its lookup needs exact
// versions), so this reads its index, Dir/bolt.db, read-only with the same
// library and encoding act uses. The server opens that file per request;
// a read waits (up to 5 s) for a request holding it.
func (c *GHACache) Entries() ([]string, error) {
	db, err := bolthold.Open(filepath.Join(c.Dir, "bolt.db"), 0o644, &bolthold.Options{
		Encoder: json.Marshal,
		Decoder: json.Unmarshal,
		Options: &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second},
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open cache index: %w", err)
	}
	defer db.Close()
	var caches []artifactcache.Cache
	if err := db.Find(&caches, bolthold.Where("Complete").Eq(true)); err != nil {
		return nil, fmt.Errorf("read cache index: %w", err)
	}
	keys := make([]string, 0, len(caches))
	for _, c := range caches {
		keys = append(keys, c.Key)
	}
	sort.Strings(keys)
	return keys, nil
}

// ghaCacheToken builds a JWT the way GitHub's runtime token looks to
// BuildKit's gha client (github.com/tonistiigi/go-actions-cache), which
// parses it without verifying the signature and requires "ac" (a JSON string
// holding the scopes), "exp" in the future and "nbf" in the past.
func ghaCacheToken(scope string, now time.Time) (string, error) {
	// Permission 3 = read (1) | write (2).
	ac, err := json.Marshal([]struct {
		Scope      string
		Permission int
	}{{Scope: scope, Permission: 3}})
	if err != nil {
		return "", err
	}
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(map[string]any{
		"ac":  string(ac),
		"nbf": now.Add(-time.Hour).Unix(),
		"iat": now.Add(-time.Hour).Unix(),
		"exp": now.Add(24 * time.Hour).Unix(),
		"scp": "Actions.Results:1:1 Actions.GenericRead:00000000-0000-0000-0000-000000000000",
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." +
		enc.EncodeToString([]byte("not-a-real-signature")), nil
}

// testLogWriter hands log lines to t.Log until closed.
type testLogWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log("gha cache: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
