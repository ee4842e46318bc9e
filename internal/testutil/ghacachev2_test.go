package testutil

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// v2Client speaks the v2 protocol as github.com/tonistiigi/go-actions-cache
// does: Twirp calls with a bearer token, Azure blob calls on the signed URLs.
type v2Client struct {
	t     *testing.T
	c     *GHACacheV2
	token string
}

const v2Version = "9e0c1ba1d6ec7fe0f8db9e4a23b6bdc0b6c2b3c4d5e6f708192a3b4c5d6e7f80"

// call makes a Twirp call and returns the HTTP status and the decoded
// answer.
func (v *v2Client) call(method string, req any) (int, map[string]any) {
	v.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		v.t.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, strings.TrimRight(v.c.URL, "/")+twirpPrefix+method, bytes.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if v.token != "" {
		r.Header.Set("Authorization", "Bearer "+v.token)
	}
	return v.do(r)
}

func (v *v2Client) do(r *http.Request) (int, map[string]any) {
	v.t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	out := map[string]any{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &out); err != nil {
			v.t.Fatalf("%s %s answered %s: %v", r.Method, r.URL.Path, data, err)
		}
	} else {
		out["body"] = string(data)
		out["x-ms-error-code"] = resp.Header.Get("x-ms-error-code")
		out["content-range"] = resp.Header.Get("Content-Range")
	}
	return resp.StatusCode, out
}

// blob makes an Azure blob call on a signed URL.
func (v *v2Client) blob(method, u string, header map[string]string, body []byte) (int, map[string]any) {
	v.t.Helper()
	r, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	r.ContentLength = int64(len(body))
	r.Header.Set("x-ms-version", "2025-01-05")
	for k, val := range header {
		r.Header.Set(k, val)
	}
	return v.do(r)
}

// save creates key, uploads data in blocks of blockSize (one Put Blob when
// the data fits in one) and finalizes it.
func (v *v2Client) save(key string, data []byte, blockSize int) {
	v.t.Helper()
	status, out := v.call("CreateCacheEntry", map[string]string{"key": key, "version": v2Version})
	if status != http.StatusOK || out["ok"] != true {
		v.t.Fatalf("CreateCacheEntry %s: %d %v", key, status, out)
	}
	upload := out["signed_upload_url"].(string)
	if len(data) <= blockSize {
		if status, out := v.blob(http.MethodPut, upload, map[string]string{"x-ms-blob-type": "BlockBlob"}, data); status != http.StatusCreated {
			v.t.Fatalf("Put Blob %s: %d %v", key, status, out)
		}
	} else {
		var list strings.Builder
		list.WriteString(`<?xml version="1.0" encoding="UTF-8"?><BlockList>`)
		for i := 0; i*blockSize < len(data); i++ {
			id := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("block-%08d", i)))
			chunk := data[i*blockSize : min((i+1)*blockSize, len(data))]
			if status, out := v.blob(http.MethodPut, upload+"&comp=block&blockid="+url.QueryEscape(id), nil, chunk); status != http.StatusCreated {
				v.t.Fatalf("Put Block %s %d: %d %v", key, i, status, out)
			}
			list.WriteString("<Latest>" + id + "</Latest>")
		}
		list.WriteString("</BlockList>")
		if status, out := v.blob(http.MethodPut, upload+"&comp=blocklist", nil, []byte(list.String())); status != http.StatusCreated {
			v.t.Fatalf("Put Block List %s: %d %v", key, status, out)
		}
	}
	status, out = v.call("FinalizeCacheEntryUpload", map[string]any{"key": key, "size_bytes": len(data), "version": v2Version})
	if status != http.StatusOK || out["ok"] != true || out["entry_id"] == "" {
		v.t.Fatalf("FinalizeCacheEntryUpload %s: %d %v", key, status, out)
	}
}

// load looks key up with restore keys and downloads the hit from offset,
// returning the matched key and the bytes ("" and nil on a miss).
func (v *v2Client) load(key string, restore []string, offset int) (string, []byte) {
	v.t.Helper()
	status, out := v.call("GetCacheEntryDownloadURL", map[string]any{"key": key, "restore_keys": restore, "version": v2Version})
	if status != http.StatusOK {
		v.t.Fatalf("GetCacheEntryDownloadURL %s: %d %v", key, status, out)
	}
	if out["ok"] != true {
		return "", nil
	}
	header := map[string]string{}
	want := http.StatusOK
	if offset > 0 {
		header["x-ms-range"] = fmt.Sprintf("bytes=%d-", offset)
		want = http.StatusPartialContent
	}
	status, blob := v.blob(http.MethodGet, out["signed_download_url"].(string), header, nil)
	if status != want {
		v.t.Fatalf("Get Blob %s: %d %v, want %d", key, status, blob, want)
	}
	return out["matched_key"].(string), []byte(blob["body"].(string))
}

func TestGHACacheV2Protocol(t *testing.T) {
	c := NewGHACacheV2(t)
	if !strings.HasPrefix(c.URL, "http://127.0.0.1:") || !strings.HasSuffix(c.URL, "/") {
		t.Fatalf("URL = %q, want http://127.0.0.1:PORT/", c.URL)
	}
	mainToken := c.Token(GHACacheGrant{Scope: "refs/heads/main", Permission: GHACacheRead | GHACacheWrite})
	if want := []string{"ACTIONS_RESULTS_URL=" + c.URL, "ACTIONS_RUNTIME_TOKEN=" + mainToken}; !slices.Equal(c.Env(mainToken), want) {
		t.Errorf("Env() = %q, want %q", c.Env(mainToken), want)
	}
	main := &v2Client{t: t, c: c, token: mainToken}
	small := []byte("index of the main branch")
	large := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes in 7 blocks
	main.save("index-app-1-main#1", small, 1<<20)
	main.save("buildkit-blob-1-sha256:aa", large, 2500)

	want := []GHACacheV2Entry{
		{Scope: "refs/heads/main", Key: "buildkit-blob-1-sha256:aa", Version: v2Version, Size: int64(len(large))},
		{Scope: "refs/heads/main", Key: "index-app-1-main#1", Version: v2Version, Size: int64(len(small))},
	}
	if diff := cmp.Diff(want, c.Entries()); diff != "" {
		t.Errorf("Entries() (-want +got):\n%s", diff)
	}

	feature := &v2Client{t: t, c: c, token: c.Token(
		GHACacheGrant{Scope: "refs/heads/feature", Permission: GHACacheRead | GHACacheWrite},
		GHACacheGrant{Scope: "refs/heads/main", Permission: GHACacheRead},
	)}
	other := &v2Client{t: t, c: c, token: c.Token(GHACacheGrant{Scope: "refs/heads/other", Permission: GHACacheRead | GHACacheWrite})}
	feature.save("index-app-1-main#2", []byte("index of the feature branch"), 1<<20)

	for _, tc := range []struct {
		name        string
		client      *v2Client
		key         string
		restore     []string
		offset      int
		wantKey     string
		wantContent []byte
	}{
		{"exact key", main, "index-app-1-main#1", nil, 0, "index-app-1-main#1", small},
		{"large blob in blocks", main, "buildkit-blob-1-sha256:aa", nil, 0, "buildkit-blob-1-sha256:aa", large},
		{"download from an offset", main, "buildkit-blob-1-sha256:aa", nil, 15990, "buildkit-blob-1-sha256:aa", large[15990:]},
		{"restore key prefix", main, "index-app-1-main#", []string{"index-app-1-main#"}, 0, "index-app-1-main#1", small},
		{"own scope first", feature, "index-app-1-main#", []string{"index-app-1-main#"}, 0, "index-app-1-main#2", []byte("index of the feature branch")},
		{"default branch read through a grant", feature, "buildkit-blob-1-sha256:aa", nil, 0, "buildkit-blob-1-sha256:aa", large},
		{"another branch's entry is out of scope", other, "index-app-1-main#1", nil, 0, "", nil},
		{"a missing key", main, "index-app-1-nope", []string{"index-app-1-nope"}, 0, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.t = t
			key, content := tc.client.load(tc.key, tc.restore, tc.offset)
			if key != tc.wantKey || !bytes.Equal(content, tc.wantContent) {
				t.Errorf("load(%q) = %q, %d bytes; want %q, %d bytes", tc.key, key, len(content), tc.wantKey, len(tc.wantContent))
			}
		})
	}
	if r := c.Rejected(); len(r) != 0 {
		t.Errorf("refused requests: %q", r)
	}
}

// TestGHACacheV2Refuses checks each refusal of the service, as status and
// Twirp or Azure error code.
func TestGHACacheV2Refuses(t *testing.T) {
	c := NewGHACacheV2(t)
	now := time.Now()
	grant := `[{"Scope":"refs/heads/main","Permission":3}]`
	claims := func(edit func(map[string]any)) map[string]any {
		m := map[string]any{"ac": grant, "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "scp": "Actions.Results:1:1"}
		edit(m)
		return m
	}
	token := c.Token(GHACacheGrant{Scope: "refs/heads/main", Permission: GHACacheRead | GHACacheWrite})
	readOnly := c.Token(GHACacheGrant{Scope: "refs/heads/main", Permission: GHACacheRead})
	writeOnly := c.Token(GHACacheGrant{Scope: "refs/heads/main", Permission: GHACacheWrite})
	owner := &v2Client{t: t, c: c, token: token}
	owner.save("done", []byte("finalized"), 1<<20)
	_, created := owner.call("CreateCacheEntry", map[string]string{"key": "pending", "version": v2Version})
	upload := created["signed_upload_url"].(string)
	_, hit := owner.call("GetCacheEntryDownloadURL", map[string]any{"key": "done", "version": v2Version})
	download := hit["signed_download_url"].(string)
	u, err := url.Parse(download)
	if err != nil {
		t.Fatal(err)
	}
	var doneID, pendingID int64
	fmt.Sscan(strings.TrimPrefix(u.Path, "/blob/"), &doneID)
	if u, err = url.Parse(upload); err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(strings.TrimPrefix(u.Path, "/blob/"), &pendingID)
	if doneID == 0 || pendingID == 0 || doneID == pendingID {
		t.Fatalf("blob URLs %s and %s", download, upload)
	}

	twirp := func(method, contentType, token string, body any) func(t *testing.T) (int, map[string]any) {
		return func(t *testing.T) (int, map[string]any) {
			data, _ := json.Marshal(body)
			r, err := http.NewRequest(method, c.URL+"twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", contentType)
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return (&v2Client{t: t, c: c}).do(r)
		}
	}
	call := func(method, token string, body any) func(t *testing.T) (int, map[string]any) {
		return func(t *testing.T) (int, map[string]any) {
			return (&v2Client{t: t, c: c, token: token}).call(method, body)
		}
	}
	blob := func(method, u string, header map[string]string, body string) func(t *testing.T) (int, map[string]any) {
		return func(t *testing.T) (int, map[string]any) {
			return (&v2Client{t: t, c: c}).blob(method, u, header, []byte(body))
		}
	}
	create := map[string]string{"key": "k", "version": v2Version}
	for _, tc := range []struct {
		name       string
		do         func(t *testing.T) (int, map[string]any)
		wantStatus int
		wantCode   string
	}{
		{"no token", call("CreateCacheEntry", "", create), 401, "unauthenticated"},
		{"not a JWT", call("CreateCacheEntry", "abc", create), 401, "unauthenticated"},
		{"signed with another key", call("CreateCacheEntry", signJWT([]byte("another key"), claims(func(map[string]any) {})), create), 401, "unauthenticated"},
		{"tampered claims", call("CreateCacheEntry", tamper(t, token), create), 401, "unauthenticated"},
		{"expired", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { m["exp"] = now.Add(-time.Second).Unix() })), create), 401, "unauthenticated"},
		{"not yet valid", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() })), create), 401, "unauthenticated"},
		{"no exp", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { delete(m, "exp") })), create), 401, "unauthenticated"},
		{"no ac claim", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { delete(m, "ac") })), create), 401, "unauthenticated"},
		{"ac grants nothing", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { m["ac"] = "[]" })), create), 401, "unauthenticated"},
		{"no Actions.Results scp", call("CreateCacheEntry", c.sign(claims(func(m map[string]any) { m["scp"] = "Actions.GenericRead:0" })), create), 401, "unauthenticated"},
		{"create with a read-only token", call("CreateCacheEntry", readOnly, create), 403, "permission_denied"},
		{"finalize with a read-only token", call("FinalizeCacheEntryUpload", readOnly, map[string]any{"key": "pending", "size_bytes": 1, "version": v2Version}), 403, "permission_denied"},
		{"look up with a write-only token", call("GetCacheEntryDownloadURL", writeOnly, map[string]any{"key": "done", "version": v2Version}), 403, "permission_denied"},
		{"create twice", call("CreateCacheEntry", token, map[string]string{"key": "done", "version": v2Version}), 409, "already_exists"},
		{"unknown field", call("CreateCacheEntry", token, map[string]string{"key": "k", "version": v2Version, "cache_size": "1"}), 400, "malformed"},
		{"no version", call("CreateCacheEntry", token, map[string]string{"key": "k"}), 400, "invalid_argument"},
		{"comma in key", call("CreateCacheEntry", token, map[string]string{"key": "a,b", "version": v2Version}), 400, "invalid_argument"},
		{"finalize before upload", call("FinalizeCacheEntryUpload", token, map[string]any{"key": "pending", "size_bytes": 1, "version": v2Version}), 400, "failed_precondition"},
		{"finalize an unknown entry", call("FinalizeCacheEntryUpload", token, map[string]any{"key": "nope", "size_bytes": 1, "version": v2Version}), 404, "not_found"},
		{"unknown method", call("DeleteCacheEntry", token, create), 404, "bad_route"},
		{"GET", twirp(http.MethodGet, "application/json", token, create), 404, "bad_route"},
		{"protobuf", twirp(http.MethodPost, "application/protobuf", token, create), 404, "bad_route"},
		{"the v1 protocol", blob(http.MethodGet, c.URL+"_apis/artifactcache/cache?keys=done&version="+v2Version, nil, ""), 404, "bad_route"},
		{"bad signature", blob(http.MethodGet, strings.Replace(download, "sig=", "sig=0", 1), nil, ""), 403, "AuthenticationFailed"},
		{"expired URL", blob(http.MethodGet, c.blobURL(doneID, "r", now.Add(-time.Second)), nil, ""), 403, "AuthenticationFailed"},
		{"write with a read URL", blob(http.MethodPut, download, map[string]string{"x-ms-blob-type": "BlockBlob"}, "x"), 403, "AuthorizationPermissionMismatch"},
		{"write a finalized blob", blob(http.MethodPut, c.blobURL(doneID, "cw", now.Add(time.Minute)), map[string]string{"x-ms-blob-type": "BlockBlob"}, "x"), 403, "AuthorizationFailure"},
		{"Put Blob without a blob type", blob(http.MethodPut, upload, nil, "x"), 400, "MissingRequiredHeader"},
		{"block id not base64", blob(http.MethodPut, upload+"&comp=block&blockid=%21%21", nil, "x"), 400, "InvalidQueryParameterValue"},
		{"block list not XML", blob(http.MethodPut, upload+"&comp=blocklist", nil, "x"), 400, "InvalidXmlDocument"},
		{"unknown block in the list", blob(http.MethodPut, upload+"&comp=blocklist", nil, "<BlockList><Latest>bm9wZQ==</Latest></BlockList>"), 400, "InvalidBlockList"},
		{"read before upload", blob(http.MethodGet, c.blobURL(pendingID, "r", now.Add(time.Minute)), nil, ""), 404, "BlobNotFound"},
		{"range past the end", blob(http.MethodGet, download, map[string]string{"x-ms-range": "bytes=100-"}, ""), 416, "InvalidRange"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(c.Rejected())
			status, out := tc.do(t)
			code, _ := out["code"].(string)
			if code == "" {
				code, _ = out["x-ms-error-code"].(string)
			}
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("answered %d %q (%v), want %d %q", status, code, out, tc.wantStatus, tc.wantCode)
			}
			if got := len(c.Rejected()); got != before+1 {
				t.Errorf("Rejected() grew by %d, want 1", got-before)
			}
		})
	}

	t.Run("finalize with a wrong size", func(t *testing.T) {
		v := &v2Client{t: t, c: c, token: token}
		if status, out := v.blob(http.MethodPut, upload, map[string]string{"x-ms-blob-type": "BlockBlob"}, []byte("four")); status != http.StatusCreated {
			t.Fatalf("Put Blob: %d %v", status, out)
		}
		status, out := v.call("FinalizeCacheEntryUpload", map[string]any{"key": "pending", "size_bytes": 5, "version": v2Version})
		if status != http.StatusBadRequest || out["code"] != "invalid_argument" {
			t.Errorf("answered %d %v, want 400 invalid_argument", status, out)
		}
		if e := c.Entries(); len(e) != 1 || e[0].Key != "done" {
			t.Errorf("Entries() = %v, want only the finalized one", e)
		}
	})
}

// tamper changes a token's claims without signing them again.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(`refs/heads/main`), []byte(`refs/heads/evil`), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}
