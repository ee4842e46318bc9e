package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghapi"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
	"github.com/barde/phialo-image-action/internal/sbom"
	"github.com/barde/phialo-image-action/internal/scan"
)

// version is the action's version in the SBOMs' and snapshots' tool field.
const version = "v1"

// runSupplyChain describes and checks what the build pushed: an SBOM and a
// vulnerability scan for every platform, concurrently, then the uploads.
// None of it fails the run (warnings say what went wrong), except
// scan-fail-on, which the caller applies after everything else.
func runSupplyChain(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, api *ghapi.Client, image string, img registry.Image, s *session) report.Supply {
	sc := cfg.Supply
	out := report.Supply{Workspace: ev.Workspace}
	var targets []sbom.Target
	for _, p := range img.Platforms {
		targets = append(targets, sbom.Target{Ref: image + "@" + p.Digest, Platform: p.Platform})
	}
	if len(targets) == 0 {
		return out
	}
	name := image[strings.LastIndex(image, "/")+1:]
	own := newWorkspaceOwner(ev.Workspace, gha.Warningf)
	var wg sync.WaitGroup
	if sc.SBOM {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.SBOMs, out.SBOMErr = generateSBOMs(ctx, gha.Getenv, sc, name, targets, s, own)
		}()
	}
	if sc.Scan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Scans, out.ScanErr = scanAll(ctx, gha.Getenv, cfg, name, image, targets, s, own)
		}()
	}
	wg.Wait()

	gha.Group("SBOM and scan")
	defer gha.EndGroup()
	if out.SBOMErr != nil {
		gha.Warningf("SBOM: %v", out.SBOMErr)
	}
	for _, p := range out.SBOMs {
		if p.Error != "" {
			gha.Warningf("SBOM of %s: %s", p.Platform, p.Error)
			continue
		}
		fmt.Fprintf(stdout, "SBOM of %s: %d packages: %s\n", p.Platform, len(p.Packages), strings.Join(p.Files, ", "))
	}
	if out.ScanErr != nil {
		gha.Warningf("scan: %v", out.ScanErr)
	}
	for i := range out.Scans {
		sr := &out.Scans[i]
		if sr.Err != nil {
			gha.Warningf("scan of %s: %v", sr.Platform, sr.Err)
			continue
		}
		for _, w := range sr.Warnings {
			gha.Warningf("scan of %s: %s", sr.Platform, w)
		}
		fmt.Fprintf(stdout, "scan of %s: %s: %s\n", sr.Platform, countsLine(sr.Counts, sc.ScanSeverities), sr.File)
		if sc.UploadSARIF && api != nil {
			sr.Upload = uploadSARIF(ctx, gha, api, ev, sr)
		}
	}
	if api != nil && sc.DependencySnapshot {
		if err := submitSnapshot(ctx, api, cfg, ev, out.SBOMs); err != nil {
			gha.Warningf("dependency snapshot: %v", err)
		}
	}
	if api != nil && sc.SBOMReleaseAssets && ev.EventName == "release" && ev.Payload.Release != nil {
		for _, p := range out.SBOMs {
			for _, f := range p.Files {
				if err := api.UploadReleaseAsset(ctx, ev.Payload.Release.ID, f); err != nil {
					gha.Warningf("release asset %s: %v", filepath.Base(f), err)
				}
			}
		}
	}
	return out
}

// generateSBOMs writes the SBOM files of every platform; what it creates
// under the workspace gets the workspace's owner.
func generateSBOMs(ctx context.Context, getenv func(string) string, sc config.Supply, name string, targets []sbom.Target, s *session, own *workspaceOwner) ([]sbom.Platform, error) {
	bin, err := sbom.FindBinary(getenv)
	if err != nil {
		return nil, err
	}
	if err := own.mkdirAll(sc.SBOMDir); err != nil {
		return nil, fmt.Errorf("creating sbom-dir %q: %w", sc.SBOMDir, err)
	}
	req := sbom.Request{Targets: targets, Formats: sc.SBOMFormats, Dir: sc.SBOMDir, Name: name}
	for _, l := range s.logins {
		req.Credentials = append(req.Credentials, sbom.Credential{Registry: l.Registry, Username: l.Username, Password: l.Password})
	}
	res, err := sbom.Generate(ctx, bin, req, childEnv(s.dockerConfig))
	for _, p := range res.Platforms {
		own.own(p.Files...)
	}
	return res.Platforms, err
}

// scanAll runs Trivy on every platform concurrently and post-processes
// each SARIF for code scanning; what it creates under the workspace gets
// the workspace's owner.
func scanAll(ctx context.Context, getenv func(string) string, cfg *config.Config, name, image string, targets []sbom.Target, s *session, own *workspaceOwner) ([]report.Scan, error) {
	sc := cfg.Supply
	bin := getenv("TRIVY_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("trivy"); err != nil {
			return nil, errors.New("no trivy binary on PATH and TRIVY_BIN is not set: scan skipped")
		}
	}
	if err := own.mkdirAll(sc.SARIFDir); err != nil {
		return nil, fmt.Errorf("creating sarif-dir %q: %w", sc.SARIFDir, err)
	}
	env := childEnv(s.dockerConfig)
	t := &scan.Trivy{
		Bin:           bin,
		CacheDir:      sc.TrivyCacheDir,
		DBRepository:  sc.TrivyDBRepository,
		Severities:    sc.ScanSeverities,
		IgnoreUnfixed: sc.ScanIgnoreUnfixed,
		Timeout:       10 * time.Minute,
		Env:           env,
	}
	if sc.TrivyCacheDir != "" {
		// Trivy fills it; under the workspace, it all gets the
		// workspace's owner once the scans are done.
		if err := own.mkdirAll(sc.TrivyCacheDir); err != nil {
			return nil, fmt.Errorf("creating trivy-cache-dir %q: %w", sc.TrivyCacheDir, err)
		}
		defer own.ownTree(sc.TrivyCacheDir)
	}
	// Once for every platform: the scans only read the database.
	if err := t.DownloadDB(ctx); err != nil {
		return nil, err
	}
	dockerfile := cfg.Build.File
	if dockerfile == "" {
		dockerfile = filepath.Join(cfg.Build.Context, "Dockerfile")
	}
	scans := make([]report.Scan, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sr := report.Scan{Platform: tg.Platform}
			raw := filepath.Join(s.work, "trivy-"+strconv.Itoa(i)+".sarif")
			if err := t.Scan(ctx, tg.Ref, tg.Platform, raw); err != nil {
				sr.Err = err
				scans[i] = sr
				return
			}
			data, err := os.ReadFile(raw)
			if err == nil {
				var res scan.Result
				res, err = scan.Process(data, scan.Options{Image: image, Platform: tg.Platform, Dockerfile: dockerfile, Severities: sc.ScanSeverities})
				sr.Counts, sr.Top, sr.Warnings = res.Counts, res.Top, res.Warnings
				sr.File = filepath.Join(sc.SARIFDir, name+"_"+strings.ReplaceAll(tg.Platform, "/", "-")+".sarif")
				if err == nil {
					err = os.WriteFile(sr.File, res.SARIF, 0o644)
				}
				if err == nil {
					own.own(sr.File)
				}
			}
			if err != nil {
				sr.Err = err
				sr.File = ""
			}
			scans[i] = sr
		}()
	}
	wg.Wait()
	return scans, nil
}

// uploadSARIF uploads one platform's results to code scanning; a refusal
// is a warning that names the permission, and the run goes on.
func uploadSARIF(ctx context.Context, gha *githubactions.Action, api *ghapi.Client, ev *ghevent.Context, sr *report.Scan) string {
	data, err := os.ReadFile(sr.File)
	if err == nil {
		ref := ghapi.SARIFRef(ev.EventName, ev.Ref, ev.PRNumber())
		sha := ev.BuildSHA(strings.HasPrefix(ref, "refs/pull/"))
		var id string
		if id, err = api.UploadSARIF(ctx, sha, ref, data); err == nil {
			return "uploaded (" + id + ")"
		}
	}
	if errors.Is(err, ghapi.ErrForbidden) {
		gha.Warningf("code scanning upload of %s refused: give the job `permissions: security-events: write` and enable code scanning for the repository (%v)", sr.Platform, err)
		return "refused: needs security-events: write"
	}
	gha.Warningf("code scanning upload of %s: %v", sr.Platform, err)
	return "failed"
}

// submitSnapshot submits the packages of every platform's SBOM as one
// manifest of the Dockerfile to the dependency graph.
func submitSnapshot(ctx context.Context, api *ghapi.Client, cfg *config.Config, ev *ghevent.Context, sboms []sbom.Platform) error {
	dockerfile := cfg.Build.File
	if dockerfile == "" {
		dockerfile = filepath.Join(cfg.Build.Context, "Dockerfile")
	}
	dockerfile = filepath.ToSlash(filepath.Clean(dockerfile))
	var pkgs []ghapi.Package
	for _, p := range sboms {
		for _, pk := range p.Packages {
			if pk.PURL != "" {
				pkgs = append(pkgs, ghapi.Package{PURL: pk.PURL, Relationship: "direct", Scope: "runtime"})
			}
		}
	}
	if len(pkgs) == 0 {
		return errors.New("no packages with a package URL to submit")
	}
	snap := ghapi.NewSnapshot(ev.EventName, "phialo-image-action "+dockerfile, ev.SHA, ev.Ref, map[string][]ghapi.Package{dockerfile: pkgs}, version, time.Now().UTC())
	_, err := api.SubmitDependencySnapshot(ctx, snap)
	return err
}

// failOn applies scan-fail-on to the scan results.
func failOn(mode string, scans []report.Scan) error {
	worst := map[string][]string{"critical": {"CRITICAL"}, "high": {"CRITICAL", "HIGH"}}[mode]
	var hits []string
	for _, s := range scans {
		for _, sev := range worst {
			if n := s.Counts[sev]; n > 0 {
				hits = append(hits, fmt.Sprintf("%s: %d %s", s.Platform, n, sev))
			}
		}
	}
	if len(hits) == 0 {
		return nil
	}
	return fmt.Errorf("scan-fail-on %s: the scan found %s", mode, strings.Join(hits, ", "))
}

func countsLine(counts map[string]int, severities []string) string {
	var parts []string
	for _, s := range severities {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	return strings.Join(parts, ", ")
}
