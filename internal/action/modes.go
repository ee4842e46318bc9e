package action

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/cleanup"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
)

// prClosed reports whether the event closes a pull request.
func prClosed(ev *ghevent.Context) bool {
	return (ev.EventName == "pull_request" || ev.EventName == "pull_request_target") && ev.Payload.Action == "closed" && ev.PRNumber() > 0
}

// cleanupAfterBuild decides whether a build is followed by a cleanup: as
// asked, else after pushes of default-branch builds.
func cleanupAfterBuild(cfg *config.Config, ev *ghevent.Context) bool {
	if !cfg.Cleanup.Auto {
		return cfg.Cleanup.Enabled
	}
	branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/")
	return ok && branch != "" && branch == ev.DefaultBranch()
}

func cleanupPolicy(cfg *config.Config) cleanup.Policy {
	c := cfg.Cleanup
	return cleanup.Policy{Keep: c.Keep, Untagged: c.Untagged, OlderThan: c.OlderThan, Tags: c.Tags, ExcludeTags: c.ExcludeTags}
}

// cleanupImage runs the cleanup of an image's package, protecting the
// registry cache and the digest just pushed; failures are warnings.
func cleanupImage(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, api *ghapi.Client, image string, s *session, policy cleanup.Policy, pushed string) report.Cleanup {
	out := report.Cleanup{Ran: true}
	owner := ev.RepositoryOwner
	pkg, err := packageOf(image, owner, cfg.Cleanup.Package)
	if err != nil {
		out.Err = err
		gha.Warningf("cleanup: %v", err)
		return out
	}
	reader := registry.NewReader(s.logins)
	var protect []string
	if pushed != "" {
		protect = append(protect, pushed)
	}
	if cfg.Build.CacheRef != "" {
		if d, err := reader.Digest(ctx, cfg.Build.CacheRef); err == nil {
			protect = append(protect, d)
		}
	}
	gha.Group("Cleanup")
	defer gha.EndGroup()
	res, err := runCleanup(ctx, gha, stdout, cfg, ev, api, cleanupTarget{owner: owner, pkg: pkg, image: image, reader: reader}, policy, protect)
	res.Ran = true
	if err != nil {
		res.Err = err
		gha.Warningf("cleanup of %s/%s: %v", owner, pkg, err)
	}
	for _, sk := range res.Skipped {
		gha.Warningf("cleanup of %s/%s kept %s: %s", owner, pkg, sk.Digest, sk.Reason)
	}
	return res
}

// runCleanupMode is the cleanup job (mode cleanup, or a closed pull request
// with cleanup-pr-tags): no build, only the cleanup of the first image's
// package. Its failures fail the step, since the cleanup is the whole job.
func runCleanupMode(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, api *ghapi.Client, res meta.Result) error {
	if len(res.Images) == 0 {
		return fmt.Errorf(`mode %s: input "images" names no enabled image`, cfg.Mode)
	}
	s, err := newSession(gha, cfg.Build)
	if err != nil {
		return err
	}
	defer s.close()
	policy := cleanupPolicy(cfg)
	if prClosed(ev) && cfg.Cleanup.PRTags {
		policy = cleanup.PRPolicy(ev.PRNumber())
		fmt.Fprintf(stdout, "pull request %d closed: removing its pr-%d image\n", ev.PRNumber(), ev.PRNumber())
	}
	cl := cleanupImage(ctx, gha, stdout, cfg, ev, api, res.Images[0], s, policy, "")
	if err := report.WriteOutputs(gha, stdout, report.CleanupOutputs(cl)); err != nil {
		return err
	}
	if err := report.WriteSummary(gha, report.CleanupSummary(cl)); err != nil {
		return err
	}
	return cl.Err
}

// runMigrateMode copies the tags of migrate-from to the first image.
func runMigrateMode(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config) error {
	if len(cfg.Images) == 0 {
		return fmt.Errorf(`mode migrate: input "images" names no image to copy to`)
	}
	m := cfg.Migrate
	opts := registry.MigrateOptions{From: m.From, To: cfg.Images[0].Name, Tags: m.Tags}
	if m.Password != "" {
		gha.AddMask(m.Password)
		reg, err := registry.RegistryOf(m.From)
		if err != nil {
			return err
		}
		opts.FromLogin = &registry.Login{Registry: reg, Username: m.Username, Password: m.Password}
	}
	if cfg.Build.Password != "" {
		gha.AddMask(cfg.Build.Password)
		opts.ToLogins = []registry.Login{{Registry: cfg.Build.Registry, Username: cfg.Build.Username, Password: cfg.Build.Password}}
	}
	if cfg.DryRun {
		fmt.Fprintf(stdout, "dry run: would copy %s (tags %v) to %s\n", m.From, m.Tags, opts.To)
		return nil
	}
	copied, err := registry.Migrate(ctx, opts)
	n := 0
	for _, c := range copied {
		if c.Err == nil && !c.Skipped {
			n++
		}
	}
	fmt.Fprintf(stdout, "migrated %s to %s: %d copied, %d tags in all\n", m.From, opts.To, n, len(copied))
	if werr := report.WriteOutputs(gha, stdout, report.MigrateOutputs(copied)); werr != nil {
		return werr
	}
	if werr := report.WriteSummary(gha, report.MigrateSummary(m.From, opts.To, copied)); werr != nil {
		return werr
	}
	return err
}
