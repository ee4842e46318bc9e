package report

import (
	"encoding/json"
	"fmt"
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
// they did not run).
func SupplyOutputs(s Supply) []Output {
	var sbomFiles, sarifFiles []string
	for _, p := range s.SBOMs {
		sbomFiles = append(sbomFiles, p.Files...)
	}
	vulns := map[string]map[string]int{}
	for _, sc := range s.Scans {
		if sc.Err != nil {
			continue
		}
		sarifFiles = append(sarifFiles, sc.File)
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
			for _, p := range s.SBOMs {
				if p.Error != "" {
					fmt.Fprintf(&b, "| %s | failed: %s | |\n", p.Platform, cell(p.Error))
					continue
				}
				var files []string
				for _, f := range p.Files {
					files = append(files, "`"+f+"`")
				}
				fmt.Fprintf(&b, "| %s | %d | %s |\n", p.Platform, len(p.Packages), strings.Join(files, "<br>"))
			}
		}
	}
	if len(s.Scans) > 0 || s.ScanErr != nil {
		b.WriteString("\n#### Vulnerabilities\n\n")
		if s.ScanErr != nil {
			fmt.Fprintf(&b, "Not scanned: %s\n", cell(s.ScanErr.Error()))
		}
		if len(s.Scans) > 0 {
			b.WriteString("| Platform | " + strings.Join(s.Severities, " | ") + " | Code scanning |\n|" + strings.Repeat(" --- |", len(s.Severities)+2) + "\n")
			for _, sc := range s.Scans {
				if sc.Err != nil {
					fmt.Fprintf(&b, "| %s | scan failed: %s |%s\n", sc.Platform, cell(sc.Err.Error()), strings.Repeat(" |", len(s.Severities)))
					continue
				}
				row := []string{sc.Platform}
				for _, sev := range s.Severities {
					row = append(row, fmt.Sprint(sc.Counts[sev]))
				}
				row = append(row, cell(sc.Upload))
				b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
			for _, sc := range s.Scans {
				if len(sc.Top) == 0 {
					continue
				}
				fmt.Fprintf(&b, "\nTop findings, %s:\n\n| Vulnerability | Severity | Package | Installed | Fixed | Title |\n| --- | --- | --- | --- | --- | --- |\n", sc.Platform)
				for _, f := range sc.Top[:min(len(sc.Top), 5)] {
					fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(f.ID), f.Severity, cell(f.Package), cell(f.Installed), cell(f.Fixed), cell(f.Title))
				}
			}
		}
	}
	return b.String()
}

// SortSeverities orders severities most severe first.
func SortSeverities(s []string) []string {
	order := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out
}
