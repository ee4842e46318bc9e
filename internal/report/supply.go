package report

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/barde/phialo-image-action/internal/sbom"
	"github.com/barde/phialo-image-action/internal/scan"
)

// Supply is what the SBOM and scan steps produced.
type Supply struct {
	SBOMs   []sbom.Platform
	SBOMErr error
	Scans   []Scan
	ScanErr error
	// Severities are the scan severities asked for, most severe first.
	Severities []string
	// Workspace is GITHUB_WORKSPACE: the outputs and the summary name the
	// files in it relative to it.
	Workspace string
}

// Scan is one platform's scan.
type Scan struct {
	Platform string
	// File is the SARIF file written, "" when the scan failed.
	File     string
	Counts   map[string]int
	Top      []scan.Finding
	Warnings []string
	// Upload says what became of the code scanning upload.
	Upload string
	Err    error
}

// SupplyOutputs are the outputs of the SBOM and scan steps (empty when
// they did not run). Files in the workspace are named relative to it, as
// later steps of the job (run:, actions/upload-artifact) see them; others
// keep their absolute path.
func SupplyOutputs(s Supply) []Output {
	var sbomFiles, sarifFiles []string
	for _, p := range s.SBOMs {
		for _, f := range p.Files {
			sbomFiles = append(sbomFiles, workspacePath(s.Workspace, f))
		}
	}
	vulns := map[string]map[string]int{}
	for _, sc := range s.Scans {
		if sc.Err != nil {
			continue
		}
		sarifFiles = append(sarifFiles, workspacePath(s.Workspace, sc.File))
		counts := map[string]int{}
		for _, sev := range s.Severities {
			counts[sev] = sc.Counts[sev]
		}
		vulns[sc.Platform] = counts
	}
	v, _ := json.Marshal(vulns)
	return []Output{
		{"sbom-files", strings.Join(sbomFiles, "\n")},
		{"sarif-files", strings.Join(sarifFiles, "\n")},
		{"vulnerabilities", string(v)},
	}
}

// The summary lists the top maxFindings findings of each of the first
// maxFindingPlatforms platforms.
const (
	maxFindings         = 5
	maxFindingPlatforms = 20
)

// SupplySummary renders the SBOM and scan part of the step summary.
func SupplySummary(s Supply) string {
	var b strings.Builder
	if len(s.SBOMs) > 0 || s.SBOMErr != nil {
		b.WriteString("\n#### SBOM\n\n")
		if s.SBOMErr != nil {
			fmt.Fprintf(&b, "Not written: %s\n", cell(s.SBOMErr.Error()))
		}
		if len(s.SBOMs) > 0 {
			b.WriteString("| Platform | Packages | Files |\n| --- | --- | --- |\n")
			for _, p := range s.SBOMs[:min(len(s.SBOMs), maxRows)] {
				if p.Error != "" {
					fmt.Fprintf(&b, "| %s | failed: %s | |\n", p.Platform, cell(p.Error))
					continue
				}
				var files []string
				for _, f := range p.Files {
					files = append(files, "`"+workspacePath(s.Workspace, f)+"`")
				}
				fmt.Fprintf(&b, "| %s | %d | %s |\n", cell(p.Platform), len(p.Packages), strings.Join(files, "<br>"))
			}
			b.WriteString(more(len(s.SBOMs), "platforms"))
		}
	}
	if len(s.Scans) > 0 || s.ScanErr != nil {
		b.WriteString("\n#### Vulnerabilities\n\n")
		if s.ScanErr != nil {
			fmt.Fprintf(&b, "Not scanned: %s\n", cell(s.ScanErr.Error()))
		}
		if len(s.Scans) > 0 {
			b.WriteString("| Platform | " + strings.Join(s.Severities, " | ") + " | Code scanning |\n|" + strings.Repeat(" --- |", len(s.Severities)+2) + "\n")
			for _, sc := range s.Scans[:min(len(s.Scans), maxRows)] {
				if sc.Err != nil {
					fmt.Fprintf(&b, "| %s | scan failed: %s |%s\n", cell(sc.Platform), cell(sc.Err.Error()), strings.Repeat(" |", len(s.Severities)))
					continue
				}
				row := []string{cell(sc.Platform)}
				for _, sev := range s.Severities {
					row = append(row, fmt.Sprint(sc.Counts[sev]))
				}
				row = append(row, cell(sc.Upload))
				b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
			b.WriteString(more(len(s.Scans), "platforms"))
			shown, left := 0, 0
			for _, sc := range s.Scans {
				if len(sc.Top) == 0 {
					continue
				}
				if shown == maxFindingPlatforms {
					left++
					continue
				}
				shown++
				fmt.Fprintf(&b, "\nTop findings, %s:\n\n| Vulnerability | Severity | Package | Installed | Fixed | Title |\n| --- | --- | --- | --- | --- | --- |\n", cell(sc.Platform))
				for _, f := range sc.Top[:min(len(sc.Top), maxFindings)] {
					fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(f.ID), cell(f.Severity), cell(f.Package), cell(f.Installed), cell(f.Fixed), cell(f.Title))
				}
			}
			if left > 0 {
				fmt.Fprintf(&b, "\nand the top findings of %d more platforms\n", left)
			}
		}
	}
	return b.String()
}

// workspacePath names path relative to workspace when it lies in it (the
// action sees the workspace at another path than the job's other steps),
// else returns it as it is.
func workspacePath(workspace, path string) string {
	if workspace == "" || !filepath.IsAbs(path) {
		return path
	}
	rel, err := filepath.Rel(filepath.Clean(workspace), filepath.Clean(path))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

// SortSeverities orders severities most severe first.
func SortSeverities(s []string) []string {
	order := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out
}
