// Package action is the action's pipeline: from the runner's environment to
// outputs, summary and the image in the registry.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
	"github.com/barde/phialo-image-action/internal/report"
)

// APITimeout bounds each GitHub API call whose answer the run can do without.
const APITimeout = 5 * time.Second

// Run executes one run of the action. Log lines go to stdout, as the runner
// expects; gha carries the environment.
func Run(ctx context.Context, gha *githubactions.Action, stdout io.Writer) error {
	ev, evErr := ghevent.Load(gha.Getenv)
	cfg, cfgErr := config.Load(rawInput(gha), gha.Getenv, ev)
	if err := errors.Join(evErr, cfgErr); err != nil {
		return err
	}
	if cfg.GitHubToken != "" {
		gha.AddMask(cfg.GitHubToken)
	}
	h := connectDocker(ctx, gha)
	defer h.close()
	translateInputs(gha, h.self, cfg)
	if strings.TrimSpace(cfg.Build.BuildKitdConfig) != "" {
		done, err := trustConfigCAs(cfg.Build.BuildKitdConfig, h)
		if err != nil {
			return err
		}
		defer done()
	}
	for _, w := range cfg.Warnings {
		gha.Warningf("%s", w)
	}
	if cfg.Mode == "migrate" {
		return runMigrateMode(ctx, gha, stdout, cfg)
	}
	now, err := buildTime(gha.Getenv)
	if err != nil {
		return err
	}

	in := meta.Input{
		Images:           cfg.Images,
		Rules:            cfg.Rules,
		Flavor:           cfg.Flavor,
		Labels:           cfg.Labels,
		Annotations:      cfg.Annotations,
		AnnotationLevels: cfg.AnnotationLevels,
		ShortSHALength:   cfg.ShortSHALength,
		Now:              now,
		Event: meta.Event{
			Name:          ev.EventName,
			Ref:           ev.Ref,
			SHA:           ev.BuildSHA(cfg.PRHeadSHA),
			BaseRef:       ev.BaseRef(),
			PRBaseRef:     ev.PRBaseRef(),
			DefaultBranch: ev.DefaultBranch(),
		},
	}
	api := newAPI(gha, ev, cfg)
	var private bool
	in.Repo, private = describeRepo(ctx, gha, api, ev, &in.Event)
	if meta.UsesCommitDate(templates(cfg)...) {
		in.CommitDate = commitDate(ctx, gha, api, ev, in.Event.SHA, now)
	}
	res, err := meta.Derive(in)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		gha.Warningf("%s", w)
	}
	plan := planBuild(cfg, ev, res, private)
	if cfg.Mode == "cleanup" || prClosed(ev) && cfg.Cleanup.PRTags {
		return runCleanupMode(ctx, gha, stdout, cfg, ev, api, res)
	}
	if cfg.Mode == "merge" {
		return runMergeMode(ctx, gha, stdout, cfg, ev, api, res)
	}

	facts := report.Facts{Event: ev.EventName, Ref: ev.Ref, SHA: in.Event.SHA, Push: cfg.Push, PushReason: cfg.PushReason, DryRun: cfg.DryRun}
	outs, err := report.MetaOutputs(res, report.Separators{Tags: cfg.SepTags, Labels: cfg.SepLabels, Annotations: cfg.SepAnnotations})
	if err != nil {
		return err
	}
	gha.Group("Plan")
	report.Plan(stdout, res, facts)
	if cfg.DryRun {
		report.Command(stdout, "buildx", buildx.BuildArgs(plan.opts))
	}
	gha.EndGroup()
	summary := report.Summary(res, facts)
	if cfg.DryRun {
		if err := report.WriteOutputs(gha, stdout, outs); err != nil {
			return err
		}
		return report.WriteSummary(gha, summary)
	}

	image := ""
	if len(res.Images) > 0 {
		image = res.Images[0]
	}
	sess, err := newSession(gha, cfg.Build)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.close(); cerr != nil {
			gha.Warningf("%v", cerr)
		}
	}()
	sess.host = h
	done, buildErr := runBuild(ctx, gha, stdout, cfg, ev, plan, image, sess)
	for _, w := range done.result.Report.Warnings {
		fields := map[string]string{"title": "build warning"}
		if w.File != "" {
			fields["file"] = warningFile(cfg.Build, w.File)
			if w.Line > 0 {
				fields["line"] = strconv.Itoa(w.Line)
			}
		}
		gha.WithFieldsMap(fields).Warningf("%s", strings.Join(append([]string{w.Short}, w.Detail...), "\n"))
	}
	if done.inspect != nil {
		gha.Warningf("reading the pushed image back: %v", done.inspect)
	}
	bs := report.Build{
		Image:       image,
		Result:      done.result,
		ReadBack:    done.image,
		CacheFrom:   plan.opts.CacheFrom,
		CacheTo:     plan.opts.CacheTo,
		ForceReason: cfg.Build.ForceRebuildReason,
		Err:         buildErr,
	}
	supply := report.Supply{Severities: report.SortSeverities(cfg.Supply.ScanSeverities)}
	if buildErr == nil && plan.opts.PushByDigest != "" {
		// One platform of a distributed build: the merge job describes,
		// scans and tidies the whole image.
		buildErr = writeDigestFile(newWorkspaceOwner(ev.Workspace, gha.Warningf), cfg.Distributed.DigestsDir, done.result.Metadata.Digest)
		outs = append(outs, report.BuildOutputs(bs)...)
	} else if buildErr == nil {
		outs = append(outs, report.BuildOutputs(bs)...)
		if cfg.Push && done.inspect == nil {
			supply = runSupplyChain(ctx, gha, stdout, cfg, ev, api, image, done.image, sess)
			supply.Severities = report.SortSeverities(cfg.Supply.ScanSeverities)
		}
	}
	var cl report.Cleanup
	if buildErr == nil && cfg.Push && plan.opts.PushByDigest == "" && done.result.Metadata.Digest != "" && cleanupAfterBuild(cfg, ev) {
		cl = cleanupImage(ctx, gha, stdout, cfg, ev, api, image, sess, cleanupPolicy(cfg), done.result.Metadata.Digest)
	}
	outs = append(outs, report.SupplyOutputs(supply)...)
	outs = append(outs, report.CleanupOutputs(cl)...)
	if err := report.WriteOutputs(gha, stdout, outs); err != nil {
		return errors.Join(buildErr, err)
	}
	if err := report.WriteSummary(gha, summary+report.BuildSummary(bs)+report.SupplySummary(supply)+report.CleanupSummary(cl)); err != nil {
		return errors.Join(buildErr, err)
	}
	if buildErr != nil {
		return buildErr
	}
	return failOn(cfg.Supply.ScanFailOn, supply.Scans)
}

// warningFile maps the file name BuildKit reports for a warning (the
// Dockerfile's base name) to the path the workflow knows, so the annotation
// lands on the file in the repository.
func warningFile(b config.Build, reported string) string {
	dockerfile := b.File
	if dockerfile == "" {
		dockerfile = filepath.Join(b.Context, "Dockerfile")
	}
	if filepath.Base(dockerfile) == reported {
		return dockerfile
	}
	return reported
}

// rawInput reads inputs without trimming them, so a separator can be a space.
func rawInput(gha *githubactions.Action) config.Getter {
	return func(name string) string {
		return gha.Getenv("INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_")))
	}
}

// buildTime is SOURCE_DATE_EPOCH when set, for reproducible dates, else now.
func buildTime(getenv func(string) string) (time.Time, error) {
	s := strings.TrimSpace(getenv("SOURCE_DATE_EPOCH"))
	if s == "" {
		return time.Now().UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %q is not valid; want whole seconds since 1970-01-01 UTC", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// templates are all inputs that may hold Handlebars templates.
func templates(cfg *config.Config) []string {
	out := append(append([]string(nil), cfg.Labels...), cfg.Annotations...)
	for _, r := range cfg.Rules {
		for _, v := range r.Attrs {
			out = append(out, v)
		}
	}
	return append(out, cfg.Flavor.Prefix, cfg.Flavor.Suffix)
}

func newAPI(gha *githubactions.Action, ev *ghevent.Context, cfg *config.Config) *ghapi.Client {
	if ev.Repository == "" {
		return nil
	}
	api, err := ghapi.New(ev.APIURL, ev.Repository, cfg.GitHubToken, APITimeout)
	if err != nil {
		gha.Warningf("GitHub API: %v", err)
		return nil
	}
	return api
}

// describeRepo reads the repository from the REST API, as
// docker/metadata-action does, and falls back to the event payload when the
// API cannot be reached or refuses.
//
// private reports whether the repository is private (the provenance
// default depends on it): from the payload when it says, else the API.
func describeRepo(ctx context.Context, gha *githubactions.Action, api *ghapi.Client, ev *ghevent.Context, mev *meta.Event) (repo meta.Repo, private bool) {
	p := ev.Payload.Repository
	if p != nil {
		private = p.Private || p.Visibility == "private" || p.Visibility == "internal"
	}
	if api != nil {
		r, err := api.Repository(ctx)
		if err == nil {
			if mev.DefaultBranch == "" {
				mev.DefaultBranch = r.DefaultBranch
			}
			if p == nil {
				private = r.Private
			}
			return meta.Repo{Name: r.Name, Description: r.Description, HTMLURL: r.HTMLURL, License: r.License}, private
		}
		gha.Warningf("GitHub API: %v; the labels describe the repository from the event payload", err)
	}
	if p == nil {
		return meta.Repo{}, private
	}
	repo = meta.Repo{Name: p.Name, Description: p.Description, HTMLURL: p.HTMLURL}
	if p.License != nil {
		repo.License = p.License.SPDXID
	}
	return repo, private
}

// commitDate finds the date of sha: in the payload, else from the API, else now.
func commitDate(ctx context.Context, gha *githubactions.Action, api *ghapi.Client, ev *ghevent.Context, sha string, now time.Time) time.Time {
	if t, ok := ev.CommitDate(sha); ok {
		return t
	}
	if api != nil {
		t, err := api.CommitDate(ctx, sha)
		if err == nil {
			return t
		}
		gha.Warningf("GitHub API: %v; {{commit_date}} uses the build date", err)
	}
	return now
}
