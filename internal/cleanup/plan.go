package cleanup

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is one version of a GHCR container package: one manifest (an
// image, an index, a platform manifest, an attestation manifest, a
// signature) and the tags that point at it.
type Version struct {
	// ID is the package version id, the one a deletion names.
	ID int64
	// Digest is the manifest digest, sha256:...
	Digest string
	// Tags are the version's tags; none for an untagged version.
	Tags []string
	// Created is when the version was pushed.
	Created time.Time
}

// Graph is what the registry says about the package's manifests.
type Graph struct {
	// Refs[d] lists the digests that must live as long as d does: index
	// children, attestation manifests of an index, OCI 1.1 referrers whose
	// subject is d, cosign sha256-<d>.sig/.att/.sbom tag targets. A digest
	// missing from Refs references nothing. Refs may name digests that are
	// not versions of the package; references are followed through them.
	//
	// Decide also adds the cosign and referrers-tag edges it can see in the
	// versions' tags (a version tagged sha256-<hex>[.sig|.att|.sbom] is
	// referenced by the version sha256:<hex> of the package), so a graph
	// that lacks them loses nothing.
	Refs map[string][]string
	// Unreadable is set when the registry could not be read for this
	// package: nothing is deleted.
	Unreadable error
}

// Policy says which top-level images a cleanup may delete. The zero Policy
// deletes nothing.
type Policy struct {
	// Keep is how many of the newest images are kept, counted per
	// top-level image (a tagged one, or an index, protected or not,
	// matching Tags or not), never per raw version: an untagged lone
	// manifest is not an image and is not kept by Keep.
	Keep int
	// Untagged allows deleting untagged top-level images.
	Untagged bool
	// OlderThan restricts deletion to images older than this (created
	// strictly more than OlderThan before now); 0 means any age.
	OlderThan time.Duration
	// Tags are glob patterns (path.Match syntax, e.g. pr-*, sha-*) of tags
	// that may be removed; a version with any tag not matching them is
	// never deleted. Cosign and referrers tags (sha256-<hex>.sig naming a
	// version of the package) of a version that is part of another image
	// follow that image instead.
	Tags []string
	// ExcludeTags are patterns of tags never removed; they win over Tags
	// and apply to every version, cosign tags included.
	ExcludeTags []string
	// Protect lists digests never deleted, with everything they reference
	// (the registry cache manifest, the digest just pushed). Digests that
	// are not versions of the package are allowed.
	Protect []string
}

// Validate reports a negative Keep or OlderThan and malformed patterns.
// Decide keeps everything under an invalid policy.
func (p Policy) Validate() error {
	var probs []string
	if p.Keep < 0 {
		probs = append(probs, fmt.Sprintf("keep %d is negative", p.Keep))
	}
	if p.OlderThan < 0 {
		probs = append(probs, fmt.Sprintf("older-than %s is negative", p.OlderThan))
	}
	for _, list := range []struct {
		name     string
		patterns []string
	}{{"cleanup-tags", p.Tags}, {"cleanup-exclude-tags", p.ExcludeTags}} {
		for _, pat := range list.patterns {
			if _, err := path.Match(pat, ""); err != nil {
				probs = append(probs, fmt.Sprintf("%s pattern %q: %v", list.name, pat, err))
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(probs, "; "))
}

// PRPolicy is the policy that removes the image of pull request n's tag
// pr-<n> (and what only it referenced) and nothing else: Tags [pr-<n>],
// Keep 0, Untagged false. An image also tagged otherwise (pr-12 and latest)
// stays.
func PRPolicy(n int) Policy {
	return Policy{Tags: []string{"pr-" + strconv.Itoa(n)}}
}

// Decision is what the plan does with one version, and why.
type Decision struct {
	// Version is the version decided on.
	Version Version
	// Delete is true when the version is to be deleted.
	Delete bool
	// Reason is a human sentence starting with "kept:" or "deleted:", such
	// as "kept: one of the 5 newest images" or "deleted: referenced only
	// by deleted sha256:0123456789ab… (tags pr-12)".
	Reason string
}

// Plan is the outcome of Decide.
type Plan struct {
	// Decisions has every version exactly once, in a stable order: the
	// top-level images newest first, each followed by what it references
	// in Refs order; every version comes after all the versions that
	// reference it, and the versions of a cycle come together, after what
	// references the cycle and before what it references.
	Decisions []Decision
}

// Deletions returns the versions to delete, parents before their children
// (an index before its platform manifests and attestations), so an executor
// that stops midway never leaves a tag pointing at a missing manifest.
func (p Plan) Deletions() []Version {
	var out []Version
	for _, d := range p.Decisions {
		if d.Delete {
			out = append(out, d.Version)
		}
	}
	return out
}

// Kept returns how many versions the plan keeps.
func (p Plan) Kept() int {
	n := 0
	for _, d := range p.Decisions {
		if !d.Delete {
			n++
		}
	}
	return n
}

// Decide plans the cleanup of a package's versions: which to delete under
// the policy p at time now, given the registry's graph g. Versions that
// share a digest are decided together. Decide never deletes anything that
// a kept or protected version references, directly or not.
func Decide(versions []Version, g Graph, p Policy, now time.Time) Plan {
	order := make([]int, len(versions))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		va, vb := &versions[a], &versions[b]
		if c := vb.Created.Compare(va.Created); c != 0 {
			return c
		}
		if c := strings.Compare(va.Digest, vb.Digest); c != 0 {
			return c
		}
		return cmp.Compare(va.ID, vb.ID)
	})
	pl := &planner{versions: versions, g: g, p: p, now: now, index: make(map[string]int, len(versions)),
		nodes: make([]node, 0, len(versions)+len(versions)/8+len(p.Protect))}
	if g.Unreadable != nil {
		// What Refs holds still orders the versions; the policy is not
		// applied.
		pl.keepAll = "kept: the registry could not be read: " + oneLine(g.Unreadable.Error())
		pl.p = Policy{}
	} else if err := p.Validate(); err != nil {
		pl.keepAll = "kept: the cleanup policy is invalid: " + oneLine(err.Error())
		pl.p = Policy{}
	}
	return pl.plan(order)
}

// seedKind is why a node starts a kept closure.
type seedKind uint8

const (
	notSeed seedKind = iota
	// seedProtected is a digest of Policy.Protect.
	seedProtected
	// seedKept is a kept root, or a child its own tags keep.
	seedKept
	// seedCycle is a version no root reaches: part of (or under) a cycle.
	seedCycle
)

// node is a digest of the graph: a version of the package (nodes
// [0, planner.versionNodes)) or a digest only Refs or Protect name.
type node struct {
	digest string
	// versions are the indexes of the versions with this digest, by ID.
	versions []int
	// tags are the versions' tags; userTags are those that are not the
	// cosign or referrers tag of another version of the package.
	tags, userTags []string
	created        time.Time
	// refs are the nodes this one keeps alive, deduplicated, once listed.
	refs   []int
	listed bool
	// derived are the versions whose tags name this node as their subject.
	derived []int

	referenced bool // by another version: not a root
	reached    bool // from a root
	protected  bool
	seed       seedKind
	kept       bool
	// dfsIndex (from 1, 0 when not met yet), low and onStack are the
	// state of the ordering walk.
	dfsIndex, low int
	onStack       bool
	// credited is set on a deleted node once a deleted root reached it.
	credited bool
	// credit is the seed whose closure kept the node, or the deleted root
	// whose deletion takes it along.
	credit int
	// keepWhy and deleteWhy are the reasons of a node decided on its own
	// account (a root, a seed); label is its name in the reasons of
	// others, creditWhy the reason of the nodes credited to it.
	keepWhy, deleteWhy, label, creditWhy string
}

type planner struct {
	versions     []Version
	g            Graph
	p            Policy
	now          time.Time
	index        map[string]int
	nodes        []node
	versionNodes int
	stack        []int
	// keepAll, when set, is the reason every version is kept for.
	keepAll string
}

// lookup returns the node of digest d, adding it if needed. It may grow
// pl.nodes: no pointer into it survives a call.
func (pl *planner) lookup(d string) int {
	if i, ok := pl.index[d]; ok {
		return i
	}
	pl.nodes = append(pl.nodes, node{digest: d})
	pl.index[d] = len(pl.nodes) - 1
	return len(pl.nodes) - 1
}

// refsOf lists what node i keeps alive: Refs in their order, then the
// versions whose cosign or referrers tags name it.
func (pl *planner) refsOf(i int) []int {
	if pl.nodes[i].listed {
		return pl.nodes[i].refs
	}
	digests := pl.g.Refs[pl.nodes[i].digest]
	out := make([]int, 0, len(digests)+len(pl.nodes[i].derived))
	for _, d := range digests {
		if j := pl.lookup(d); !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	for _, j := range pl.nodes[i].derived {
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	pl.nodes[i].refs, pl.nodes[i].listed = out, true
	return out
}

// walk enters start and, depth first, every node reachable from it that
// enter accepts; enter marks the nodes so each is entered once.
func (pl *planner) walk(start int, enter func(int) bool) {
	if !enter(start) {
		return
	}
	stack := append(pl.stack[:0], start)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range pl.refsOf(i) {
			if enter(j) {
				stack = append(stack, j)
			}
		}
	}
	pl.stack = stack
}

// subject returns the version a cosign (sha256-<hex>.sig, .att, .sbom) or
// referrers (sha256-<hex>) tag names, if it is one of the package's.
func (pl *planner) subject(tag string) (int, bool) {
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		if s, ok := strings.CutSuffix(tag, suffix); ok {
			tag = s
			break
		}
	}
	alg, enc, ok := strings.Cut(tag, "-")
	if !ok || alg == "" || enc == "" {
		return 0, false
	}
	j, ok := pl.index[alg+":"+enc]
	return j, ok && j < pl.versionNodes
}

func (pl *planner) plan(order []int) Plan {
	// One node per digest, in the order of the versions: newest first.
	for _, vi := range order {
		v := &pl.versions[vi]
		j, ok := pl.index[v.Digest]
		if !ok {
			j = pl.lookup(v.Digest)
			pl.nodes[j].created = v.Created
		}
		n := &pl.nodes[j]
		n.versions = append(n.versions, vi)
		for _, t := range v.Tags {
			if !slices.Contains(n.tags, t) {
				n.tags = append(n.tags, t)
			}
		}
	}
	pl.versionNodes = len(pl.nodes)
	m := pl.versionNodes
	for i := range m {
		n := &pl.nodes[i]
		if len(n.versions) > 1 {
			slices.SortFunc(n.versions, func(a, b int) int { return cmp.Compare(pl.versions[a].ID, pl.versions[b].ID) })
		}
		for _, t := range n.tags {
			if s, ok := pl.subject(t); ok && s != i {
				pl.nodes[s].derived = append(pl.nodes[s].derived, i)
				continue
			}
			n.userTags = append(n.userTags, t)
		}
	}

	// Roots: versions no other version references.
	for u := range m {
		for _, v := range pl.refsOf(u) {
			if v != u && v < m {
				pl.nodes[v].referenced = true
			}
		}
	}
	var roots []int
	for i := range m {
		if !pl.nodes[i].referenced {
			roots = append(roots, i)
		}
	}
	for _, r := range roots {
		pl.walk(r, func(j int) bool {
			if pl.nodes[j].reached {
				return false
			}
			pl.nodes[j].reached = true
			return true
		})
	}

	// Seeds of the kept closure, in the order that credits them.
	var seeds []int
	seed := func(i int, kind seedKind, why string) {
		if pl.nodes[i].seed != notSeed {
			return
		}
		pl.nodes[i].seed, pl.nodes[i].keepWhy = kind, why
		seeds = append(seeds, i)
	}
	for _, d := range pl.p.Protect {
		j := pl.lookup(d)
		pl.nodes[j].protected = true
		seed(j, seedProtected, "kept: protected digest")
	}
	var deleted []int
	rank := 0
	for _, r := range roots {
		// An image is a tagged root or one that references others (an
		// index); an untagged lone manifest is a raw version left over and
		// takes no place among the newest.
		image := len(pl.nodes[r].tags) > 0 || len(pl.refsOf(r)) > 0
		del, why := pl.judgeRoot(r, rank, image)
		if image {
			rank++
		}
		if del {
			pl.nodes[r].deleteWhy = why
			deleted = append(deleted, r)
			continue
		}
		seed(r, seedKept, why)
	}
	for i := range m {
		n := &pl.nodes[i]
		if !n.referenced || len(n.tags) == 0 {
			continue
		}
		if keep, why := pl.tagVerdict(n.tags, n.userTags); keep {
			seed(i, seedKept, why)
		}
	}
	keepFrom := func(s int) {
		pl.walk(s, func(j int) bool {
			if pl.nodes[j].kept {
				return false
			}
			pl.nodes[j].kept, pl.nodes[j].credit = true, s
			return true
		})
	}
	for _, s := range seeds {
		keepFrom(s)
	}
	// What no root reaches hangs off a cycle of versions: it is kept (the
	// first such version in the order of the versions stands for its
	// cycle), and the ordering walk starts from it (cycles).
	var cycles []int
	for i := range m {
		if pl.nodes[i].reached {
			continue
		}
		if !pl.nodes[i].kept {
			seed(i, seedCycle, "kept: in a reference cycle that no top-level image references")
			keepFrom(i)
		}
		cycles = append(cycles, i)
		pl.walk(i, func(j int) bool {
			if pl.nodes[j].reached {
				return false
			}
			pl.nodes[j].reached = true
			return true
		})
	}
	for _, r := range deleted {
		pl.walk(r, func(j int) bool {
			n := &pl.nodes[j]
			if n.kept || n.credited {
				return false
			}
			n.credited, n.credit = true, r
			return true
		})
	}

	// Order: the strongly connected components of a depth-first walk
	// (Tarjan's), last found first, the versions of a component in the
	// order the walk met them. The walk starts from the roots oldest first
	// (so the newest comes out first) and takes children in reverse (so
	// they come out in Refs order); what no root reaches comes last. On an
	// acyclic graph this is the reverse postorder: every version after
	// those that reference it; a cycle comes out after what references it
	// and before what it references.
	var starts []int
	for k := len(cycles) - 1; k >= 0; k-- {
		starts = append(starts, cycles[k])
	}
	for k := len(roots) - 1; k >= 0; k-- {
		starts = append(starts, roots[k])
	}
	ordered := pl.components(starts)
	plan := Plan{Decisions: make([]Decision, 0, len(pl.versions))}
	for _, i := range ordered {
		if i >= m {
			continue
		}
		del, why := pl.decide(i)
		if pl.keepAll != "" {
			del, why = false, pl.keepAll
		}
		for _, vi := range pl.nodes[i].versions {
			plan.Decisions = append(plan.Decisions, Decision{Version: clone(pl.versions[vi]), Delete: del, Reason: why})
		}
	}
	return plan
}

// components walks the graph from starts with Tarjan's algorithm,
// iteratively, and returns the nodes met: components in the reverse of the
// order they were completed, each in the order the walk reached its nodes.
func (pl *planner) components(starts []int) []int {
	type frame struct{ node, next int }
	var (
		frames []frame
		open   []int // Tarjan's stack
		done   []int // the components completed, one after the other
		ends   []int // where each component ends in done
		count  int
	)
	enter := func(v int) {
		count++
		pl.nodes[v].dfsIndex, pl.nodes[v].low, pl.nodes[v].onStack = count, count, true
		open = append(open, v)
		frames = append(frames, frame{v, len(pl.refsOf(v)) - 1})
	}
	for _, s := range starts {
		if pl.nodes[s].dfsIndex != 0 {
			continue
		}
		enter(s)
		for len(frames) > 0 {
			top := &frames[len(frames)-1]
			v := top.node
			if top.next >= 0 {
				w := pl.refsOf(v)[top.next]
				top.next--
				switch {
				case pl.nodes[w].dfsIndex == 0:
					enter(w)
				case pl.nodes[w].onStack:
					pl.nodes[v].low = min(pl.nodes[v].low, pl.nodes[w].dfsIndex)
				}
				continue
			}
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				p := frames[len(frames)-1].node
				pl.nodes[p].low = min(pl.nodes[p].low, pl.nodes[v].low)
			}
			if pl.nodes[v].low != pl.nodes[v].dfsIndex {
				continue
			}
			k := len(open) - 1
			for open[k] != v {
				k--
			}
			for _, u := range open[k:] {
				pl.nodes[u].onStack = false
			}
			done = append(done, open[k:]...)
			ends = append(ends, len(done))
			open = open[:k]
		}
	}
	out := make([]int, 0, len(done))
	for k := len(ends) - 1; k >= 0; k-- {
		begin := 0
		if k > 0 {
			begin = ends[k-1]
		}
		out = append(out, done[begin:ends[k]]...)
	}
	return out
}

// judgeRoot applies the policy to the root r, the rank-th newest image
// (when it is an image at all).
func (pl *planner) judgeRoot(r, rank int, image bool) (del bool, why string) {
	n := &pl.nodes[r]
	switch {
	case n.protected:
		return false, "kept: protected digest"
	case len(n.tags) > 0:
		if keep, why := pl.tagVerdict(n.tags, n.tags); keep {
			return false, why
		}
	case !pl.p.Untagged:
		return false, "kept: untagged, and cleanup-untagged is off"
	}
	if image && rank < pl.p.Keep {
		if pl.p.Keep == 1 {
			return false, "kept: the newest image"
		}
		return false, fmt.Sprintf("kept: one of the %d newest images", pl.p.Keep)
	}
	if pl.p.OlderThan > 0 && pl.now.Sub(n.created) <= pl.p.OlderThan {
		return false, "kept: not older than " + age(pl.p.OlderThan)
	}
	why = "deleted: untagged"
	if len(n.tags) > 0 {
		why = "deleted: tags " + strings.Join(n.tags, ", ") + " match cleanup-tags"
	}
	if pl.p.OlderThan > 0 {
		why += " and older than " + age(pl.p.OlderThan)
	}
	return true, why
}

// tagVerdict tells whether tags keep their version: one of all matches
// ExcludeTags, or one of user matches no pattern of Tags.
func (pl *planner) tagVerdict(all, user []string) (keep bool, why string) {
	var excluded, off []string
	for _, t := range all {
		if matchAny(pl.p.ExcludeTags, t) {
			excluded = append(excluded, t)
		}
	}
	if len(excluded) > 0 {
		return true, "kept: tags " + strings.Join(excluded, ", ") + " match cleanup-exclude-tags"
	}
	for _, t := range user {
		if !matchAny(pl.p.Tags, t) {
			off = append(off, t)
		}
	}
	switch {
	case len(off) == 0:
		return false, ""
	case len(pl.p.Tags) == 0:
		return true, "kept: tagged " + strings.Join(off, ", ") + ", and cleanup-tags is empty"
	default:
		return true, "kept: tags " + strings.Join(off, ", ") + " do not match cleanup-tags"
	}
}

// decide is the decision on the version node i.
func (pl *planner) decide(i int) (del bool, why string) {
	n := &pl.nodes[i]
	switch {
	case n.kept && n.keepWhy != "":
		return false, n.keepWhy
	case n.kept:
		return false, pl.creditWhy(n.credit)
	case n.deleteWhy != "":
		return true, n.deleteWhy
	case n.credited:
		return true, pl.creditWhy(n.credit)
	default:
		// Not reached: a version no kept seed reaches is reached from a
		// deleted root.
		return true, "deleted: referenced only by deleted images"
	}
}

// creditWhy is the reason of the nodes credited to c: kept by c's
// closure, or deleted with c.
func (pl *planner) creditWhy(c int) string {
	n := &pl.nodes[c]
	if n.creditWhy == "" {
		switch {
		case !n.kept:
			n.creditWhy = "deleted: referenced only by deleted " + pl.label(c)
		case n.seed == seedProtected:
			n.creditWhy = "kept: referenced by protected " + pl.label(c)
		default:
			n.creditWhy = "kept: referenced by kept " + pl.label(c)
		}
	}
	return n.creditWhy
}

// label names node i in a reason: its short digest and, for a version,
// its tags.
func (pl *planner) label(i int) string {
	n := &pl.nodes[i]
	if n.label == "" {
		switch s := short(n.digest); {
		case i >= pl.versionNodes:
			n.label = s
		case len(n.tags) == 0:
			n.label = s + " (untagged)"
		default:
			n.label = s + " (tags " + strings.Join(n.tags, ", ") + ")"
		}
	}
	return n.label
}

func matchAny(patterns []string, tag string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
	}
	return false
}

// short cuts a digest to its algorithm and 12 characters.
func short(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}

// age renders a duration without its zero minutes and seconds: 720h, 1h30m.
func age(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clone(v Version) Version {
	v.Tags = slices.Clone(v.Tags)
	return v
}
