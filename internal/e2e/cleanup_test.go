package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// pushIndex pushes a two-platform index with an attestation manifest per
// platform, as buildx makes them, and tags it; it returns the index digest
// and its children's.
func pushIndex(t *testing.T, repo string, tags ...string) (string, []string) {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	var children []string
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		att, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		ad, _ := att.Digest()
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.String()},
			}})
		children = append(children, d.String(), ad.String())
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, repo+"@"+d.String()), idx); err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		if err := remote.Tag(mustTag(t, repo+":"+tag), idx); err != nil {
			t.Fatal(err)
		}
	}
	return d.String(), children
}

// pushOrphan pushes an untagged image nothing references, as a build
// whose tag moved on leaves behind, and returns its digest.
func pushOrphan(t *testing.T, repo string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, repo+"@"+d.String()), img); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// register adds every manifest of repo (tagged ones, index children, and
// the given untagged digests) as versions of the fake package, the oldest
// first in the order given, each a minute apart, and makes deleting a
// version delete its manifest from the registry, as GHCR does.
func register(t *testing.T, pk *testutil.Packages, pkg, repo string, start time.Time, roots []string) map[string]int64 {
	t.Helper()
	// A repository with manifests pushed by digest only has no tags yet:
	// the registry then answers NAME_UNKNOWN.
	tags, _ := remote.List(ref(t, repo+":x").Context())
	tagsOf := map[string][]string{}
	for _, tag := range tags {
		desc, err := remote.Get(ref(t, repo+":"+tag))
		if err != nil {
			t.Fatal(err)
		}
		tagsOf[desc.Digest.String()] = append(tagsOf[desc.Digest.String()], tag)
	}
	ids := map[string]int64{}
	at := start
	add := func(d string) {
		if _, ok := ids[d]; ok {
			return
		}
		ids[d] = pk.Add(pkg, testutil.PackageVersion{Digest: d, Tags: tagsOf[d], Created: at})
		at = at.Add(time.Minute)
	}
	for _, root := range roots {
		desc, err := remote.Get(ref(t, repo+"@"+root))
		if err != nil {
			t.Fatal(err)
		}
		if desc.MediaType.IsIndex() {
			idx, _ := desc.ImageIndex()
			im, _ := idx.IndexManifest()
			for _, c := range im.Manifests {
				add(c.Digest.String())
			}
		}
		add(root)
	}
	pk.SetOnDelete(func(_ string, v testutil.PackageVersion) {
		if err := remote.Delete(ref(t, repo+"@"+v.Digest)); err != nil {
			t.Errorf("deleting %s from the registry: %v", v.Digest, err)
		}
	})
	return ids
}

// pullsCompletely fails the test unless repo has tags and every one of
// them pulls whole: manifest, index children, configs and layers.
func pullsCompletely(t *testing.T, repo string) {
	t.Helper()
	tags, err := remote.List(ref(t, repo+":x").Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) == 0 {
		t.Fatalf("%s has no tags", repo)
	}
	for _, tag := range tags {
		if err := pullTag(ref(t, repo+":"+tag)); err != nil {
			t.Errorf("tag %s: %v", tag, err)
		}
	}
}

// pullTag reads everything a pull of r reads: its manifest, for an index
// each child manifest, and each image's config and layers (a cache
// manifest's config is BuildKit's cache config, read as bytes).
func pullTag(r name.Reference) error {
	desc, err := remote.Get(r)
	if err != nil {
		return err
	}
	var imgs []v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		if len(im.Manifests) == 0 {
			return errors.New("an index without manifests")
		}
		for _, c := range im.Manifests {
			img, err := idx.Image(c.Digest)
			if err == nil {
				_, err = img.RawManifest()
			}
			if err != nil {
				return fmt.Errorf("child %s does not pull: %w", c.Digest, err)
			}
			imgs = append(imgs, img)
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	default:
		return fmt.Errorf("media type %q is neither an image nor an index", desc.MediaType)
	}
	for _, img := range imgs {
		if _, err := img.RawConfigFile(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := pullLayers(img); err != nil {
			return err
		}
	}
	return nil
}

func deletedDigests(pk *testutil.Packages, pkg string, ids map[string]int64) []string {
	byID := map[int64]string{}
	for d, id := range ids {
		byID[id] = d
	}
	var out []string
	for _, id := range pk.Deleted(pkg) {
		out = append(out, byID[id])
	}
	sort.Strings(out)
	return out
}

func TestCleanupKeepsEveryImageWhole(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	pk := testutil.NewPackages(t, "barde", "User")
	gh.SetPackages(pk)
	repo := registryHost + "/barde/cleanup"

	// The action's own two-platform build with provenance, and its cache.
	r := newAction(t, "push-main", "barde/cleanup", gh).run(t).ok(t)
	built := r.outputs["digest"]
	cache, err := remote.Head(ref(t, repo+":buildcache"))
	if err != nil {
		t.Fatal(err)
	}
	// Eight older images tagged sha-N, and an orphaned untagged manifest.
	var shaRoots []string
	shaChildren := map[string][]string{}
	for i := 1; i <= 8; i++ {
		d, children := pushIndex(t, repo, fmt.Sprintf("sha-%d", i))
		shaRoots = append(shaRoots, d)
		shaChildren[d] = children
	}
	od := pushOrphan(t, repo)
	start := time.Now().Add(-30 * 24 * time.Hour)
	roots := append([]string{od, cache.Digest.String()}, shaRoots...)
	ids := register(t, pk, "cleanup", repo, start, append(roots, built))

	cleanupRun := func(extra map[string]string) result {
		a := newAction(t, "schedule", "barde/cleanup", gh)
		a.env["INPUT_MODE"] = "cleanup"
		delete(a.env, "INPUT_CLEANUP")
		a.env["INPUT_CLEANUP-TAGS"] = "sha-*"
		for k, v := range extra {
			a.env[k] = v
		}
		return a.run(t).ok(t)
	}

	t.Run("dry run deletes nothing", func(t *testing.T) {
		r := cleanupRun(map[string]string{"INPUT_CLEANUP-DRY-RUN": "true"})
		if n := len(pk.Deleted("cleanup")); n != 0 {
			t.Errorf("a dry run deleted %d versions", n)
		}
		if r.outputs["cleanup-deleted"] == "" || !strings.Contains(r.summary, "would delete") {
			t.Errorf("the dry run does not report its plan: %q\n%s", r.outputs["cleanup-deleted"], r.summary)
		}
	})

	t.Run("keep 5, untagged orphan gone, images whole", func(t *testing.T) {
		r := cleanupRun(nil)
		// Kept: the 5 newest images (the build and sha-8..sha-5) and the
		// cache; deleted: sha-1..sha-4 with their children, and the orphan.
		want := []string{od}
		for _, d := range shaRoots[:4] {
			want = append(want, d)
			want = append(want, shaChildren[d]...)
		}
		sort.Strings(want)
		got := deletedDigests(pk, "cleanup", ids)
		if !slices.Equal(want, got) {
			t.Errorf("deleted:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if r.outputs["cleanup-kept"] != fmt.Sprint(len(ids)-len(want)) {
			t.Errorf("cleanup-kept = %q, want %d", r.outputs["cleanup-kept"], len(ids)-len(want))
		}
		for _, d := range []string{built, cache.Digest.String()} {
			if slices.Contains(got, d) {
				t.Errorf("%s was deleted", d)
			}
		}
		pullsCompletely(t, repo)
	})
}

func TestCleanupPullRequestTags(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	pk := testutil.NewPackages(t, "barde", "User")
	gh.SetPackages(pk)
	repo := registryHost + "/barde/prs"
	pr12, children12 := pushIndex(t, repo, "pr-12")
	pr13, _ := pushIndex(t, repo, "pr-13")
	both, _ := pushIndex(t, repo, "pr-14", "latest")
	ids := register(t, pk, "prs", repo, time.Now().Add(-time.Hour), []string{pr12, pr13, both})

	event := filepath.Join(t.TempDir(), "closed.json")
	payload := map[string]any{
		"action": "closed", "number": 12,
		"pull_request": map[string]any{"number": 12, "merged": true,
			"head": map[string]any{"ref": "feature", "sha": sha, "repo": map[string]any{"full_name": "barde/phialoastro"}},
			"base": map[string]any{"ref": "main", "repo": map[string]any{"full_name": "barde/phialoastro"}}},
		"repository": map[string]any{"name": "phialoastro", "full_name": "barde/phialoastro", "default_branch": "main"},
	}
	data, _ := json.Marshal(payload)
	if err := os.WriteFile(event, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := newAction(t, "pull_request", "barde/prs", gh)
	a.env["GITHUB_EVENT_PATH"] = event
	a.env["GITHUB_REF"] = "refs/pull/12/merge"
	a.env["INPUT_CLEANUP-PR-TAGS"] = "true"
	delete(a.env, "INPUT_CLEANUP")
	r := a.run(t).ok(t)
	if strings.Contains(r.log, "::group::Build") {
		t.Errorf("a closed pull request was built:\n%s", r.log)
	}
	want := append([]string{pr12}, children12...)
	sort.Strings(want)
	if got := deletedDigests(pk, "prs", ids); !slices.Equal(want, got) {
		t.Errorf("deleted %q, want pr-12 and its children %q", got, want)
	}
	pullsCompletely(t, repo)
	for tag, d := range map[string]string{"pr-13": pr13, "pr-14": both, "latest": both} {
		if desc, err := remote.Head(ref(t, repo+":"+tag)); err != nil || desc.Digest.String() != d {
			t.Errorf("%s: %v %v, want it untouched at %s", tag, desc, err, d)
		}
	}
}

func TestMigrateBetweenRegistries(t *testing.T) {
	needE2E(t)
	src := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(src.Close)
	from := strings.TrimPrefix(src.URL, "http://") + "/barde/site"
	v1d, _ := pushIndex(t, from, "v1", "latest")
	v2d, _ := pushIndex(t, from, "v2")
	pushIndex(t, from, "pr-3")

	gh := testutil.NewGitHub(t)
	a := newAction(t, "push-main", "barde/migrated", gh)
	a.env["INPUT_MODE"] = "migrate"
	a.env["INPUT_MIGRATE-FROM"] = from
	a.env["INPUT_MIGRATE-TAGS"] = "v*,latest"
	r := a.run(t).ok(t)
	var got []struct {
		Tag, Digest string
		Skipped     bool
	}
	if err := json.Unmarshal([]byte(r.outputs["migrated"]), &got); err != nil || len(got) != 3 {
		t.Fatalf("migrated output %q (%v)", r.outputs["migrated"], err)
	}
	to := registryHost + "/barde/migrated"
	for tag, want := range map[string]string{"v1": v1d, "latest": v1d, "v2": v2d} {
		desc, err := remote.Get(ref(t, to+":"+tag))
		if err != nil || desc.Digest.String() != want {
			t.Errorf("%s at the destination: %v %v, want digest %s", tag, desc, err, want)
		}
	}
	if _, err := remote.Head(ref(t, to+":pr-3")); err == nil {
		t.Error("pr-3 was copied although migrate-tags leaves it out")
	}
	pullsCompletely(t, to)

	again := newAction(t, "push-main", "barde/migrated", gh)
	for k, v := range a.env {
		if strings.HasPrefix(k, "INPUT_M") {
			again.env[k] = v
		}
	}
	r = again.run(t).ok(t)
	if strings.Count(r.outputs["migrated"], `"skipped":true`) != 3 {
		t.Errorf("a second migration copied again: %s", r.outputs["migrated"])
	}
}

func TestCleanupAfterADefaultBranchPush(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	pk := testutil.NewPackages(t, "barde", "User")
	gh.SetPackages(pk)
	repo := registryHost + "/barde/auto"
	od := pushOrphan(t, repo)
	ids := register(t, pk, "auto", repo, time.Now().Add(-240*time.Hour), []string{od})

	// cleanup left at its default: on after a push of the default branch.
	a := newAction(t, "push-main", "barde/auto", gh)
	delete(a.env, "INPUT_CLEANUP")
	r := a.run(t).ok(t)
	if got := deletedDigests(pk, "auto", ids); !slices.Equal(got, []string{od}) {
		t.Errorf("deleted %q, want the orphan %s", got, od)
	}
	if !strings.Contains(r.summary, "#### Cleanup of barde/auto") || r.outputs["cleanup-deleted"] != od {
		t.Errorf("cleanup-deleted %q; summary:\n%s\nlog:\n%s", r.outputs["cleanup-deleted"], r.summary, r.log)
	}
	pullsCompletely(t, repo)

	// A feature branch build does not clean up.
	b := newAction(t, "push-feature", "barde/auto", gh)
	delete(b.env, "INPUT_CLEANUP")
	r = b.run(t).ok(t)
	if strings.Contains(r.summary, "Cleanup of") {
		t.Errorf("a feature branch build cleaned up:\n%s", r.summary)
	}
}
