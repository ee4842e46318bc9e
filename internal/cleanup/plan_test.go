package cleanup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/barde/phialo-image-action/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// dg is the readable fake digest of a name: sha256:<name>000…, 71 bytes
// like a real one, whose short form (sha256: and 12 characters) shows the
// name.
func dg(name string) string {
	return "sha256:" + name + strings.Repeat("0", 64-len(name))
}

// cosignTag is the cosign tag of the version called name.
func cosignTag(name, suffix string) string {
	return strings.Replace(dg(name), ":", "-", 1) + suffix
}

// manifest is a version of a scenario.
type manifest struct {
	name  string
	tags  []string
	hours int      // age at now
	refs  []string // names of the digests it references
}

type scenario struct {
	name     string
	versions []manifest
	// extra are the references of digests that are not versions.
	extra      map[string][]string
	protect    []string // names
	policy     Policy
	unreadable error
	// wantDeleted are the names of the versions deleted.
	wantDeleted []string
}

func (s scenario) build() ([]Version, Graph, Policy) {
	var vs []Version
	g := Graph{Refs: map[string][]string{}, Unreadable: s.unreadable}
	for i, m := range s.versions {
		vs = append(vs, Version{ID: int64(1000 + i), Digest: dg(m.name), Tags: m.tags, Created: now.Add(-time.Duration(m.hours) * time.Hour)})
		for _, r := range m.refs {
			g.Refs[dg(m.name)] = append(g.Refs[dg(m.name)], dg(r))
		}
	}
	for d, refs := range s.extra {
		for _, r := range refs {
			g.Refs[dg(d)] = append(g.Refs[dg(d)], dg(r))
		}
	}
	p := s.policy
	for _, name := range s.protect {
		p.Protect = append(p.Protect, dg(name))
	}
	return vs, g, p
}

// index is a tagged multi-platform index (amd64, arm64 and their two
// attestation manifests) and its children, all pushed hours ago.
func index(name string, hours int, tags ...string) []manifest {
	kids := []string{name + "-amd", name + "-arm", name + "-att1", name + "-att2"}
	out := []manifest{{name: name, tags: tags, hours: hours, refs: kids}}
	for _, k := range kids {
		out = append(out, manifest{name: k, hours: hours})
	}
	return out
}

// index2 is an index of two platform manifests and no attestations.
func index2(name string, hours int, tags ...string) []manifest {
	return []manifest{
		{name: name, tags: tags, hours: hours, refs: []string{name + "-amd", name + "-arm"}},
		{name: name + "-amd", hours: hours},
		{name: name + "-arm", hours: hours},
	}
}

func concat(parts ...[]manifest) []manifest { return slices.Concat(parts...) }

func scenarios() []scenario {
	var sha8 [][]manifest
	for i := 1; i <= 8; i++ {
		sha8 = append(sha8, index2("s"+strconv.Itoa(i), 100-10*i, "sha-"+strconv.Itoa(i)))
	}
	return []scenario{
		{
			name:     "multiplatform-tagged",
			versions: index("app", 2000, "latest"),
			policy:   Policy{Keep: 0, Untagged: true},
		},
		{
			name: "orphaned-untagged",
			versions: concat(
				index("new", 10, "latest"),
				// The previous latest: an untagged index since the tag moved.
				index2("old", 900),
				// A single-platform image nothing references, and one the
				// graph knows nothing about.
				[]manifest{{name: "orphan", hours: 800}, {name: "lone", hours: 500}},
			),
			policy:      Policy{Keep: 1, Untagged: true},
			wantDeleted: []string{"old", "old-amd", "old-arm", "orphan", "lone"},
		},
		{
			name:        "keep-5-of-8-sha",
			versions:    concat(sha8...),
			policy:      Policy{Keep: 5, Tags: []string{"sha-*"}},
			wantDeleted: []string{"s1", "s1-amd", "s1-arm", "s2", "s2-amd", "s2-arm", "s3", "s3-amd", "s3-arm"},
		},
		{
			name: "older-than",
			versions: []manifest{
				{name: "u-1h", hours: 1},
				{name: "u-10d", hours: 240},
				{name: "u-30d", hours: 720},
				{name: "u-40d", hours: 960},
				{name: "u-60d", hours: 1440},
				{name: "t-2d", tags: []string{"sha-2"}, hours: 48},
				{name: "t-50d", tags: []string{"sha-1"}, hours: 1200},
			},
			policy:      Policy{Untagged: true, OlderThan: 720 * time.Hour, Tags: []string{"sha-*"}},
			wantDeleted: []string{"u-40d", "u-60d", "t-50d"},
		},
		{
			name: "exclude-tags",
			versions: concat(
				index2("rel1", 3000, "v1"),
				index2("rel2", 2000, "sha-2", "v2"),
				index2("main", 10, "latest", "main"),
				index2("sha1", 2500, "sha-1"),
			),
			policy:      Policy{Tags: []string{"*"}, ExcludeTags: []string{"v*", "latest"}},
			wantDeleted: []string{"sha1", "sha1-amd", "sha1-arm"},
		},
		{
			name: "protected",
			versions: concat(
				[]manifest{{name: "cache", tags: []string{"buildcache"}, hours: 5000}},
				index("pushed", 3000, "sha-9"),
				index2("old", 4000, "sha-1"),
				[]manifest{{name: "orphan", hours: 4500}},
			),
			// The just-pushed digest, the registry cache manifest and a
			// digest the package does not have.
			protect:     []string{"pushed", "cache", "elsewhere"},
			policy:      Policy{Untagged: true, Tags: []string{"*"}},
			wantDeleted: []string{"old", "old-amd", "old-arm", "orphan"},
		},
		{
			name: "shared-child",
			versions: []manifest{
				{name: "new", tags: []string{"latest"}, hours: 10, refs: []string{"new-amd", "shared-arm"}},
				{name: "new-amd", hours: 10},
				{name: "old", hours: 900, refs: []string{"old-amd", "shared-arm"}},
				{name: "old-amd", hours: 900},
				{name: "shared-arm", hours: 900},
			},
			policy:      Policy{Keep: 1, Untagged: true},
			wantDeleted: []string{"old", "old-amd"},
		},
		{
			name: "pr-policy",
			versions: concat(
				[]manifest{{name: "pr12", tags: []string{"pr-12"}, hours: 50, refs: []string{"pr12-amd", "pr12-arm", "pr12-att1", "pr12-att2", "shared-arm"}}},
				[]manifest{{name: "pr12-amd", hours: 50}, {name: "pr12-arm", hours: 50}, {name: "pr12-att1", hours: 50}, {name: "pr12-att2", hours: 50}},
				// The cosign signature of the pr-12 index: no edge in Refs,
				// its tag names the subject.
				[]manifest{{name: "pr12-sig", tags: []string{cosignTag("pr12", ".sig")}, hours: 49}},
				[]manifest{{name: "pr13", tags: []string{"pr-13"}, hours: 40, refs: []string{"pr13-amd", "shared-arm"}}, {name: "pr13-amd", hours: 40}, {name: "shared-arm", hours: 60}},
				index2("main", 30, "latest", "sha-1"),
				[]manifest{{name: "orphan", hours: 5000}},
			),
			policy:      PRPolicy(12),
			wantDeleted: []string{"pr12", "pr12-amd", "pr12-arm", "pr12-att1", "pr12-att2", "pr12-sig"},
		},
		{
			name: "pr-policy-shared-tag",
			versions: concat(
				index("main", 30, "pr-12", "latest"),
				index2("pr13", 40, "pr-13"),
			),
			policy: PRPolicy(12),
		},
		{
			name:       "unreadable",
			versions:   concat(index2("old", 5000), []manifest{{name: "orphan", hours: 6000}}),
			policy:     Policy{Untagged: true, Tags: []string{"*"}},
			unreadable: errors.New("GET https://ghcr.io/v2/barde/app/manifests/sha256:0123: 403 Forbidden"),
		},
		{
			name: "invalid-policy",
			versions: concat(
				index2("old", 5000, "sha-1"),
				[]manifest{{name: "orphan", hours: 6000}},
			),
			policy: Policy{Untagged: true, Tags: []string{"sha-*"}, ExcludeTags: []string{"v["}},
		},
		{
			// Signatures and attestations hang off a platform manifest and
			// off each other; sha-1 also shares its arm64 manifest with a
			// pr-13 image that stays.
			name: "deletion-order",
			versions: []manifest{
				{name: "ix", tags: []string{"sha-1"}, hours: 900, refs: []string{"ix-amd", "ix-arm", "ix-att"}},
				{name: "ix-amd", hours: 900, refs: []string{"amd-ref"}},
				{name: "amd-ref", hours: 899, refs: []string{"amd-ref-sig"}},
				{name: "amd-ref-sig", hours: 898},
				{name: "ix-arm", hours: 900},
				{name: "ix-att", hours: 900, refs: []string{"ix-amd"}},
				{name: "ix-sig", tags: []string{cosignTag("ix", ".sig")}, hours: 897},
				{name: "keep", tags: []string{"pr-13"}, hours: 800, refs: []string{"ix-arm"}},
			},
			policy:      Policy{Tags: []string{"sha-*"}},
			wantDeleted: []string{"ix", "ix-amd", "amd-ref", "amd-ref-sig", "ix-att", "ix-sig"},
		},
		{
			name: "cycles",
			versions: []manifest{
				// A root over the cycle a -> b -> c -> a, and a self loop.
				{name: "root", hours: 900, refs: []string{"a"}},
				{name: "a", hours: 900, refs: []string{"b"}},
				{name: "b", hours: 900, refs: []string{"c"}},
				{name: "c", hours: 900, refs: []string{"a", "c"}},
				{name: "self", hours: 800, refs: []string{"self"}},
				// A cycle nothing outside references, and what it holds.
				{name: "x", hours: 700, refs: []string{"y"}},
				{name: "y", hours: 700, refs: []string{"x", "z"}},
				{name: "z", hours: 700},
				// A kept image in a cycle through a digest that is not a
				// version: q, a root by itself, stays as p reaches it.
				{name: "p", tags: []string{"latest"}, hours: 600, refs: []string{"ghost"}},
				{name: "q", hours: 600},
			},
			extra:       map[string][]string{"ghost": {"q", "ghost", "p"}},
			policy:      Policy{Untagged: true, Tags: []string{"sha-*"}},
			wantDeleted: []string{"root", "a", "b", "c", "self"},
		},
		{
			// A graph that misses the signatures: the tags bring them in.
			// One of a digest the package lacks stays, being tagged.
			name: "cosign-tags",
			versions: concat(
				index2("new", 10, "latest"),
				[]manifest{{name: "new-sig", tags: []string{cosignTag("new", ".sig")}, hours: 9}},
				[]manifest{{name: "new-att", tags: []string{cosignTag("new", ".att")}, hours: 9}},
				index2("old", 900, "sha-1"),
				[]manifest{{name: "old-sig", tags: []string{cosignTag("old", ".sig")}, hours: 899}},
				[]manifest{{name: "old-refs", tags: []string{cosignTag("old-amd", "")}, hours: 899}},
				[]manifest{{name: "stray-sig", tags: []string{cosignTag("gone", ".sig")}, hours: 950}},
			),
			policy:      Policy{Untagged: true, Tags: []string{"sha-*"}},
			wantDeleted: []string{"old", "old-amd", "old-arm", "old-sig", "old-refs"},
		},
		{
			// Keep counts images (tagged, or indexes), the protected ones
			// too, and never a lone untagged manifest.
			name: "keep-counts-images",
			versions: concat(
				index("a", 10, "sha-1"),
				[]manifest{{name: "b", hours: 20}},
				index("c", 30, "latest"),
				index("d", 40, "sha-2"),
				index("e", 50, "sha-3"),
			),
			protect:     []string{"a"},
			policy:      Policy{Keep: 3, Untagged: true, Tags: []string{"sha-*"}},
			wantDeleted: []string{"b", "e", "e-amd", "e-arm", "e-att1", "e-att2"},
		},
		{
			// A platform manifest tagged on its own, under a deleted index,
			// stays with what it references.
			name: "tagged-child",
			versions: []manifest{
				{name: "ix", tags: []string{"sha-1"}, hours: 900, refs: []string{"ix-amd", "ix-arm"}},
				{name: "ix-amd", tags: []string{"v1"}, hours: 900, refs: []string{"amd-att"}},
				{name: "amd-att", hours: 900},
				{name: "ix-arm", tags: []string{"sha-2"}, hours: 900},
			},
			policy:      Policy{Tags: []string{"sha-*"}},
			wantDeleted: []string{"ix", "ix-arm"},
		},
	}
}

func TestDecideScenarios(t *testing.T) {
	t.Parallel()
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			vs, g, p := s.build()
			plan := Decide(vs, g, p, now)
			var got []string
			for _, v := range plan.Deletions() {
				got = append(got, strings.TrimRight(strings.TrimPrefix(v.Digest, "sha256:"), "0"))
			}
			slices.Sort(got)
			want := slices.Clone(s.wantDeleted)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if k := plan.Kept(); k != len(vs)-len(got) {
				t.Errorf("Kept() = %d, want %d", k, len(vs)-len(got))
			}
			checkInvariants(t, vs, g, p, plan)
		})
	}
}

func TestDecideGolden(t *testing.T) {
	t.Parallel()
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			vs, g, p := s.build()
			got := render(p, g, Decide(vs, g, p, now))
			testutil.Golden(t, filepath.Join("testdata", s.name+".golden"), got, *update)
		})
	}
}

// render is the readable form of a plan: one line per decision, then the
// deletion order.
func render(p Policy, g Graph, plan Plan) string {
	var b strings.Builder
	list := func(l []string) string { return "[" + strings.Join(l, " ") + "]" }
	var protect []string
	for _, d := range p.Protect {
		protect = append(protect, short(d))
	}
	fmt.Fprintf(&b, "# now %s; keep %d, untagged %t, older-than %s, tags %s, exclude-tags %s, protect %s\n",
		now.Format(time.RFC3339), p.Keep, p.Untagged, age(p.OlderThan), list(p.Tags), list(p.ExcludeTags), list(protect))
	if g.Unreadable != nil {
		fmt.Fprintf(&b, "# registry unreadable: %v\n", g.Unreadable)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, d := range plan.Decisions {
		what := "keep"
		if d.Delete {
			what = "DELETE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", short(d.Version.Digest), renderTags(d.Version.Tags), what, d.Reason)
	}
	tw.Flush()
	b.WriteString("\ndeletion order:\n")
	dels := plan.Deletions()
	if len(dels) == 0 {
		b.WriteString("  (none)\n")
	}
	for i, v := range dels {
		fmt.Fprintf(&b, "%3d. %s %s\n", i+1, short(v.Digest), renderTags(v.Tags))
	}
	return b.String()
}

func renderTags(tags []string) string {
	if len(tags) == 0 {
		return "-"
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		if len(t) > 30 {
			// A cosign tag: sha256-<12>….sig
			if dot := strings.LastIndexByte(t, '.'); dot > 19 {
				t = t[:19] + "…" + t[dot:]
			} else {
				t = t[:19] + "…"
			}
		}
		out[i] = t
	}
	return strings.Join(out, ",")
}

func TestDecideEmpty(t *testing.T) {
	t.Parallel()
	plan := Decide(nil, Graph{}, Policy{Untagged: true, Tags: []string{"*"}}, now)
	if len(plan.Decisions) != 0 || plan.Kept() != 0 || len(plan.Deletions()) != 0 {
		t.Errorf("Decide(nil) = %+v, want an empty plan", plan)
	}
}

func TestPRPolicy(t *testing.T) {
	t.Parallel()
	want := Policy{Tags: []string{"pr-12"}}
	if diff := cmp.Diff(want, PRPolicy(12)); diff != "" {
		t.Errorf("PRPolicy(12) (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{}, ""},
		{Policy{Keep: 5, Tags: []string{"pr-*", "sha-[0-9a-f]*"}, ExcludeTags: []string{"v*"}}, ""},
		{Policy{Keep: -1}, "keep -1 is negative"},
		{Policy{OlderThan: -time.Hour}, "older-than -1h0m0s is negative"},
		{Policy{Tags: []string{"["}, ExcludeTags: []string{"a\\"}}, `cleanup-tags pattern "[": syntax error in pattern; cleanup-exclude-tags pattern "a\\": syntax error in pattern`},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.p.Validate(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%+v.Validate() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	// The sentences of the brief, as the report shows them.
	s := scenarios()
	reasons := map[string]bool{}
	for _, name := range []string{"keep-5-of-8-sha", "older-than", "pr-policy", "multiplatform-tagged", "unreadable", "orphaned-untagged"} {
		i := slices.IndexFunc(s, func(s scenario) bool { return s.name == name })
		vs, g, p := s[i].build()
		for _, d := range Decide(vs, g, p, now).Decisions {
			reasons[d.Reason] = true
		}
	}
	for _, want := range []string{
		"kept: one of the 5 newest images",
		"kept: referenced by kept sha256:app000000000… (tags latest)",
		"deleted: untagged and older than 720h",
		"deleted: tags pr-12 match cleanup-tags",
		"deleted: referenced only by deleted sha256:pr1200000000… (tags pr-12)",
		"kept: the registry could not be read: GET https://ghcr.io/v2/barde/app/manifests/sha256:0123: 403 Forbidden",
		"deleted: untagged",
	} {
		if !reasons[want] {
			t.Errorf("no decision says %q", want)
		}
	}
}

// TestMultiplatformNeverBroken is the reason this package exists: however
// the policy reads, the children of a kept index stay.
func TestMultiplatformNeverBroken(t *testing.T) {
	t.Parallel()
	vs, g, _ := scenario{versions: concat(index("app", 5000, "latest"), index("ci", 4000, "sha-1"))}.build()
	for _, p := range []Policy{
		{Untagged: true},
		{Untagged: true, OlderThan: time.Hour},
		{Untagged: true, Tags: []string{"sha-*"}},
		{Untagged: true, Tags: []string{"*"}, ExcludeTags: []string{"latest"}},
		PRPolicy(1),
	} {
		plan := Decide(vs, g, p, now)
		for _, d := range plan.Decisions {
			if d.Delete && strings.HasPrefix(d.Version.Digest, "sha256:app") {
				t.Errorf("policy %+v deletes %s of the latest image: %s", p, short(d.Version.Digest), d.Reason)
			}
		}
	}
}

// TestVersionsSharingADigest: two versions of one digest are decided
// together, each listed.
func TestVersionsSharingADigest(t *testing.T) {
	t.Parallel()
	vs := []Version{
		{ID: 2, Digest: dg("a"), Tags: []string{"sha-1"}, Created: now.Add(-900 * time.Hour)},
		{ID: 1, Digest: dg("a"), Tags: []string{"latest"}, Created: now.Add(-900 * time.Hour)},
		{ID: 3, Digest: dg("b"), Created: now.Add(-900 * time.Hour)},
	}
	plan := Decide(vs, Graph{Refs: map[string][]string{dg("a"): {dg("b")}}}, Policy{Tags: []string{"sha-*"}}, now)
	if len(plan.Decisions) != 3 || plan.Kept() != 3 {
		t.Fatalf("plan = %+v, want the three versions kept", plan)
	}
	if plan.Decisions[0].Version.ID != 1 || plan.Decisions[1].Version.ID != 2 {
		t.Errorf("versions of one digest out of ID order: %+v", plan.Decisions)
	}
}

// TestDecideDoesNotAlias: the plan's versions do not share the caller's
// tag slices.
func TestDecideDoesNotAlias(t *testing.T) {
	t.Parallel()
	vs := []Version{{ID: 1, Digest: dg("a"), Tags: []string{"sha-1"}, Created: now.Add(-time.Hour)}}
	plan := Decide(vs, Graph{}, Policy{Tags: []string{"sha-*"}}, now)
	vs[0].Tags[0] = "changed"
	if got := plan.Decisions[0].Version.Tags[0]; got != "sha-1" {
		t.Errorf("plan tag = %q after the caller changed its slice", got)
	}
}

// TestDeletionsParentsFirst: in every scenario, a deleted version comes
// after each deleted version that references it, directly or not.
func TestDeletionsParentsFirst(t *testing.T) {
	t.Parallel()
	for _, s := range scenarios() {
		vs, g, p := s.build()
		dels := Decide(vs, g, p, now).Deletions()
		pos := map[string]int{}
		for i, v := range dels {
			pos[v.Digest] = i
		}
		o := newOracle(vs, g, p)
		for _, parent := range dels {
			for child := range o.reach(parent.Digest) {
				if i, ok := pos[child]; ok && i < pos[parent.Digest] && !o.reach(child)[parent.Digest] {
					t.Errorf("%s: %s deleted before %s, which references it", s.name, short(child), short(parent.Digest))
				}
			}
		}
	}
}

func TestCyclesDoNotHang(t *testing.T) {
	t.Parallel()
	graphs := map[string]map[string][]string{
		"self":    {dg("a"): {dg("a")}},
		"pair":    {dg("a"): {dg("b")}, dg("b"): {dg("a")}},
		"ring":    {dg("a"): {dg("b")}, dg("b"): {dg("c")}, dg("c"): {dg("d")}, dg("d"): {dg("a")}},
		"through": {dg("a"): {dg("ghost")}, dg("ghost"): {dg("b")}, dg("b"): {dg("ghost"), dg("a")}},
		"under":   {dg("r"): {dg("a")}, dg("a"): {dg("b")}, dg("b"): {dg("a"), dg("r")}},
	}
	for name, refs := range graphs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var vs []Version
			for i, n := range []string{"a", "b", "c", "d", "r"} {
				vs = append(vs, Version{ID: int64(i), Digest: dg(n), Created: now.Add(-time.Duration(1000+i) * time.Hour)})
			}
			g := Graph{Refs: refs}
			p := Policy{Untagged: true, Tags: []string{"*"}}
			done := make(chan Plan, 1)
			go func() { done <- Decide(vs, g, p, now) }()
			select {
			case plan := <-done:
				checkInvariants(t, vs, g, p, plan)
			case <-time.After(10 * time.Second):
				t.Fatal("Decide did not return: a cycle in Refs hangs it")
			}
		})
	}
}

// checkInvariants asserts what must hold of every plan, and compares it
// with oracle, a slow and plain restatement of the rules.
func checkInvariants(t *testing.T, vs []Version, g Graph, p Policy, plan Plan) {
	t.Helper()
	// Every version exactly once.
	var got, want []int64
	for _, d := range plan.Decisions {
		got = append(got, d.Version.ID)
	}
	for _, v := range vs {
		want = append(want, v.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("decisions on versions %v, want each of %v once", got, want)
	}
	deleted := map[string]bool{}
	pos := map[string]int{}
	for i, d := range plan.Decisions {
		if d.Delete {
			deleted[d.Version.Digest] = true
		}
		pos[d.Version.Digest] = i
		if prefix := map[bool]string{true: "deleted: ", false: "kept: "}[d.Delete]; !strings.HasPrefix(d.Reason, prefix) {
			t.Errorf("%s: reason %q does not start with %q", short(d.Version.Digest), d.Reason, prefix)
		}
	}
	if (g.Unreadable != nil || p.Validate() != nil) && len(deleted) > 0 {
		t.Fatalf("deletes %d versions with an unreadable registry or an invalid policy", len(deleted))
	}
	o := newOracle(vs, g, p)
	// Nothing kept references (transitively, through Refs and the cosign
	// tags) something deleted; nothing deleted is reachable from a kept
	// root or a protected digest.
	for _, v := range vs {
		if deleted[v.Digest] {
			continue
		}
		for d := range o.reach(v.Digest) {
			if deleted[d] {
				t.Errorf("kept %s references deleted %s", short(v.Digest), short(d))
			}
		}
	}
	for _, d := range p.Protect {
		if deleted[d] {
			t.Errorf("protected %s deleted", short(d))
		}
		for c := range o.reach(d) {
			if deleted[c] {
				t.Errorf("%s, reachable from protected %s, deleted", short(c), short(d))
			}
		}
	}
	// Tags: excluded or not matching, never deleted (cosign tags of a
	// child aside).
	for _, v := range vs {
		if !deleted[v.Digest] {
			continue
		}
		for _, tag := range v.Tags {
			if o.match(p.ExcludeTags, tag) {
				t.Errorf("%s deleted with tag %s excluded", short(v.Digest), tag)
			}
			if !o.match(p.Tags, tag) && (o.roots[v.Digest] || !o.derived(v.Digest, tag)) {
				t.Errorf("%s deleted with tag %s matching no cleanup-tags", short(v.Digest), tag)
			}
		}
		if o.roots[v.Digest] && len(o.tags[v.Digest]) == 0 && !p.Untagged {
			t.Errorf("untagged root %s deleted with Untagged off", short(v.Digest))
		}
	}
	// The newest Keep images (tagged roots and indexes, not lone untagged
	// manifests) and the young ones stay.
	rank := -1
	for _, r := range o.rootOrder {
		image := len(o.tags[r.Digest]) > 0 || len(o.edges[r.Digest]) > 0
		if image {
			rank++
		}
		if !deleted[r.Digest] {
			continue
		}
		if image && rank < p.Keep {
			t.Errorf("%s, newest image %d of %d kept, deleted", short(r.Digest), rank+1, p.Keep)
		}
		if p.OlderThan > 0 && now.Sub(r.Created) <= p.OlderThan {
			t.Errorf("%s, younger than %s, deleted", short(r.Digest), p.OlderThan)
		}
	}
	// Every version after those that reference it, cycles aside; so the
	// deletions come parents first.
	for _, u := range vs {
		for v := range o.reach(u.Digest) {
			if _, ok := pos[v]; !ok || v == u.Digest || o.reach(v)[u.Digest] {
				continue
			}
			if pos[u.Digest] > pos[v] {
				t.Errorf("%s listed before %s, which references it", short(v), short(u.Digest))
			}
		}
	}
	dpos := map[string]int{}
	for i, v := range plan.Deletions() {
		dpos[v.Digest] = i
	}
	if len(dpos) != len(deleted) {
		t.Errorf("Deletions() has %d versions, the decisions delete %d", len(dpos), len(deleted))
	}
	// The oracle agrees.
	if g.Unreadable == nil && p.Validate() == nil {
		if diff := cmp.Diff(o.deleted(now), deleted); diff != "" {
			t.Errorf("deleted differs from the oracle's (-oracle +Decide):\n%s", diff)
		}
	}
	// Deterministic, whatever the order of the versions.
	shuffled := slices.Clone(vs)
	rand.New(rand.NewPCG(uint64(len(vs)), 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if diff := cmp.Diff(plan, Decide(shuffled, g, p, now)); diff != "" {
		t.Errorf("the plan depends on the order of the versions (-first +shuffled):\n%s", diff)
	}
}

// oracle restates the rules plainly: slow, for small graphs.
type oracle struct {
	vs        []Version
	g         Graph
	p         Policy
	edges     map[string][]string
	tags      map[string][]string // of the versions of a digest
	roots     map[string]bool
	rootOrder []Version
	digests   map[string]bool
}

func newOracle(vs []Version, g Graph, p Policy) *oracle {
	o := &oracle{vs: vs, g: g, p: p, edges: map[string][]string{}, tags: map[string][]string{}, roots: map[string]bool{}, digests: map[string]bool{}}
	for _, v := range vs {
		o.digests[v.Digest] = true
		o.tags[v.Digest] = append(o.tags[v.Digest], v.Tags...)
	}
	for d, refs := range g.Refs {
		o.edges[d] = append(o.edges[d], refs...)
	}
	for _, v := range vs {
		for _, tag := range v.Tags {
			if s, ok := o.subject(tag); ok && s != v.Digest {
				o.edges[s] = append(o.edges[s], v.Digest)
			}
		}
	}
	for _, v := range vs {
		root := true
		for _, u := range vs {
			if u.Digest != v.Digest && slices.Contains(o.edges[u.Digest], v.Digest) {
				root = false
			}
		}
		if root {
			o.roots[v.Digest] = true
			o.rootOrder = append(o.rootOrder, v)
		}
	}
	slices.SortFunc(o.rootOrder, func(a, b Version) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	o.rootOrder = slices.CompactFunc(o.rootOrder, func(a, b Version) bool { return a.Digest == b.Digest })
	return o
}

// subject is the digest a cosign or referrers tag names, if a version has it.
func (o *oracle) subject(tag string) (string, bool) {
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		if s, ok := strings.CutSuffix(tag, suffix); ok {
			tag = s
			break
		}
	}
	d := strings.Replace(tag, "-", ":", 1)
	return d, strings.Contains(tag, "-") && o.digests[d]
}

func (o *oracle) derived(digest, tag string) bool {
	s, ok := o.subject(tag)
	return ok && s != digest
}

func (o *oracle) match(patterns []string, tag string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
	}
	return false
}

// reach is what d reaches through one edge or more.
func (o *oracle) reach(d string) map[string]bool {
	seen := map[string]bool{}
	todo := slices.Clone(o.edges[d])
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if !seen[c] {
			seen[c] = true
			todo = append(todo, o.edges[c]...)
		}
	}
	return seen
}

// deleted applies the rules: the seeds of what is kept are the protected
// digests, the roots the policy keeps, the children their own tags keep
// and the versions no root reaches; the rest goes.
func (o *oracle) deleted(now time.Time) map[string]bool {
	p, tags := o.p, o.tags
	tagsKeep := func(d string, child bool) bool {
		for _, t := range tags[d] {
			if o.match(p.ExcludeTags, t) {
				return true
			}
			if !o.match(p.Tags, t) && !(child && o.derived(d, t)) {
				return true
			}
		}
		return false
	}
	var seeds []string
	seeds = append(seeds, p.Protect...)
	fromRoots := map[string]bool{}
	rank := 0
	for _, r := range o.rootOrder {
		for d := range o.reach(r.Digest) {
			fromRoots[d] = true
		}
		image := len(tags[r.Digest]) > 0 || len(o.edges[r.Digest]) > 0
		kept := image && rank < p.Keep
		if image {
			rank++
		}
		deletable := !slices.Contains(p.Protect, r.Digest) && !kept &&
			(p.OlderThan == 0 || now.Sub(r.Created) > p.OlderThan) &&
			(len(tags[r.Digest]) == 0 && p.Untagged || len(tags[r.Digest]) > 0 && !tagsKeep(r.Digest, false))
		if !deletable {
			seeds = append(seeds, r.Digest)
		}
	}
	for _, v := range o.vs {
		if o.roots[v.Digest] {
			continue
		}
		if tagsKeep(v.Digest, true) || !fromRoots[v.Digest] {
			seeds = append(seeds, v.Digest)
		}
	}
	kept := map[string]bool{}
	for _, s := range seeds {
		kept[s] = true
		for d := range o.reach(s) {
			kept[d] = true
		}
	}
	out := map[string]bool{}
	for _, v := range o.vs {
		if !kept[v.Digest] {
			out[v.Digest] = true
		}
	}
	return out
}

// The fuzz input: a small package, its graph and a policy, drawn from
// pools.
var (
	tagPool     = [16]string{"latest", "buildcache", "v1", "v2", "pr-12", "pr-13", "sha-1", "sha-2", "sha-3", "sha-4", "sha-5", "sha-6", "sha-7", "sha-8", "sha-9", "main"}
	patternPool = [8]string{"sha-*", "pr-*", "pr-12", "v*", "latest", "*", "buildcache", "sha256-*"}
	agePool     = [4]time.Duration{0, time.Hour, 24 * time.Hour, 720 * time.Hour}
	suffixPool  = [4]string{".sig", ".att", ".sbom", ""}
)

const (
	maxVersions = 40
	maxExtra    = 4
	maxRefs     = 8
)

// Layout: keep, flags (1 untagged, 2-4 older-than, 8 unreadable, 16 the
// last version has the first's digest), tags mask, exclude mask, versions
// n, extra digests x, protect count and indexes; per version: tag mask (2 bytes), cosign tag (0, or 1+subject+
// (n+x)*suffix), age in hours (2 bytes), ref count and indexes; per extra
// digest: ref count and indexes. Indexes below n are versions, the others
// extra digests. Missing bytes read as 0.
func decode(data []byte) ([]Version, Graph, Policy) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	var p Policy
	p.Keep = next() % 16
	flags := next()
	p.Untagged = flags&1 != 0
	p.OlderThan = agePool[flags>>1&3]
	pick := func(mask int) []string {
		var out []string
		for i, pat := range patternPool {
			if mask&(1<<i) != 0 {
				out = append(out, pat)
			}
		}
		return out
	}
	p.Tags, p.ExcludeTags = pick(next()), pick(next())
	n, x := next()%(maxVersions+1), next()%(maxExtra+1)
	name := func(i int) string {
		if i < n {
			return dg(fmt.Sprintf("v%02d", i))
		}
		return dg(fmt.Sprintf("x%d", i-n))
	}
	g := Graph{Refs: map[string][]string{}}
	if flags&8 != 0 {
		g.Unreadable = errors.New("registry unreadable")
	}
	for range next() % 4 {
		if k := next(); n+x > 0 {
			p.Protect = append(p.Protect, name(k%(n+x)))
		}
	}
	refs := func(d string) {
		for range next() % maxRefs {
			if k := next(); n+x > 0 {
				g.Refs[d] = append(g.Refs[d], name(k%(n+x)))
			}
		}
	}
	vs := make([]Version, n)
	for i := range vs {
		vs[i] = Version{ID: int64(i + 1), Digest: name(i)}
		mask := next()<<8 | next()
		for b, tag := range tagPool {
			if mask&(1<<b) != 0 {
				vs[i].Tags = append(vs[i].Tags, tag)
			}
		}
		if c := next(); c > 0 {
			c--
			vs[i].Tags = append(vs[i].Tags, strings.Replace(name(c%(n+x)), ":", "-", 1)+suffixPool[c/(n+x)%4])
		}
		vs[i].Created = now.Add(-time.Duration(next()<<8|next()) * time.Hour)
		refs(vs[i].Digest)
	}
	for j := range x {
		refs(name(n + j))
	}
	if flags&16 != 0 && n >= 2 {
		// Two versions of one digest.
		vs[n-1].Digest, vs[n-1].Created = vs[0].Digest, vs[0].Created
	}
	return vs, g, p
}

// encode is the fuzz input of a scenario, if the pools can express it.
func encode(s scenario) ([]byte, error) {
	vs, g, p := s.build()
	n := len(vs)
	at := map[string]int{}
	for i, v := range vs {
		at[v.Digest] = i
	}
	var extra []string
	indexOf := func(d string) int {
		if i, ok := at[d]; ok {
			return i
		}
		at[d] = n + len(extra)
		extra = append(extra, d)
		return at[d]
	}
	// cosign splits a tag outside the pool into the digest it names and
	// its suffix.
	cosign := func(tag string) (digest string, suffix int, ok bool) {
		rest, found := strings.CutPrefix(tag, "sha256-")
		if !found {
			return "", 0, false
		}
		enc, sfx, dot := strings.Cut(rest, ".")
		suffix = 3
		if dot {
			suffix = slices.Index(suffixPool[:], "."+sfx)
		}
		return "sha256:" + enc, suffix, suffix >= 0
	}
	// Extra digests in a stable order: protected, referenced, named by a
	// cosign tag, keys of Refs, then what they reference.
	for _, d := range p.Protect {
		indexOf(d)
	}
	for _, v := range vs {
		for _, r := range g.Refs[v.Digest] {
			indexOf(r)
		}
	}
	for _, v := range vs {
		for _, tag := range v.Tags {
			if d, _, ok := cosign(tag); ok && !slices.Contains(tagPool[:], tag) {
				indexOf(d)
			}
		}
	}
	var keys []string
	for d := range g.Refs {
		if _, ok := at[d]; !ok {
			keys = append(keys, d)
		}
	}
	slices.Sort(keys)
	for _, d := range keys {
		indexOf(d)
	}
	for i := 0; i < len(extra); i++ {
		for _, r := range g.Refs[extra[i]] {
			indexOf(r)
		}
	}
	switch {
	case n > maxVersions || len(extra) > maxExtra || p.Keep > 15 || len(p.Protect) > 3:
		return nil, errors.New("too big")
	case p.Validate() != nil:
		return nil, errors.New("invalid policy")
	}
	mask := func(patterns []string) (byte, error) {
		var m byte
		for _, pat := range patterns {
			i := slices.Index(patternPool[:], pat)
			if i < 0 {
				return 0, fmt.Errorf("pattern %q not in the pool", pat)
			}
			m |= 1 << i
		}
		return m, nil
	}
	ai := slices.Index(agePool[:], p.OlderThan)
	if ai < 0 {
		return nil, fmt.Errorf("older-than %s not in the pool", p.OlderThan)
	}
	flags := byte(ai << 1)
	if p.Untagged {
		flags |= 1
	}
	if g.Unreadable != nil {
		flags |= 8
	}
	tm, err := mask(p.Tags)
	if err != nil {
		return nil, err
	}
	em, err := mask(p.ExcludeTags)
	if err != nil {
		return nil, err
	}
	out := []byte{byte(p.Keep), flags, tm, em, byte(n), byte(len(extra)), byte(len(p.Protect))}
	for _, d := range p.Protect {
		out = append(out, byte(at[d]))
	}
	refs := func(d string) error {
		if len(g.Refs[d]) >= maxRefs {
			return fmt.Errorf("%s has too many references", d)
		}
		out = append(out, byte(len(g.Refs[d])))
		for _, r := range g.Refs[d] {
			out = append(out, byte(at[r]))
		}
		return nil
	}
	x := len(extra)
	for _, v := range vs {
		var m, c int
		for _, tag := range v.Tags {
			if b := slices.Index(tagPool[:], tag); b >= 0 {
				m |= 1 << b
				continue
			}
			d, sfx, ok := cosign(tag)
			if !ok || c != 0 {
				return nil, fmt.Errorf("tag %q not in the pool", tag)
			}
			c = 1 + at[d] + (n+x)*sfx
		}
		hours := int(now.Sub(v.Created) / time.Hour)
		if c > 255 || hours > 0xffff {
			return nil, fmt.Errorf("%s out of range", v.Digest)
		}
		out = append(out, byte(m>>8), byte(m), byte(c), byte(hours>>8), byte(hours))
		if err := refs(v.Digest); err != nil {
			return nil, err
		}
	}
	for _, d := range extra {
		if err := refs(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TestEncode: the scenarios the fuzz test starts from are the scenarios,
// decided alike once encoded.
func TestEncode(t *testing.T) {
	t.Parallel()
	for _, s := range scenarios() {
		data, err := encode(s)
		if s.name == "invalid-policy" {
			if err == nil {
				t.Errorf("%s: encoded an invalid policy", s.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		vs, g, p := s.build()
		dvs, dgr, dp := decode(data)
		want, got := Decide(vs, g, p, now), Decide(dvs, dgr, dp, now)
		// Versions are renamed: compare by position.
		flags := func(plan Plan, vs []Version) []bool {
			del := map[int64]bool{}
			for _, d := range plan.Deletions() {
				del[d.ID] = true
			}
			out := make([]bool, len(vs))
			for i, v := range vs {
				out[i] = del[v.ID]
			}
			return out
		}
		if diff := cmp.Diff(flags(want, vs), flags(got, dvs)); diff != "" {
			t.Errorf("%s: decoded scenario decided otherwise (-scenario +decoded):\n%s", s.name, diff)
		}
	}
}

func FuzzDecide(f *testing.F) {
	for _, s := range scenarios() {
		if data, err := encode(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, g, p := decode(data)
		checkInvariants(t, vs, g, p, Decide(vs, g, p, now))
	})
}

// bigPackage is a package of images indexes, each an index of four
// platform manifests, their four attestation manifests and a cosign
// signature: ten versions per image, one image pushed every six hours.
func bigPackage(images int) ([]Version, Graph) {
	digest := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	var vs []Version
	g := Graph{Refs: make(map[string][]string, images)}
	id := int64(0)
	add := func(d string, created time.Time, tags ...string) {
		id++
		vs = append(vs, Version{ID: id, Digest: d, Tags: tags, Created: created})
	}
	for i := range images {
		created := now.Add(-time.Duration(i*6) * time.Hour)
		ix := digest("index" + strconv.Itoa(i))
		tags := []string{"sha-" + ix[7:14]}
		switch {
		case i == 0:
			tags = append(tags, "latest")
		case i%50 == 0:
			tags = append(tags, "v1."+strconv.Itoa(i/50))
		case i%10 == 0:
			tags = []string{"pr-" + strconv.Itoa(i)}
		}
		add(ix, created, tags...)
		var children []string
		for _, kind := range []string{"amd64", "arm64", "arm-v7", "ppc64le", "att-amd64", "att-arm64", "att-arm-v7", "att-ppc64le"} {
			c := digest(kind + strconv.Itoa(i))
			children = append(children, c)
			add(c, created)
		}
		sig := digest("sig" + strconv.Itoa(i))
		add(sig, created.Add(time.Minute), strings.Replace(ix, ":", "-", 1)+".sig")
		g.Refs[ix] = append(children, sig)
	}
	return vs, g
}

func BenchmarkDecide10k(b *testing.B) {
	vs, g := bigPackage(1000)
	if len(vs) != 10000 {
		b.Fatalf("%d versions, want 10000", len(vs))
	}
	p := Policy{Keep: 5, Untagged: true, OlderThan: 720 * time.Hour, Tags: []string{"sha-*", "pr-*"}, Protect: []string{vs[0].Digest}}
	plan := Decide(vs, g, p, now)
	if n := len(plan.Deletions()); n == 0 || n == len(vs) {
		b.Fatalf("%d deletions, want some", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(vs, g, p, now)
	}
}
