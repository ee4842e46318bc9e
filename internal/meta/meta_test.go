package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	sha      = "abc1234567890abcdef1234567890abcdef12345"
	mergeSHA = "f00dbabe0000000000000000000000000000cafe"
	image    = "ghcr.io/barde/phialoastro"
)

// buildDate is 2024-06-28 10:00 UTC, the seed's example build.
var buildDate = time.Date(2024, 6, 28, 10, 0, 0, 0, time.UTC)

func event(name, ref string) Event {
	return Event{Name: name, Ref: ref, SHA: sha, DefaultBranch: "main"}
}

// input builds an Input from rule lines ("" for the defaults) and flavor lines.
func input(t *testing.T, ev Event, tags string, flavor ...string) Input {
	t.Helper()
	var rules []Rule
	var err error
	if tags == "" {
		rules, err = DefaultRules("YYYYMMDD")
	} else {
		rules, err = ParseRules(SplitLines(tags))
	}
	if err != nil {
		t.Fatalf("parsing rules: %v", err)
	}
	fl, err := ParseFlavor(flavor)
	if err != nil {
		t.Fatalf("parsing flavor: %v", err)
	}
	return Input{
		Images:           []Image{{Name: image, Enable: "true"}},
		Rules:            rules,
		Flavor:           fl,
		AnnotationLevels: []string{"manifest", "index"},
		ShortSHALength:   7,
		Event:            ev,
		Repo:             Repo{Name: "phialoastro", HTMLURL: "https://github.com/barde/phialoastro", License: "MIT"},
		Now:              buildDate,
	}
}

func TestDefaultStrategy(t *testing.T) {
	t.Parallel()
	withBase := func(ev Event, base string) Event { ev.BaseRef = base; return ev }
	pr := event("pull_request", "refs/pull/123/merge")
	pr.PRBaseRef = "main"
	pr.SHA = mergeSHA
	master := event("push", "refs/heads/master")
	master.DefaultBranch = "master"
	tests := []struct {
		name    string
		ev      Event
		version string
		tags    []string
	}{
		{"push/default branch", event("push", "refs/heads/main"), "latest",
			[]string{"latest", "20240628", "main-abc1234", "sha-" + sha}},
		{"push/master as default branch", master, "latest",
			[]string{"latest", "20240628", "master-abc1234", "sha-" + sha}},
		{"schedule/default branch", event("schedule", "refs/heads/main"), "latest",
			[]string{"latest", "20240628", "main-abc1234", "sha-" + sha}},
		{"workflow_dispatch/default branch", event("workflow_dispatch", "refs/heads/main"), "latest",
			[]string{"latest", "20240628", "main-abc1234", "sha-" + sha}},
		{"push/feature branch", event("push", "refs/heads/feature/login"), "feature-login",
			[]string{"feature-login", "feature-login-abc1234", "sha-" + sha}},
		{"workflow_dispatch/feature branch", event("workflow_dispatch", "refs/heads/feature/login"), "feature-login",
			[]string{"feature-login", "feature-login-abc1234", "sha-" + sha}},
		{"pull_request/123", pr, "pr-123", []string{"pr-123"}},
		{"push/tag v1.2.3 on main", withBase(event("push", "refs/tags/v1.2.3"), "refs/heads/main"), "v1.2.3",
			[]string{"v1.2.3", "1.2", "1", "20240628", "main-abc1234", "sha-" + sha, "latest"}},
		{"push/tag v1.2.3 without base_ref", event("push", "refs/tags/v1.2.3"), "v1.2.3",
			[]string{"v1.2.3", "1.2", "1", "20240628", "sha-" + sha, "latest"}},
		{"push/prerelease tag", withBase(event("push", "refs/tags/v2.0.0-rc.1"), "refs/heads/main"), "v2.0.0-rc.1",
			[]string{"v2.0.0-rc.1", "main-abc1234", "sha-" + sha}},
		{"release/v1.2.3", event("release", "refs/tags/v1.2.3"), "v1.2.3",
			[]string{"v1.2.3", "1.2", "1", "20240628", "sha-" + sha, "latest"}},
		{"push/tag that is no version", event("push", "refs/tags/website-2024"), "website-2024",
			[]string{"website-2024", "sha-" + sha, "latest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Derive(input(t, tc.ev, ""))
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if res.Version != tc.version {
				t.Errorf("version = %q, want %q", res.Version, tc.version)
			}
			if diff := cmp.Diff(tc.tags, res.TagNames); diff != "" {
				t.Errorf("tag names (-want +got):\n%s", diff)
			}
			var full []string
			for _, n := range tc.tags {
				full = append(full, image+":"+n)
			}
			if diff := cmp.Diff(full, res.Tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("the default strategy warned: %q", res.Warnings)
			}
		})
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	tagRef := event("push", "refs/tags/v1.2.3")
	tests := []struct {
		name    string
		ev      Event
		tags    string
		flavor  []string
		version string
		want    []string
		latest  bool
	}{
		{name: "semver/all patterns", ev: tagRef,
			tags:    "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}\ntype=semver,pattern={{raw}}",
			version: "1.2.3", want: []string{"1.2.3", "1.2", "1", "v1.2.3", "latest"}, latest: true},
		{name: "semver/prerelease ignores pattern", ev: event("push", "refs/tags/v2.0.0-rc.1"),
			tags:    "type=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{raw}}",
			version: "2.0.0-rc.1", want: []string{"2.0.0-rc.1", "v2.0.0-rc.1"}},
		{name: "semver/not a version is skipped", ev: event("push", "refs/tags/release"),
			tags: "type=semver,pattern={{version}}\ntype=raw,value=fallback", version: "fallback", want: []string{"fallback"}},
		{name: "semver/value and match", ev: event("push", "refs/heads/main"),
			tags:    `type=semver,pattern={{version}},value=app-v3.4.5,match=app-v(.*)`,
			version: "3.4.5", want: []string{"3.4.5", "latest"}, latest: true},
		{name: "semver/build metadata kept in raw", ev: event("push", "refs/tags/v1.2.3+build.7"),
			tags: "type=semver,pattern={{raw}}\ntype=semver,pattern={{version}}", version: "v1.2.3-build.7", want: []string{"v1.2.3-build.7", "1.2.3", "latest"}, latest: true},
		{name: "pep440/release", ev: event("push", "refs/tags/1.2.3"),
			tags: "type=pep440,pattern={{version}}\ntype=pep440,pattern={{major}}.{{minor}}", version: "1.2.3", want: []string{"1.2.3", "1.2", "latest"}, latest: true},
		{name: "pep440/pre-release normalized", ev: event("push", "refs/tags/1.2.3rc1"),
			tags: "type=pep440,pattern={{major}}.{{minor}}", version: "1.2.3rc1", want: []string{"1.2.3rc1"}},
		{name: "pep440/post-release is no latest", ev: event("push", "refs/tags/1.2.3.post1"),
			tags: "type=pep440,pattern={{major}}", version: "1.2.3.post1", want: []string{"1.2.3.post1"}},
		{name: "match/group", ev: tagRef,
			tags: `type=match,pattern=v(\d+\.\d+),group=1`, version: "1.2", want: []string{"1.2", "latest"}, latest: true},
		{name: "match/regex with flags", ev: event("push", "refs/tags/V1.2.3"),
			tags: `type=match,pattern=/^v(\d+)/i,group=1`, version: "1", want: []string{"1", "latest"}, latest: true},
		{name: "match/quoted pattern with comma", ev: tagRef,
			tags: `type=match,"pattern=v(\d{1,3})",group=1`, version: "1", want: []string{"1", "latest"}, latest: true},
		{name: "match/no match gives the tag, not latest", ev: event("push", "refs/tags/nightly"),
			tags: `type=match,pattern=v(\d),group=1`, version: "nightly", want: []string{"nightly"}},
		{name: "match/slash in tag becomes dash", ev: event("push", "refs/tags/app/v1.0.0"),
			tags: `type=match,pattern=app-v(.*),group=1`, version: "1.0.0", want: []string{"1.0.0", "latest"}, latest: true},
		{name: "edge/default branch", ev: event("push", "refs/heads/main"),
			tags: "type=edge", version: "edge", want: []string{"edge"}},
		{name: "edge/other branch attribute", ev: event("push", "refs/heads/develop"),
			tags: "type=edge,branch=develop\ntype=edge", version: "edge", want: []string{"edge"}},
		{name: "edge/not on feature branch", ev: event("push", "refs/heads/feature"),
			tags: "type=edge\ntype=raw,value=x", version: "x", want: []string{"x"}},
		{name: "ref/tag makes latest", ev: event("push", "refs/tags/release-1"),
			tags: "type=ref,event=tag", version: "release-1", want: []string{"release-1", "latest"}, latest: true},
		{name: "ref/pr with own prefix", ev: event("pull_request", "refs/pull/7/merge"),
			tags: "type=ref,event=pr,prefix=pull-", version: "pull-7", want: []string{"pull-7"}},
		{name: "ref/branch sanitized", ev: event("push", "refs/heads/feat/ü+x"),
			tags: "type=ref,event=branch", version: "feat-x", want: []string{"feat-x"}},
		{name: "schedule/default pattern", ev: event("schedule", "refs/heads/main"),
			tags: "type=schedule", version: "nightly", want: []string{"nightly"}},
		{name: "schedule/date pattern", ev: event("schedule", "refs/heads/main"),
			tags: "type=schedule,pattern={{date 'YYYYMMDD-HHmm'}}", version: "20240628-1000", want: []string{"20240628-1000"}},
		{name: "schedule/not on push", ev: event("push", "refs/heads/main"),
			tags: "type=schedule\ntype=raw,value=r", version: "r", want: []string{"r"}},
		{name: "sha/short, long and length", ev: event("push", "refs/heads/main"),
			tags: "type=sha\ntype=sha,format=long,prefix=", version: "sha-abc1234", want: []string{"sha-abc1234", sha}},
		{name: "raw/bare value", ev: event("push", "refs/heads/main"),
			tags: "foo\nbar", version: "foo", want: []string{"foo", "bar"}},
		{name: "priority/reorders and duplicates dropped", ev: event("push", "refs/heads/main"),
			tags: "type=raw,value=a\ntype=raw,value=b,priority=300\ntype=raw,value=a", version: "b", want: []string{"b", "a"}},
		{name: "enable/false skips", ev: event("push", "refs/heads/main"),
			tags: "type=raw,value=a,enable=false\ntype=raw,value=b,enable={{is_default_branch}}", version: "b", want: []string{"b"}},
		{name: "flavor/latest true", ev: event("push", "refs/heads/main"),
			tags: "type=raw,value=dev", flavor: []string{"latest=true"}, version: "dev", want: []string{"dev", "latest"}, latest: true},
		{name: "flavor/latest false on a release", ev: tagRef,
			tags: "type=semver,pattern={{version}}", flavor: []string{"latest=false"}, version: "1.2.3", want: []string{"1.2.3"}},
		{name: "flavor/prefix and suffix, rule prefix wins", ev: tagRef,
			tags:   "type=semver,pattern={{version}}\ntype=sha",
			flavor: []string{"prefix=app-", "suffix=-slim"},
			// sha's own default prefix sha- replaces the flavor's prefix; the suffix still applies.
			version: "app-1.2.3-slim", want: []string{"app-1.2.3-slim", "sha-abc1234-slim", "latest"}, latest: true},
		{name: "flavor/onlatest", ev: tagRef,
			tags: "type=semver,pattern={{version}}", flavor: []string{"prefix=app-,onlatest=true", "suffix=-slim,onlatest=true"},
			version: "app-1.2.3-slim", want: []string{"app-1.2.3-slim", "app-latest-slim"}, latest: true},
		{name: "latest/from version rule only", ev: tagRef,
			tags: "type=raw,value=first,priority=1000\ntype=semver,pattern={{version}}", version: "first", want: []string{"first", "1.2.3"}},
		{name: "helpers/branch tag sha base_ref", ev: Event{Name: "push", Ref: "refs/tags/v1", SHA: sha, BaseRef: "refs/heads/main", DefaultBranch: "main"},
			tags:    "type=raw,value=x[{{branch}}][{{tag}}][{{sha}}][{{base_ref}}][{{is_default_branch}}][{{event_name}}]",
			version: "x-v1-abc1234-main-false-push-", want: []string{"x-v1-abc1234-main-false-push-"}},
		{name: "helpers/date in another time zone", ev: event("push", "refs/heads/main"),
			tags: "type=raw,value={{date 'YYYY-MM-DD HH:mm' tz='Asia/Tokyo'}}", version: "2024-06-28-19-00", want: []string{"2024-06-28-19-00"}},
		{name: "helpers/output is HTML-escaped as Handlebars does", ev: event("push", "refs/heads/a&b"),
			tags: "type=raw,value={{branch}}\ntype=raw,value={{{branch}}}", version: "a-amp-b", want: []string{"a-amp-b", "a-b"}},
		{name: "helpers/if with boolean helpers", ev: event("pull_request", "refs/pull/9/merge"),
			tags: "type=raw,value={{#if (is_pull_request)}}preview{{else}}release{{/if}}", version: "preview", want: []string{"preview"}},
		{name: "tags/empty template part dropped", ev: event("push", "refs/heads/main"),
			tags: "type=raw,value={{tag}}-{{sha}}\ntype=raw,value=ok", version: "ok", want: []string{"ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Derive(input(t, tc.ev, tc.tags, tc.flavor...))
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if res.Version != tc.version {
				t.Errorf("version = %q, want %q", res.Version, tc.version)
			}
			if diff := cmp.Diff(tc.want, res.TagNames); diff != "" {
				t.Errorf("tag names (-want +got):\n%s", diff)
			}
			if res.Latest != tc.latest {
				t.Errorf("latest = %v, want %v", res.Latest, tc.latest)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200)
	tests := []struct {
		name     string
		tags     string
		want     []string
		warnings []string
	}{
		{"empty part", "type=raw,value={{tag}}-suffix\nkeep",
			[]string{"keep"}, []string{`tag "-suffix" dropped`}},
		{"not a semver", "type=semver,pattern={{version}},value=abc\nkeep",
			[]string{"keep"}, []string{`"abc" is not a valid semver`}},
		{"too long", "type=raw,value=" + long + "\ntype=raw,value=" + long + "y",
			[]string{strings.Repeat("x", 119) + "-" + hash8(long), strings.Repeat("x", 119) + "-" + hash8(long+"y")},
			[]string{"longer than 128 characters", "longer than 128 characters"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Derive(input(t, event("push", "refs/heads/main"), tc.tags))
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if diff := cmp.Diff(tc.want, res.TagNames); diff != "" {
				t.Errorf("tag names (-want +got):\n%s", diff)
			}
			if len(res.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d", res.Warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(res.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, res.Warnings[i], w)
				}
			}
			for _, tag := range res.TagNames {
				if len(tag) > MaxTagLength || !ValidTag(tag) {
					t.Errorf("invalid tag %q emitted", tag)
				}
			}
		})
	}
}

// hash8 is the first 8 hex digits of the SHA-256 of a tag's full text,
// which keeps shortened tags distinct.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestLabelsAndAnnotations(t *testing.T) {
	t.Parallel()
	in := input(t, event("push", "refs/tags/v1.2.3"), "type=semver,pattern={{version}}")
	in.Repo.Description = "Astro site"
	in.Labels = []string{"org.opencontainers.image.title=Phialo {{tag}}", "maintainer=barde", "com.example.empty="}
	in.Annotations = []string{"org.opencontainers.image.description=An image", "index:com.example.only-index=1"}
	res, err := Derive(in)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	wantLabels := []string{
		"com.example.empty=",
		"maintainer=barde",
		"org.opencontainers.image.created=2024-06-28T10:00:00.000Z",
		"org.opencontainers.image.description=Astro site",
		"org.opencontainers.image.licenses=MIT",
		"org.opencontainers.image.revision=" + sha,
		"org.opencontainers.image.source=https://github.com/barde/phialoastro",
		"org.opencontainers.image.title=Phialo v1.2.3",
		"org.opencontainers.image.url=https://github.com/barde/phialoastro",
		"org.opencontainers.image.version=1.2.3",
	}
	if diff := cmp.Diff(wantLabels, res.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	var want []string
	for _, lvl := range []string{"manifest", "index"} {
		for _, kv := range []string{
			"org.opencontainers.image.created=2024-06-28T10:00:00.000Z",
			"org.opencontainers.image.description=An image",
			"org.opencontainers.image.licenses=MIT",
			"org.opencontainers.image.revision=" + sha,
			"org.opencontainers.image.source=https://github.com/barde/phialoastro",
			"org.opencontainers.image.title=phialoastro",
			"org.opencontainers.image.url=https://github.com/barde/phialoastro",
			"org.opencontainers.image.version=1.2.3",
		} {
			want = append(want, lvl+":"+kv)
		}
	}
	want = append(want, "index:com.example.only-index=1")
	if diff := cmp.Diff(want, res.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	imgs, err := ParseImages([]string{"ghcr.io/Barde/App", "name=docker.io/barde/app,enable={{is_pull_request}}", "ghcr.io/barde/app"})
	if err != nil {
		t.Fatalf("ParseImages: %v", err)
	}
	in := input(t, event("push", "refs/heads/main"), "type=raw,value=v\ntype=raw,value=w")
	in.Images = imgs
	res, err := Derive(in)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	want := []string{"ghcr.io/barde/app:v", "ghcr.io/barde/app:w"}
	if diff := cmp.Diff(want, res.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}

	in.Images = nil
	res, err = Derive(in)
	if err != nil {
		t.Fatalf("Derive without images: %v", err)
	}
	if diff := cmp.Diff([]string{"v", "w"}, res.Tags); diff != "" {
		t.Errorf("tags without images (-want +got):\n%s", diff)
	}
}

func TestCommitDate(t *testing.T) {
	t.Parallel()
	in := input(t, event("push", "refs/heads/main"), "type=raw,value={{commit_date 'YYYYMMDD-HHmm'}}")
	in.CommitDate = time.Date(2024, 6, 27, 14, 20, 0, 0, time.UTC)
	res, err := Derive(in)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	if res.Version != "20240627-1420" {
		t.Errorf("version = %q, want 20240627-1420", res.Version)
	}
	if !UsesCommitDate(in.Rules[0].Attrs["value"]) || UsesCommitDate("{{date 'YYYY'}}") {
		t.Error("UsesCommitDate does not tell templates with {{commit_date}} apart")
	}
}

func TestDeriveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tags string
		want []string
	}{
		{"enable not a boolean", "type=raw,value=a,enable=yes", []string{`enable="yes" renders to "yes"; want true or false`}},
		{"enable template not a boolean", "type=raw,value=a,enable={{tag}}", []string{`renders to "v1"`}},
		{"bad time zone", "type=raw,value={{date 'YYYY' tz='Mars/Olympus'}}", []string{`unknown time zone "Mars/Olympus"`}},
		{"unknown date attribute", "type=raw,value={{date 'YYYY' locale='fr'}}", []string{`unknown date attribute "locale"`}},
		{"all at once", "type=raw,value=a,enable=no\ntype=raw,value=b,enable=maybe", []string{`"no"`, `"maybe"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Derive(input(t, event("push", "refs/tags/v1"), tc.tags))
			if err == nil {
				t.Fatal("Derive succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), `input "tags", line`) {
				t.Errorf("error %q does not name the input and line", err)
			}
		})
	}
}

func BenchmarkDeriveDefaults(b *testing.B) {
	rules, err := DefaultRules("YYYYMMDD")
	if err != nil {
		b.Fatal(err)
	}
	in := Input{
		Images:           []Image{{Name: image, Enable: "true"}, {Name: "docker.io/barde/phialoastro", Enable: "true"}},
		Rules:            rules,
		AnnotationLevels: []string{"manifest", "index"},
		ShortSHALength:   7,
		Event:            Event{Name: "push", Ref: "refs/tags/v1.2.3", BaseRef: "refs/heads/main", SHA: sha, DefaultBranch: "main"},
		Now:              buildDate,
		Flavor:           Flavor{Latest: "auto"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Derive(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSanitizeAndValidTag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"feature/login": "feature-login", "a//b": "a-b", "ü": "-", "v1.2.3_x-y": "v1.2.3_x-y", "a b\tc": "a-b-c", "": "",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	for tag, want := range map[string]bool{
		"latest": true, "_x": true, "1.2": true, strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false, "": false, "-x": false, ".x": false, "a/b": false, "a:b": false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
