package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/cleanup"
	"github.com/barde/phialo-image-action/internal/meta"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/sbom"
	"github.com/barde/phialo-image-action/internal/scan"
)

// digestN is a digest made of n.
func digestN(n int) string {
	return fmt.Sprintf("sha256:%064x", n)
}

// longTags are n tags of 128 characters, the longest a tag can be.
func longTags(prefix string, n int) []string {
	var out []string
	for i := range n {
		t := fmt.Sprintf("%s-%d-", prefix, i)
		out = append(out, t+strings.Repeat("x", 128-len(t)))
	}
	return out
}

// bigCleanup is a cleanup of n versions with 20 long tags each, every
// deleteEvery-th of them deleted.
func bigCleanup(n, deleteEvery int, dryRun bool) Cleanup {
	c := Cleanup{Package: "barde/phialoastro", Ran: true, DryRun: dryRun}
	for i := range n {
		d := cleanup.Decision{Version: cleanup.Version{ID: int64(i), Digest: digestN(i), Tags: longTags(fmt.Sprint("v", i), 20)}, Reason: "kept: one of the 5 newest images"}
		if i%deleteEvery == deleteEvery-1 {
			d.Delete, d.Reason = true, "deleted: every tag matches cleanup-tags"
			c.Deleted = append(c.Deleted, d.Version.Digest)
		}
		c.Plan.Decisions = append(c.Plan.Decisions, d)
	}
	return c
}

// TestSummaryStaysUnderGitHubsLimit writes the whole summary of a run whose
// every list is huge: 10,000 package versions with 20 tags of 128
// characters each, 10,000 tags, labels, warnings, build warnings,
// platforms and scans. GitHub drops a summary over 1 MiB.
func TestSummaryStaysUnderGitHubsLimit(t *testing.T) {
	t.Parallel()
	const n = 10000
	res := meta.Result{Images: []string{"ghcr.io/barde/phialoastro"}, Version: "1.0"}
	res.Tags = longTags("ghcr.io/barde/phialoastro:t", n)
	for i := range n {
		res.Labels = append(res.Labels, fmt.Sprintf("org.example.label%d=%s", i, strings.Repeat("v", 300)))
		res.Warnings = append(res.Warnings, fmt.Sprintf("warning %d: %s", i, strings.Repeat("w", 200)))
	}
	const failLine = "#12 ERROR: a long failure log line\n"
	b := Build{Image: "ghcr.io/barde/phialoastro", Err: errors.New(strings.Repeat(failLine, 20000))}
	// The error block keeps the last whole lines within maxErrorBlock.
	leftOut := (20000 - maxErrorBlock/len(failLine)) * len(failLine)
	for i := range n {
		b.Result.Report.Warnings = append(b.Result.Report.Warnings, buildx.Warning{Short: fmt.Sprintf("lint warning %d: %s", i, strings.Repeat("l", 200)), File: "Dockerfile", Line: i})
		b.ReadBack.Platforms = append(b.ReadBack.Platforms, registry.Platform{Platform: fmt.Sprintf("linux/arch%d", i), Digest: digestN(i), Size: 1 << 20})
	}
	s := Supply{Severities: []string{"CRITICAL", "HIGH"}, Workspace: "/github/workspace"}
	for i := range n {
		p := fmt.Sprintf("linux/arch%d", i)
		s.SBOMs = append(s.SBOMs, sbom.Platform{Platform: p, Files: []string{"/github/workspace/sbom/app_" + p + ".spdx.json"}})
		var top []scan.Finding
		for j := range 10 {
			top = append(top, scan.Finding{ID: fmt.Sprintf("CVE-2099-%04d", j), Severity: "CRITICAL", Package: "busybox", Installed: "1", Fixed: "2", Title: strings.Repeat("t", 500)})
		}
		s.Scans = append(s.Scans, Scan{Platform: p, Counts: map[string]int{"CRITICAL": 10}, Top: top, Upload: "uploaded"})
	}
	c := bigCleanup(n, 3, false)

	md := Summary(res, Facts{Event: "push", Ref: "refs/heads/main", Push: true}) + BuildSummary(b) + SupplySummary(s) + CleanupSummary(c)
	file := filepath.Join(t.TempDir(), "summary")
	gha := githubactions.New(githubactions.WithGetenv(func(k string) string {
		return map[string]string{"GITHUB_STEP_SUMMARY": file}[k]
	}))
	if err := WriteSummary(gha, md); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	written := string(data)
	t.Logf("the summary written is %d bytes", len(data))
	if len(data) >= 1<<20 {
		t.Errorf("the summary written is %d bytes, GitHub drops a summary over %d", len(data), 1<<20)
	}
	if len(md) > maxSummary/2 {
		t.Errorf("the summary is %d bytes: its parts are not bounded well below GitHub's limit", len(md))
	}
	if strings.Contains(written, "The summary was cut here") {
		t.Error("the summary had to be cut as a whole")
	}
	deleted, kept := n/3, n-n/3
	for _, want := range []string{
		fmt.Sprintf("\nand %d more versions (deleted: %d, kept: %d)\n", n-maxRows, deleted-maxRows, kept),
		fmt.Sprintf("\nand %d more tags\n", n-maxRows),
		fmt.Sprintf("\nand %d more labels\n", n-maxRows),
		fmt.Sprintf("\nand %d more warnings\n", n-maxRows),
		fmt.Sprintf("\nand %d more build warnings\n", n-maxRows),
		fmt.Sprintf("\nand %d more platforms\n", n-maxRows),
		fmt.Sprintf("\nand the top findings of %d more platforms\n", n-maxFindingPlatforms),
		fmt.Sprintf("%d deleted, %d kept.", deleted, kept),
		fmt.Sprintf("(%d bytes left out)\n#12 ERROR", leftOut),
		" and 15 more |",
	} {
		if !strings.Contains(written, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
	// The deleted versions come first: every row shown is a deletion.
	rows := regexp.MustCompile("(?m)^\\| `sha256:[0-9a-f]{12}` \\| [^|]* \\| ([a-z ]+) \\|").FindAllStringSubmatch(written, -1)
	if len(rows) != maxRows {
		t.Fatalf("%d version rows, want %d", len(rows), maxRows)
	}
	for _, r := range rows {
		if r[1] != "deleted" {
			t.Fatalf("a %q version is shown while deleted ones are left out", r[1])
		}
	}
}

func TestCleanupSummaryRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		c        Cleanup
		rows     int
		wantMore string // "" when no version is left out
	}{
		{"all rows", bigCleanup(maxRows, 2, false), maxRows, ""},
		{"one too many", bigCleanup(maxRows+1, 2, false), maxRows, "and 1 more versions (deleted: 0, kept: 1)"},
		{"dry run", bigCleanup(1000, 4, true), maxRows, "and 800 more versions (would delete: 50, kept: 750)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := CleanupSummary(tt.c)
			if got := strings.Count(md, "| `sha256:"); got != tt.rows {
				t.Errorf("%d rows, want %d", got, tt.rows)
			}
			got := regexp.MustCompile(`and \d+ more versions.*`).FindString(md)
			if got != tt.wantMore {
				t.Errorf("left-out line %q, want %q", got, tt.wantMore)
			}
		})
	}
}

func TestMigrateSummaryRows(t *testing.T) {
	t.Parallel()
	var copied []registry.Copied
	for i := range 10000 {
		c := registry.Copied{Tag: fmt.Sprint("v", i), Digest: digestN(i), Skipped: i%2 == 0}
		if i%1000 == 999 {
			c.Err = errors.New("copying: unavailable")
		}
		copied = append(copied, c)
	}
	md := MigrateSummary("docker.io/barde/app", "ghcr.io/barde/app", copied)
	if got := strings.Count(md, "| `sha256:"); got != maxRows {
		t.Errorf("%d rows, want %d", got, maxRows)
	}
	if got := strings.Count(md, "| failed: "); got != 10 {
		t.Errorf("%d failed rows shown, want all 10 first", got)
	}
	// Shown: the 10 failed tags, then v0 to v189; left out: v190 to v9999
	// but the failed ones.
	if want := "\nand 9800 more tags (copied: 4895, already there: 4905, failed: 0)\n"; !strings.Contains(md, want) {
		t.Errorf("the summary lacks %q", want)
	}
}

func TestCapSummary(t *testing.T) {
	t.Parallel()
	note := "\n**The summary was cut here: GitHub shows no summary over 1 MiB.**\n"
	lines := strings.Repeat("0123456789\n", 20) // 220 bytes
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short enough", lines, 220, lines},
		{"cut at a line end", lines, 200, lines[:11*((200-len(note))/11)] + note},
		{"no line end before the limit", strings.Repeat("x", 300), 200, note},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := capSummary(tt.in, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("capSummary (-want +got):\n%s", diff)
			}
			if len(got) > tt.max {
				t.Errorf("%d bytes, want at most %d", len(got), tt.max)
			}
		})
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxCell) // 2 bytes each
	tests := []struct {
		name, in, want string
	}{
		{"short", "abc", "abc"},
		{"exactly maxCell", strings.Repeat("a", maxCell), strings.Repeat("a", maxCell)},
		{"on a rune boundary", long, long[:maxCell] + fmt.Sprintf(" … (%d more bytes)", maxCell)},
		{"inside a rune", "a" + long, "a" + long[:maxCell-2] + fmt.Sprintf(" … (%d more bytes)", maxCell+2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, clip(tt.in)); diff != "" {
				t.Errorf("clip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkspacePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, workspace, path, want string
	}{
		{"in the workspace", "/github/workspace", "/github/workspace/sbom/app_linux-amd64.spdx.json", "sbom/app_linux-amd64.spdx.json"},
		{"workspace with a slash", "/github/workspace/", "/github/workspace/sarif/app.sarif", "sarif/app.sarif"},
		{"outside the workspace", "/github/workspace", "/github/runner_temp/sbom/app.spdx.json", "/github/runner_temp/sbom/app.spdx.json"},
		{"a sibling with the same prefix", "/github/workspace", "/github/workspace2/app.sarif", "/github/workspace2/app.sarif"},
		{"no workspace", "", "/github/workspace/sbom/app.spdx.json", "/github/workspace/sbom/app.spdx.json"},
		{"already relative", "/github/workspace", "sbom/app.spdx.json", "sbom/app.spdx.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := workspacePath(tt.workspace, tt.path); got != tt.want {
				t.Errorf("workspacePath(%q, %q) = %q, want %q", tt.workspace, tt.path, got, tt.want)
			}
		})
	}
}

func TestSupplyOutputsAreWorkspaceRelative(t *testing.T) {
	t.Parallel()
	s := Supply{
		Workspace:  "/github/workspace",
		Severities: []string{"CRITICAL"},
		SBOMs: []sbom.Platform{{Platform: "linux/amd64", Files: []string{
			"/github/workspace/sbom/app_linux-amd64.spdx.json",
			"/github/runner_temp/sbom/app_linux-amd64.cyclonedx.json",
		}}},
		Scans: []Scan{
			{Platform: "linux/amd64", File: "/github/workspace/sarif/app_linux-amd64.sarif"},
			{Platform: "linux/arm64", Err: errors.New("scan failed")},
		},
	}
	want := []Output{
		{"sbom-files", "sbom/app_linux-amd64.spdx.json\n/github/runner_temp/sbom/app_linux-amd64.cyclonedx.json"},
		{"sarif-files", "sarif/app_linux-amd64.sarif"},
		{"vulnerabilities", `{"linux/amd64":{"CRITICAL":0}}`},
	}
	if diff := cmp.Diff(want, SupplyOutputs(s)); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if md := SupplySummary(s); !strings.Contains(md, "`sbom/app_linux-amd64.spdx.json`") {
		t.Errorf("the summary does not name the SBOM relative to the workspace:\n%s", md)
	}
}
