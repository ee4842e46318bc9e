package buildx

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var updateProgress = flag.Bool("updateProgress", false, "rewrite testdata/progress/*.log.golden")

// The fixtures are real `buildx build --progress=rawjson` streams (stderr),
// recorded by testdata/progress/record.sh from the Dockerfiles in
// testdata/progress/src against BuildKit v0.34.2 and buildx v0.38.2.
const progressDir = "testdata/progress"

// noOutputWarning is what buildx prints in plain text when a build has no
// output; every fixture has it.
const noOutputWarning = "WARNING: No output specified with remote driver. Build result will only remain in the build cache. To push result image into registry use --push or to load image into docker use --load"

// stepView is the part of a Step a fixture test pins down: digests and
// durations change with every recording.
type stepView struct {
	Name   string
	Cached bool
	Error  string
	Logs   []string
}

func viewSteps(steps []Step) []stepView {
	var out []stepView
	for _, s := range steps {
		out = append(out, stepView{Name: s.Name, Cached: s.Cached, Error: s.Error, Logs: s.Logs})
	}
	return out
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(progressDir, name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// plainLines are the lines of a fixture that are not JSON objects.
func plainLines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

func TestReadProgressFixtures(t *testing.T) {
	t.Parallel()
	failedRun := `[2/3] RUN ["/app", "-exit", "1", "compiling", "linking", "-stderr", "error: undefined: frobnicate", "build failed"]`
	failedErr := `process "/app -exit 1 compiling linking -stderr error: undefined: frobnicate build failed" did not complete successfully: exit code: 1`
	var args, last20 []string
	for i := 1; i <= 25; i++ {
		args = append(args, fmt.Sprintf("%q", fmt.Sprintf("line %d", i)))
		if i > 5 {
			last20 = append(last20, fmt.Sprintf("line %d", i))
		}
	}
	multiRun := `[stage-1 2/2] RUN ["/app", ` + strings.Join(args, ", ") + `]`
	fromAsCasing := Warning{
		Short:  "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
		Detail: []string{"The 'as' keyword should match the case of the 'from' keyword"},
		URL:    "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
		File:   "Dockerfile",
		Line:   1,
	}
	legacyEnv := func(line int) Warning {
		return Warning{
			Short:  fmt.Sprintf(`LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line %d)`, line),
			Detail: []string{"Legacy key/value format with whitespace separator should not be used"},
			URL:    "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/",
			File:   "Dockerfile",
			Line:   line,
		}
	}
	tests := []struct {
		name     string
		fixture  string
		steps    []stepView
		total    int
		cached   int
		failed   *stepView
		warnings []Warning
		// plain are the lines buildx printed as text, after the stream.
		plain []string
	}{
		{
			name:    "cold build runs both steps",
			fixture: "success-cold",
			steps: []stepView{
				{Name: "[1/2] COPY app /app"},
				{Name: `[2/2] RUN ["/app", "hello from the build", "second line"]`, Logs: []string{"hello from the build", "second line"}},
			},
			total: 2,
			plain: []string{noOutputWarning},
		},
		{
			name:    "same build again is fully cached",
			fixture: "success-cached",
			steps: []stepView{
				{Name: "[1/2] COPY app /app", Cached: true},
				{Name: `[2/2] RUN ["/app", "hello from the build", "second line"]`, Cached: true},
			},
			total:  2,
			cached: 2,
			plain:  []string{noOutputWarning},
		},
		{
			name:    "RUN prints lines and exits 1",
			fixture: "failure",
			// [3/3] never starts, so it is not a step of the report.
			steps: []stepView{
				{Name: "[1/3] COPY app /app", Cached: true},
				{Name: failedRun, Error: failedErr, Logs: []string{"compiling", "linking", "error: undefined: frobnicate", "build failed"}},
			},
			total:  2,
			cached: 1,
			failed: &stepView{Name: failedRun, Error: failedErr, Logs: []string{"compiling", "linking", "error: undefined: frobnicate", "build failed"}},
			plain: []string{
				noOutputWarning,
				"Dockerfile:3",
				"--------------------",
				"   1 |     FROM scratch",
				"   2 |     COPY app /app",
				`   3 | >>> RUN ["/app", "-exit", "1", "compiling", "linking", "-stderr", "error: undefined: frobnicate", "build failed"]`,
				`   4 |     RUN ["/app", "never runs"]`,
				"   5 |     ",
				"--------------------",
				"ERROR: failed to build: failed to solve: " + failedErr,
			},
		},
		{
			name:    "lint warnings of a multi-stage build",
			fixture: "warnings",
			steps: []stepView{
				{Name: "[build 1/1] COPY app /app", Cached: true},
				{Name: "[stage-1 1/2] COPY --from=build /app /app", Cached: true},
				{Name: `[stage-1 2/2] RUN ["/app", "warned but built"]`, Logs: []string{"warned but built"}},
			},
			total:  3,
			cached: 2,
			warnings: []Warning{
				fromAsCasing,
				legacyEnv(5),
				{
					Short:  "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 8)",
					Detail: []string{"JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals"},
					URL:    "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
					File:   "Dockerfile",
					Line:   8,
				},
			},
			plain: []string{noOutputWarning},
		},
		{
			name:    "two platforms and 25 output lines",
			fixture: "multiplatform",
			// COPY steps carry the platform; the RUN steps of both
			// platforms have the same name. The amd64 COPY --from=build
			// was cached: the binary is the one an earlier fixture built.
			steps: []stepView{
				{Name: "[linux/amd64 build 1/1] COPY app-amd64 /app"},
				{Name: "[linux/arm64 build 1/1] COPY app-arm64 /app"},
				{Name: "[linux/arm64 stage-1 1/2] COPY --from=build /app /app"},
				{Name: "[linux/amd64 stage-1 1/2] COPY --from=build /app /app", Cached: true},
				{Name: multiRun, Logs: last20},
				{Name: multiRun, Logs: last20},
			},
			total:    6,
			cached:   1,
			warnings: []Warning{fromAsCasing, legacyEnv(6)},
			plain:    []string{noOutputWarning},
		},
		{
			name:    "syntax error fails before any step",
			fixture: "syntax-error",
			plain: []string{
				noOutputWarning,
				"Dockerfile:2",
				"--------------------",
				"   1 |     FROM scratch",
				"   2 | >>> COPPY app /app",
				"   3 |     ",
				"--------------------",
				"ERROR: failed to build: failed to solve: dockerfile parse error on line 2: unknown instruction: COPPY (did you mean COPY?)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := readFixture(t, tt.fixture)
			var out bytes.Buffer
			rep, err := ReadProgress(bytes.NewReader(data), &out)
			if err != nil {
				t.Fatalf("ReadProgress: %v", err)
			}
			if diff := cmp.Diff(tt.steps, viewSteps(rep.Steps)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if got := rep.Total(); got != tt.total {
				t.Errorf("Total() = %d, want %d", got, tt.total)
			}
			if got := rep.Cached(); got != tt.cached {
				t.Errorf("Cached() = %d, want %d", got, tt.cached)
			}
			var failed *stepView
			if rep.Failed != nil {
				failed = &viewSteps([]Step{*rep.Failed})[0]
				if !isStepOf(rep.Failed, rep.Steps) {
					t.Errorf("Failed does not point into Steps")
				}
			}
			if diff := cmp.Diff(tt.failed, failed); diff != "" {
				t.Errorf("failed step (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, rep.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			seen := map[string]bool{}
			for _, s := range rep.Steps {
				if !strings.HasPrefix(s.Digest, "sha256:") || seen[s.Digest] {
					t.Errorf("step %q: digest %q not a new sha256 digest", s.Name, s.Digest)
				}
				seen[s.Digest] = true
				switch {
				case s.Cached && s.Duration != 0:
					t.Errorf("cached step %q: Duration = %v, want 0", s.Name, s.Duration)
				case !s.Cached && (s.Duration <= 0 || s.Duration > time.Minute):
					t.Errorf("step %q: Duration = %v, want the time it ran", s.Name, s.Duration)
				}
			}
			// The readable log: the plain lines unchanged and in order,
			// every other line empty or "#n ...", and no JSON.
			if diff := cmp.Diff(tt.plain, plainLines(data)); diff != "" {
				t.Fatalf("fixture's plain lines (-want +got):\n%s", diff)
			}
			var plain []string
			for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					plain = append(plain, l)
				}
			}
			if diff := cmp.Diff(tt.plain, plain); diff != "" {
				t.Errorf("plain lines in the log (-want +got):\n%s", diff)
			}
			for _, s := range rep.Steps {
				if !strings.Contains(out.String(), " "+s.Name+"\n") {
					t.Errorf("log lacks a header for %q", s.Name)
				}
			}
		})
	}
}

func isStepOf(s *Step, steps []Step) bool {
	for i := range steps {
		if s == &steps[i] {
			return true
		}
	}
	return false
}

func TestReadProgressGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"success-cold", "success-cached", "failure", "warnings", "multiplatform", "syntax-error"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if _, err := ReadProgress(bytes.NewReader(readFixture(t, name)), &out); err != nil {
				t.Fatalf("ReadProgress: %v", err)
			}
			golden := filepath.Join(progressDir, name+".log.golden")
			if *updateProgress {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestReadProgressGolden -updateProgress)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("log of %s (-want +got):\n%s", name, diff)
			}
		})
	}
}

// Helpers that write rawjson lines the way BuildKit does.
const (
	dgA = "sha256:aaaa"
	dgB = "sha256:bbbb"
)

var t0 = time.Date(2026, 11, 27, 2, 12, 43, 0, time.UTC)

func at(ms int) string {
	return `"` + t0.Add(time.Duration(ms)*time.Millisecond).Format(time.RFC3339Nano) + `"`
}

func vtxLine(digest, name string, extra string) string {
	return fmt.Sprintf(`{"vertexes":[{"digest":%q,"name":%q%s}]}`+"\n", digest, name, extra)
}

func logLine(digest string, stream int, data string) string {
	return fmt.Sprintf(`{"logs":[{"vertex":%q,"stream":%d,"data":%q,"timestamp":%s}]}`+"\n",
		digest, stream, base64.StdEncoding.EncodeToString([]byte(data)), at(0))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestReadProgressLines(t *testing.T) {
	t.Parallel()
	run := "[1/1] RUN make"
	started := `,"started":` + at(0)
	done := started + `,"completed":` + at(1500)
	warning := `{"warnings":[{"vertex":"` + dgA + `","level":1,"short":"` + b64("UndefinedVar: Usage of undefined variable '$X' (line 3)") +
		`","detail":["` + b64("Variables should be defined before their use") + `"],"url":"https://docs.docker.com/go/dockerfile/rule/undefined-var/",` +
		`"sourceInfo":{"filename":"build/Dockerfile","data":"` + b64("FROM x\n") + `","language":"Dockerfile"},` +
		`"range":[{"start":{"line":3,"character":4},"end":{"line":3,"character":9}},{"start":{"line":7}}]}]}` + "\n"
	undefinedVar := Warning{
		Short:  "UndefinedVar: Usage of undefined variable '$X' (line 3)",
		Detail: []string{"Variables should be defined before their use"},
		URL:    "https://docs.docker.com/go/dockerfile/rule/undefined-var/",
		File:   "build/Dockerfile",
		Line:   3,
	}
	var thirty strings.Builder
	var lastTwenty []string
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&thirty, "out %d\n", i)
		if i > 10 {
			lastTwenty = append(lastTwenty, fmt.Sprintf("out %d", i))
		}
	}
	tests := []struct {
		name string
		in   string
		want Report
		log  string
	}{
		{
			name: "a line that is not JSON goes to w unchanged",
			in:   "#0 building with \"b\" instance using remote driver\n",
			log:  "#0 building with \"b\" instance using remote driver\n",
		},
		{
			name: "a last line without newline gets one",
			in:   "ERROR: failed to build: exit code: 1",
			log:  "ERROR: failed to build: exit code: 1\n",
		},
		{
			name: "blank and indented lines are kept",
			in:   "\n   \n  {not json\n",
			log:  "\n   \n  {not json\n",
		},
		{
			name: "a truncated JSON line is passed through",
			in:   `{"vertexes":[{"digest":"sha256:aaaa","name":"[1/1] RUN make","started":"2026-11-27T02:1` + "\n",
			log:  `{"vertexes":[{"digest":"sha256:aaaa","name":"[1/1] RUN make","started":"2026-11-27T02:1` + "\n",
		},
		{
			name: "JSON of another shape is passed through",
			in:   "[1,2]\n\"text\"\nnull\n{\"level\":\"error\",\"msg\":\"x\"}\n{\"vertexes\":{\"digest\":1}}\n",
			log:  "[1,2]\n\"text\"\nnull\n{\"level\":\"error\",\"msg\":\"x\"}\n{\"vertexes\":{\"digest\":1}}\n",
		},
		{
			name: "an empty status says nothing",
			in:   "{}\n",
		},
		{
			name: "CRLF line endings",
			in:   strings.ReplaceAll(vtxLine(dgA, run, done), "\n", "\r\n") + "plain\r\n",
			want: Report{Steps: []Step{{Digest: dgA, Name: run, Duration: 1500 * time.Millisecond}}},
			log:  "#1 [1/1] RUN make\n#1 DONE 1.5s\nplain\r\n",
		},
		{
			name: "unknown fields are ignored",
			in: `{"vertexes":[{"digest":"sha256:aaaa","name":"[1/1] RUN make","started":` + at(0) + `,"completed":` + at(200) +
				`,"progressGroup":{"id":"g","name":"group","weak":true},"future":{"x":[1]}}],"newThing":[{}]}` + "\n",
			want: Report{Steps: []Step{{Digest: dgA, Name: run, Duration: 200 * time.Millisecond}}},
			log:  "#1 [1/1] RUN make\n#1 DONE 0.2s\n",
		},
		{
			name: "a vertex seen again with more fields updates the step",
			in: vtxLine(dgA, "", "") + vtxLine(dgA, run, "") + vtxLine(dgA, run, started) +
				logLine(dgA, 1, "ok\n") + vtxLine(dgA, "", "") +
				vtxLine(dgA, run, done+`,"error":"process \"make\" did not complete successfully: exit code: 2"`),
			want: Report{
				Steps: []Step{{
					Digest:   dgA,
					Name:     run,
					Error:    `process "make" did not complete successfully: exit code: 2`,
					Logs:     []string{"ok"},
					Duration: 1500 * time.Millisecond,
				}},
				Failed: &Step{
					Digest:   dgA,
					Name:     run,
					Error:    `process "make" did not complete successfully: exit code: 2`,
					Logs:     []string{"ok"},
					Duration: 1500 * time.Millisecond,
				},
			},
			log: "#1 [1/1] RUN make\n#1 ok\n#1 ERROR: process \"make\" did not complete successfully: exit code: 2\n",
		},
		{
			name: "output split over log entries and streams",
			in: vtxLine(dgA, run, started) + logLine(dgA, 1, "hel") + logLine(dgA, 2, "warn") +
				logLine(dgA, 1, "lo\nwor") + logLine(dgA, 2, "ing: x\n") + logLine(dgA, 1, "ld") +
				vtxLine(dgA, run, done),
			want: Report{Steps: []Step{{
				Digest: dgA, Name: run, Logs: []string{"hello", "warning: x", "world"}, Duration: 1500 * time.Millisecond,
			}}},
			log: "#1 [1/1] RUN make\n#1 hello\n#1 warning: x\n#1 world\n#1 DONE 1.5s\n",
		},
		{
			name: "carriage returns keep the last state of a line",
			in:   vtxLine(dgA, run, started) + logLine(dgA, 1, "10%\r50%\r100%\r\nnext\n"),
			want: Report{Steps: []Step{{Digest: dgA, Name: run, Logs: []string{"100%", "next"}}}},
			log:  "#1 [1/1] RUN make\n#1 100%\n#1 next\n",
		},
		{
			name: "a step keeps its last 20 lines",
			in:   vtxLine(dgA, run, started) + logLine(dgA, 1, thirty.String()) + vtxLine(dgA, run, done),
			want: Report{Steps: []Step{{Digest: dgA, Name: run, Logs: lastTwenty, Duration: 1500 * time.Millisecond}}},
			log:  "#1 [1/1] RUN make\n#1 " + strings.Join(strings.Split(strings.TrimSuffix(thirty.String(), "\n"), "\n"), "\n#1 ") + "\n#1 DONE 1.5s\n",
		},
		{
			name: "a vertex completed and started again says DONE once",
			in: vtxLine(dgA, run, started+`,"completed":`+at(100)) +
				vtxLine(dgA, run, `,"started":`+at(200)) +
				vtxLine(dgA, run, `,"started":`+at(200)+`,"completed":`+at(1200)),
			want: Report{Steps: []Step{{Digest: dgA, Name: run, Duration: 1100 * time.Millisecond}}},
			log:  "#1 [1/1] RUN make\n#1 DONE 1.1s\n",
		},
		{
			name: "one line completes a step and starts the next",
			in: `{"vertexes":[{"digest":"sha256:aaaa","name":"[1/2] COPY . .","started":` + at(0) + `,"completed":` + at(1) + `,"cached":true},` +
				`{"digest":"sha256:bbbb","name":"[2/2] RUN b","started":` + at(2) + `}]}` + "\n",
			want: Report{Steps: []Step{
				{Digest: dgA, Name: "[1/2] COPY . .", Cached: true},
				{Digest: dgB, Name: "[2/2] RUN b"},
			}},
			log: "#1 [1/2] COPY . .\n#1 CACHED\n\n#2 [2/2] RUN b\n",
		},
		{
			name: "a step canceled before the real failure is not the failed one",
			in: vtxLine(dgA, "[a 1/1] RUN x", started) + vtxLine(dgB, "[b 1/1] RUN y", started) +
				vtxLine(dgA, "[a 1/1] RUN x", done+`,"error":"context canceled: context canceled"`) +
				vtxLine(dgB, "[b 1/1] RUN y", done+`,"error":"exit code: 1"`),
			want: Report{
				Steps: []Step{
					{Digest: dgA, Name: "[a 1/1] RUN x", Error: "context canceled: context canceled", Duration: 1500 * time.Millisecond},
					{Digest: dgB, Name: "[b 1/1] RUN y", Error: "exit code: 1", Duration: 1500 * time.Millisecond},
				},
				Failed: &Step{Digest: dgB, Name: "[b 1/1] RUN y", Error: "exit code: 1", Duration: 1500 * time.Millisecond},
			},
			log: "#1 [a 1/1] RUN x\n\n#2 [b 1/1] RUN y\n#1 CANCELED\n#2 ERROR: exit code: 1\n",
		},
		{
			name: "steps in the order they started, not announced",
			in: `{"vertexes":[{"digest":"sha256:bbbb","inputs":["sha256:aaaa"],"name":"[2/2] RUN b"},{"digest":"sha256:aaaa","name":"[1/2] FROM docker.io/library/alpine:3.19@sha256:1234"}]}` + "\n" +
				vtxLine(dgA, "[1/2] FROM docker.io/library/alpine:3.19@sha256:1234", done+`,"cached":true`) +
				vtxLine(dgB, "[2/2] RUN b", done),
			want: Report{Steps: []Step{
				{Digest: dgA, Name: "[1/2] FROM docker.io/library/alpine:3.19@sha256:1234", Cached: true},
				{Digest: dgB, Name: "[2/2] RUN b", Duration: 1500 * time.Millisecond},
			}},
			log: "#1 [1/2] FROM docker.io/library/alpine:3.19@sha256:1234\n#1 CACHED\n\n#2 [2/2] RUN b\n#2 DONE 1.5s\n",
		},
		{
			name: "vertexes that are not build steps are logged but not counted",
			in: vtxLine(dgA, "[internal] load metadata for docker.io/library/alpine:3.19", done) +
				vtxLine(dgB, "exporting to image", done) +
				`{"statuses":[{"id":"exporting layers","vertex":"sha256:bbbb","current":0,"timestamp":` + at(1) + `,"started":` + at(0) + `,"completed":` + at(300) + `},` +
				`{"id":"pushing layers","vertex":"sha256:bbbb","name":"pushing","total":2621440,"current":2621440,"timestamp":` + at(1) + `,"started":` + at(0) + `}]}` + "\n",
			log: "#1 [internal] load metadata for docker.io/library/alpine:3.19\n#1 DONE 1.5s\n\n" +
				"#2 exporting to image\n#2 exporting layers 0.3s done\n#2 DONE 1.5s\n",
		},
		{
			name: "warnings are deduplicated and keep file and line",
			in:   vtxLine(dgA, "[internal] load build definition from Dockerfile", done) + warning + warning,
			want: Report{Warnings: []Warning{undefinedVar}},
			log:  "#1 [internal] load build definition from Dockerfile\n#1 WARN: UndefinedVar: Usage of undefined variable '$X' (line 3)\n#1 DONE 1.5s\n",
		},
		{
			name: "a warning without vertex, source or range",
			in:   `{"warnings":[{"short":"` + b64("Something odd") + `"}]}` + "\n",
			want: Report{Warnings: []Warning{{Short: "Something odd"}}},
			log:  "WARN: Something odd\n",
		},
		{
			name: "an error without a completed time ends the step",
			in:   vtxLine(dgA, run, started) + vtxLine(dgA, run, started+`,"error":"exit code: 1"`),
			want: Report{
				Steps:  []Step{{Digest: dgA, Name: run, Error: "exit code: 1"}},
				Failed: &Step{Digest: dgA, Name: run, Error: "exit code: 1"},
			},
			log: "#1 [1/1] RUN make\n#1 ERROR: exit code: 1\n",
		},
		{
			name: "logs of an unknown vertex",
			in:   logLine(dgA, 1, "orphan\nhalf"),
			log:  "#1 sha256:aaaa\n#1 orphan\n#1 half\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			got, err := ReadProgress(strings.NewReader(tt.in), &out)
			if err != nil {
				t.Fatalf("ReadProgress: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.log, out.String()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProgressStepNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		step bool
	}{
		{"[linux/amd64 2/3] RUN go build ./...", true},
		{"[2/3] COPY . .", true},
		{"[stage-1 1/2] FROM docker.io/library/alpine:3.19@sha256:c5b1261d", true},
		{"[linux/arm64 builder 10/12] RUN --mount=type=cache,target=/root/.cache go test", true},
		{"[internal] load build definition from Dockerfile", false},
		{"[internal] load metadata for docker.io/library/alpine:3.19", false},
		{"[linux/amd64 internal] load build context", false},
		{"[auth] library/alpine:pull token for registry-1.docker.io", false},
		{"exporting to image", false},
		{"exporting cache to registry", false},
		{"pushing layers", false},
		{"load build definition from Dockerfile", false},
		{"resolve image config for docker-image://docker.io/docker/dockerfile:1", false},
		{"[1/2]RUN x", false},
		{"RUN [1/2] x", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := progressStepRE.MatchString(tt.name); got != tt.step {
				t.Errorf("step(%q) = %v, want %v", tt.name, got, tt.step)
			}
		})
	}
}

func TestReadProgressLongLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		in   string
		want Report
		log  string
	}{
		{
			name: "a 1 MiB output line",
			in: vtxLine(dgA, "[1/1] RUN big", `,"started":`+at(0)) + logLine(dgA, 1, long+"\n") +
				vtxLine(dgA, "[1/1] RUN big", `,"started":`+at(0)+`,"completed":`+at(10)),
			want: Report{Steps: []Step{{Digest: dgA, Name: "[1/1] RUN big", Logs: []string{long}, Duration: 10 * time.Millisecond}}},
			log:  "#1 [1/1] RUN big\n#1 " + long + "\n#1 DONE 0.0s\n",
		},
		{
			name: "a 1 MiB output line in 256 log entries",
			in: vtxLine(dgA, "[1/1] RUN big", `,"started":`+at(0)) +
				strings.Repeat(logLine(dgA, 1, long[:4096]), 256) + logLine(dgA, 1, "\n"),
			want: Report{Steps: []Step{{Digest: dgA, Name: "[1/1] RUN big", Logs: []string{long}}}},
			log:  "#1 [1/1] RUN big\n#1 " + long + "\n",
		},
		{
			name: "a 1 MiB plain line",
			in:   long + "\nafter\n",
			log:  long + "\nafter\n",
		},
		{
			name: "a 1 MiB truncated JSON line",
			in:   `{"logs":[{"data":"` + long + "\n",
			log:  `{"logs":[{"data":"` + long + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			got, err := ReadProgress(strings.NewReader(tt.in), &out)
			if err != nil {
				t.Fatalf("ReadProgress: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if out.String() != tt.log {
				t.Errorf("log: got %d bytes, want %d", out.Len(), len(tt.log))
			}
		})
	}
}

// errReader returns data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// failWriter fails every write.
type failWriter struct{ calls int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.calls++
	return 0, errors.New("disk full")
}

func TestReadProgressErrors(t *testing.T) {
	t.Parallel()
	failure := readFixture(t, "failure")
	boom := errors.New("boom")
	tests := []struct {
		name    string
		r       io.Reader
		w       io.Writer
		wantErr string
		isErr   error
		total   int
		failed  bool
	}{
		{
			name:    "read error after some steps",
			r:       &errReader{data: failure[:bytes.Index(failure, []byte(`"logs"`))], err: boom},
			w:       io.Discard,
			wantErr: "reading progress: boom",
			isErr:   boom,
			total:   2,
		},
		{
			name:    "write error: the report is still whole",
			r:       bytes.NewReader(failure),
			w:       &failWriter{},
			wantErr: "writing progress log: disk full",
			total:   2,
			failed:  true,
		},
		{
			name:   "nil writer",
			r:      bytes.NewReader(failure),
			total:  2,
			failed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := ReadProgress(tt.r, tt.w)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Errorf("error %v does not wrap %v", err, tt.isErr)
			}
			if rep.Total() != tt.total || (rep.Failed != nil) != tt.failed {
				t.Errorf("report: %d steps, failed %v; want %d, %v", rep.Total(), rep.Failed != nil, tt.total, tt.failed)
			}
			if fw, ok := tt.w.(*failWriter); ok && fw.calls != 1 {
				t.Errorf("%d writes after the first failed, want none", fw.calls-1)
			}
		})
	}
}

func FuzzReadProgress(f *testing.F) {
	for _, name := range []string{"failure", "warnings"} {
		data := readFixture(f, name)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte(vtxLine(dgA, "[1/1] RUN x", `,"started":`+at(0)) + logLine(dgA, 1, "a\rb\nc")))
	f.Add([]byte(`{"warnings":[{"range":[null,{"start":null}],"sourceInfo":null,"detail":[null]}]}` + "\n"))
	f.Add([]byte(`{"vertexes":[null,{"digest":"d","cached":true,"error":"e"},{"digest":"d","completed":"2026-01-01T00:00:00Z"}],"statuses":[null,{"vertex":"d","completed":"2026-01-01T00:00:00Z","total":-5}],"logs":[null,{"vertex":"d"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		rep, err := ReadProgress(bytes.NewReader(data), &out)
		if err != nil {
			t.Fatalf("ReadProgress: %v", err)
		}
		if rep.Cached() > rep.Total() {
			t.Errorf("Cached() %d > Total() %d", rep.Cached(), rep.Total())
		}
		if rep.Failed != nil && (!isStepOf(rep.Failed, rep.Steps) || rep.Failed.Error == "") {
			t.Errorf("Failed = %+v, not a failed step of the report", rep.Failed)
		}
		for _, s := range rep.Steps {
			if len(s.Logs) > maxStepLogs || s.Duration < 0 || !progressStepRE.MatchString(s.Name) {
				t.Errorf("bad step %+v", s)
			}
		}
		if len(data) > 0 && out.Len() == 0 && !bytes.Contains(data, []byte("{")) {
			t.Errorf("plain input %q wrote nothing", data)
		}
	})
}
