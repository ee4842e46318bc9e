package ghevent_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/ghevent"
)

const eventsDir = "../../testdata/events"

// The commits the fixtures name.
const (
	shaPush  = "abc1234567890abcdef1234567890abcdef12345" // GITHUB_SHA of pushes, PR head
	shaMerge = "f00dbabe0000000000000000000000000000cafe" // merge commit of pull_request
	shaBase  = "1111111111111111111111111111111111111111" // PR base, GITHUB_SHA of pull_request_target
)

// fakeEnv is a getenv over a map; unset names read as "".
func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// readEnvFile parses a fixture's KEY=VALUE lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// fixtureSummary is what the action reads from a fixture's context.
type fixtureSummary struct {
	EventName, Ref, SHA string
	DefaultBranch       string
	BaseRef             string
	PRNumber            int
	PRBaseRef           string
	IsPullRequest       bool
	IsFork              bool
	BuildSHAPRHead      string // BuildSHA(true)
	BuildSHA            string // BuildSHA(false)
	ReleaseTag          string
	ForceRebuild        string
	ForceRebuildSet     bool
	CommitDate          string // CommitDate(SHA) as RFC 3339, "" when not found
}

func summarize(c *ghevent.Context) fixtureSummary {
	s := fixtureSummary{
		EventName:      c.EventName,
		Ref:            c.Ref,
		SHA:            c.SHA,
		DefaultBranch:  c.DefaultBranch(),
		BaseRef:        c.BaseRef(),
		PRNumber:       c.PRNumber(),
		PRBaseRef:      c.PRBaseRef(),
		IsPullRequest:  c.IsPullRequest(),
		IsFork:         c.IsFork(),
		BuildSHAPRHead: c.BuildSHA(true),
		BuildSHA:       c.BuildSHA(false),
	}
	if c.Payload.Release != nil {
		s.ReleaseTag = c.Payload.Release.TagName
	}
	s.ForceRebuild, s.ForceRebuildSet = c.Input("force-rebuild")
	if d, ok := c.CommitDate(c.SHA); ok {
		s.CommitDate = d.Format(time.RFC3339)
	}
	return s
}

func TestLoadFixtures(t *testing.T) {
	t.Parallel()
	const headTime = "2024-06-27T16:20:00+02:00"
	push := func(ref, defaultBranch, baseRef string) fixtureSummary {
		return fixtureSummary{
			EventName: "push", Ref: ref, SHA: shaPush,
			DefaultBranch: defaultBranch, BaseRef: baseRef,
			BuildSHAPRHead: shaPush, BuildSHA: shaPush,
			CommitDate: headTime,
		}
	}
	pr := func(event, ref, sha string, fork bool) fixtureSummary {
		return fixtureSummary{
			EventName: event, Ref: ref, SHA: sha,
			DefaultBranch: "main",
			PRNumber:      123, PRBaseRef: "main",
			IsPullRequest: true, IsFork: fork,
			BuildSHAPRHead: shaPush, BuildSHA: sha,
		}
	}
	// Keyed by fixture name; a fixture without an entry fails the test so
	// that new fixtures get expectations.
	want := map[string]fixtureSummary{
		"create": {
			EventName: "create", Ref: "refs/heads/release/2024", SHA: shaPush,
			DefaultBranch: "main", BuildSHAPRHead: shaPush, BuildSHA: shaPush,
		},
		"pull_request":      pr("pull_request", "refs/pull/123/merge", shaMerge, false),
		"pull_request-fork": pr("pull_request", "refs/pull/123/merge", shaMerge, true),
		// GITHUB_REF is refs/heads/main; Load swaps in the merge ref.
		"pull_request_target":  pr("pull_request_target", "refs/pull/123/merge", shaBase, true),
		"push-feature":         push("refs/heads/feature/login", "main", ""),
		"push-main":            push("refs/heads/main", "main", ""),
		"push-master":          push("refs/heads/master", "master", ""),
		"push-tag":             push("refs/tags/v1.2.3", "main", "refs/heads/main"),
		"push-tag-no-base-ref": push("refs/tags/v1.2.3", "main", ""),
		"push-tag-prerelease":  push("refs/tags/v2.0.0-rc.1", "main", "refs/heads/main"),
		"release": {
			EventName: "release", Ref: "refs/tags/v1.2.3", SHA: shaPush,
			DefaultBranch: "main", BuildSHAPRHead: shaPush, BuildSHA: shaPush,
			ReleaseTag: "v1.2.3",
		},
		"schedule": {
			EventName: "schedule", Ref: "refs/heads/main", SHA: shaPush,
			DefaultBranch: "main", BuildSHAPRHead: shaPush, BuildSHA: shaPush,
		},
		// JSON string "false".
		"workflow_dispatch-feature": {
			EventName: "workflow_dispatch", Ref: "refs/heads/feature/login", SHA: shaPush,
			DefaultBranch: "main", BuildSHAPRHead: shaPush, BuildSHA: shaPush,
			ForceRebuild: "false", ForceRebuildSet: true,
		},
		// JSON boolean true.
		"workflow_dispatch": {
			EventName: "workflow_dispatch", Ref: "refs/heads/main", SHA: shaPush,
			DefaultBranch: "main", BuildSHAPRHead: shaPush, BuildSHA: shaPush,
			ForceRebuild: "true", ForceRebuildSet: true,
		},
	}

	envFiles, err := filepath.Glob(filepath.Join(eventsDir, "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(envFiles) == 0 {
		t.Fatalf("no fixtures in %s", eventsDir)
	}
	seen := map[string]bool{}
	for _, envFile := range envFiles {
		name := strings.TrimSuffix(filepath.Base(envFile), ".env")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, ok := want[name]
			if !ok {
				t.Fatalf("fixture %s has no expectations in this test", name)
			}
			env := readEnvFile(t, envFile)
			env["GITHUB_EVENT_PATH"] = filepath.Join(eventsDir, name+".json")
			c, err := ghevent.Load(fakeEnv(env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(w, summarize(c)); diff != "" {
				t.Errorf("context mismatch (-want +got):\n%s", diff)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("expectations for %s, but testdata/events has no %s.env", name, name)
		}
	}
}

func loadFixture(t *testing.T, name string) *ghevent.Context {
	t.Helper()
	env := readEnvFile(t, filepath.Join(eventsDir, name+".env"))
	env["GITHUB_EVENT_PATH"] = filepath.Join(eventsDir, name+".json")
	c, err := ghevent.Load(fakeEnv(env))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return c
}

func TestCommitDate(t *testing.T) {
	t.Parallel()
	wantTime := time.Date(2024, 6, 27, 16, 20, 0, 0, time.FixedZone("", 2*60*60))
	tests := []struct {
		name    string
		payload string // "" uses the push-main fixture
		sha     string
		want    time.Time
		wantOK  bool
	}{
		{name: "push/head commit found", sha: shaPush, want: wantTime, wantOK: true},
		{name: "push/sha not in payload", sha: shaMerge},
		{name: "push/empty sha", sha: ""},
		{
			// Only listed in commits, not as head_commit.
			name:    "commits only/found",
			payload: `{"commits":[{"id":"a1","timestamp":"2020-01-02T03:04:05Z"},{"id":"b2","timestamp":"2021-01-02T03:04:05Z"}]}`,
			sha:     "b2",
			want:    time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC),
			wantOK:  true,
		},
		{
			// A later listing with a usable timestamp still counts.
			name:    "bad head timestamp/falls back to commits",
			payload: `{"head_commit":{"id":"a1","timestamp":"yesterday"},"commits":[{"id":"a1","timestamp":"2020-01-02T03:04:05Z"}]}`,
			sha:     "a1",
			want:    time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
			wantOK:  true,
		},
		{
			name:    "unparsable timestamp/not found",
			payload: `{"head_commit":{"id":"a1","timestamp":"yesterday"}}`,
			sha:     "a1",
		},
		{
			name:    "no timestamp/not found",
			payload: `{"head_commit":{"id":"a1"}}`,
			sha:     "a1",
		},
		{name: "no commits/not found", payload: `{}`, sha: shaPush},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c *ghevent.Context
			if tt.payload == "" {
				c = loadFixture(t, "push-main")
			} else {
				p, err := ghevent.Decode([]byte(tt.payload))
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				c = &ghevent.Context{Payload: p}
			}
			got, ok := c.CommitDate(tt.sha)
			if ok != tt.wantOK {
				t.Errorf("CommitDate(%q) ok = %v, want %v", tt.sha, ok, tt.wantOK)
			}
			// cmp uses time.Time.Equal; the offset is checked apart.
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CommitDate(%q) (-want +got):\n%s", tt.sha, diff)
			}
			if ok && got.Format(time.RFC3339) != tt.want.Format(time.RFC3339) {
				t.Errorf("CommitDate(%q) = %s, want %s", tt.sha, got.Format(time.RFC3339), tt.want.Format(time.RFC3339))
			}
		})
	}
}

func TestInput(t *testing.T) {
	t.Parallel()
	type result struct {
		Value string
		OK    bool
	}
	tests := []struct {
		name    string
		fixture string
		payload string
		input   string
		want    result
	}{
		{name: "workflow_dispatch/boolean true", fixture: "workflow_dispatch", input: "force-rebuild", want: result{"true", true}},
		{name: "workflow_dispatch/string false", fixture: "workflow_dispatch-feature", input: "force-rebuild", want: result{"false", true}},
		{name: "workflow_dispatch/missing input", fixture: "workflow_dispatch", input: "no-such-input", want: result{"", false}},
		{name: "push/no inputs", fixture: "push-main", input: "force-rebuild", want: result{"", false}},
		{name: "null input/set but empty", payload: `{"inputs":{"x":null}}`, input: "x", want: result{"", true}},
		{name: "number input/as text", payload: `{"inputs":{"x":42}}`, input: "x", want: result{"42", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c *ghevent.Context
			if tt.fixture != "" {
				c = loadFixture(t, tt.fixture)
			} else {
				p, err := ghevent.Decode([]byte(tt.payload))
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				c = &ghevent.Context{Payload: p}
			}
			var got result
			got.Value, got.OK = c.Input(tt.input)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Input(%q) (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

func TestDecodeInputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    map[string]ghevent.Input
		wantErr string
	}{
		{name: "string/kept", json: `"yes"`, want: map[string]ghevent.Input{"x": "yes"}},
		{name: "string with escapes/unquoted", json: `"a\"b\u00e9"`, want: map[string]ghevent.Input{"x": `a"bé`}},
		{name: "boolean true/as text", json: `true`, want: map[string]ghevent.Input{"x": "true"}},
		{name: "boolean false/as text", json: `false`, want: map[string]ghevent.Input{"x": "false"}},
		{name: "integer/as written", json: `42`, want: map[string]ghevent.Input{"x": "42"}},
		{name: "negative float/as written", json: `-1.5e3`, want: map[string]ghevent.Input{"x": "-1.5e3"}},
		{name: "null/empty", json: `null`, want: map[string]ghevent.Input{"x": ""}},
		{name: "object/error", json: `{"a":1}`, wantErr: "want a string, boolean or number"},
		{name: "array/error", json: `[1]`, wantErr: "want a string, boolean or number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ghevent.Decode([]byte(`{"inputs":{"x":` + tt.json + `}}`))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, p.Inputs); diff != "" {
				t.Errorf("Inputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want *ghevent.Context
	}{
		{
			name: "empty environment/github.com defaults",
			env:  map[string]string{},
			want: &ghevent.Context{ServerURL: "https://github.com", APIURL: "https://api.github.com"},
		},
		{
			name: "every variable set/copied",
			env: map[string]string{
				"GITHUB_EVENT_NAME":       "push",
				"GITHUB_REF":              "refs/heads/main",
				"GITHUB_SHA":              shaPush,
				"GITHUB_REPOSITORY":       "barde/PhialoAstro",
				"GITHUB_REPOSITORY_OWNER": "Barde",
				"GITHUB_ACTOR":            "octocat",
				"GITHUB_SERVER_URL":       "https://ghe.example.com",
				"GITHUB_API_URL":          "https://ghe.example.com/api/v3",
				"GITHUB_RUN_ID":           "4711",
				"GITHUB_WORKSPACE":        "/github/workspace",
			},
			want: &ghevent.Context{
				EventName: "push", Ref: "refs/heads/main", SHA: shaPush,
				Repository: "barde/PhialoAstro", RepositoryOwner: "Barde", Actor: "octocat",
				ServerURL: "https://ghe.example.com", APIURL: "https://ghe.example.com/api/v3",
				RunID: "4711", Workspace: "/github/workspace",
			},
		},
		{
			name: "server and api url/trailing slash trimmed",
			env: map[string]string{
				"GITHUB_SERVER_URL": "https://ghe.example.com/",
				"GITHUB_API_URL":    "https://ghe.example.com/api/v3/",
			},
			want: &ghevent.Context{ServerURL: "https://ghe.example.com", APIURL: "https://ghe.example.com/api/v3"},
		},
		{
			name: "owner unset/derived from GITHUB_REPOSITORY",
			env:  map[string]string{"GITHUB_REPOSITORY": "barde/PhialoAstro"},
			want: &ghevent.Context{
				Repository: "barde/PhialoAstro", RepositoryOwner: "barde",
				ServerURL: "https://github.com", APIURL: "https://api.github.com",
			},
		},
		{
			// Without a PR number there is no merge ref to swap in.
			name: "pull_request_target without payload/ref kept",
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_REF": "refs/heads/main"},
			want: &ghevent.Context{
				EventName: "pull_request_target", Ref: "refs/heads/main",
				ServerURL: "https://github.com", APIURL: "https://api.github.com",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghevent.Load(fakeEnv(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadEventFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing.json")
	tests := []struct {
		name        string
		path        string
		wantErr     bool
		wantIs      error
		wantPayload ghevent.Payload
	}{
		{name: "no GITHUB_EVENT_PATH/empty payload", path: ""},
		{name: "empty file/empty payload", path: write("empty.json", "")},
		{name: "whitespace only/empty payload", path: write("blank.json", " \n\t\n")},
		{name: "path does not exist/error", path: missing, wantErr: true, wantIs: fs.ErrNotExist},
		{name: "path is a directory/error", path: dir, wantErr: true},
		{name: "not JSON/error", path: write("text.json", "not json"), wantErr: true},
		{name: "JSON array/error", path: write("array.json", "[1,2]"), wantErr: true},
		{name: "truncated JSON/error", path: write("cut.json", `{"number": 1`), wantErr: true},
		{name: "number as string/error", path: write("num.json", `{"number": "123"}`), wantErr: true},
		{
			name:        "small object/decoded",
			path:        write("small.json", `{"number": 7, "base_ref": "refs/heads/dev"}`),
			wantPayload: ghevent.Payload{Number: 7, BaseRef: ptr("refs/heads/dev")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": tt.path}
			c, err := ghevent.Load(fakeEnv(env))
			if c == nil {
				t.Fatal("Load returned a nil context")
			}
			// The context stays usable when the event file is bad.
			if c.EventName != "push" || c.EventPath != tt.path {
				t.Errorf("EventName, EventPath = %q, %q; want %q, %q", c.EventName, c.EventPath, "push", tt.path)
			}
			if diff := cmp.Diff(tt.wantPayload, c.Payload); diff != "" {
				t.Errorf("Payload (-want +got):\n%s", diff)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Load: no error, want one")
			}
			for _, s := range []string{"GITHUB_EVENT_PATH", tt.path} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		want    ghevent.Payload
		wantErr bool
	}{
		{name: "empty/zero payload", data: ""},
		{name: "blank/zero payload", data: "\n  \r\n"},
		{name: "empty object/zero payload", data: "{}"},
		{name: "base_ref null/nil", data: `{"base_ref":null}`},
		{name: "base_ref empty/set", data: `{"base_ref":""}`, want: ghevent.Payload{BaseRef: ptr("")}},
		{
			// Unknown fields are ignored, known ones kept.
			name: "unknown fields/ignored",
			data: `{"zen":"Keep it simple","action":"opened","sender":{"login":"x"}}`,
			want: ghevent.Payload{Action: "opened"},
		},
		{name: "string/error", data: `"push"`, wantErr: true},
		{name: "number/error", data: `1`, wantErr: true},
		{name: "trailing garbage/error", data: `{} x`, wantErr: true},
		{name: "pr number too large/error", data: `{"number":1e100}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghevent.Decode([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decode(%q) error = %v, want error %v", tt.data, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "want a JSON object") {
				t.Errorf("Decode(%q) error = %q, want it to say %q", tt.data, err, "want a JSON object")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode(%q) (-want +got):\n%s", tt.data, diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzDecode(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(fixtures) == 0 {
		f.Fatalf("no fixtures in %s", eventsDir)
	}
	sort.Strings(fixtures)
	for _, p := range fixtures {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"null",
		"{}",
		"[]",
		`{"inputs":{"a":1e400,"b":-0,"c":null,"d":false}}`,
		`{"inputs":{"a":{}}}`,
		`{"base_ref":null,"BASE_REF":"x"}`,
		`{"commits":[],"inputs":{}}`,
		`{"pull_request":{"head":{"repo":null}}}`,
		"{\"action\":\"\xff\xfe\"}",
		"\u00a0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ghevent.Decode(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", p, err)
		}
		p2, err := ghevent.Decode(b)
		if err != nil {
			t.Fatalf("decoding the re-encoded payload %s: %v", b, err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Errorf("payload changed in a round trip through %s (-first +second):\n%s", b, diff)
		}
	})
}

func TestIsForkDeletedHeadRepository(t *testing.T) {
	t.Parallel()
	// GitHub sends head.repo null when the fork has been deleted.
	p, err := ghevent.Decode([]byte(`{"number": 5, "pull_request": {"number": 5,
		"head": {"ref": "x", "sha": "` + shaPush + `", "repo": null},
		"base": {"ref": "main", "repo": {"full_name": "barde/phialoastro"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &ghevent.Context{EventName: "pull_request", Ref: "refs/pull/5/merge", Payload: p}
	if !c.IsFork() {
		t.Error("IsFork() = false for a pull request whose head repository is deleted")
	}
}
