package config_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
)

const eventsDir = "../../testdata/events"

// fake returns a lookup over a map; unset names read as "". It serves both
// as the input getter and as getenv.
func fake(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// loadEvent loads a fixture of testdata/events as the runner would present
// it, in the repository barde/PhialoAstro.
func loadEvent(t *testing.T, name string) *ghevent.Context {
	t.Helper()
	f, err := os.Open(filepath.Join(eventsDir, name+".env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{
		"GITHUB_REPOSITORY": "barde/PhialoAstro",
		"GITHUB_EVENT_PATH": filepath.Join(eventsDir, name+".json"),
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	ev, err := ghevent.Load(fake(env))
	if err != nil {
		t.Fatalf("loading fixture %s: %v", name, err)
	}
	return ev
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := config.Load(fake(nil), fake(nil), loadEvent(t, "push-main"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		// GITHUB_REPOSITORY is barde/PhialoAstro; image names are lowercase.
		Images:           []meta.Image{{Name: "ghcr.io/barde/phialoastro", Enable: "true"}},
		Flavor:           meta.Flavor{Latest: "auto"},
		AnnotationLevels: []string{"manifest", "index"},
		SepTags:          "\n",
		SepLabels:        "\n",
		SepAnnotations:   "\n",
		ShortSHALength:   7,
		DateFormat:       "YYYYMMDD",
		Push:             true,
		PushReason:       "",
		Build: config.Build{
			Context:   ".",
			Platforms: []string{"linux/amd64", "linux/arm64"},
			Registry:  "ghcr.io",
			// No actor in the fixture env, and no token: no login.
			Cache:         []string{"gha", "registry"},
			CacheRef:      "ghcr.io/barde/phialoastro:buildcache",
			CacheMode:     "max",
			BuildKitImage: config.DefaultBuildKitImage,
			BinfmtImage:   config.DefaultBinfmtImage,
		},
		Supply: config.Supply{
			SBOM:           true,
			SBOMFormats:    []string{"spdx-json"},
			SBOMDir:        "sbom", // no GITHUB_WORKSPACE in the fixture
			Scan:           true,
			ScanSeverities: []string{"CRITICAL", "HIGH"},
			ScanFailOn:     "none",
			UploadSARIF:    true,
			SARIFDir:       "sarif",
		},
		Mode:        "build",
		Distributed: config.Distributed{DigestsDir: "digests"},
		Cleanup:     config.Cleanup{Auto: true, Keep: 5, Untagged: true},
	}
	// The rules are checked below; their parsing is meta's business.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(config.Config{}, "Rules")); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	wantRules := len(meta.SplitLines(meta.DefaultTags))
	if len(got.Rules) != wantRules || wantRules != 11 {
		t.Errorf("got %d rules, want the %d default rules (11 documented)", len(got.Rules), wantRules)
	}
	dateRules := 0
	for i, r := range got.Rules {
		if !r.Builtin {
			t.Errorf("rule %d (%q) is not marked Builtin", i, r.Line)
		}
		if strings.Contains(r.Attrs["value"], "{{date 'YYYYMMDD'}}") {
			dateRules++
		}
	}
	// The date format reaches the two date tags of the default strategy.
	if dateRules != 2 {
		t.Errorf("%d default rules use {{date 'YYYYMMDD'}}, want 2", dateRules)
	}
}

func TestLoadCustomDateFormat(t *testing.T) {
	t.Parallel()
	// A comma must not split the default rule's value (it is a CSV field).
	for _, format := range []string{"YYYYMMDD-HHmmss", "MMM D, YYYY"} {
		got, err := config.Load(fake(map[string]string{"date-format": " " + format + " "}), fake(nil), loadEvent(t, "push-main"))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got.DateFormat != format {
			t.Errorf("DateFormat = %q, want %q", got.DateFormat, format)
		}
		var values []string
		for _, r := range got.Rules {
			if strings.Contains(r.Attrs["value"], "{{date") {
				values = append(values, r.Attrs["value"])
			}
		}
		want := []string{"{{date '" + format + "'}}", "{{date '" + format + "'}}"}
		if diff := cmp.Diff(want, values); diff != "" {
			t.Errorf("date rule values (-want +got):\n%s", diff)
		}
	}
}

func TestLoadPush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		event   string
		inputs  map[string]string
		want    bool
		reason  string // "" wants an empty reason, else a substring of it
		wantErr string
	}{
		{name: "push-main/pushes by default", event: "push-main", want: true},
		{name: "push=auto/pushes", event: "push-main", inputs: map[string]string{"push": "auto"}, want: true},
		{name: "push=AUTO/case-insensitive", event: "push-main", inputs: map[string]string{"push": "AUTO"}, want: true},
		{name: "dry-run/no push", event: "push-main", inputs: map[string]string{"dry-run": "true"}, reason: "dry-run"},
		{name: "dry-run/wins over push=true", event: "push-main", inputs: map[string]string{"dry-run": "true", "push": "true"}, reason: "dry-run"},
		{name: "fork pull request/no push", event: "pull_request-fork", reason: "fork"},
		{name: "fork pull request/explicit push=true pushes", event: "pull_request-fork", inputs: map[string]string{"push": "true"}, want: true},
		{name: "same-repo pull request/pushes", event: "pull_request", want: true},
		{name: "push=false/no push", event: "push-main", inputs: map[string]string{"push": "false"}},
		{name: "push=TRUE/case-insensitive", event: "push-main", inputs: map[string]string{"push": "TRUE"}, want: true},
		{name: "push=True with spaces/trimmed", event: "push-main", inputs: map[string]string{"push": " True "}, want: true},
		{name: "push=yes/error", event: "push-main", inputs: map[string]string{"push": "yes"}, want: true, wantErr: `input "push": "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(fake(tt.inputs), fake(nil), loadEvent(t, tt.event))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
			}
			if got.Push != tt.want {
				t.Errorf("Push = %v, want %v", got.Push, tt.want)
			}
			if tt.reason == "" && got.PushReason != "" {
				t.Errorf("PushReason = %q, want empty", got.PushReason)
			}
			if tt.reason != "" && !strings.Contains(got.PushReason, tt.reason) {
				t.Errorf("PushReason = %q, want it to mention %q", got.PushReason, tt.reason)
			}
		})
	}
}

func TestLoadEnvFallbacks(t *testing.T) {
	t.Parallel()
	type fields struct {
		ShortSHALength   int
		AnnotationLevels []string
		PRHeadSHA        bool
	}
	defaults := fields{ShortSHALength: 7, AnnotationLevels: []string{"manifest", "index"}}
	with := func(f func(*fields)) fields {
		v := defaults
		f(&v)
		return v
	}
	tests := []struct {
		name   string
		inputs map[string]string
		env    map[string]string
		want   fields
	}{
		{name: "nothing set/defaults", want: defaults},
		{
			name: "DOCKER_METADATA_SHORT_SHA_LENGTH/used without input",
			env:  map[string]string{"DOCKER_METADATA_SHORT_SHA_LENGTH": "12"},
			want: with(func(f *fields) { f.ShortSHALength = 12 }),
		},
		{
			name:   "short-sha-length/input wins over env",
			inputs: map[string]string{"short-sha-length": "9"},
			env:    map[string]string{"DOCKER_METADATA_SHORT_SHA_LENGTH": "12"},
			want:   with(func(f *fields) { f.ShortSHALength = 9 }),
		},
		{
			name: "DOCKER_METADATA_ANNOTATIONS_LEVELS/used without input",
			env:  map[string]string{"DOCKER_METADATA_ANNOTATIONS_LEVELS": "index, manifest-descriptor"},
			want: with(func(f *fields) { f.AnnotationLevels = []string{"index", "manifest-descriptor"} }),
		},
		{
			name:   "annotations-levels/input wins over env",
			inputs: map[string]string{"annotations-levels": "index-descriptor"},
			env:    map[string]string{"DOCKER_METADATA_ANNOTATIONS_LEVELS": "index"},
			want:   with(func(f *fields) { f.AnnotationLevels = []string{"index-descriptor"} }),
		},
		{
			name: "DOCKER_METADATA_PR_HEAD_SHA=true/used without input",
			env:  map[string]string{"DOCKER_METADATA_PR_HEAD_SHA": "true"},
			want: with(func(f *fields) { f.PRHeadSHA = true }),
		},
		{
			name: "DOCKER_METADATA_PR_HEAD_SHA=TRUE/case-insensitive",
			env:  map[string]string{"DOCKER_METADATA_PR_HEAD_SHA": "TRUE"},
			want: with(func(f *fields) { f.PRHeadSHA = true }),
		},
		{
			name: "DOCKER_METADATA_PR_HEAD_SHA=1/not true",
			env:  map[string]string{"DOCKER_METADATA_PR_HEAD_SHA": "1"},
			want: defaults,
		},
		{
			name:   "pr-head-sha=false/input wins over env",
			inputs: map[string]string{"pr-head-sha": "false"},
			env:    map[string]string{"DOCKER_METADATA_PR_HEAD_SHA": "true"},
			want:   defaults,
		},
		{
			name:   "pr-head-sha=true/input wins over env",
			inputs: map[string]string{"pr-head-sha": "true"},
			env:    map[string]string{"DOCKER_METADATA_PR_HEAD_SHA": "false"},
			want:   with(func(f *fields) { f.PRHeadSHA = true }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(fake(tt.inputs), fake(tt.env), loadEvent(t, "push-main"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := fields{c.ShortSHALength, c.AnnotationLevels, c.PRHeadSHA}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadSeparators(t *testing.T) {
	t.Parallel()
	type seps struct{ Tags, Labels, Annotations string }
	tests := []struct {
		name   string
		inputs map[string]string
		want   seps
	}{
		{name: "unset/newline", want: seps{"\n", "\n", "\n"}},
		{
			// A space is a valid separator and must not be trimmed away.
			name:   "single space/kept",
			inputs: map[string]string{"sep-tags": " ", "sep-labels": " ", "sep-annotations": " "},
			want:   seps{" ", " ", " "},
		},
		{
			name:   "comma/kept",
			inputs: map[string]string{"sep-tags": ",", "sep-labels": ",", "sep-annotations": ","},
			want:   seps{",", ",", ","},
		},
		{
			name:   "each its own/kept apart",
			inputs: map[string]string{"sep-tags": ",", "sep-labels": ";", "sep-annotations": " | "},
			want:   seps{",", ";", " | "},
		},
		{
			name:   "newline/newline",
			inputs: map[string]string{"sep-tags": "\n"},
			want:   seps{"\n", "\n", "\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(fake(tt.inputs), fake(nil), loadEvent(t, "push-main"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := seps{c.SepTags, c.SepLabels, c.SepAnnotations}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("separators (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadListInputs(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"images":      "ghcr.io/Barde/App\n# a comment\n\nname=docker.io/barde/app,enable=false\n",
		"tags":        "type=sha\ntype=raw,value=edge",
		"flavor":      "latest=false\nprefix=v-,onlatest=true",
		"labels":      "org.opencontainers.image.vendor=Phialo\n\n",
		"annotations": "  a=1  \n# skipped\nb=2",
	}
	c, err := config.Load(fake(inputs), fake(nil), loadEvent(t, "push-main"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	type lists struct {
		Images      []meta.Image
		RuleLines   []string
		Flavor      meta.Flavor
		Labels      []string
		Annotations []string
	}
	got := lists{Images: c.Images, Flavor: c.Flavor, Labels: c.Labels, Annotations: c.Annotations}
	for _, r := range c.Rules {
		got.RuleLines = append(got.RuleLines, r.Line)
		if r.Builtin {
			t.Errorf("rule %q from the tags input is marked Builtin", r.Line)
		}
	}
	want := lists{
		Images: []meta.Image{
			{Name: "ghcr.io/barde/app", Enable: "true"},
			{Name: "docker.io/barde/app", Enable: "false"},
		},
		// Sorted by priority: raw (200) before sha (100).
		RuleLines:   []string{"type=raw,value=edge", "type=sha"},
		Flavor:      meta.Flavor{Latest: "false", Prefix: "v-", PrefixLatest: true},
		Labels:      []string{"org.opencontainers.image.vendor=Phialo"},
		Annotations: []string{"a=1", "b=2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadBadInputsReportedTogether(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"dry-run":            "maybe",
		"pr-head-sha":        "perhaps",
		"short-sha-length":   "0",
		"annotations-levels": "manifest,foo",
		"date-format":        "YYYY'MM",
		"tags":               "type=nope\ntype=raw,value=x,colour=red",
		"flavor":             "latest=sometimes",
		"images":             "ghcr.io/Foo Bar",
	}
	_, err := config.Load(fake(inputs), fake(nil), loadEvent(t, "push-main"))
	if err == nil {
		t.Fatal("Load: no error, want one naming every bad input")
	}
	msg := err.Error()
	// Each substring names the input and its bad value together.
	for _, want := range []string{
		`input "dry-run": "maybe"`,
		`input "pr-head-sha": "perhaps"`,
		`input "short-sha-length": "0"`,
		`input "annotations-levels": "foo" is not valid`,
		`input "date-format": "YYYY'MM"`,
		`input "tags", line "type=nope"`,
		`input "tags", line "type=raw,value=x,colour=red"`,
		`input "flavor", line "latest=sometimes"`,
		`input "images", line "ghcr.io/Foo Bar"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %s; got:\n%s", want, msg)
		}
	}
}

func TestLoadBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		inputs map[string]string
		env    map[string]string
		want   string
	}{
		{name: "short-sha-length=41/too long", inputs: map[string]string{"short-sha-length": "41"}, want: `input "short-sha-length": "41"`},
		{name: "short-sha-length=abc/not a number", inputs: map[string]string{"short-sha-length": "abc"}, want: `input "short-sha-length": "abc"`},
		{
			// A bad env fallback is reported under the input it stands for.
			name: "DOCKER_METADATA_SHORT_SHA_LENGTH=-1/error",
			env:  map[string]string{"DOCKER_METADATA_SHORT_SHA_LENGTH": "-1"},
			want: `input "short-sha-length": "-1"`,
		},
		{name: "date-format with brace/error", inputs: map[string]string{"date-format": "YYYY}}"}, want: `input "date-format": "YYYY}}"`},
		{name: "date-format with double quote/error", inputs: map[string]string{"date-format": `YY"YY`}, want: `input "date-format": "YY\"YY"`},
		{name: "images with tag/error", inputs: map[string]string{"images": "ghcr.io/barde/app:1.0"}, want: `input "images", line "ghcr.io/barde/app:1.0"`},
		{name: "flavor onlatest alone/error", inputs: map[string]string{"flavor": "onlatest=true"}, want: `input "flavor", line "onlatest=true"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(fake(tt.inputs), fake(tt.env), loadEvent(t, "push-main"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one containing %s", err, tt.want)
			}
		})
	}
}

func TestLoadNoImageSource(t *testing.T) {
	t.Parallel()
	ev := loadEvent(t, "push-main")
	ev.Repository = ""
	c, err := config.Load(fake(nil), fake(nil), ev)
	if err == nil {
		t.Fatal("Load: no error, want one naming the images input")
	}
	for _, want := range []string{`input "images"`, "GITHUB_REPOSITORY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if len(c.Images) != 0 {
		t.Errorf("Images = %v, want none", c.Images)
	}
}
