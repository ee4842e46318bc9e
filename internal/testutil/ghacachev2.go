package testutil

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Permissions of a GHACacheGrant, as the "ac" claim of GitHub's runtime
// token spells them.
const (
	GHACacheRead  = 1
	GHACacheWrite = 2
)

// GHACacheGrant is one element of a runtime token's "ac" claim: a git ref
// whose cache entries the token may read (GHACacheRead) or write
// (GHACacheWrite).
type GHACacheGrant struct {
	Scope      string
	Permission int
}

// GHACacheV2Entry is a finalized entry of a GHACacheV2.
type GHACacheV2Entry struct {
	Scope   string // the git ref the entry belongs to
	Key     string
	Version string
	Size    int64
}

// twirpPrefix is the path of GitHub's v2 cache service under
// ACTIONS_RESULTS_URL.
const twirpPrefix = "/twirp/github.actions.results.api.v1.CacheService/"

// blobURLLifetime is how long a signed upload or download URL is valid.
const blobURLLifetime = 10 * time.Minute

// GHACacheV2 is GitHub's Actions cache service, protocol v2, for tests: the
// Twirp CacheService that ACTIONS_RESULTS_URL points at, and in the place
// of Azure Blob Storage a blob store on disk that serves the signed upload
// and download URLs the service hands out. BuildKit's type=gha cache
// (github.com/tonistiigi/go-actions-cache) talks to it as to GitHub's when
// buildx runs with ACTIONS_CACHE_SERVICE_V2=true.
//
// It checks what the real service checks: a runtime token that is a JWT
// signed by the service (see Token), in its validity period, whose "ac"
// claim grants write access to the scope an entry is written to and read
// access to the scopes a lookup searches; and a valid, unexpired signature
// on every blob URL.
type GHACacheV2 struct {
	// URL is the service's base URL with a trailing slash, as the runner
	// sets ACTIONS_RESULTS_URL.
	URL string
	// Dir is the blob store: blobs/ holds committed blobs, blocks/ the
	// staged blocks of uploads in progress.
	Dir string

	key  []byte // signs tokens and blob URLs
	logs *testLogWriter

	mu       sync.Mutex
	entries  []*ghaV2Entry
	rejected []string
}

// ghaV2Entry is a cache entry: created, then its blob uploaded, then
// finalized.
type ghaV2Entry struct {
	id      int64
	scope   string
	key     string
	version string
	created time.Time
	// staged are the blocks uploaded with comp=block, not yet committed.
	staged    map[string]string // block id -> file
	committed bool              // the blob exists
	size      int64             // of the committed blob
	finalized bool
}

// NewGHACacheV2 starts the service on 127.0.0.1 (a free port) with its
// blob store in t.TempDir(), and stops it with t.Cleanup. Refused requests
// are logged to t.Log.
func NewGHACacheV2(t testing.TB) *GHACacheV2 {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatalf("GitHub Actions cache v2 signing key: %v", err)
	}
	c := &GHACacheV2{Dir: t.TempDir(), key: key, logs: &testLogWriter{t: t}}
	for _, d := range []string{"blobs", "blocks"} {
		if err := os.Mkdir(filepath.Join(c.Dir, d), 0o755); err != nil {
			t.Fatalf("GitHub Actions cache v2 blob store: %v", err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(func() {
		srv.Close()
		c.logs.close()
	})
	c.URL = srv.URL + "/"
	return c
}

// Token returns a runtime token with grants, valid from an hour ago for a
// day and signed by the service, as GitHub's runner hands one to a job in
// ACTIONS_RUNTIME_TOKEN. Entries are written to the last grant with write
// permission (BuildKit names its index after that one too); a lookup
// searches the grants with read permission in order. A push to a feature
// branch gets the branch with read and write and the default branch with
// read only.
func (c *GHACacheV2) Token(grants ...GHACacheGrant) string {
	now := time.Now()
	ac, err := json.Marshal(grants)
	if err != nil {
		panic(err) // a slice of plain structs always marshals
	}
	return c.sign(map[string]any{
		"ac":  string(ac),
		"nbf": now.Add(-time.Hour).Unix(),
		"iat": now.Add(-time.Hour).Unix(),
		"exp": now.Add(24 * time.Hour).Unix(),
		"scp": "Actions.Results:1:1 Actions.GenericRead:00000000-0000-0000-0000-000000000000",
	})
}

// Env returns what a buildx process needs to use the service for
// type=gha: ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN=token. It leaves
// out ACTIONS_CACHE_SERVICE_V2, which GitHub's runner does not pass to a
// container action either: without it buildx speaks the retired v1
// protocol, which this service refuses.
func (c *GHACacheV2) Env(token string) []string {
	return []string{
		"ACTIONS_RESULTS_URL=" + c.URL,
		"ACTIONS_RUNTIME_TOKEN=" + token,
	}
}

// Entries lists the finalized entries, sorted by scope, then key.
func (c *GHACacheV2) Entries() []GHACacheV2Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GHACacheV2Entry
	for _, e := range c.entries {
		if e.finalized {
			out = append(out, GHACacheV2Entry{Scope: e.scope, Key: e.key, Version: e.version, Size: e.size})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Rejected lists the requests the service refused, in order, each as
// "METHOD PATH: STATUS CODE: MESSAGE". A lookup that finds nothing is an
// answer, not a refusal.
func (c *GHACacheV2) Rejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rejected...)
}

func (c *GHACacheV2) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, twirpPrefix):
		c.serveTwirp(w, r, strings.TrimPrefix(r.URL.Path, twirpPrefix))
	case strings.HasPrefix(r.URL.Path, "/blob/"):
		c.serveBlob(w, r, strings.TrimPrefix(r.URL.Path, "/blob/"))
	default:
		c.twirpError(w, r, http.StatusNotFound, "bad_route", "no handler for path "+r.URL.Path)
	}
}

// twirpError answers as a Twirp server does and records the refusal.
func (c *GHACacheV2) twirpError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	c.reject(r, status, code, msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "msg": msg})
}

func (c *GHACacheV2) reject(r *http.Request, status int, code, msg string) {
	line := fmt.Sprintf("%s %s: %d %s: %s", r.Method, r.URL.Path, status, code, msg)
	c.mu.Lock()
	c.rejected = append(c.rejected, line)
	c.mu.Unlock()
	c.logs.Write([]byte("v2 refused " + line))
}

func (c *GHACacheV2) serveTwirp(w http.ResponseWriter, r *http.Request, method string) {
	if r.Method != http.MethodPost {
		c.twirpError(w, r, http.StatusNotFound, "bad_route", fmt.Sprintf("unsupported method %q (only POST is allowed)", r.Method))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		c.twirpError(w, r, http.StatusNotFound, "bad_route", fmt.Sprintf("unexpected Content-Type: %q", r.Header.Get("Content-Type")))
		return
	}
	var handle func(ghaV2Claims, []byte) (any, *twirpErr)
	switch method {
	case "CreateCacheEntry":
		handle = c.createEntry
	case "FinalizeCacheEntryUpload":
		handle = c.finalizeEntry
	case "GetCacheEntryDownloadURL":
		handle = c.downloadURL
	default:
		c.twirpError(w, r, http.StatusNotFound, "bad_route", "no method "+method)
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		c.twirpError(w, r, http.StatusUnauthorized, "unauthenticated", "no bearer token")
		return
	}
	claims, err := c.verify(bearer, time.Now())
	if err != nil {
		c.twirpError(w, r, http.StatusUnauthorized, "unauthenticated", err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		c.twirpError(w, r, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	out, terr := handle(claims, body)
	if terr != nil {
		c.twirpError(w, r, terr.status, terr.code, terr.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// twirpErr is a Twirp error answer.
type twirpErr struct {
	status    int
	code, msg string
}

func malformed(err error) *twirpErr {
	return &twirpErr{http.StatusBadRequest, "malformed", "the json request could not be decoded: " + err.Error()}
}

func invalidArgument(msg string) *twirpErr {
	return &twirpErr{http.StatusBadRequest, "invalid_argument", msg}
}

// checkKey checks an entry's key and version as the service does.
func checkKey(key, version string) *twirpErr {
	switch {
	case key == "":
		return invalidArgument("key is required")
	case len(key) > 512:
		return invalidArgument("key is longer than 512 characters")
	case strings.Contains(key, ","):
		return invalidArgument("key must not contain commas")
	case version == "":
		return invalidArgument("version is required")
	}
	return nil
}

// writeScope is the scope a token writes its entries to.
func (cl ghaV2Claims) writeScope() (string, *twirpErr) {
	scope := ""
	for _, g := range cl.grants {
		if g.Permission&GHACacheWrite != 0 {
			scope = g.Scope
		}
	}
	if scope == "" {
		return "", &twirpErr{http.StatusForbidden, "permission_denied", "the token grants no scope write access"}
	}
	return scope, nil
}

func (c *GHACacheV2) createEntry(cl ghaV2Claims, body []byte) (any, *twirpErr) {
	var req struct {
		Key     string          `json:"key"`
		Version string          `json:"version"`
		Meta    json.RawMessage `json:"metadata"`
	}
	if err := strictJSON(body, &req); err != nil {
		return nil, malformed(err)
	}
	if terr := checkKey(req.Key, req.Version); terr != nil {
		return nil, terr
	}
	scope, terr := cl.writeScope()
	if terr != nil {
		return nil, terr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.scope == scope && e.key == req.Key && e.version == req.Version {
			return nil, &twirpErr{http.StatusConflict, "already_exists", "cache entry with the same key, version, and scope already exists"}
		}
	}
	e := &ghaV2Entry{
		id: int64(len(c.entries) + 1), scope: scope, key: req.Key, version: req.Version,
		created: time.Now(), staged: map[string]string{},
	}
	c.entries = append(c.entries, e)
	return map[string]any{"ok": true, "signed_upload_url": c.blobURL(e.id, "cw", time.Now().Add(blobURLLifetime))}, nil
}

func (c *GHACacheV2) finalizeEntry(cl ghaV2Claims, body []byte) (any, *twirpErr) {
	var req struct {
		Key       string          `json:"key"`
		Version   string          `json:"version"`
		SizeBytes json.Number     `json:"size_bytes"`
		Meta      json.RawMessage `json:"metadata"`
	}
	if err := strictJSON(body, &req); err != nil {
		return nil, malformed(err)
	}
	if terr := checkKey(req.Key, req.Version); terr != nil {
		return nil, terr
	}
	size, err := req.SizeBytes.Int64()
	if err != nil || size < 0 {
		return nil, invalidArgument(fmt.Sprintf("size_bytes %q is not a size", req.SizeBytes))
	}
	scope, terr := cl.writeScope()
	if terr != nil {
		return nil, terr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.scope != scope || e.key != req.Key || e.version != req.Version || e.finalized {
			continue
		}
		switch {
		case !e.committed:
			return nil, &twirpErr{http.StatusBadRequest, "failed_precondition", "nothing was uploaded for the entry"}
		case e.size != size:
			return nil, invalidArgument(fmt.Sprintf("size_bytes %d, but %d bytes were uploaded", size, e.size))
		}
		e.finalized = true
		return map[string]any{"ok": true, "entry_id": strconv.FormatInt(e.id, 10)}, nil
	}
	return nil, &twirpErr{http.StatusNotFound, "not_found", "no cache entry to finalize for the key, version and scope"}
}

func (c *GHACacheV2) downloadURL(cl ghaV2Claims, body []byte) (any, *twirpErr) {
	var req struct {
		Key         string          `json:"key"`
		RestoreKeys []string        `json:"restore_keys"`
		Version     string          `json:"version"`
		Meta        json.RawMessage `json:"metadata"`
	}
	if err := strictJSON(body, &req); err != nil {
		return nil, malformed(err)
	}
	if terr := checkKey(req.Key, req.Version); terr != nil {
		return nil, terr
	}
	var scopes []string
	for _, g := range cl.grants {
		if g.Permission&GHACacheRead != 0 {
			scopes = append(scopes, g.Scope)
		}
	}
	if len(scopes) == 0 {
		return nil, &twirpErr{http.StatusForbidden, "permission_denied", "the token grants no scope read access"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// In each scope in the token's order: the key itself, then each
	// restore key as a prefix, the newest entry first.
	for _, scope := range scopes {
		if e := c.find(scope, req.Version, func(k string) bool { return k == req.Key }); e != nil {
			return c.hit(e), nil
		}
		for _, p := range req.RestoreKeys {
			if e := c.find(scope, req.Version, func(k string) bool { return strings.HasPrefix(k, p) }); e != nil {
				return c.hit(e), nil
			}
		}
	}
	return map[string]any{"ok": false, "signed_download_url": "", "matched_key": ""}, nil
}

// find returns the newest finalized entry of scope and version whose key
// matches.
func (c *GHACacheV2) find(scope, version string, match func(string) bool) *ghaV2Entry {
	for i := len(c.entries) - 1; i >= 0; i-- {
		e := c.entries[i]
		if e.finalized && e.scope == scope && e.version == version && match(e.key) {
			return e
		}
	}
	return nil
}

func (c *GHACacheV2) hit(e *ghaV2Entry) map[string]any {
	return map[string]any{"ok": true, "signed_download_url": c.blobURL(e.id, "r", time.Now().Add(blobURLLifetime)), "matched_key": e.key}
}

// strictJSON decodes a request body, refusing fields the service does not
// know.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

// ghaV2Claims are the verified claims of a runtime token.
type ghaV2Claims struct {
	grants []GHACacheGrant
}

// sign makes an HS256 JWT of claims with the service's key.
func (c *GHACacheV2) sign(claims map[string]any) string {
	return signJWT(c.key, claims)
}

func signJWT(key []byte, claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err) // the callers pass strings and numbers only
	}
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

// verify checks a runtime token's signature, validity period, scp and ac
// claims.
func (c *GHACacheV2) verify(token string, now time.Time) (ghaV2Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ghaV2Claims{}, errors.New("the token is not a JWT")
	}
	enc := base64.RawURLEncoding
	rawHeader, err := enc.DecodeString(parts[0])
	if err != nil {
		return ghaV2Claims{}, fmt.Errorf("decoding the token header: %w", err)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(rawHeader, &header); err != nil || header.Alg != "HS256" {
		return ghaV2Claims{}, fmt.Errorf("token header %s: want alg HS256", rawHeader)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return ghaV2Claims{}, fmt.Errorf("decoding the token signature: %w", err)
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return ghaV2Claims{}, errors.New("the token signature does not verify")
	}
	rawClaims, err := enc.DecodeString(parts[1])
	if err != nil {
		return ghaV2Claims{}, fmt.Errorf("decoding the token claims: %w", err)
	}
	var claims struct {
		AC  *string `json:"ac"`
		Exp *int64  `json:"exp"`
		Nbf *int64  `json:"nbf"`
		Scp string  `json:"scp"`
	}
	if err := json.Unmarshal(rawClaims, &claims); err != nil {
		return ghaV2Claims{}, fmt.Errorf("decoding the token claims: %w", err)
	}
	switch {
	case claims.Exp == nil || claims.Nbf == nil:
		return ghaV2Claims{}, errors.New("the token lacks exp or nbf")
	case now.Unix() >= *claims.Exp:
		return ghaV2Claims{}, fmt.Errorf("the token expired at %s", time.Unix(*claims.Exp, 0).UTC())
	case now.Unix() < *claims.Nbf:
		return ghaV2Claims{}, fmt.Errorf("the token is not valid before %s", time.Unix(*claims.Nbf, 0).UTC())
	case !strings.Contains(" "+claims.Scp, " Actions.Results:"):
		return ghaV2Claims{}, fmt.Errorf("the token's scp %q lacks Actions.Results", claims.Scp)
	case claims.AC == nil:
		return ghaV2Claims{}, errors.New("the token lacks the ac claim")
	}
	var grants []GHACacheGrant
	if err := json.Unmarshal([]byte(*claims.AC), &grants); err != nil {
		return ghaV2Claims{}, fmt.Errorf("decoding the token's ac claim %q: %w", *claims.AC, err)
	}
	if len(grants) == 0 {
		return ghaV2Claims{}, errors.New("the token's ac claim grants no scope")
	}
	return ghaV2Claims{grants: grants}, nil
}

// blobURL is a signed URL of an entry's blob: perm is "r" (read) or "cw"
// (create and write), valid until expiry, as an Azure SAS URL is.
func (c *GHACacheV2) blobURL(id int64, perm string, expiry time.Time) string {
	se := expiry.UTC().Format(time.RFC3339)
	q := url.Values{"sv": {"2024-08-04"}, "sr": {"b"}, "sp": {perm}, "se": {se}, "sig": {c.blobSig(id, perm, se)}}
	return fmt.Sprintf("%sblob/%d?%s", c.URL, id, q.Encode())
}

func (c *GHACacheV2) blobSig(id int64, perm, se string) string {
	mac := hmac.New(sha256.New, c.key)
	fmt.Fprintf(mac, "blob\n%d\n%s\n%s", id, perm, se)
	return hex.EncodeToString(mac.Sum(nil))
}

// azureError answers as Azure Blob Storage does and records the refusal.
func (c *GHACacheV2) azureError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	c.reject(r, status, code, msg)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (c *GHACacheV2) serveBlob(w http.ResponseWriter, r *http.Request, name string) {
	id, err := strconv.ParseInt(name, 10, 64)
	if err != nil {
		c.azureError(w, r, http.StatusNotFound, "BlobNotFound", "no blob "+name)
		return
	}
	q := r.URL.Query()
	perm, se := q.Get("sp"), q.Get("se")
	expiry, err := time.Parse(time.RFC3339, se)
	switch {
	case err != nil || !hmac.Equal([]byte(q.Get("sig")), []byte(c.blobSig(id, perm, se))):
		c.azureError(w, r, http.StatusForbidden, "AuthenticationFailed", "the signature of the URL does not verify")
		return
	case time.Now().After(expiry):
		c.azureError(w, r, http.StatusForbidden, "AuthenticationFailed", "the signed URL expired at "+se)
		return
	}
	need := "r"
	if r.Method == http.MethodPut {
		need = "w"
	}
	if !strings.Contains(perm, need) {
		c.azureError(w, r, http.StatusForbidden, "AuthorizationPermissionMismatch", "the signed URL does not permit "+r.Method)
		return
	}
	w.Header().Set("x-ms-request-id", fmt.Sprintf("phialo-%d-%d", id, time.Now().UnixNano()))
	w.Header().Set("x-ms-version", "2024-08-04")
	switch r.Method {
	case http.MethodPut:
		c.putBlob(w, r, id)
	case http.MethodGet, http.MethodHead:
		c.getBlob(w, r, id)
	default:
		c.azureError(w, r, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", r.Method)
	}
}

func (c *GHACacheV2) entry(id int64) *ghaV2Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id < 1 || id > int64(len(c.entries)) {
		return nil
	}
	return c.entries[id-1]
}

func (c *GHACacheV2) blobPath(id int64) string {
	return filepath.Join(c.Dir, "blobs", strconv.FormatInt(id, 10))
}

// putBlob serves Put Blob (the whole blob in one request, x-ms-blob-type
// BlockBlob), Put Block (comp=block&blockid=...) and Put Block List
// (comp=blocklist), the calls Azure's UploadStream makes.
func (c *GHACacheV2) putBlob(w http.ResponseWriter, r *http.Request, id int64) {
	e := c.entry(id)
	if e == nil {
		c.azureError(w, r, http.StatusNotFound, "BlobNotFound", "no entry for the blob")
		return
	}
	c.mu.Lock()
	finalized := e.finalized
	c.mu.Unlock()
	if finalized {
		c.azureError(w, r, http.StatusForbidden, "AuthorizationFailure", "the cache entry is finalized")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.azureError(w, r, http.StatusBadRequest, "InvalidInput", err.Error())
		return
	}
	if r.ContentLength != int64(len(body)) {
		c.azureError(w, r, http.StatusBadRequest, "MissingContentLengthHeader", "Content-Length does not match the body")
		return
	}
	q := r.URL.Query()
	switch q.Get("comp") {
	case "":
		if r.Header.Get("x-ms-blob-type") != "BlockBlob" {
			c.azureError(w, r, http.StatusBadRequest, "MissingRequiredHeader", "x-ms-blob-type must be BlockBlob")
			return
		}
		if err := c.commit(e, [][]byte{body}); err != nil {
			c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
	case "block":
		blockID := q.Get("blockid")
		raw, err := base64.StdEncoding.DecodeString(blockID)
		if err != nil || len(raw) == 0 || len(raw) > 64 {
			c.azureError(w, r, http.StatusBadRequest, "InvalidQueryParameterValue", "blockid must be base64 of at most 64 bytes")
			return
		}
		dir := filepath.Join(c.Dir, "blocks", strconv.FormatInt(id, 10))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		file := filepath.Join(dir, hex.EncodeToString(raw))
		if err := os.WriteFile(file, body, 0o644); err != nil {
			c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		c.mu.Lock()
		e.staged[blockID] = file
		c.mu.Unlock()
	case "blocklist":
		var list struct {
			XMLName     xml.Name `xml:"BlockList"`
			Latest      []string `xml:"Latest"`
			Uncommitted []string `xml:"Uncommitted"`
			Committed   []string `xml:"Committed"`
		}
		if err := xml.Unmarshal(body, &list); err != nil {
			c.azureError(w, r, http.StatusBadRequest, "InvalidXmlDocument", err.Error())
			return
		}
		if len(list.Committed) > 0 {
			c.azureError(w, r, http.StatusBadRequest, "InvalidBlockList", "the blob has no committed blocks")
			return
		}
		var blocks [][]byte
		for _, b := range append(list.Latest, list.Uncommitted...) {
			c.mu.Lock()
			file, ok := e.staged[b]
			c.mu.Unlock()
			if !ok {
				c.azureError(w, r, http.StatusBadRequest, "InvalidBlockList", "no staged block "+b)
				return
			}
			data, err := os.ReadFile(file)
			if err != nil {
				c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
				return
			}
			blocks = append(blocks, data)
		}
		if err := c.commit(e, blocks); err != nil {
			c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
	default:
		c.azureError(w, r, http.StatusBadRequest, "InvalidQueryParameterValue", "comp="+q.Get("comp"))
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"0x%X"`, time.Now().UnixNano()))
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusCreated)
}

// commit writes an entry's blob from blocks and drops its staged blocks.
func (c *GHACacheV2) commit(e *ghaV2Entry, blocks [][]byte) error {
	data := bytes.Join(blocks, nil)
	if err := os.WriteFile(c.blobPath(e.id), data, 0o644); err != nil {
		return fmt.Errorf("writing blob %d: %w", e.id, err)
	}
	c.mu.Lock()
	e.committed, e.size = true, int64(len(data))
	e.staged = map[string]string{}
	c.mu.Unlock()
	if err := os.RemoveAll(filepath.Join(c.Dir, "blocks", strconv.FormatInt(e.id, 10))); err != nil {
		return fmt.Errorf("removing the blocks of blob %d: %w", e.id, err)
	}
	return nil
}

// getBlob serves Get Blob, with a range in x-ms-range or Range
// ("bytes=N-" or "bytes=N-M").
func (c *GHACacheV2) getBlob(w http.ResponseWriter, r *http.Request, id int64) {
	e := c.entry(id)
	if e != nil {
		c.mu.Lock()
		if !e.committed {
			e = nil
		}
		c.mu.Unlock()
	}
	if e == nil {
		c.azureError(w, r, http.StatusNotFound, "BlobNotFound", "the blob does not exist")
		return
	}
	data, err := os.ReadFile(c.blobPath(id))
	if err != nil {
		c.azureError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	rng := r.Header.Get("x-ms-range")
	if rng == "" {
		rng = r.Header.Get("Range")
	}
	status, start, end := http.StatusOK, 0, len(data)
	if rng != "" {
		from, to, ok := parseRange(rng, len(data))
		if !ok {
			c.azureError(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "range "+rng)
			return
		}
		status, start, end = http.StatusPartialContent, from, to+1
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(end-start))
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("x-ms-blob-type", "BlockBlob")
	w.Header().Set("ETag", fmt.Sprintf(`"0x%X"`, id))
	w.Header().Set("Last-Modified", e.created.UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		w.Write(data[start:end])
	}
}

// parseRange parses "bytes=N-" or "bytes=N-M" for a blob of size bytes,
// returning the first and last byte.
func parseRange(s string, size int) (int, int, bool) {
	spec, ok := strings.CutPrefix(s, "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	from, err := strconv.Atoi(a)
	if err != nil || from < 0 || from >= size {
		return 0, 0, false
	}
	to := size - 1
	if b != "" {
		if to, err = strconv.Atoi(b); err != nil || to < from {
			return 0, 0, false
		}
		to = min(to, size-1)
	}
	return from, to, true
}
