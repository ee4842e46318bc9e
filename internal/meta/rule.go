package meta

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// RuleType is the kind of a tag rule (the `type=` attribute).
type RuleType string

// The rule types of docker/metadata-action.
const (
	TypeSchedule RuleType = "schedule"
	TypeSemver   RuleType = "semver"
	TypePep440   RuleType = "pep440"
	TypeMatch    RuleType = "match"
	TypeEdge     RuleType = "edge"
	TypeRef      RuleType = "ref"
	TypeRaw      RuleType = "raw"
	TypeSha      RuleType = "sha"
)

// ruleTypes lists each type with its default priority and the attributes it
// takes besides the common ones.
var ruleTypes = map[RuleType]struct {
	priority int
	attrs    []string
}{
	TypeSchedule: {1000, []string{"pattern"}},
	TypeSemver:   {900, []string{"pattern", "value", "match"}},
	TypePep440:   {900, []string{"pattern", "value", "match"}},
	TypeMatch:    {800, []string{"pattern", "group", "value"}},
	TypeEdge:     {700, []string{"branch"}},
	TypeRef:      {600, []string{"event"}},
	TypeRaw:      {200, []string{"value"}},
	TypeSha:      {100, []string{"format"}},
}

// typeNames is the accepted `type=` values in documentation order.
var typeNames = []string{"schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha"}

// commonAttrs are taken by every rule type.
var commonAttrs = []string{"type", "enable", "priority", "prefix", "suffix"}

// Rule is one parsed line of the `tags` input.
type Rule struct {
	// Type is the rule's type; a line without `type=` is raw.
	Type RuleType
	// Priority orders the rules, highest first.
	Priority int
	// Attrs holds the attributes as written plus the type's defaults. Whether
	// "prefix" or "suffix" is present matters: a rule's own prefix replaces
	// the flavor's.
	Attrs map[string]string
	// Line is the input line the rule came from.
	Line string
	// Builtin marks the rules of the default strategy, whose empty template
	// parts are expected and not worth a warning.
	Builtin bool
}

func (r Rule) attr(k string) string { return r.Attrs[k] }

func (r Rule) has(k string) bool { _, ok := r.Attrs[k]; return ok }

// SplitLines splits a list input into its entries: one per line, trimmed,
// without empty lines and lines starting with '#'.
func SplitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// splitFields splits one entry as a CSV record: fields are separated by
// commas and a field in double quotes may contain commas.
func splitFields(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %q as comma-separated fields: %w", line, err)
	}
	var out []string
	for _, f := range rec {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out, nil
}

// ParseRule parses one line of the `tags` input, such as
// `type=semver,pattern={{major}}.{{minor}}`. A field without `=` is the value.
func ParseRule(line string) (Rule, error) {
	fields, err := splitFields(line)
	if err != nil {
		return Rule{}, err
	}
	r := Rule{Attrs: map[string]string{}, Line: line}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			r.Attrs["value"] = f
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if k == "type" {
			if _, known := ruleTypes[RuleType(v)]; !known {
				return Rule{}, fmt.Errorf("unknown type %q; want one of %s", v, strings.Join(typeNames, ", "))
			}
			r.Type = RuleType(v)
			continue
		}
		r.Attrs[k] = v
	}
	if r.Type == "" {
		r.Type = TypeRaw
	}
	spec := ruleTypes[r.Type]
	for k := range r.Attrs {
		if !slices.Contains(commonAttrs, k) && !slices.Contains(spec.attrs, k) {
			return Rule{}, fmt.Errorf("unknown attribute %q for type=%s; want %s", k, r.Type, strings.Join(append(slices.Clone(commonAttrs[1:]), spec.attrs...), ", "))
		}
	}
	if err := r.setDefaults(); err != nil {
		return Rule{}, err
	}
	if err := r.check(); err != nil {
		return Rule{}, err
	}
	r.Priority = spec.priority
	if p, ok := r.Attrs["priority"]; ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Rule{}, fmt.Errorf("priority %q is not a whole number", p)
		}
		r.Priority = n
	}
	if !r.has("enable") {
		r.Attrs["enable"] = "true"
	}
	return r, nil
}

func (r *Rule) setDefaults() error {
	def := func(k, v string) {
		if !r.has(k) {
			r.Attrs[k] = v
		}
	}
	switch r.Type {
	case TypeSchedule:
		def("pattern", "nightly")
	case TypeSemver, TypePep440:
		if !r.has("pattern") {
			return fmt.Errorf("type=%s needs a pattern attribute, such as pattern={{version}}", r.Type)
		}
		def("value", "")
		def("match", "")
	case TypeMatch:
		if r.attr("pattern") == "" {
			return errors.New("type=match needs a pattern attribute, such as pattern=v(\\d.\\d)")
		}
		def("group", "0")
		if g, err := strconv.Atoi(r.attr("group")); err != nil || g < 0 {
			return fmt.Errorf("group %q is not a whole number >= 0", r.attr("group"))
		}
		def("value", "")
	case TypeEdge:
		def("branch", "")
	case TypeRef:
		switch r.attr("event") {
		case "branch", "tag":
		case "pr":
			def("prefix", "pr-")
		case "":
			return errors.New("type=ref needs an event attribute: event=branch, event=tag or event=pr")
		default:
			return fmt.Errorf("event %q; want branch, tag or pr", r.attr("event"))
		}
	case TypeRaw:
		if !r.has("value") {
			return errors.New("type=raw needs a value, such as type=raw,value=latest")
		}
	case TypeSha:
		def("prefix", "sha-")
		def("format", "short")
		if f := r.attr("format"); f != "short" && f != "long" {
			return fmt.Errorf("format %q; want short or long", f)
		}
	}
	return nil
}

// check compiles the rule's regular expressions and templates, so that a
// broken one is reported even when this event never reaches it.
func (r *Rule) check() error {
	for _, k := range []string{"pattern", "match"} {
		if (k == "pattern" && r.Type != TypeMatch) || r.attr(k) == "" {
			continue
		}
		re, err := compilePattern(r.attr(k))
		if err != nil {
			return err
		}
		if k == "match" && re.NumSubexp() < 1 {
			return fmt.Errorf("match %q has no group; want a group such as v(.*) whose text is the version", r.attr(k))
		}
		if g, _ := strconv.Atoi(r.attr("group")); k == "pattern" && g > re.NumSubexp() {
			return fmt.Errorf("group=%d but pattern %q has %d groups", g, r.attr(k), re.NumSubexp())
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Attrs)) {
		if v := r.Attrs[k]; strings.Contains(v, "{{") {
			if _, err := safeParse(v); err != nil {
				return fmt.Errorf("%s=%q is not a valid template: %w", k, v, err)
			}
		}
	}
	return nil
}

// ParseRules parses the lines of the `tags` input and sorts the rules by
// priority, highest first, keeping the input order among equals. Every bad
// line is reported in the returned error.
func ParseRules(lines []string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for _, l := range lines {
		r, err := ParseRule(l)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "tags", line %q: %w`, l, err))
			continue
		}
		rules = append(rules, r)
	}
	slices.SortStableFunc(rules, func(a, b Rule) int { return b.Priority - a.Priority })
	return rules, errors.Join(errs...)
}

// DefaultTags is the tagging strategy used when the `tags` input is empty,
// written in the rule syntax; %s is the date format.
const DefaultTags = `type=semver,pattern={{raw}}
type=semver,pattern={{major}}.{{minor}},enable={{is_release_tag}}
type=semver,pattern={{major}},enable={{is_release_tag}}
type=ref,event=tag
type=ref,event=branch,enable={{is_not_default_branch}}
type=ref,event=pr
type=raw,value=latest,enable={{is_default_branch}}
type=sha,prefix={{branch}}{{base_ref}}-,enable={{is_not_pull_request}}
type=sha,format=long,enable={{is_not_pull_request}}
type=raw,"value={{date '%[1]s'}}",enable={{is_default_branch}}
type=raw,"value={{date '%[1]s'}}",enable={{is_release_tag}}`

// DefaultRules returns the parsed default strategy with the given moment.js
// date format.
func DefaultRules(dateFormat string) ([]Rule, error) {
	rules, err := ParseRules(SplitLines(fmt.Sprintf(DefaultTags, dateFormat)))
	for i := range rules {
		rules[i].Builtin = true
	}
	return rules, err
}
