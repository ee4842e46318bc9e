package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is what the engine needs to know about the GitHub event.
type Event struct {
	// Name is the event name, such as push or pull_request.
	Name string
	// Ref is the ref being built (refs/heads/..., refs/tags/..., refs/pull/N/merge).
	Ref string
	// SHA is the commit the image describes.
	SHA string
	// BaseRef is the payload's base_ref of a tag push (refs/heads/main).
	BaseRef string
	// PRBaseRef is a pull request's base branch.
	PRBaseRef string
	// DefaultBranch is the repository's default branch.
	DefaultBranch string
}

// Repo describes the repository for the OCI labels.
type Repo struct {
	Name, Description, HTMLURL, License string
}

// Input is everything the engine derives tags, labels and annotations from.
type Input struct {
	Images      []Image
	Rules       []Rule
	Flavor      Flavor
	Labels      []string
	Annotations []string
	// AnnotationLevels are the buildx annotation levels every annotation is
	// written for, such as manifest and index.
	AnnotationLevels []string
	ShortSHALength   int
	Event            Event
	Repo             Repo
	// Now is the build date ({{date}} and the created label).
	Now time.Time
	// CommitDate is the commit's date for {{commit_date}}; zero means Now.
	CommitDate time.Time
}

func (in *Input) commitDate() time.Time {
	if in.CommitDate.IsZero() {
		return in.Now
	}
	return in.CommitDate
}

// Result is the derived metadata.
type Result struct {
	// Version is the tag of the highest-priority rule that produced one.
	Version string
	// Latest reports whether the latest tag is added.
	Latest bool
	// Tags are the full references, image:tag, per image in input order.
	Tags []string
	// TagNames are the tags without image, in the same order.
	TagNames []string
	// Images are the enabled images.
	Images []string
	// Labels are key=value pairs sorted by key.
	Labels []string
	// Annotations are level:key=value entries.
	Annotations []string
	// Warnings explain dropped or shortened tags and skipped rules.
	Warnings []string
}

// MaxTagLength is the longest tag a registry accepts.
const MaxTagLength = 128

// tagChar reports whether a tag may hold c: [A-Za-z0-9_.-].
func tagChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// Sanitize replaces each run of characters a tag may not hold with one '-'.
func Sanitize(tag string) string {
	var b strings.Builder
	b.Grow(len(tag))
	run := false
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; tagChar(c) {
			b.WriteByte(c)
			run = false
		} else if !run {
			b.WriteByte('-')
			run = true
		}
	}
	return b.String()
}

// ValidTag reports whether a registry accepts tag: [A-Za-z0-9_] then up to
// 127 of [A-Za-z0-9_.-].
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > MaxTagLength || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if !tagChar(tag[i]) {
			return false
		}
	}
	return true
}

// version accumulates what the rules yield.
type version struct {
	main    string
	partial []string
	latest  *bool
}

type engine struct {
	in       *Input
	r        *renderer
	v        version
	warnings []string
}

// Derive applies the rules to the event. It does no I/O: every date, name
// and ref comes from in.
func Derive(in Input) (Result, error) {
	e := &engine{in: &in, r: newRenderer(&in)}
	if err := e.apply(); err != nil {
		return Result{}, err
	}
	res := Result{Version: e.v.main, Latest: e.v.latest != nil && *e.v.latest}
	images, err := e.images()
	if err != nil {
		return Result{}, err
	}
	res.Images = images
	res.TagNames = e.tagNames(res.Latest)
	if len(images) == 0 {
		res.Tags = slices.Clone(res.TagNames)
	}
	for _, img := range images {
		for _, t := range res.TagNames {
			res.Tags = append(res.Tags, img+":"+t)
		}
	}
	base := e.ociPairs(res.Version)
	if res.Labels, err = e.pairs("labels", base, in.Labels); err != nil {
		return Result{}, err
	}
	if res.Annotations, err = e.annotations(base); err != nil {
		return Result{}, err
	}
	res.Warnings = e.warnings
	return res, nil
}

func (e *engine) apply() error {
	var errs []error
	for _, rule := range e.in.Rules {
		on, err := e.r.renderBool("enable", rule.attr("enable"))
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "tags", line %q: %w`, rule.Line, err))
			continue
		}
		if !on {
			continue
		}
		if err := e.applyRule(rule); err != nil {
			errs = append(errs, fmt.Errorf(`input "tags", line %q: %w`, rule.Line, err))
		}
	}
	return errors.Join(errs...)
}

// latestFor is the latest decision of a rule: its own with latest=auto,
// else the flavor's.
func (e *engine) latestFor(auto bool) bool {
	switch e.in.Flavor.Latest {
	case "true":
		return true
	case "false":
		return false
	}
	return auto
}

func (e *engine) applyRule(rule Rule) error {
	ref := e.in.Event.Ref
	switch rule.Type {
	case TypeSchedule:
		if e.in.Event.Name != "schedule" {
			return nil
		}
		v, err := e.r.render(rule.attr("pattern"), nil)
		if err != nil {
			return err
		}
		return e.set(rule, v, e.latestFor(false))
	case TypeSemver, TypePep440:
		return e.applyVersion(rule)
	case TypeMatch:
		return e.applyMatch(rule)
	case TypeEdge:
		branch, ok := strings.CutPrefix(ref, "refs/heads/")
		if !ok {
			return nil
		}
		want := rule.attr("branch")
		if want == "" {
			want = e.in.Event.DefaultBranch
		}
		if branch != want {
			return nil
		}
		return e.set(rule, "edge", e.latestFor(false))
	case TypeRef:
		switch rule.attr("event") {
		case "branch":
			if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
				return e.set(rule, b, e.latestFor(false))
			}
		case "tag":
			if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
				return e.set(rule, t, e.latestFor(true))
			}
		case "pr":
			if p, ok := strings.CutPrefix(ref, "refs/pull/"); ok {
				return e.set(rule, strings.TrimSuffix(p, "/merge"), e.latestFor(false))
			}
		}
		return nil
	case TypeRaw:
		v, err := e.r.render(rule.attr("value"), nil)
		if err != nil {
			return err
		}
		return e.set(rule, v, e.latestFor(false))
	case TypeSha:
		if e.in.Event.SHA == "" {
			return nil
		}
		sha := e.in.Event.SHA
		if rule.attr("format") == "short" {
			sha = shortSHA(sha, e.in.ShortSHALength)
		}
		return e.set(rule, sha, e.latestFor(false))
	}
	return nil
}

// versionInput is the text semver, pep440 and match rules read: the value
// attribute, else the tag name with '/' made '-'. ok is false when neither
// applies.
func (e *engine) versionInput(rule Rule) (string, bool, error) {
	if rule.attr("value") != "" {
		v, err := e.r.render(rule.attr("value"), nil)
		return v, true, err
	}
	t, ok := strings.CutPrefix(e.in.Event.Ref, "refs/tags/")
	if !ok {
		return "", false, nil
	}
	return strings.ReplaceAll(t, "/", "-"), true, nil
}

func (e *engine) applyVersion(rule Rule) error {
	raw, ok, err := e.versionInput(rule)
	if !ok || err != nil {
		return err
	}
	if m := rule.attr("match"); m != "" {
		re, err := compilePattern(m)
		if err != nil {
			return err
		}
		sub := re.FindStringSubmatch(raw)
		if len(sub) < 2 {
			return nil
		}
		raw = sub[1]
	}
	parse, kind := parseSemver, "a valid semver (https://semver.org)"
	if rule.Type == TypePep440 {
		parse, kind = parsePep440, "a PEP 440 version"
	}
	v, ok := parse(raw)
	if !ok {
		if !rule.Builtin {
			e.warnf(`input "tags", line %q: %q is not %s; rule skipped`, rule.Line, raw, kind)
		}
		return nil
	}
	// A pre-release ignores its pattern (1.2 must not point at 1.2.0-rc.1)
	// unless the pattern is exactly {{raw}}.
	tag, _ := v.fields["version"].(string)
	if !v.prerelease || isRawStatement(rule.attr("pattern")) {
		if tag, err = e.r.render(rule.attr("pattern"), v.fields); err != nil {
			return err
		}
	}
	return e.set(rule, tag, e.latestFor(!v.prerelease))
}

func (e *engine) applyMatch(rule Rule) error {
	raw, ok, err := e.versionInput(rule)
	if !ok || err != nil {
		return err
	}
	re, err := compilePattern(rule.attr("pattern"))
	if err != nil {
		return err
	}
	group, _ := strconv.Atoi(rule.attr("group"))
	if group > re.NumSubexp() {
		return fmt.Errorf("group=%d but pattern %q has %d groups", group, rule.attr("pattern"), re.NumSubexp())
	}
	sub := re.FindStringSubmatch(raw)
	if sub == nil {
		// As docker/metadata-action: a tag the pattern does not match is
		// used as it is, and never makes latest.
		return e.set(rule, raw, e.latestFor(false))
	}
	return e.set(rule, sub[group], e.latestFor(true))
}

// compilePattern compiles a plain regular expression or one written as
// /re/flags with the flags i, m, s (and g, which changes nothing).
func compilePattern(p string) (*regexp.Regexp, error) {
	expr := p
	if strings.HasPrefix(p, "/") && len(p) > 2 {
		if end := strings.LastIndex(p, "/"); end > 0 {
			flags := ""
			for _, f := range p[end+1:] {
				switch f {
				case 'i', 'm', 's':
					flags += string(f)
				case 'g':
				default:
					return nil, fmt.Errorf("pattern %q: unknown flag %q; want i, m, s or g", p, f)
				}
			}
			expr = p[1:end]
			if flags != "" {
				expr = "(?" + flags + ")" + expr
			}
		}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("pattern %q is not a regular expression (RE2 syntax): %w", p, err)
	}
	return re, nil
}

// set adds a tag value produced by a rule, wrapped in the rule's or the
// flavor's prefix and suffix.
func (e *engine) set(rule Rule, val string, latest bool) error {
	if val == "" {
		return nil
	}
	pre, suf := e.in.Flavor.Prefix, e.in.Flavor.Suffix
	if rule.has("prefix") {
		pre = rule.attr("prefix")
	}
	if rule.has("suffix") {
		suf = rule.attr("suffix")
	}
	p, err := e.r.render(pre, nil)
	if err != nil {
		return err
	}
	s, err := e.r.render(suf, nil)
	if err != nil {
		return err
	}
	tag, ok := e.checkTag(rule, p+val+s)
	if !ok {
		return nil
	}
	if e.v.main == "" {
		e.v.main = tag
	} else if tag != e.v.main && !slices.Contains(e.v.partial, tag) {
		e.v.partial = append(e.v.partial, tag)
	}
	if e.v.latest == nil {
		e.v.latest = &latest
	}
	return nil
}

// checkTag makes a tag valid for a registry or drops it: characters outside
// [A-Za-z0-9._-] become '-', a tag that starts with '-' or '.' (a template
// part rendered empty) is dropped, and a tag longer than 128 characters is
// cut and given a hash of its full text so it stays distinct.
func (e *engine) checkTag(rule Rule, tag string) (string, bool) {
	tag = Sanitize(tag)
	if tag == "" {
		return "", false
	}
	if c := tag[0]; c == '-' || c == '.' {
		if !rule.Builtin {
			e.warnf(`input "tags", line %q: tag %q dropped: a tag must start with a letter, digit or '_' (is a template part such as {{branch}} empty for this event?)`, rule.Line, tag)
		}
		return "", false
	}
	if len(tag) > MaxTagLength {
		sum := sha256.Sum256([]byte(tag))
		short := strings.TrimRight(tag[:MaxTagLength-9], "-.") + "-" + hex.EncodeToString(sum[:])[:8]
		e.warnf(`input "tags", line %q: tag %q is longer than %d characters; shortened to %q`, rule.Line, tag, MaxTagLength, short)
		tag = short
	}
	if !ValidTag(tag) {
		e.warnf(`input "tags", line %q: tag %q dropped: not a valid tag`, rule.Line, tag)
		return "", false
	}
	return tag, true
}

func (e *engine) warnf(format string, args ...any) {
	e.warnings = append(e.warnings, fmt.Sprintf(format, args...))
}

// tagNames lists the version, the other tags, then latest.
func (e *engine) tagNames(latest bool) []string {
	if e.v.main == "" {
		return nil
	}
	names := append([]string{e.v.main}, e.v.partial...)
	if latest {
		f := e.in.Flavor
		l := "latest"
		if f.PrefixLatest {
			l = f.Prefix + l
		}
		if f.SuffixLatest {
			l += f.Suffix
		}
		if l, err := e.r.render(l, nil); err == nil {
			if l = Sanitize(l); ValidTag(l) && !slices.Contains(names, l) {
				names = append(names, l)
			}
		}
	}
	return names
}

func (e *engine) images() ([]string, error) {
	var out []string
	var errs []error
	for _, img := range e.in.Images {
		on, err := e.r.renderBool("enable", img.Enable)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "images", image %q: %w`, img.Name, err))
			continue
		}
		if on && !slices.Contains(out, img.Name) {
			out = append(out, img.Name)
		}
	}
	return out, errors.Join(errs...)
}

// ociPairs are the org.opencontainers.image.* labels and annotations.
func (e *engine) ociPairs(version string) []string {
	repo := e.in.Repo
	return []string{
		"org.opencontainers.image.title=" + repo.Name,
		"org.opencontainers.image.description=" + repo.Description,
		"org.opencontainers.image.url=" + repo.HTMLURL,
		"org.opencontainers.image.source=" + repo.HTMLURL,
		"org.opencontainers.image.version=" + version,
		"org.opencontainers.image.created=" + e.in.Now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"org.opencontainers.image.revision=" + e.in.Event.SHA,
		"org.opencontainers.image.licenses=" + repo.License,
	}
}

// pairs merges base and the rendered custom key=value entries; a custom
// entry overrides a base one with the same key. The result is sorted by key.
func (e *engine) pairs(input string, base, custom []string) ([]string, error) {
	m := map[string]string{}
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	var errs []error
	for _, line := range custom {
		s, err := e.r.render(line, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %q, line %q: %w", input, line, err))
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("input %q, line %q: want key=value", input, line))
			continue
		}
		m[k] = v
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out, errors.Join(errs...)
}

// annotationLevel matches a buildx level prefix such as "index:" or
// "manifest[linux/amd64]:" at the start of an annotation.
var annotationLevel = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^((manifest|index|manifest-descriptor|index-descriptor)(\[[^\]]*\])?,?)+:`)
})

// annotations writes every annotation once per level. A custom annotation
// that names its own level (index:key=value) is written for that level only.
func (e *engine) annotations(base []string) ([]string, error) {
	var plain, leveled []string
	for _, a := range e.in.Annotations {
		if annotationLevel().MatchString(a) {
			leveled = append(leveled, a)
		} else {
			plain = append(plain, a)
		}
	}
	all, err := e.pairs("annotations", base, plain)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, lvl := range e.in.AnnotationLevels {
		for _, a := range all {
			out = append(out, lvl+":"+a)
		}
	}
	for _, a := range leveled {
		s, err := e.r.render(a, nil)
		if err != nil {
			return nil, fmt.Errorf(`input "annotations", line %q: %w`, a, err)
		}
		if _, _, ok := strings.Cut(s, "="); !ok {
			return nil, fmt.Errorf(`input "annotations", line %q: want level:key=value`, a)
		}
		out = append(out, s)
	}
	return out, nil
}
