package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/cleanup"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
)

// cleanupConcurrency bounds the registry reads and the deletions in flight.
const cleanupConcurrency = 8

// packageOf is the GitHub package of an image: its path after the owner
// (GITHUB_REPOSITORY_OWNER), as GHCR names packages:
// ghcr.io/barde/phialoastro is package phialoastro of barde.
func packageOf(image, owner, override string) (string, error) {
	repo, err := name.NewRepository(image)
	if err != nil {
		return "", fmt.Errorf("parsing image %q: %w", image, err)
	}
	first, rest, ok := strings.Cut(repo.RepositoryStr(), "/")
	if !ok || !strings.EqualFold(first, owner) {
		return "", fmt.Errorf("image %q is not a package of %q (GITHUB_REPOSITORY_OWNER): cleanup works on the owner's GitHub Packages", image, owner)
	}
	if override != "" {
		return override, nil
	}
	return rest, nil
}

// cleanupTarget says where the versions live and how the registry is read.
type cleanupTarget struct {
	owner, pkg string
	// image is the repository the registry graph is read from.
	image  string
	reader *registry.Reader
}

// runCleanup plans the deletion of old versions of the image's package and,
// unless it is a dry run, carries it out. Nothing of a package whose
// registry cannot be read is deleted.
func runCleanup(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, api *ghapi.Client, tg cleanupTarget, policy cleanup.Policy, protect []string) (report.Cleanup, error) {
	out := report.Cleanup{Package: tg.owner + "/" + tg.pkg, DryRun: cfg.Cleanup.DryRun || cfg.DryRun}
	if api == nil {
		return out, errors.New("no GitHub API: GITHUB_REPOSITORY is not set")
	}
	ownerType, err := api.OwnerType(ctx, tg.owner)
	if err != nil {
		return out, err
	}
	versions, err := api.ListVersions(ctx, tg.owner, ownerType, tg.pkg)
	if err != nil {
		return out, err
	}
	var vs []cleanup.Version
	var digests []string
	for _, v := range versions {
		vs = append(vs, cleanup.Version{ID: v.ID, Digest: v.Digest, Tags: v.Tags, Created: v.Created})
		digests = append(digests, v.Digest)
	}
	var g cleanup.Graph
	g.Refs, err = tg.reader.Graph(ctx, tg.image, digests, cleanupConcurrency)
	if err != nil {
		g.Unreadable = err
		gha.Warningf("cleanup of %s: the registry could not be read, nothing is deleted: %v", out.Package, err)
	}
	policy.Protect = append(policy.Protect, protect...)
	plan := cleanup.Decide(vs, g, policy, time.Now())
	out.Plan = plan
	if out.DryRun {
		fmt.Fprintf(stdout, "cleanup of %s: dry run, %d versions would be deleted\n", out.Package, len(plan.Deletions()))
		for _, v := range plan.Deletions() {
			out.Deleted = append(out.Deleted, v.Digest)
		}
		return out, nil
	}
	out.Deleted, out.Skipped = deleteVersions(ctx, api, tg, ownerType, plan, g)
	fmt.Fprintf(stdout, "cleanup of %s: %d versions deleted, %d kept\n", out.Package, len(out.Deleted), plan.Kept()+len(out.Skipped))
	return out, nil
}

// deleteVersions deletes the plan's versions, parents before children: one
// level of the graph at a time, a bounded number at once. Each version's
// tags are read again right before it is deleted; one that gained a tag
// since the plan (another workflow pushed) is kept, and so is what it
// references.
func deleteVersions(ctx context.Context, api *ghapi.Client, tg cleanupTarget, ownerType string, plan cleanup.Plan, g cleanup.Graph) (deleted []string, skipped []report.Skip) {
	order := plan.Deletions()
	level := levels(order, g)
	var mu sync.Mutex
	spared := map[string]bool{} // digests kept after all, with what they reference
	spare := func(d string) {
		var walk func(string)
		walk = func(d string) {
			if spared[d] {
				return
			}
			spared[d] = true
			for _, c := range g.Refs[d] {
				walk(c)
			}
		}
		walk(d)
	}
	for l := 0; l < len(level); l++ {
		sem := make(chan struct{}, cleanupConcurrency)
		var wg sync.WaitGroup
		for _, v := range level[l] {
			mu.Lock()
			isSpared := spared[v.Digest]
			mu.Unlock()
			if isSpared {
				skipped = append(skipped, report.Skip{Digest: v.Digest, Reason: "referenced by a version kept during the run"})
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				reason := ""
				now, err := api.GetVersion(ctx, tg.owner, ownerType, tg.pkg, v.ID)
				switch {
				case err != nil:
					reason = "could not read it again: " + err.Error()
				case gained(v.Tags, now.Tags):
					reason = "gained tags since the plan: " + strings.Join(now.Tags, ", ")
				default:
					if err := api.DeleteVersion(ctx, tg.owner, ownerType, tg.pkg, v.ID); err != nil {
						reason = "delete failed: " + err.Error()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if reason != "" {
					spare(v.Digest)
					skipped = append(skipped, report.Skip{Digest: v.Digest, Reason: reason})
					return
				}
				deleted = append(deleted, v.Digest)
			}()
		}
		wg.Wait()
	}
	slices.Sort(deleted)
	return deleted, skipped
}

// gained reports whether now holds a tag before did not.
func gained(before, now []string) bool {
	for _, t := range now {
		if !slices.Contains(before, t) {
			return true
		}
	}
	return false
}

// levels groups the versions to delete by depth: a version comes after
// every version to delete that references it.
func levels(order []cleanup.Version, g cleanup.Graph) [][]cleanup.Version {
	inPlan := map[string]bool{}
	for _, v := range order {
		inPlan[v.Digest] = true
	}
	depth := map[string]int{}
	// order has parents before children, so one pass settles the depths.
	for _, v := range order {
		for _, c := range g.Refs[v.Digest] {
			if inPlan[c] && depth[c] < depth[v.Digest]+1 {
				depth[c] = depth[v.Digest] + 1
			}
		}
	}
	var out [][]cleanup.Version
	for _, v := range order {
		d := depth[v.Digest]
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], v)
	}
	return out
}
