package scan

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/barde/phialo-image-action/internal/proc"
)

// ExecFunc runs bin with args and exactly env; see proc.ExecFunc.
type ExecFunc = proc.ExecFunc

// Trivy is the Trivy CLI configured for image scans.
type Trivy struct {
	// Bin is the trivy binary.
	Bin string
	// CacheDir holds Trivy's vulnerability database (CacheDir/db) and its
	// other caches (--cache-dir); "" leaves Trivy's default.
	CacheDir string
	// DBRepository is the OCI repository Trivy downloads its database from
	// (--db-repository), for a mirror; "" means Trivy's default.
	DBRepository string
	// Offline scans with the database already in CacheDir and downloads
	// nothing (--skip-db-update --skip-java-db-update).
	Offline bool
	// Severities are the severities Trivy reports (--severity), such as
	// CRITICAL and HIGH; none means all.
	Severities []string
	// IgnoreUnfixed drops vulnerabilities without a fixed version
	// (--ignore-unfixed).
	IgnoreUnfixed bool
	// Timeout bounds one scan (--timeout); 0 leaves Trivy's default (5 min).
	Timeout time.Duration
	// Env is exactly the environment Trivy runs with; registry credentials
	// come through DOCKER_CONFIG in it. Nil means this process's own.
	Env []string
	// Exec runs the binary; nil means proc.Exec.
	Exec ExecFunc
}

// Severities Trivy knows, the most severe first.
var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// severityRank is the position of s in severityOrder, len(severityOrder)
// for anything else.
func severityRank(s string) int {
	for i, v := range severityOrder {
		if v == s {
			return i
		}
	}
	return len(severityOrder)
}

// Args returns the argv (without the binary) that scans platform of the
// image ref and writes SARIF to out, as t is configured.
func Args(t *Trivy, ref, platform, out string) []string {
	args := []string{
		"image",
		"--format", "sarif",
		"--output", out,
		"--scanners", "vuln",
		"--image-src", "remote",
		"--platform", platform,
	}
	if t.CacheDir != "" {
		args = append(args, "--cache-dir", t.CacheDir)
	}
	if t.DBRepository != "" {
		args = append(args, "--db-repository", t.DBRepository)
	}
	if t.Offline {
		args = append(args, "--skip-db-update", "--skip-java-db-update")
	}
	args = append(args, "--skip-version-check", "--disable-telemetry")
	if len(t.Severities) > 0 {
		args = append(args, "--severity", strings.Join(t.Severities, ","))
	}
	if t.IgnoreUnfixed {
		args = append(args, "--ignore-unfixed")
	}
	if t.Timeout > 0 {
		args = append(args, "--timeout", t.Timeout.String())
	}
	return append(args, ref)
}

// Scan runs Trivy on platform (such as linux/arm64) of the image ref, a
// digest reference (name@sha256:...), and writes its SARIF to out. A
// failed scan's error ends with the last lines Trivy printed.
func (t *Trivy) Scan(ctx context.Context, ref, platform, out string) error {
	if err := t.check(ref, platform, out); err != nil {
		return fmt.Errorf("scanning %q: %w", ref, err)
	}
	if t.Timeout > 0 {
		// Trivy stops itself at Timeout; this is for a Trivy that hangs
		// where its own timeout does not reach.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout+30*time.Second)
		defer cancel()
	}
	run := t.Exec
	if run == nil {
		run = proc.Exec
	}
	// A stale report must not pass for this scan's.
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("scanning %q for %s: %w", ref, platform, err)
	}
	tail := &proc.Tail{Max: 10}
	if err := run(ctx, t.Bin, Args(t, ref, platform, out), t.Env, tail, tail); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("scanning %q for %s: %w%s", ref, platform, err, said(tail))
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() == 0 {
		return fmt.Errorf("scanning %q for %s: trivy wrote no report to %s%s", ref, platform, out, said(tail))
	}
	return nil
}

// check refuses what would make Trivy scan something else than asked.
func (t *Trivy) check(ref, platform, out string) error {
	switch {
	case t.Bin == "":
		return fmt.Errorf("no trivy binary")
	case !strings.Contains(ref, "@sha256:"):
		return fmt.Errorf("not a digest reference (name@sha256:...)")
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("a reference cannot start with '-'")
	case platform == "" || strings.HasPrefix(platform, "-"):
		return fmt.Errorf("invalid platform %q", platform)
	case out == "":
		return fmt.Errorf("no output file")
	}
	for _, s := range t.Severities {
		if severityRank(s) == len(severityOrder) {
			return fmt.Errorf("unknown severity %q (want one of %s)", s, strings.Join(severityOrder, ", "))
		}
	}
	return nil
}

// said returns the lines Trivy printed last as "\ntrivy said:\n  ..." or
// "" if none.
func said(t *proc.Tail) string {
	lines := t.Lines()
	if len(lines) == 0 {
		return ""
	}
	return "\ntrivy said:\n  " + strings.Join(lines, "\n  ")
}
