package testutil

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGHACacheProtocol walks the v1 protocol as BuildKit's client does:
// reserve, upload a chunk, commit, look the key up, download.
func TestGHACacheProtocol(t *testing.T) {
	c := NewGHACache(t)
	if !strings.HasPrefix(c.URL, "http://127.0.0.1:") || !strings.HasSuffix(c.URL, "/") {
		t.Fatalf("URL = %q, want http://127.0.0.1:PORT/.../", c.URL)
	}
	env := c.Env()
	want := []string{"ACTIONS_CACHE_URL=" + c.URL, "ACTIONS_RUNTIME_TOKEN=" + c.Token}
	if !slices.Equal(env, want) {
		t.Errorf("Env() = %q, want %q", env, want)
	}
	checkToken(t, c.Token)

	if keys, err := c.Entries(); err != nil || len(keys) != 0 {
		t.Fatalf("Entries() before any upload = %q, %v; want none", keys, err)
	}

	api := c.URL + "_apis/artifactcache/"
	do := func(method, url, contentRange string, body []byte, wantStatus int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Accept", "application/json;api-version=6.0-preview.1")
		if contentRange != "" {
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Content-Range", contentRange)
		} else if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %s %s, want %d", method, url, resp.Status, b, wantStatus)
		}
		return b
	}

	blob := []byte("layer bytes")
	var reserved struct {
		CacheID uint64 `json:"cacheId"`
	}
	b := do("POST", api+"caches", "", []byte(fmt.Sprintf(`{"key":"Index-Test-1","version":"v1","cacheSize":%d}`, len(blob))), 200)
	if err := json.Unmarshal(b, &reserved); err != nil || reserved.CacheID == 0 {
		t.Fatalf("reserve answered %s (%v)", b, err)
	}
	do("PATCH", fmt.Sprintf("%scaches/%d", api, reserved.CacheID), fmt.Sprintf("bytes 0-%d/*", len(blob)-1), blob, 200)
	if keys, err := c.Entries(); err != nil || len(keys) != 0 {
		t.Fatalf("Entries() before commit = %q, %v; want none", keys, err)
	}
	do("POST", fmt.Sprintf("%scaches/%d", api, reserved.CacheID), "", []byte(fmt.Sprintf(`{"size":%d}`, len(blob))), 200)

	keys, err := c.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"index-test-1"}; !slices.Equal(keys, want) {
		t.Errorf("Entries() = %q, want %q", keys, want)
	}

	do("GET", api+"cache?keys=index-test-2&version=v1", "", nil, 204)
	var hit struct {
		ArchiveLocation string `json:"archiveLocation"`
		CacheKey        string `json:"cacheKey"`
	}
	b = do("GET", api+"cache?keys=index-test-1&version=v1", "", nil, 200)
	if err := json.Unmarshal(b, &hit); err != nil || hit.CacheKey != "index-test-1" {
		t.Fatalf("lookup answered %s (%v)", b, err)
	}
	if got := do("GET", hit.ArchiveLocation, "", nil, 200); !bytes.Equal(got, blob) {
		t.Errorf("download = %q, want %q", got, blob)
	}
}

// checkToken checks the claims BuildKit's gha client requires.
func checkToken(t *testing.T, token string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AC  string `json:"ac"`
		NBF int64  `json:"nbf"`
		EXP int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("token payload %s: %v", raw, err)
	}
	var scopes []struct {
		Scope      string
		Permission int
	}
	if err := json.Unmarshal([]byte(claims.AC), &scopes); err != nil || len(scopes) != 1 ||
		scopes[0].Scope != GHACacheScope || scopes[0].Permission != 3 {
		t.Errorf("ac claim %q: want one scope %s with permission 3 (%v)", claims.AC, GHACacheScope, err)
	}
	now := time.Now().Unix()
	if claims.NBF >= now || claims.EXP <= now {
		t.Errorf("nbf %d, exp %d: want nbf < %d < exp", claims.NBF, claims.EXP, now)
	}
}

// TestGHACacheBuildx exports a build's cache to the server with buildx and
// the machine's BuildKit, prunes BuildKit's local cache, and proves the
// second build takes its RUN step from the server.
func TestGHACacheBuildx(t *testing.T) {
	host := os.Getenv("BUILDKIT_HOST")
	if host == "" {
		t.Skip("BUILDKIT_HOST is not set: run hack/e2e/up.sh STATE_DIR and export BUILDKIT_HOST from STATE_DIR/env (hack/e2e/env.sh puts buildx and buildctl on PATH)")
	}
	buildx, err := exec.LookPath("buildx")
	if err != nil {
		t.Fatalf("BUILDKIT_HOST is set but buildx is not on PATH (source hack/e2e/env.sh): %v", err)
	}
	buildctl, err := exec.LookPath("buildctl")
	if err != nil {
		t.Fatalf("BUILDKIT_HOST is set but buildctl is not on PATH (source hack/e2e/env.sh): %v", err)
	}

	cache := NewGHACache(t)
	tmp := t.TempDir()
	dockerConfig := filepath.Join(tmp, "docker")
	if err := os.Mkdir(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	// The token goes only into the environment, never on a command line.
	env := append(inheritedEnv(), "DOCKER_CONFIG="+dockerConfig)
	env = append(env, cache.Env()...)
	run := func(name string, args ...string) (stdout, stderr []byte, err error) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdout = &out
		cmd.Stderr = &errOut
		err = cmd.Run()
		return out.Bytes(), errOut.Bytes(), err
	}

	nonce := randomHex(t)
	builder := "phialo-gha-" + nonce[:12]
	if _, stderr, err := run(buildx, "create", "--name", builder, "--driver", "remote", host); err != nil {
		t.Fatalf("buildx create: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		if _, stderr, err := run(buildx, "rm", builder); err != nil {
			t.Errorf("buildx rm %s: %v\n%s", builder, err, stderr)
		}
	})

	// The context: a file that is new on every run (so the first build
	// really runs the RUN step even on a long-lived buildkitd), and a static
	// program for the RUN step, as scratch has no shell.
	ctxDir := filepath.Join(tmp, "ctx")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ctxDir, "hello.txt"), "hello "+nonce+"\n")
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), `FROM scratch
COPY hello.txt /hello.txt
COPY probe /probe
RUN ["/probe", "/hello.txt", "/copy.txt"]
`)
	buildProbe(t, filepath.Join(tmp, "probe"), filepath.Join(ctxDir, "probe"))

	const scope = "test-main"
	build := func(name string, cacheFlag ...string) map[string]*vertex {
		t.Helper()
		args := append([]string{"build", "--builder", builder, "--progress=rawjson",
			"--output", "type=cacheonly"}, cacheFlag...)
		start := time.Now()
		_, stderr, err := run(buildx, append(args, ctxDir)...)
		elapsed := time.Since(start)
		vs := parseRawJSON(t, stderr)
		if err != nil {
			t.Fatalf("%s build: %v\n%s", name, err, describe(vs, stderr))
		}
		t.Logf("%s build: %.2fs", name, elapsed.Seconds())
		return vs
	}

	cold := build("cold", "--cache-to", "type=gha,scope="+scope+",mode=max")
	if v := runStep(t, cold); v.cached {
		t.Fatalf("cold build: RUN step %q was cached; want it executed", v.name)
	}
	keys, err := cache.Entries()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cache entries after export: %q", keys)
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "index-"+scope+"-") }) {
		t.Fatalf("no index-%s-* entry in %q", scope, keys)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "buildkit-blob-") }) {
		t.Fatalf("no buildkit-blob-* entry in %q", keys)
	}

	if _, stderr, err := run(buildctl, "--addr", host, "prune", "--all"); err != nil {
		t.Fatalf("buildctl prune --all: %v\n%s", err, stderr)
	}

	cached := build("cached", "--cache-from", "type=gha,scope="+scope)
	if v := runStep(t, cached); !v.cached {
		t.Fatalf("cached build: RUN step %q was executed, want \"cached\":true\n%s", v.name, describe(cached, nil))
	}
}

// inheritedEnv is os.Environ without what would point buildx elsewhere: a
// runner's real cache service, a user's builder or docker config.
func inheritedEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(k, "ACTIONS_") || strings.HasPrefix(k, "BUILDX_") || k == "DOCKER_CONFIG"
	})
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildProbe compiles, in srcDir, a static linux program for this machine's
// architecture to out: it sleeps a second, so that a RUN step executed is
// told apart from one taken from the cache by time as well, then copies
// argv[1] to argv[2].
func buildProbe(t *testing.T, srcDir, out string) {
	t.Helper()
	if err := os.Mkdir(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(srcDir, "go.mod"), "module probe\n\ngo 1.21\n")
	writeFile(t, filepath.Join(srcDir, "main.go"), `package main

import (
	"os"
	"time"
)

func main() {
	time.Sleep(time.Second)
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(os.Args[2], b, 0o644); err != nil {
		panic(err)
	}
}
`)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOWORK=off", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, b)
	}
}

// vertex sums up BuildKit's status updates for one build step.
type vertex struct {
	name   string
	cached bool
	err    string
	logs   []byte
}

// parseRawJSON reads buildx's --progress=rawjson stream (one JSON
// SolveStatus a line) and skips anything else on stderr.
func parseRawJSON(t *testing.T, stream []byte) map[string]*vertex {
	t.Helper()
	vs := map[string]*vertex{}
	get := func(d string) *vertex {
		if vs[d] == nil {
			vs[d] = &vertex{}
		}
		return vs[d]
	}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var status struct {
			Vertexes []struct {
				Digest string `json:"digest"`
				Name   string `json:"name"`
				Cached bool   `json:"cached"`
				Error  string `json:"error"`
			} `json:"vertexes"`
			Logs []struct {
				Vertex string `json:"vertex"`
				Data   []byte `json:"data"`
			} `json:"logs"`
		}
		if err := json.Unmarshal(line, &status); err != nil {
			t.Logf("rawjson: skipping line: %v", err)
			continue
		}
		for _, sv := range status.Vertexes {
			v := get(sv.Digest)
			if sv.Name != "" {
				v.name = sv.Name
			}
			v.cached = v.cached || sv.Cached
			if sv.Error != "" {
				v.err = sv.Error
			}
		}
		for _, l := range status.Logs {
			v := get(l.Vertex)
			v.logs = append(v.logs, l.Data...)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read rawjson: %v", err)
	}
	return vs
}

// runStep finds the Dockerfile's RUN step among the vertices.
func runStep(t *testing.T, vs map[string]*vertex) *vertex {
	t.Helper()
	for _, v := range vs {
		if strings.Contains(v.name, "RUN") && strings.Contains(v.name, "/probe") {
			return v
		}
	}
	t.Fatalf("no RUN step in the build's progress:\n%s", describe(vs, nil))
	return nil
}

// describe renders the steps (and raw stderr when given) for failures.
func describe(vs map[string]*vertex, stderr []byte) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "step %q cached=%v", v.name, v.cached)
		if v.err != "" {
			fmt.Fprintf(&b, " error=%q", v.err)
		}
		b.WriteString("\n")
		if len(v.logs) > 0 {
			fmt.Fprintf(&b, "  logs: %s\n", bytes.TrimSpace(v.logs))
		}
	}
	if len(vs) == 0 && len(stderr) > 0 {
		fmt.Fprintf(&b, "stderr:\n%s\n", stderr)
	}
	return b.String()
}
