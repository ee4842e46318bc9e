package scan

import (
	"context"
	"fmt"
	"os"
	"strconv"
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
	// Java database (--cache-dir); "" leaves Trivy's default. The scan
	// cache is not kept there: see Args.
	CacheDir string
	// DBRepository is the OCI repository DownloadDB downloads the database
	// from (--db-repository), for a mirror; "" means Trivy's default.
	DBRepository string
	// Offline uses the databases already in CacheDir and downloads
	// nothing: DownloadDB does nothing and scans get --skip-java-db-update.
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
//
// Several scans may run at once on one CacheDir without waiting for each
// other (Trivy v0.74 gives up on a lock after 5 s with "cache may be in use
// by another process"):
//
//   - --skip-db-update: the vulnerability database is only read, which
//     Trivy does with a shared lock (bbolt opened read-only); DownloadDB
//     brings it up to date first, once for all scans.
//   - --cache-backend memory: the scan cache of analysed layers stays in
//     the process instead of CacheDir/fanal/fanal.db, which Trivy opens
//     for writing under an exclusive lock held for the whole scan. A
//     TRIVY_CACHE_BACKEND in Env is the user's choice and is left alone.
//
// Unless Offline, a scan that finds a JAR still downloads the Java
// database (CacheDir/java-db) when it has none or an old one.
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
	if _, set := lookupEnv(t.Env, "TRIVY_CACHE_BACKEND"); !set {
		args = append(args, "--cache-backend", "memory")
	}
	args = append(args, "--skip-db-update")
	if t.Offline {
		args = append(args, "--skip-java-db-update")
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

// DownloadArgs returns the argv (without the binary) that brings the
// vulnerability database in CacheDir up to date and scans nothing: Trivy
// downloads it only when it is missing or out of date.
func DownloadArgs(t *Trivy) []string {
	args := []string{"image", "--download-db-only", "--no-progress"}
	if t.CacheDir != "" {
		args = append(args, "--cache-dir", t.CacheDir)
	}
	if t.DBRepository != "" {
		args = append(args, "--db-repository", t.DBRepository)
	}
	args = append(args, "--skip-version-check", "--disable-telemetry")
	if t.Timeout > 0 {
		args = append(args, "--timeout", t.Timeout.String())
	}
	return args
}

// DownloadDB brings the vulnerability database in CacheDir up to date
// (downloading it only when Trivy finds it missing or out of date), so that
// the scans after it, which only read it, can run at once. It does nothing
// when t is Offline or Env sets TRIVY_SKIP_DB_UPDATE to true (the scans
// then use the database as it is). A failure's error ends with the last
// lines Trivy printed.
func (t *Trivy) DownloadDB(ctx context.Context) error {
	if t.Bin == "" {
		return fmt.Errorf("downloading Trivy's database: no trivy binary")
	}
	if v, _ := lookupEnv(t.Env, "TRIVY_SKIP_DB_UPDATE"); t.Offline || isTrue(v) {
		return nil
	}
	tail := &proc.Tail{Max: 10}
	if err := t.run(ctx, DownloadArgs(t), tail); err != nil {
		return fmt.Errorf("downloading Trivy's database to %q: %w%s", t.CacheDir, err, said(tail))
	}
	return nil
}

// Scan runs Trivy on platform (such as linux/arm64) of the image ref, a
// digest reference (name@sha256:...), and writes its SARIF to out. It
// only reads the vulnerability database: DownloadDB brings it there first.
// A failed scan's error ends with the last lines Trivy printed.
func (t *Trivy) Scan(ctx context.Context, ref, platform, out string) error {
	if err := t.check(ref, platform, out); err != nil {
		return fmt.Errorf("scanning %q: %w", ref, err)
	}
	// A stale report must not pass for this scan's.
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("scanning %q for %s: %w", ref, platform, err)
	}
	tail := &proc.Tail{Max: 10}
	if err := t.run(ctx, Args(t, ref, platform, out), tail); err != nil {
		return fmt.Errorf("scanning %q for %s: %w%s", ref, platform, err, said(tail))
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() == 0 {
		return fmt.Errorf("scanning %q for %s: trivy wrote no report to %s%s", ref, platform, out, said(tail))
	}
	return nil
}

// run runs Trivy with args, its output going to tail. When ctx ended
// (cancelled, or timed out), the error says so first.
func (t *Trivy) run(ctx context.Context, args []string, tail *proc.Tail) error {
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
	err := run(ctx, t.Bin, args, t.Env, tail, tail)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// lookupEnv finds key in env, the last entry winning as in exec.
func lookupEnv(env []string, key string) (string, bool) {
	var v string
	var set bool
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v, set = val, true
		}
	}
	return v, set
}

// isTrue reads a boolean as Trivy reads its TRIVY_* variables.
func isTrue(s string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err == nil && b
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
