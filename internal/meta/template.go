package meta

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailgun/raymond/v2"
	"github.com/mailgun/raymond/v2/ast"
	"github.com/mailgun/raymond/v2/parser"
	"github.com/nleeper/goment"
)

// alwaysDefaultBranch lists the events that GitHub triggers only for the last
// commit of the default branch: for them {{is_default_branch}} is true.
var alwaysDefaultBranch = map[string]bool{
	"create": true, "discussion": true, "discussion_comment": true, "gollum": true,
	"issue_comment": true, "issues": true, "label": true, "milestone": true,
	"page_build": true, "project": true, "project_card": true, "project_column": true,
	"public": true, "pull_request_comment": true, "pull_request_review": true,
	"pull_request_review_comment": true, "registry_package": true, "schedule": true,
	"watch": true,
}

// renderer evaluates the Handlebars templates of rules, labels and
// annotations against one event.
type renderer struct {
	in      *Input
	helpers map[string]any
	cache   map[string]*raymond.Template
}

func newRenderer(in *Input) *renderer {
	r := &renderer{in: in, cache: map[string]*raymond.Template{}}
	r.helpers = map[string]any{
		"branch":                r.branch,
		"tag":                   r.tag,
		"sha":                   func() string { return shortSHA(in.Event.SHA, in.ShortSHALength) },
		"base_ref":              r.baseRef,
		"is_default_branch":     r.isDefaultBranch,
		"is_not_default_branch": func() bool { return !r.isDefaultBranch() },
		"date":                  func(format string, o *raymond.Options) string { return formatDate(in.Now, format, o) },
		"commit_date":           func(format string, o *raymond.Options) string { return formatDate(in.commitDate(), format, o) },
		"event_name":            func() string { return in.Event.Name },
		"is_pull_request":       r.isPullRequest,
		"is_not_pull_request":   func() bool { return !r.isPullRequest() },
		"is_release_tag":        func() bool { v, ok := tagVersion(r.tag()); return ok && !v.prerelease },
		"is_prerelease":         func() bool { v, ok := tagVersion(r.tag()); return ok && v.prerelease },
	}
	return r
}

func (r *renderer) branch() string {
	b, _ := strings.CutPrefix(r.in.Event.Ref, "refs/heads/")
	if b == r.in.Event.Ref {
		return ""
	}
	return b
}

func (r *renderer) tag() string {
	t, ok := strings.CutPrefix(r.in.Event.Ref, "refs/tags/")
	if !ok {
		return ""
	}
	return t
}

func (r *renderer) baseRef() string {
	ev := r.in.Event
	if strings.HasPrefix(ev.Ref, "refs/tags/") && ev.BaseRef != "" {
		return strings.TrimPrefix(ev.BaseRef, "refs/heads/")
	}
	if strings.HasPrefix(ev.Ref, "refs/pull/") {
		return ev.PRBaseRef
	}
	return ""
}

func (r *renderer) isPullRequest() bool { return strings.HasPrefix(r.in.Event.Ref, "refs/pull/") }

func (r *renderer) isDefaultBranch() bool {
	b := strings.TrimPrefix(r.in.Event.Ref, "refs/heads/")
	if b == "" {
		return false
	}
	if r.in.Event.DefaultBranch == b {
		return true
	}
	return alwaysDefaultBranch[r.in.Event.Name]
}

// formatDate formats t with a moment.js format in the time zone of the tz
// hash argument (UTC by default). A bad zone or argument panics with an
// error, which raymond returns from Exec.
func formatDate(t time.Time, format string, o *raymond.Options) string {
	loc := time.UTC
	for k, v := range o.Hash() {
		if k != "tz" {
			panic(fmt.Errorf("unknown date attribute %q; want tz='Zone/Name'", k))
		}
		l, err := time.LoadLocation(raymond.Str(v))
		if err != nil {
			panic(fmt.Errorf("unknown time zone %q: %w", raymond.Str(v), err))
		}
		loc = l
	}
	g, err := goment.New(t.In(loc))
	if err != nil {
		panic(fmt.Errorf("formatting date %q: %w", format, err))
	}
	return g.Format(format)
}

func shortSHA(sha string, n int) string {
	if n <= 0 || n > len(sha) {
		return sha
	}
	return sha[:n]
}

// render evaluates the template src. Fields of data are visible to it
// next to the helpers (semver patterns use this for {{major}} and friends).
func (r *renderer) render(src string, data map[string]any) (out string, err error) {
	if !strings.Contains(src, "{{") {
		return src, nil
	}
	defer func() {
		// raymond re-panics runtime errors; a template must never crash the run.
		if p := recover(); p != nil {
			err = fmt.Errorf("evaluating template %q: %v", src, p)
		}
	}()
	tpl, ok := r.cache[src]
	if !ok {
		tpl, err = raymond.Parse(src)
		if err != nil {
			return "", fmt.Errorf("parsing template %q: %w", src, err)
		}
		tpl.RegisterHelpers(r.helpers)
		r.cache[src] = tpl
	}
	out, err = tpl.Exec(data)
	if err != nil {
		return "", fmt.Errorf("evaluating template %q: %w", src, err)
	}
	return out, nil
}

// renderBool evaluates a template that must render to exactly true or false.
func (r *renderer) renderBool(attr, src string) (bool, error) {
	s, err := r.render(src, nil)
	if err != nil {
		return false, err
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q renders to %q; want true or false", attr, src, s)
}

// isRawStatement reports whether a pattern is exactly {{raw}}: such a
// pattern applies to pre-releases too.
func isRawStatement(pattern string) bool {
	prog, err := safeParse(pattern)
	if err != nil || len(prog.Body) != 1 {
		return false
	}
	m, ok := prog.Body[0].(*ast.MustacheStatement)
	if !ok || m.Expression == nil {
		return false
	}
	p := m.Expression.FieldPath()
	return p != nil && len(p.Parts) == 1 && p.Parts[0] == "raw" && len(m.Expression.Params) == 0
}

func safeParse(src string) (prog *ast.Program, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New(fmt.Sprint(p))
		}
	}()
	return parser.Parse(src)
}

// UsesCommitDate reports whether any of the templates calls {{commit_date}},
// so the caller fetches the commit date only when it is needed.
func UsesCommitDate(templates ...string) bool {
	for _, t := range templates {
		if strings.Contains(t, "commit_date") {
			return true
		}
	}
	return false
}
