// Package cache decides, from the event and the inputs, where a build
// imports its cache from and where it exports it to. It is pure: no I/O.
//
// The hierarchy, first hit wins:
//
//  1. the gha cache of the current branch (a pull request: its own scope,
//     then its base branch's);
//  2. the gha cache of the default branch;
//  3. the registry cache (cache-ref);
//  4. nothing: the build starts from scratch.
//
// Exports: the current branch's gha scope; the registry cache only from
// default-branch builds, so one shared cache stays a default-branch cache;
// pull requests from forks export nothing.
package cache

import (
	"slices"
	"strconv"
	"strings"

	"github.com/barde/phialo-image-action/internal/meta"
)

// Kinds of cache the `cache` input lists.
const (
	GHA      = "gha"
	Registry = "registry"
	Inline   = "inline"
	None     = "none"
)

// Request is everything the decision depends on.
type Request struct {
	// Kinds are the enabled cache kinds (gha, registry, inline).
	Kinds []string
	// Scope prefixes every gha scope, so images of one repository keep
	// separate caches.
	Scope string
	// Ref is the registry cache image, such as ghcr.io/owner/app:buildcache.
	Ref string
	// Mode is the export mode, min or max.
	Mode string
	// Force rebuilds without importing any cache, but still exports.
	Force bool
	// InlineFrom is the image reference an inline cache is read from: the
	// tag the previous build of this ref pushed.
	InlineFrom string

	// Ref facts of the event.
	Branch        string // the branch being built, "" for tags and pull requests
	PullRequest   int    // the pull request number, 0 if none
	BaseBranch    string // a pull request's base branch
	DefaultBranch string
	Fork          bool // a pull request from a fork
}

// Plan is the decision: the buildx cache flags.
type Plan struct {
	From      []string
	To        []string
	NoCache   bool
	BuildArgs []string
}

// scope is the gha scope of a branch (or pr-N).
func (r Request) scope(key string) string {
	return meta.Sanitize(r.Scope + "-" + key)
}

func (r Request) has(kind string) bool { return slices.Contains(r.Kinds, kind) }

// Decide computes the cache flags for a request.
func Decide(r Request) Plan {
	var p Plan
	mode := r.Mode
	if mode == "" {
		mode = "max"
	}
	current := r.Branch
	if r.PullRequest > 0 {
		current = "pr-" + strconv.Itoa(r.PullRequest)
	}

	if r.has(GHA) {
		for _, key := range []string{current, r.BaseBranch, r.DefaultBranch} {
			if key == "" {
				continue
			}
			if e := "type=gha,scope=" + r.scope(key); !slices.Contains(p.From, e) {
				p.From = append(p.From, e)
			}
		}
	}
	if r.has(Registry) && r.Ref != "" {
		p.From = append(p.From, "type=registry,ref="+r.Ref)
	}
	if r.has(Inline) && r.InlineFrom != "" {
		p.From = append(p.From, "type=registry,ref="+r.InlineFrom)
	}

	if !r.Fork {
		if r.has(GHA) && current != "" {
			p.To = append(p.To, "type=gha,scope="+r.scope(current)+",mode="+mode+",ignore-error=true")
		}
		if r.has(Registry) && r.Ref != "" && r.Branch != "" && r.Branch == r.DefaultBranch {
			p.To = append(p.To, "type=registry,ref="+r.Ref+",mode="+mode+",ignore-error=true")
		}
	}
	if r.has(Inline) {
		p.To = append(p.To, "type=inline")
		p.BuildArgs = append(p.BuildArgs, "BUILDKIT_INLINE_CACHE=1")
	}
	if r.Force {
		p.From = nil
		p.NoCache = true
	}
	return p
}

// DefaultScope is the gha scope prefix for an image: its last path element,
// and the target when one is built, so each image of a repository keeps its
// own cache.
func DefaultScope(image, target string) string {
	s := image[strings.LastIndex(image, "/")+1:]
	if target != "" {
		s += "-" + target
	}
	return s
}
