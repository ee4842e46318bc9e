package action

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
)

// writeDigestFile records the digest a push-by-digest runner pushed as an
// empty file named after it, the form artifacts carry to the merge job.
// What it creates under the workspace gets the workspace's owner.
func writeDigestFile(own *workspaceOwner, dir, digest string) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("writing the digest file: the build reported digest %q: %w", digest, err)
	}
	if err := own.mkdirAll(dir); err != nil {
		return fmt.Errorf("creating digests-dir %q: %w", dir, err)
	}
	path := filepath.Join(dir, h.Hex)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("writing digest file %q: %w", path, err)
	}
	own.own(path)
	return nil
}

// mergeDigests are the digests input and the digest files of digests-dir.
func mergeDigests(d config.Distributed) ([]string, error) {
	out := slices.Clone(d.Digests)
	entries, err := os.ReadDir(d.DigestsDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading digests-dir %q: %w", d.DigestsDir, err)
	}
	for _, e := range entries {
		h, err := v1.NewHash("sha256:" + e.Name())
		if e.IsDir() || err != nil {
			continue
		}
		if !slices.Contains(out, h.String()) {
			out = append(out, h.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// runMergeMode makes the multi-platform index of the platforms pushed by
// digest, tags it, then describes, scans and tidies it as a build would.
func runMergeMode(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, api *ghapi.Client, res meta.Result) error {
	if len(res.Images) == 0 {
		return fmt.Errorf(`mode merge: input "images" names no enabled image`)
	}
	image := res.Images[0]
	if len(res.Images) > 1 {
		gha.Warningf("mode merge: the platforms were pushed to %s only; the index is made there, not for %s", image, strings.Join(res.Images[1:], ", "))
	}
	digests, err := mergeDigests(cfg.Distributed)
	if err != nil {
		return err
	}
	if len(digests) == 0 {
		return fmt.Errorf(`mode merge: no digests: set input "digests" or put the digest files of the push-by-digest runs in %s`, cfg.Distributed.DigestsDir)
	}
	var tags []string
	for _, t := range res.Tags {
		if strings.HasPrefix(t, image+":") {
			tags = append(tags, t)
		}
	}
	annotations := map[string]string{}
	for _, a := range res.Annotations {
		if kv, ok := strings.CutPrefix(a, "index:"); ok {
			k, v, _ := strings.Cut(kv, "=")
			annotations[k] = v
		}
	}
	s, err := newSession(gha, cfg.Build)
	if err != nil {
		return err
	}
	defer s.close()
	reader := registry.NewReader(s.logins)
	outs, err := report.MetaOutputs(res, report.Separators{Tags: cfg.SepTags, Labels: cfg.SepLabels, Annotations: cfg.SepAnnotations})
	if err != nil {
		return err
	}
	facts := report.Facts{Event: ev.EventName, Ref: ev.Ref, SHA: ev.BuildSHA(cfg.PRHeadSHA), Push: cfg.Push, PushReason: cfg.PushReason, DryRun: cfg.DryRun}
	summary := report.Summary(res, facts)
	fmt.Fprintf(stdout, "merging %d digests into %s: %s\n", len(digests), image, strings.Join(digests, ", "))
	if cfg.DryRun || !cfg.Push {
		if err := report.WriteOutputs(gha, stdout, outs); err != nil {
			return err
		}
		return report.WriteSummary(gha, summary)
	}
	digest, err := reader.Merge(ctx, image, digests, tags, annotations)
	if err != nil {
		return err
	}
	img, inspectErr := reader.Inspect(ctx, image+"@"+digest)
	if inspectErr != nil {
		gha.Warningf("reading the merged image back: %v", inspectErr)
	}
	outs = append(outs, report.Output{Name: "digest", Value: digest}, report.Output{Name: "image", Value: image + "@" + digest})
	supply := report.Supply{Severities: report.SortSeverities(cfg.Supply.ScanSeverities)}
	if inspectErr == nil {
		supply = runSupplyChain(ctx, gha, stdout, cfg, ev, api, image, img, s)
		supply.Severities = report.SortSeverities(cfg.Supply.ScanSeverities)
	}
	var cl report.Cleanup
	if cleanupAfterBuild(cfg, ev) {
		cl = cleanupImage(ctx, gha, stdout, cfg, ev, api, image, s, cleanupPolicy(cfg), digest)
	}
	outs = append(outs, report.SupplyOutputs(supply)...)
	outs = append(outs, report.CleanupOutputs(cl)...)
	if err := report.WriteOutputs(gha, stdout, outs); err != nil {
		return err
	}
	if err := report.WriteSummary(gha, summary+report.MergeSummary(digest, digests, img)+report.SupplySummary(supply)+report.CleanupSummary(cl)); err != nil {
		return err
	}
	return failOn(cfg.Supply.ScanFailOn, supply.Scans)
}
