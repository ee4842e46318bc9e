package cache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const ref = "ghcr.io/barde/phialoastro:buildcache"

func base() Request {
	return Request{Kinds: []string{GHA, Registry}, Scope: "phialoastro", Ref: ref, Mode: "max", DefaultBranch: "main"}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	with := func(f func(*Request)) Request { r := base(); f(&r); return r }
	tests := []struct {
		name string
		req  Request
		want Plan
	}{
		{"push/default branch", with(func(r *Request) { r.Branch = "main" }), Plan{
			From: []string{"type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
			To:   []string{"type=gha,scope=phialoastro-main,mode=max,ignore-error=true", "type=registry,ref=" + ref + ",mode=max,ignore-error=true"},
		}},
		{"push/feature branch", with(func(r *Request) { r.Branch = "feature/login" }), Plan{
			From: []string{"type=gha,scope=phialoastro-feature-login", "type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
			To:   []string{"type=gha,scope=phialoastro-feature-login,mode=max,ignore-error=true"},
		}},
		{"pull_request/same repository", with(func(r *Request) { r.PullRequest = 123; r.BaseBranch = "release/2" }), Plan{
			From: []string{"type=gha,scope=phialoastro-pr-123", "type=gha,scope=phialoastro-release-2", "type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
			To:   []string{"type=gha,scope=phialoastro-pr-123,mode=max,ignore-error=true"},
		}},
		{"pull_request/base is default branch", with(func(r *Request) { r.PullRequest = 7; r.BaseBranch = "main" }), Plan{
			From: []string{"type=gha,scope=phialoastro-pr-7", "type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
			To:   []string{"type=gha,scope=phialoastro-pr-7,mode=max,ignore-error=true"},
		}},
		{"pull_request/fork exports nothing", with(func(r *Request) { r.PullRequest = 123; r.BaseBranch = "main"; r.Fork = true }), Plan{
			From: []string{"type=gha,scope=phialoastro-pr-123", "type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
		}},
		{"tag/imports the default branch's caches", with(func(r *Request) {}), Plan{
			From: []string{"type=gha,scope=phialoastro-main", "type=registry,ref=" + ref},
		}},
		{"force-rebuild/no import, exports heal", with(func(r *Request) { r.Branch = "main"; r.Force = true }), Plan{
			NoCache: true,
			To:      []string{"type=gha,scope=phialoastro-main,mode=max,ignore-error=true", "type=registry,ref=" + ref + ",mode=max,ignore-error=true"},
		}},
		{"registry only, min mode", with(func(r *Request) { r.Branch = "main"; r.Kinds = []string{Registry}; r.Mode = "min" }), Plan{
			From: []string{"type=registry,ref=" + ref},
			To:   []string{"type=registry,ref=" + ref + ",mode=min,ignore-error=true"},
		}},
		{"inline", with(func(r *Request) {
			r.Branch = "feature"
			r.Kinds = []string{Inline}
			r.InlineFrom = "ghcr.io/barde/phialoastro:feature"
		}), Plan{
			From:      []string{"type=registry,ref=ghcr.io/barde/phialoastro:feature"},
			To:        []string{"type=inline"},
			BuildArgs: []string{"BUILDKIT_INLINE_CACHE=1"},
		}},
		{"none", with(func(r *Request) { r.Branch = "main"; r.Kinds = nil }), Plan{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, Decide(tc.req)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ image, target, want string }{
		{"ghcr.io/barde/phialoastro", "", "phialoastro"},
		{"ghcr.io/barde/phialoastro-ci", "test", "phialoastro-ci-test"},
		{"app", "", "app"},
	} {
		if got := DefaultScope(tc.image, tc.target); got != tc.want {
			t.Errorf("DefaultScope(%q, %q) = %q, want %q", tc.image, tc.target, got, tc.want)
		}
	}
}
