package scan

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// Limits are the most a SARIF file may hold for GitHub code scanning.
// A zero field means GitHub's value (GitHubLimits).
type Limits struct {
	// Runs per file.
	Runs int
	// ResultsPerRun: GitHub rejects a run with more than 25,000 results and
	// keeps only 5,000 of an accepted run, so Process keeps 5,000, chosen by
	// severity, rather than let GitHub choose.
	ResultsPerRun int
	// GzipBytes is the size of the file once gzipped.
	GzipBytes int
}

// GitHubLimits are GitHub's code scanning limits for an uploaded SARIF file
// (docs: "SARIF support for code scanning", upload limits). Rules per run
// (25,000) need no check: Process keeps only the rules its results refer to,
// so there are never more than ResultsPerRun. Trivy gives each result one
// location and each rule three tags, far below the limits of 1,000 and 20.
var GitHubLimits = Limits{
	Runs:          20,
	ResultsPerRun: 5000,
	GzipBytes:     10 << 20,
}

// Options say what Process keeps and how it labels it.
type Options struct {
	// Image is the image's name without tag or digest, such as
	// ghcr.io/barde/phialoastro.
	Image string
	// Platform is the scanned platform, such as linux/arm64.
	Platform string
	// Dockerfile is the Dockerfile's path relative to the repository root,
	// where every result points; "" means "Dockerfile".
	Dockerfile string
	// Severities are the severities kept (CRITICAL, HIGH, MEDIUM, LOW,
	// UNKNOWN); none keeps all.
	Severities []string
	// Limits are GitHub's when zero.
	Limits Limits
}

// Result is a processed SARIF report.
type Result struct {
	// SARIF is the report to upload.
	SARIF []byte
	// Counts are the findings per severity among the kept severities, before
	// any cut to GitHub's limits (that is, what the image has).
	Counts map[string]int
	// Top are the most severe findings first, at most 10.
	Top []Finding
	// Warnings say what was cut to fit GitHub's limits.
	Warnings []string
}

// Finding is one vulnerable package.
type Finding struct {
	// ID is the vulnerability, such as CVE-2024-1234.
	ID        string
	Package   string
	Installed string
	// Fixed is the first fixed version, "" if there is none.
	Fixed    string
	Severity string
	Title    string
}

// topFindings is how many findings Result.Top holds.
const topFindings = 10

// entry is one result of the input with what Process knows about it.
type entry struct {
	run     int
	res     *sarif.Result
	rule    *sarif.ReportingDescriptor
	finding Finding
	kept    bool
}

// Process filters Trivy's SARIF report raw by severity, gives each run the
// category <image>/<platform>/ so platforms do not replace each other's
// alerts, points every result at the Dockerfile, and cuts the least severe
// results beyond GitHub's limits, saying so in the warnings.
func Process(raw []byte, o Options) (Result, error) {
	if o.Image == "" || o.Platform == "" {
		return Result{}, errors.New("processing SARIF: the image and platform name the run's category and must be set")
	}
	keep, err := severitySet(o.Severities)
	if err != nil {
		return Result{}, fmt.Errorf("processing SARIF: %w", err)
	}
	lim := o.Limits.orGitHub()
	dockerfile := o.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}

	rep, err := sarif.FromBytes(raw)
	if err != nil {
		return Result{}, fmt.Errorf("processing SARIF: %w", err)
	}
	if rep.Version != string(sarif.Version210) {
		return Result{}, fmt.Errorf("processing SARIF: version %q, want %s", rep.Version, sarif.Version210)
	}
	if len(rep.Runs) == 0 {
		return Result{}, errors.New("processing SARIF: the report has no runs")
	}
	res := Result{Counts: map[string]int{}}
	if n := len(rep.Runs); n > lim.Runs {
		rep.Runs = rep.Runs[:lim.Runs]
		res.Warnings = append(res.Warnings, fmt.Sprintf("GitHub accepts at most %d runs in a SARIF file: dropped %d of %d", lim.Runs, n-lim.Runs, n))
	}

	category := strings.TrimSuffix(o.Image, "/") + "/" + strings.Trim(o.Platform, "/") + "/"
	var entries []*entry
	for ri, run := range rep.Runs {
		if run == nil || run.Tool.Driver == nil {
			return Result{}, fmt.Errorf("processing SARIF: run %d has no tool driver", ri)
		}
		id := category
		if run.AutomationDetails == nil {
			run.AutomationDetails = &sarif.RunAutomationDetails{}
		}
		run.AutomationDetails.ID = &id
		for _, r := range run.Results {
			if r == nil {
				continue
			}
			rule := ruleOf(run.Tool.Driver.Rules, r)
			f := finding(r, rule)
			if len(keep) > 0 && !keep[f.Severity] {
				continue
			}
			res.Counts[f.Severity]++
			entries = append(entries, &entry{run: ri, res: r, rule: rule, finding: f, kept: true})
		}
	}

	// The most severe first; within a severity, Trivy's order.
	prio := slices.Clone(entries)
	slices.SortStableFunc(prio, func(a, b *entry) int {
		return severityRank(a.finding.Severity) - severityRank(b.finding.Severity)
	})
	res.Top = top(prio)

	// Results per run, the least severe beyond the limit cut.
	perRun := map[int]int{}
	var cut []*entry
	for _, e := range prio {
		if perRun[e.run]++; perRun[e.run] > lim.ResultsPerRun {
			e.kept = false
			cut = append(cut, e)
		}
	}
	if len(cut) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("GitHub code scanning shows at most %d results per run: cut %d of %d results (%s)",
			lim.ResultsPerRun, len(cut), len(entries), bySeverity(cut)))
	}

	out, sizeCut, err := fit(rep, entries, prio, dockerfile, lim.GzipBytes)
	if err != nil {
		return Result{}, err
	}
	if len(sizeCut) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("GitHub accepts SARIF files of at most %s gzipped: cut %d more results (%s)",
			byteSize(lim.GzipBytes), len(sizeCut), bySeverity(sizeCut)))
	}
	res.SARIF = out
	return res, nil
}

// orGitHub returns l with GitHub's limits for its zero fields.
func (l Limits) orGitHub() Limits {
	if l.Runs <= 0 {
		l.Runs = GitHubLimits.Runs
	}
	if l.ResultsPerRun <= 0 {
		l.ResultsPerRun = GitHubLimits.ResultsPerRun
	}
	if l.GzipBytes <= 0 {
		l.GzipBytes = GitHubLimits.GzipBytes
	}
	return l
}

// severitySet returns the severities to keep, upper-cased; empty for all.
func severitySet(ss []string) (map[string]bool, error) {
	keep := map[string]bool{}
	for _, s := range ss {
		s = strings.ToUpper(strings.TrimSpace(s))
		if severityRank(s) == len(severityOrder) {
			return nil, fmt.Errorf("unknown severity %q (want one of %s)", s, strings.Join(severityOrder, ", "))
		}
		keep[s] = true
	}
	return keep, nil
}

// fit builds the report and, while it is more than limit bytes gzipped,
// cuts the least severe of the kept entries (prio is sorted by severity)
// and builds it again. It returns the report and the entries it cut.
func fit(rep *sarif.Report, entries, prio []*entry, dockerfile string, limit int) ([]byte, []*entry, error) {
	out, err := build(rep, entries, dockerfile)
	if err != nil {
		return nil, nil, err
	}
	size, err := gzipSize(out)
	if err != nil {
		return nil, nil, err
	}
	var cut []*entry
	for size > limit {
		var kept []*entry
		for _, e := range prio {
			if e.kept {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			return nil, nil, fmt.Errorf("processing SARIF: %d bytes gzipped without any result, more than the %s GitHub accepts", size, byteSize(limit))
		}
		// Assume the size is in the results; aim a little below the limit.
		n := int(float64(len(kept)) * float64(limit) / float64(size) * 0.95)
		n = min(n, len(kept)-1)
		for _, e := range kept[n:] {
			e.kept = false
			cut = append(cut, e)
		}
		if out, err = build(rep, entries, dockerfile); err != nil {
			return nil, nil, err
		}
		if size, err = gzipSize(out); err != nil {
			return nil, nil, err
		}
	}
	return out, cut, nil
}

// build writes the report with the kept entries only, each run's rules
// reduced to those its results refer to, and every result located at the
// Dockerfile's first line.
func build(rep *sarif.Report, entries []*entry, dockerfile string) ([]byte, error) {
	kept := make([][]*entry, len(rep.Runs))
	for _, e := range entries {
		if e.kept {
			kept[e.run] = append(kept[e.run], e)
		}
	}
	// The report is built again after a cut: change copies, not it.
	out := *rep
	out.Runs = make([]*sarif.Run, len(rep.Runs))
	for ri, orig := range rep.Runs {
		run := *orig
		driver := *orig.Tool.Driver
		run.Tool.Driver = &driver
		used := map[*sarif.ReportingDescriptor]bool{}
		for _, e := range kept[ri] {
			if e.rule != nil {
				used[e.rule] = true
			}
		}
		driver.Rules = []*sarif.ReportingDescriptor{}
		index := map[*sarif.ReportingDescriptor]uint{}
		for _, r := range orig.Tool.Driver.Rules {
			if used[r] {
				index[r] = uint(len(driver.Rules))
				driver.Rules = append(driver.Rules, r)
			}
		}
		run.Results = []*sarif.Result{}
		for _, e := range kept[ri] {
			r := *e.res
			r.RuleIndex = nil
			if e.rule != nil {
				i := index[e.rule]
				r.RuleIndex = &i
				if r.RuleID == nil {
					id := e.rule.ID
					r.RuleID = &id
				}
			}
			r.Locations = []*sarif.Location{locate(e.res.Locations, dockerfile)}
			run.Results = append(run.Results, &r)
		}
		out.Runs[ri] = &run
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&out); err != nil {
		return nil, fmt.Errorf("processing SARIF: %w", err)
	}
	return b.Bytes(), nil
}

// locate returns the location of a result: the Dockerfile's first line,
// with the message of Trivy's location (image: package@version).
func locate(locs []*sarif.Location, dockerfile string) *sarif.Location {
	uri, line := dockerfile, 1
	loc := &sarif.Location{PhysicalLocation: &sarif.PhysicalLocation{
		ArtifactLocation: &sarif.ArtifactLocation{URI: &uri},
		Region:           &sarif.Region{StartLine: &line},
	}}
	for _, l := range locs {
		if l != nil && l.Message != nil {
			loc.Message = l.Message
			break
		}
	}
	return loc
}

// ruleOf returns the rule a result refers to: by index if it agrees with
// the rule id, else by id.
func ruleOf(rules []*sarif.ReportingDescriptor, r *sarif.Result) *sarif.ReportingDescriptor {
	if r.RuleIndex != nil && *r.RuleIndex < uint(len(rules)) {
		if rule := rules[*r.RuleIndex]; rule != nil && (r.RuleID == nil || *r.RuleID == rule.ID) {
			return rule
		}
	}
	if r.RuleID == nil {
		return nil
	}
	for _, rule := range rules {
		if rule != nil && rule.ID == *r.RuleID {
			return rule
		}
	}
	return nil
}

// finding reads what Trivy says about a result. Trivy's SARIF has the
// severity in the rule's tags (["vulnerability", "security", "HIGH"]) and,
// as a CVSS-like score, in its security-severity property ("8.0"), which
// GitHub reads; the result's level (error, warning, note) cannot tell
// CRITICAL from HIGH nor LOW from UNKNOWN. The package, installed and fixed
// versions are only in the result's message text, one "Key: value" a line.
func finding(r *sarif.Result, rule *sarif.ReportingDescriptor) Finding {
	var f Finding
	if r.RuleID != nil {
		f.ID = *r.RuleID
	} else if rule != nil {
		f.ID = rule.ID
	}
	fields := map[string]string{}
	if r.Message.Text != nil {
		for _, l := range strings.Split(*r.Message.Text, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				if _, seen := fields[k]; !seen {
					fields[k] = strings.TrimSpace(v)
				}
			}
		}
	}
	f.Package, f.Installed, f.Fixed = fields["Package"], fields["Installed Version"], fields["Fixed Version"]
	if rule != nil && rule.ShortDescription != nil && rule.ShortDescription.Text != nil {
		f.Title = *rule.ShortDescription.Text
	}
	f.Severity = severityOf(r, rule, fields["Severity"])
	return f
}

func severityOf(r *sarif.Result, rule *sarif.ReportingDescriptor, said string) string {
	if rule != nil {
		if tags, ok := rule.Properties["tags"].([]any); ok {
			for _, t := range tags {
				if s, ok := t.(string); ok && severityRank(strings.ToUpper(s)) < len(severityOrder) {
					return strings.ToUpper(s)
				}
			}
		}
		if s, ok := scoreSeverity(rule.Properties["security-severity"]); ok {
			return s
		}
	}
	if s := strings.ToUpper(said); severityRank(s) < len(severityOrder) {
		return s
	}
	level := ""
	if r.Level != nil {
		level = *r.Level
	}
	switch level {
	case "error":
		return "HIGH"
	case "warning":
		return "MEDIUM"
	case "note":
		return "LOW"
	}
	return "UNKNOWN"
}

// scoreSeverity maps a security-severity score (a string, as Trivy and
// GitHub's docs write it, or a number) to a severity as GitHub does:
// 9.0 and above critical, 7.0 high, 4.0 medium, above 0 low.
func scoreSeverity(v any) (string, bool) {
	var score float64
	switch v := v.(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return "", false
		}
		score = f
	case float64:
		score = v
	default:
		return "", false
	}
	switch {
	case score >= 9:
		return "CRITICAL", true
	case score >= 7:
		return "HIGH", true
	case score >= 4:
		return "MEDIUM", true
	case score > 0:
		return "LOW", true
	case score == 0:
		return "UNKNOWN", true
	}
	return "", false
}

// top returns the first findings of prio (sorted by severity), at most
// topFindings, the same vulnerability of the same package once.
func top(prio []*entry) []Finding {
	var out []Finding
	seen := map[Finding]bool{}
	for _, e := range prio {
		if len(out) == topFindings {
			break
		}
		if !seen[e.finding] {
			seen[e.finding] = true
			out = append(out, e.finding)
		}
	}
	return out
}

// bySeverity describes the severities of entries: "3 LOW, 1 UNKNOWN".
func bySeverity(entries []*entry) string {
	n := map[string]int{}
	for _, e := range entries {
		n[e.finding.Severity]++
	}
	var parts []string
	for _, s := range severityOrder {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

func gzipSize(data []byte) (int, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		return 0, fmt.Errorf("processing SARIF: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("processing SARIF: %w", err)
	}
	return b.Len(), nil
}

// byteSize writes n in MB if it is a whole number of them, else in bytes.
func byteSize(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
