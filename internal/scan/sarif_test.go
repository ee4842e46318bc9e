package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/barde/phialo-image-action/internal/testutil"
)

// trivySARIF is a report Trivy v0.74.0 wrote for an Alpine 3.19 image
// (busybox, ssl_client, musl, libcrypto3, libssl3) against a database with
// five planted vulnerabilities, one of each severity: 8 results, 5 rules.
func trivySARIF(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "trivy.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// describe renders a Result for a golden file: the summary, then the
// SARIF indented.
func describe(t *testing.T, r Result) string {
	t.Helper()
	summary, err := json.MarshalIndent(struct {
		Counts   map[string]int
		Top      []Finding
		Warnings []string
	}{r.Counts, r.Top, r.Warnings}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var sarifOut bytes.Buffer
	if err := json.Indent(&sarifOut, r.SARIF, "", "  "); err != nil {
		t.Fatalf("the SARIF is not JSON: %v", err)
	}
	return string(summary) + "\n---\n" + sarifOut.String()
}

func TestProcessGolden(t *testing.T) {
	t.Parallel()
	base := Options{Image: "ghcr.io/barde/phialoastro", Platform: "linux/amd64", Dockerfile: "docker/Dockerfile"}
	with := func(f func(*Options)) Options {
		o := base
		f(&o)
		return o
	}
	tests := map[string]Options{
		"all-severities": base,
		"critical-high":  with(func(o *Options) { o.Severities = []string{"CRITICAL", "HIGH"} }),
		"lowercase-low":  with(func(o *Options) { o.Severities = []string{"low"}; o.Platform = "linux/arm64"; o.Dockerfile = "" }),
		"results-cut":    with(func(o *Options) { o.Limits.ResultsPerRun = 3 }),
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := Process(trivySARIF(t), o)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "process", name+".golden"), describe(t, r), *update)
		})
	}
}

// decode parses Process's output.
func decode(t *testing.T, data []byte) *sarif.Report {
	t.Helper()
	rep, err := sarif.FromBytes(data)
	if err != nil {
		t.Fatalf("Process wrote SARIF it cannot read back: %v", err)
	}
	return rep
}

// ruleIDs lists a run's results as ruleId/level, checking that each
// ruleIndex points at the rule of that id.
func ruleIDs(t *testing.T, run *sarif.Run) []string {
	t.Helper()
	var ids []string
	for _, r := range run.Results {
		if r.RuleIndex == nil || int(*r.RuleIndex) >= len(run.Tool.Driver.Rules) {
			t.Fatalf("result %s has no valid ruleIndex", *r.RuleID)
		}
		if got := run.Tool.Driver.Rules[*r.RuleIndex].ID; got != *r.RuleID {
			t.Errorf("result %s: ruleIndex %d is rule %s", *r.RuleID, *r.RuleIndex, got)
		}
		ids = append(ids, *r.RuleID)
	}
	return ids
}

func TestProcessKeepsChosenSeveritiesAndTheirRules(t *testing.T) {
	t.Parallel()
	r, err := Process(trivySARIF(t), Options{Image: "ghcr.io/barde/phialoastro", Platform: "linux/amd64", Severities: []string{"HIGH", "MEDIUM"}})
	if err != nil {
		t.Fatal(err)
	}
	run := decode(t, r.SARIF).Runs[0]
	if diff := cmp.Diff([]string{"CVE-2099-0003", "CVE-2099-0003", "CVE-2099-0004"}, ruleIDs(t, run)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	var rules []string
	for _, rule := range run.Tool.Driver.Rules {
		rules = append(rules, rule.ID)
	}
	if diff := cmp.Diff([]string{"CVE-2099-0003", "CVE-2099-0004"}, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"HIGH": 2, "MEDIUM": 1}, r.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestProcessLocatesResultsAtTheDockerfile(t *testing.T) {
	t.Parallel()
	r, err := Process(trivySARIF(t), Options{Image: "ghcr.io/barde/phialoastro", Platform: "linux/amd64", Dockerfile: "app/Dockerfile.prod"})
	if err != nil {
		t.Fatal(err)
	}
	run := decode(t, r.SARIF).Runs[0]
	if len(run.Results) != 8 {
		t.Fatalf("%d results, want all 8", len(run.Results))
	}
	for _, res := range run.Results {
		if len(res.Locations) != 1 {
			t.Fatalf("%s: %d locations, want 1", *res.RuleID, len(res.Locations))
		}
		pl := res.Locations[0].PhysicalLocation
		if pl == nil || pl.ArtifactLocation == nil || pl.ArtifactLocation.URI == nil || *pl.ArtifactLocation.URI != "app/Dockerfile.prod" ||
			pl.ArtifactLocation.URIBaseId != nil || pl.Region == nil || pl.Region.StartLine == nil || *pl.Region.StartLine != 1 {
			data, _ := json.Marshal(pl)
			t.Errorf("%s is located at %s, want app/Dockerfile.prod line 1", *res.RuleID, data)
		}
		if m := res.Locations[0].Message; m == nil || m.Text == nil || !strings.HasPrefix(*m.Text, "barde/phialoastro: ") {
			t.Errorf("%s lost Trivy's location message (image: package@version)", *res.RuleID)
		}
	}
}

func TestProcessCategoryPerPlatform(t *testing.T) {
	t.Parallel()
	ids := map[string]string{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		r, err := Process(trivySARIF(t), Options{Image: "ghcr.io/barde/phialoastro", Platform: p})
		if err != nil {
			t.Fatal(err)
		}
		ad := decode(t, r.SARIF).Runs[0].AutomationDetails
		if ad == nil || ad.ID == nil {
			t.Fatalf("%s: no automationDetails.id", p)
		}
		ids[p] = *ad.ID
	}
	want := map[string]string{"linux/amd64": "ghcr.io/barde/phialoastro/linux/amd64/", "linux/arm64": "ghcr.io/barde/phialoastro/linux/arm64/"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("automation ids (-want +got):\n%s", diff)
	}
}

// minimalSARIF is a one-run report with the given rules and results JSON.
func minimalSARIF(rules, results string) []byte {
	return []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","rules":[` + rules + `]}},"results":[` + results + `]}]}`)
}

func TestProcessSeverityFrom(t *testing.T) {
	t.Parallel()
	result := func(level, message string) string {
		return fmt.Sprintf(`{"ruleId":"CVE-1","ruleIndex":0,"level":%q,"message":{"text":%q}}`, level, message)
	}
	tests := []struct {
		name, rules, results, want string
	}{
		{"the rule's tags", `{"id":"CVE-1","properties":{"tags":["vulnerability","security","CRITICAL"],"security-severity":"5.0"}}`, result("note", "Severity: LOW"), "CRITICAL"},
		{"a lowercase tag", `{"id":"CVE-1","properties":{"tags":["security","medium"]}}`, result("error", ""), "MEDIUM"},
		{"security-severity as a string", `{"id":"CVE-1","properties":{"tags":["security"],"security-severity":"9.0"}}`, result("note", ""), "CRITICAL"},
		{"security-severity as a number", `{"id":"CVE-1","properties":{"security-severity":7.1}}`, result("note", ""), "HIGH"},
		{"security-severity 0.0", `{"id":"CVE-1","properties":{"security-severity":"0.0"}}`, result("error", ""), "UNKNOWN"},
		{"security-severity low", `{"id":"CVE-1","properties":{"security-severity":"3.9"}}`, result("error", ""), "LOW"},
		{"the message without a rule", ``, result("error", "Package: musl\nSeverity: MEDIUM"), "MEDIUM"},
		{"the level error", `{"id":"CVE-1"}`, result("error", "nothing"), "HIGH"},
		{"the level warning", `{"id":"CVE-1"}`, result("warning", ""), "MEDIUM"},
		{"the level note", `{"id":"CVE-1"}`, result("note", ""), "LOW"},
		{"nothing", `{"id":"CVE-1"}`, `{"ruleId":"CVE-1","message":{}}`, "UNKNOWN"},
		{"a ruleIndex of another rule", `{"id":"CVE-0","properties":{"tags":["LOW"]}},{"id":"CVE-1","properties":{"tags":["HIGH"]}}`, result("note", ""), "HIGH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Process(minimalSARIF(tc.rules, tc.results), Options{Image: "i", Platform: "linux/amd64"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]int{tc.want: 1}, r.Counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcessTopFindings(t *testing.T) {
	t.Parallel()
	var rules, results []string
	sevs := []string{"LOW", "CRITICAL", "UNKNOWN", "HIGH", "MEDIUM"}
	for i := range 15 {
		id := fmt.Sprintf("CVE-2099-%04d", i)
		rules = append(rules, fmt.Sprintf(`{"id":%q,"shortDescription":{"text":"title %d"},"properties":{"tags":[%q]}}`, id, i, sevs[i%5]))
		results = append(results, fmt.Sprintf(`{"ruleId":%q,"ruleIndex":%d,"message":{"text":"Package: pkg%d\nInstalled Version: 1.0\nVulnerability %s\nSeverity: %s\nFixed Version: \nLink: x"}}`, id, i, i, id, sevs[i%5]))
	}
	r, err := Process(minimalSARIF(strings.Join(rules, ","), strings.Join(results, ",")), Options{Image: "i", Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.Top {
		got = append(got, f.Severity+" "+f.ID+" "+f.Package)
	}
	want := []string{
		"CRITICAL CVE-2099-0001 pkg1", "CRITICAL CVE-2099-0006 pkg6", "CRITICAL CVE-2099-0011 pkg11",
		"HIGH CVE-2099-0003 pkg3", "HIGH CVE-2099-0008 pkg8", "HIGH CVE-2099-0013 pkg13",
		"MEDIUM CVE-2099-0004 pkg4", "MEDIUM CVE-2099-0009 pkg9", "MEDIUM CVE-2099-0014 pkg14",
		"LOW CVE-2099-0000 pkg0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("top findings (-want +got):\n%s", diff)
	}
	if f := r.Top[0]; f.Installed != "1.0" || f.Fixed != "" || f.Title != "title 1" {
		t.Errorf("top finding = %+v, want installed 1.0, no fix, title 1", f)
	}
}

// bigSARIF is a report with n results of each severity, each with its own
// rule and a long incompressible-ish help text.
func bigSARIF(n int) []byte {
	var rules, results []string
	i := 0
	for _, sev := range severityOrder {
		for range n {
			id := fmt.Sprintf("CVE-2099-%05d", i)
			help := strings.Repeat(fmt.Sprintf("%x ", i*7919), 40)
			rules = append(rules, fmt.Sprintf(`{"id":%q,"shortDescription":{"text":"t"},"help":{"text":%q},"properties":{"tags":[%q]}}`, id, help, sev))
			results = append(results, fmt.Sprintf(`{"ruleId":%q,"ruleIndex":%d,"message":{"text":"Package: p%d"}}`, id, i, i))
			i++
		}
	}
	return minimalSARIF(strings.Join(rules, ","), strings.Join(results, ","))
}

func TestProcessFitsGitHubsSizeLimit(t *testing.T) {
	t.Parallel()
	raw := bigSARIF(40)
	full, err := Process(raw, Options{Image: "i", Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	fullSize, err := gzipSize(full.SARIF)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Warnings) != 0 {
		t.Errorf("warnings within the limits: %q", full.Warnings)
	}
	limit := fullSize / 3
	r, err := Process(raw, Options{Image: "i", Platform: "linux/amd64", Limits: Limits{GzipBytes: limit}})
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := gzipSize(r.SARIF); size > limit {
		t.Errorf("gzipped SARIF is %d bytes, limit %d", size, limit)
	}
	run := decode(t, r.SARIF).Runs[0]
	kept := map[string]int{}
	for _, res := range run.Results {
		kept[ruleOf(run.Tool.Driver.Rules, res).Properties["tags"].([]any)[0].(string)]++
	}
	if kept["CRITICAL"] != 40 || kept["UNKNOWN"] != 0 || len(run.Results) >= 200 {
		t.Errorf("kept %v of 40 per severity, want the most severe first", kept)
	}
	if len(run.Tool.Driver.Rules) != len(run.Results) {
		t.Errorf("%d rules for %d results: rules of cut results remain", len(run.Tool.Driver.Rules), len(run.Results))
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], fmt.Sprintf("at most %d bytes gzipped: cut ", limit)) || !strings.Contains(r.Warnings[0], "40 UNKNOWN") {
		t.Errorf("warnings = %q, want one saying how many results the size cut", r.Warnings)
	}
	if diff := cmp.Diff(map[string]int{"CRITICAL": 40, "HIGH": 40, "MEDIUM": 40, "LOW": 40, "UNKNOWN": 40}, r.Counts); diff != "" {
		t.Errorf("counts describe the image, not the cut report (-want +got):\n%s", diff)
	}
}

func TestProcessResultsPerRunLimit(t *testing.T) {
	t.Parallel()
	r, err := Process(bigSARIF(3), Options{Image: "i", Platform: "linux/amd64", Limits: Limits{ResultsPerRun: 7}})
	if err != nil {
		t.Fatal(err)
	}
	run := decode(t, r.SARIF).Runs[0]
	want := []string{"CVE-2099-00000", "CVE-2099-00001", "CVE-2099-00002", "CVE-2099-00003", "CVE-2099-00004", "CVE-2099-00005", "CVE-2099-00006"}
	if diff := cmp.Diff(want, ruleIDs(t, run)); diff != "" {
		t.Errorf("kept results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GitHub code scanning shows at most 7 results per run: cut 8 of 15 results (2 MEDIUM, 3 LOW, 3 UNKNOWN)"}, r.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestProcessRunsLimit(t *testing.T) {
	t.Parallel()
	run := `{"tool":{"driver":{"name":"Trivy","rules":[]}},"results":[]}`
	raw := []byte(`{"version":"2.1.0","runs":[` + run + "," + run + "," + run + `]}`)
	r, err := Process(raw, Options{Image: "i", Platform: "linux/amd64", Limits: Limits{Runs: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(decode(t, r.SARIF).Runs); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
	if diff := cmp.Diff([]string{"GitHub accepts at most 2 runs in a SARIF file: dropped 1 of 3"}, r.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestProcessNoFindings(t *testing.T) {
	t.Parallel()
	r, err := Process(minimalSARIF("", ""), Options{Image: "i", Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	// GitHub wants "results": [] and "rules": [], never null.
	if !bytes.Contains(r.SARIF, []byte(`"results":[]`)) || !bytes.Contains(r.SARIF, []byte(`"rules":[]`)) {
		t.Errorf("empty report lacks empty results or rules: %s", r.SARIF)
	}
	if len(r.Counts) != 0 || len(r.Top) != 0 || len(r.Warnings) != 0 {
		t.Errorf("empty report: %+v", r)
	}
}

func TestProcessRejects(t *testing.T) {
	t.Parallel()
	ok := Options{Image: "i", Platform: "linux/amd64"}
	tests := []struct {
		name string
		raw  string
		o    Options
		want string
	}{
		{"not JSON", "Fatal error", ok, "processing SARIF: invalid character"},
		{"null", "null", ok, `version ""`},
		{"another version", `{"version":"2.0.0","runs":[]}`, ok, `version "2.0.0"`},
		{"no runs", `{"version":"2.1.0","runs":[]}`, ok, "no runs"},
		{"a null run", `{"version":"2.1.0","runs":[null]}`, ok, "run 0 has no tool driver"},
		{"no driver", `{"version":"2.1.0","runs":[{"tool":{},"results":[]}]}`, ok, "run 0 has no tool driver"},
		{"no image", string(minimalSARIF("", "")), Options{Platform: "linux/amd64"}, "the image and platform"},
		{"no platform", string(minimalSARIF("", "")), Options{Image: "i"}, "the image and platform"},
		{"unknown severity", string(minimalSARIF("", "")), Options{Image: "i", Platform: "linux/amd64", Severities: []string{"SEVERE"}}, `unknown severity "SEVERE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Process([]byte(tc.raw), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Process error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzProcess(f *testing.F) {
	f.Add(trivySARIF(f))
	f.Add(minimalSARIF("", ""))
	f.Add(bigSARIF(2))
	f.Add([]byte(`{"version":"2.1.0","runs":[null]}`))
	f.Add([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[null,{"id":"A","properties":{"tags":[1,"HIGH"],"security-severity":{}}}]}},"results":[null,{"ruleId":"A","ruleIndex":7,"message":{},"locations":[null]},{"ruleIndex":1,"message":{"text":"Severity"}}]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o := Options{Image: "ghcr.io/barde/phialoastro", Platform: "linux/amd64", Limits: Limits{ResultsPerRun: 3, GzipBytes: 4000}}
		r, err := Process(raw, o)
		if err != nil {
			return
		}
		if len(r.Top) > topFindings {
			t.Errorf("%d top findings", len(r.Top))
		}
		// What Process writes, it reads; processing again cuts nothing more.
		again, err := Process(r.SARIF, o)
		if err != nil {
			t.Fatalf("Process cannot read its own output: %v\n%s", err, r.SARIF)
		}
		if !bytes.Equal(again.SARIF, r.SARIF) {
			t.Errorf("processing twice changes the report:\n%s\n%s", r.SARIF, again.SARIF)
		}
	})
}
