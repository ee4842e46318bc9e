package meta

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line     string
		typ      RuleType
		priority int
		attrs    map[string]string
	}{
		{"type=schedule", TypeSchedule, 1000, map[string]string{"pattern": "nightly", "enable": "true"}},
		{"type=semver,pattern={{version}}", TypeSemver, 900, map[string]string{"pattern": "{{version}}", "value": "", "match": "", "enable": "true"}},
		{"type=pep440,pattern={{version}},priority=10", TypePep440, 10, map[string]string{"pattern": "{{version}}", "value": "", "match": "", "enable": "true", "priority": "10"}},
		{`type=match,"pattern=\d{1,3}",group=0`, TypeMatch, 800, map[string]string{"pattern": `\d{1,3}`, "group": "0", "value": "", "enable": "true"}},
		{"type=edge", TypeEdge, 700, map[string]string{"branch": "", "enable": "true"}},
		{"type=ref,event=pr", TypeRef, 600, map[string]string{"event": "pr", "prefix": "pr-", "enable": "true"}},
		{"type=ref,event=branch,prefix=", TypeRef, 600, map[string]string{"event": "branch", "prefix": "", "enable": "true"}},
		{"latest", TypeRaw, 200, map[string]string{"value": "latest", "enable": "true"}},
		{" TYPE = raw , value = a=b ", TypeRaw, 200, map[string]string{"value": "a=b", "enable": "true"}},
		{"type=sha,format=long", TypeSha, 100, map[string]string{"prefix": "sha-", "format": "long", "enable": "true"}},
		{"type=raw,value=x,", TypeRaw, 200, map[string]string{"value": "x", "enable": "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRule(tc.line)
			if err != nil {
				t.Fatalf("ParseRule: %v", err)
			}
			if r.Type != tc.typ || r.Priority != tc.priority {
				t.Errorf("type, priority = %s, %d; want %s, %d", r.Type, r.Priority, tc.typ, tc.priority)
			}
			if diff := cmp.Diff(tc.attrs, r.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRuleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"type=foo", `unknown type "foo"; want one of schedule, semver, pep440, match, edge, ref, raw, sha`},
		{"type=semver", "type=semver needs a pattern attribute"},
		{"type=match", "type=match needs a pattern attribute"},
		{"type=match,pattern=x,group=one", `group "one" is not a whole number`},
		{"type=ref", "type=ref needs an event attribute"},
		{"type=ref,event=push", `event "push"; want branch, tag or pr`},
		{"type=raw", "type=raw needs a value"},
		{"type=sha,format=medium", `format "medium"; want short or long`},
		{"type=raw,value=a,priority=high", `priority "high" is not a whole number`},
		{"type=sha,pattern=x", `unknown attribute "pattern" for type=sha; want enable, priority, prefix, suffix, format`},
		// Checked when parsing, so a rule this event never reaches is reported too.
		{`type=match,pattern=v(\d`, `pattern "v(\\d" is not a regular expression (RE2 syntax)`},
		{"type=match,pattern=/v/x", `pattern "/v/x": unknown flag 'x'; want i, m, s or g`},
		{`type=match,pattern=v(\d),group=2`, `group=2 but pattern "v(\\d)" has 1 groups`},
		{`type=semver,pattern={{version}},match=v\d`, `has no group`},
		{"type=raw,value={{#if}}", `value="{{#if}}" is not a valid template`},
		{"type=raw,value=x,enable={{branch", `enable="{{branch" is not a valid template`},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRule(tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRule(%q) error = %v, want it to contain %q", tc.line, err, tc.want)
			}
		})
	}
}

func TestParseRulesOrderAndErrors(t *testing.T) {
	t.Parallel()
	rules, err := ParseRules([]string{"type=raw,value=a", "type=sha", "type=raw,value=b", "type=semver,pattern={{version}}"})
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Line)
	}
	want := []string{"type=semver,pattern={{version}}", "type=raw,value=a", "type=raw,value=b", "type=sha"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	_, err = ParseRules([]string{"type=nope", "type=raw,value=ok", "type=ref"})
	if err == nil {
		t.Fatal("ParseRules succeeded on bad lines")
	}
	for _, w := range []string{`input "tags", line "type=nope"`, `input "tags", line "type=ref"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestSplitLines(t *testing.T) {
	t.Parallel()
	got := SplitLines("  a \r\n\n# comment\n  # indented comment\nb,c\n")
	if diff := cmp.Diff([]string{"a", "b,c"}, got); diff != "" {
		t.Errorf("SplitLines (-want +got):\n%s", diff)
	}
}

func TestParseFlavor(t *testing.T) {
	t.Parallel()
	f, err := ParseFlavor([]string{"latest=false", "prefix=v,onlatest=true", "suffix=-x"})
	if err != nil {
		t.Fatalf("ParseFlavor: %v", err)
	}
	want := Flavor{Latest: "false", Prefix: "v", PrefixLatest: true, Suffix: "-x"}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("flavor (-want +got):\n%s", diff)
	}
	for line, msg := range map[string]string{
		"latest=sometimes":      `latest="sometimes"; want auto, true or false`,
		"onlatest=true":         "onlatest must follow prefix= or suffix=",
		"prefix=a,onlatest=yes": `onlatest="yes"; want true or false`,
		"color=blue":            `unknown key "color"`,
		"latest":                `entry "latest" is not key=value`,
	} {
		_, err := ParseFlavor([]string{line})
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), `input "flavor"`) {
			t.Errorf("ParseFlavor(%q) error = %v, want it to contain %q", line, err, msg)
		}
	}
}

func TestParseImagesErrors(t *testing.T) {
	t.Parallel()
	for line, msg := range map[string]string{
		"ghcr.io/foo bar/app":       `image "ghcr.io/foo bar/app" is not a repository`,
		"ghcr.io/owner/app:v1":      `image "ghcr.io/owner/app:v1" is not a repository`,
		"name=,enable=true":         "empty image name",
		"name=ghcr.io/a/b,color=on": `unknown attribute "color"`,
	} {
		_, err := ParseImages([]string{line})
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), `input "images"`) {
			t.Errorf("ParseImages(%q) error = %v, want it to contain %q", line, err, msg)
		}
	}
}

// FuzzParseRule checks that no rule line panics the parser or the engine,
// and that the engine never emits an invalid tag.
func FuzzParseRule(f *testing.F) {
	for _, l := range SplitLines(DefaultTags) {
		f.Add(l)
	}
	for _, l := range []string{
		"type=match,pattern=/^v(\\d+)/i,group=1", `type=raw,"value={{date 'YYYY' tz='Asia/Tokyo'}}"`,
		"type=raw,value={{#each x}}{{/each}}", "type=semver,pattern={{raw}},value={{tag}}",
		"type=pep440,pattern={{major}}", "type=raw,value=" + strings.Repeat("ä", 100),
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseRule(line)
		if err != nil {
			return
		}
		if _, ok := ruleTypes[r.Type]; !ok {
			t.Fatalf("ParseRule(%q) gave unknown type %q", line, r.Type)
		}
		if _, ok := r.Attrs["enable"]; !ok {
			t.Fatalf("ParseRule(%q) gave no enable attribute", line)
		}
		for _, ref := range []string{"refs/tags/v1.2.3-rc.1", "refs/heads/feature/x", "refs/pull/1/merge"} {
			in := Input{
				Rules: []Rule{r}, Flavor: Flavor{Latest: "auto"}, ShortSHALength: 7, Now: buildDate,
				Event: Event{Name: "push", Ref: ref, SHA: sha, DefaultBranch: "main"},
			}
			res, err := Derive(in)
			if err != nil {
				continue
			}
			for _, tag := range res.TagNames {
				if !ValidTag(tag) {
					t.Fatalf("rule %q on %s emitted invalid tag %q", line, ref, tag)
				}
			}
		}
	})
}
