package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cyclonedx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	spdxv23 "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/barde/phialo-image-action/internal/testutil"
)

const plantedCVE = "CVE-2099-0001"

// scanAction prepares a run that builds the two-platform "Alpine" fixture of
// testdata/scan, with SBOMs and a scan against a vulnerability database
// that lists plantedCVE for its busybox.
func scanAction(t *testing.T, gh *testutil.GitHub, image string) *action {
	t.Helper()
	a := newAction(t, "push-main", image, gh)
	a.env["INPUT_CONTEXT"] = filepath.Join(root, "testdata", "scan")
	a.env["INPUT_SBOM"] = "true"
	a.env["INPUT_SCAN"] = "true"
	a.env["INPUT_SBOM-FORMAT"] = "spdx-json,cyclonedx-json"
	cache := t.TempDir()
	testutil.WriteTrivyDB(t, cache, testutil.PlantedVuln{
		ID: plantedCVE, Family: "alpine", Release: "3.19", Package: "busybox",
		FixedVersion: "1.36.1-r1", Severity: "CRITICAL", Title: "busybox: planted for the tests",
	})
	a.env["INPUT_TRIVY-CACHE-DIR"] = cache
	// No network for the database here: Trivy reads its flags from TRIVY_*.
	a.env["TRIVY_SKIP_DB_UPDATE"] = "true"
	a.env["TRIVY_SKIP_JAVA_DB_UPDATE"] = "true"
	return a
}

func TestSBOMAndScanEveryPlatform(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := scanAction(t, gh, "e2e/scan")
	r := a.run(t).ok(t)
	r.noLeftovers(t)

	// SPDX 2.3 and CycloneDX files for both platforms, listing busybox,
	// named relative to the workspace as the job's later steps see them.
	files := strings.Split(r.outputs["sbom-files"], "\n")
	ws := a.env["GITHUB_WORKSPACE"]
	for _, p := range []string{"linux-amd64", "linux-arm64"} {
		spdx := filepath.Join("sbom", "scan_"+p+".spdx.json")
		cdx := filepath.Join("sbom", "scan_"+p+".cyclonedx.json")
		if !slices.Contains(files, spdx) || !slices.Contains(files, cdx) {
			t.Errorf("sbom-files lacks %s's files: %q", p, files)
		}
		checkSPDX(t, filepath.Join(ws, spdx), "busybox", "1.36.1-r0")
		checkCycloneDX(t, filepath.Join(ws, cdx), "busybox", "1.36.1-r0")
	}
	for _, want := range []string{"#### SBOM", "| linux/amd64 | 1 |", "| linux/arm64 | 1 |"} {
		if !strings.Contains(r.summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.summary)
		}
	}

	// SARIF for both platforms with the planted CVE and distinct ids.
	sarifs := strings.Split(r.outputs["sarif-files"], "\n")
	if len(sarifs) != 2 {
		t.Fatalf("sarif-files = %q, want one per platform", sarifs)
	}
	ids := map[string]bool{}
	for _, f := range sarifs {
		if filepath.IsAbs(f) || !strings.HasPrefix(f, "sarif"+string(filepath.Separator)) {
			t.Errorf("sarif-files names %s, want a path relative to the workspace", f)
		}
		id, rules := readSARIF(t, filepath.Join(ws, f))
		ids[id] = true
		if !slices.Contains(rules, plantedCVE) {
			t.Errorf("%s lacks %s: %q", f, plantedCVE, rules)
		}
	}
	image := registryHost + "/e2e/scan"
	if !ids[image+"/linux/amd64/"] || !ids[image+"/linux/arm64/"] {
		t.Errorf("automation ids = %v, want one per platform", ids)
	}
	var vulns map[string]map[string]int
	if err := json.Unmarshal([]byte(r.outputs["vulnerabilities"]), &vulns); err != nil {
		t.Fatalf("vulnerabilities output %q: %v", r.outputs["vulnerabilities"], err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if vulns[p]["CRITICAL"] != 1 || vulns[p]["HIGH"] != 0 {
			t.Errorf("vulnerabilities[%s] = %v, want 1 CRITICAL, 0 HIGH", p, vulns[p])
		}
	}
	if !strings.Contains(r.summary, "| "+plantedCVE+" | CRITICAL | busybox | 1.36.1-r0 | 1.36.1-r1 |") {
		t.Errorf("summary lacks the top finding:\n%s", r.summary)
	}

	// Both uploaded to code scanning for the commit and ref of the push.
	ups := gh.SARIFs()
	if len(ups) != 2 {
		t.Fatalf("%d SARIF uploads, want 2", len(ups))
	}
	for _, u := range ups {
		if u.CommitSHA != sha || u.Ref != "refs/heads/main" {
			t.Errorf("upload for %s %s, want %s refs/heads/main", u.CommitSHA, u.Ref, sha)
		}
		var doc struct {
			Version string            `json:"version"`
			Runs    []json.RawMessage `json:"runs"`
		}
		if err := json.Unmarshal(u.SARIF, &doc); err != nil || doc.Version != "2.1.0" || len(doc.Runs) != 1 {
			t.Errorf("uploaded SARIF is not a SARIF 2.1.0 document with one run (%v)", err)
		}
	}
}

func TestScanFindingsAndFailures(t *testing.T) {
	needE2E(t)
	t.Run("code scanning refused: a warning naming the permission", func(t *testing.T) {
		gh := testutil.NewGitHub(t)
		gh.SARIFStatus = 403
		a := scanAction(t, gh, "e2e/scan-refused")
		a.env["INPUT_SBOM"] = "false"
		r := a.run(t).ok(t)
		if !strings.Contains(r.log, "::warning::code scanning upload of linux/amd64 refused") || !strings.Contains(r.log, "security-events: write") {
			t.Errorf("no warning naming security-events: write:\n%s", r.log)
		}
	})
	t.Run("scan-fail-on critical fails after everything ran", func(t *testing.T) {
		gh := testutil.NewGitHub(t)
		a := scanAction(t, gh, "e2e/scan-fail")
		a.env["INPUT_SCAN-FAIL-ON"] = "critical"
		r := a.run(t)
		if r.code == 0 {
			t.Fatalf("the action succeeded with a critical finding and scan-fail-on critical")
		}
		if !strings.Contains(r.log, "scan-fail-on critical: the scan found linux/amd64: 1 CRITICAL") {
			t.Errorf("the failure does not say why:\n%s", r.log)
		}
		if r.outputs["digest"] == "" || r.outputs["sbom-files"] == "" || len(gh.SARIFs()) != 2 {
			t.Errorf("outputs, SBOMs or uploads missing after a scan-fail-on failure: %v", r.outputs)
		}
	})
	t.Run("scanner failure is a warning, never a lost build", func(t *testing.T) {
		gh := testutil.NewGitHub(t)
		a := scanAction(t, gh, "e2e/scan-nodb")
		a.env["INPUT_TRIVY-CACHE-DIR"] = t.TempDir() // no database
		a.env["INPUT_SCAN-FAIL-ON"] = "critical"
		r := a.run(t).ok(t)
		if !strings.Contains(r.log, "::warning::scan of linux/amd64:") || !strings.Contains(r.summary, "scan failed") {
			t.Errorf("no warning for the failed scan:\n%s\nsummary:\n%s", r.log, r.summary)
		}
		if r.outputs["digest"] == "" || r.outputs["sbom-files"] == "" {
			t.Errorf("the build or the SBOMs were lost: %v", r.outputs)
		}
	})
}

// checkSPDX checks an SPDX 2.3 JSON document's required fields and that it
// lists the package.
func checkSPDX(t *testing.T, path, pkg, version string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion       string `json:"spdxVersion"`
		DataLicense       string `json:"dataLicense"`
		SPDXID            string `json:"SPDXID"`
		Name              string `json:"name"`
		DocumentNamespace string `json:"documentNamespace"`
		CreationInfo      struct {
			Created  string   `json:"created"`
			Creators []string `json:"creators"`
		} `json:"creationInfo"`
		Packages []struct {
			SPDXID           string `json:"SPDXID"`
			Name             string `json:"name"`
			VersionInfo      string `json:"versionInfo"`
			DownloadLocation string `json:"downloadLocation"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	// The SPDX project's own reader takes it as an SPDX 2.3 document.
	var v23 spdxv23.Document
	if err := spdxjson.ReadInto(bytes.NewReader(data), &v23); err != nil {
		t.Errorf("%s is not an SPDX 2.3 JSON document: %v", path, err)
	}
	if v23.SPDXVersion != "SPDX-2.3" || len(v23.Packages) == 0 {
		t.Errorf("%s read as SPDX %q with %d packages", path, v23.SPDXVersion, len(v23.Packages))
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		doc.Name == "" || doc.DocumentNamespace == "" || doc.CreationInfo.Created == "" || len(doc.CreationInfo.Creators) == 0 {
		t.Errorf("%s lacks SPDX 2.3 document fields: %+v", path, doc)
	}
	found := false
	for _, p := range doc.Packages {
		if p.SPDXID == "" || p.DownloadLocation == "" {
			t.Errorf("%s: package %q lacks SPDXID or downloadLocation", path, p.Name)
		}
		found = found || p.Name == pkg && p.VersionInfo == version
	}
	if !found {
		t.Errorf("%s does not list %s %s", path, pkg, version)
	}
}

// checkCycloneDX reads a CycloneDX JSON document with CycloneDX's own
// library and checks that it lists the package, with a package URL.
func checkCycloneDX(t *testing.T, path, pkg, version string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bom cyclonedx.BOM
	if err := cyclonedx.NewBOMDecoder(f, cyclonedx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("%s is not a CycloneDX JSON document: %v", path, err)
	}
	if bom.BOMFormat != cyclonedx.BOMFormat || bom.SpecVersion < cyclonedx.SpecVersion1_4 || bom.Metadata == nil || bom.Components == nil {
		t.Fatalf("%s: bomFormat %q, spec version %s, metadata %v: want a CycloneDX 1.4 or later BOM with components", path, bom.BOMFormat, bom.SpecVersion, bom.Metadata != nil)
	}
	var found []string
	for _, c := range *bom.Components {
		if c.Name == pkg {
			found = append(found, c.Version)
			if c.Version == version && !strings.HasPrefix(c.PackageURL, "pkg:apk/alpine/"+pkg+"@"+version) {
				t.Errorf("%s: %s %s has package URL %q", path, pkg, version, c.PackageURL)
			}
		}
	}
	if !slices.Contains(found, version) {
		t.Errorf("%s lists %s in versions %q, want %s among %d components", path, pkg, found, version, len(*bom.Components))
	}
}

// readSARIF returns a SARIF file's automation id and its rule ids.
func readSARIF(t *testing.T, path string) (string, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			AutomationDetails struct {
				ID string `json:"id"`
			} `json:"automationDetails"`
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("%s: not a SARIF log with one run (%v)", path, err)
	}
	var rules []string
	for _, r := range doc.Runs[0].Results {
		rules = append(rules, r.RuleID)
	}
	return doc.Runs[0].AutomationDetails.ID, rules
}

func TestReleaseAssetsAndDependencySnapshot(t *testing.T) {
	needE2E(t)
	gh := testutil.NewGitHub(t)
	a := scanAction(t, gh, "e2e/release")
	data, err := os.ReadFile(filepath.Join(root, "testdata", "events", "release.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		a.env[k] = v
	}
	a.env["GITHUB_EVENT_PATH"] = filepath.Join(root, "testdata", "events", "release.json")
	a.env["INPUT_SCAN"] = "false"
	a.env["INPUT_SBOM-RELEASE-ASSETS"] = "true"
	a.env["INPUT_DEPENDENCY-SNAPSHOT"] = "true"
	r := a.run(t).ok(t)
	if strings.Contains(r.log, "::warning::") {
		t.Errorf("warnings in the log:\n%s", r.log)
	}

	assets := gh.Assets()
	for _, f := range strings.Split(r.outputs["sbom-files"], "\n") {
		want, err := os.ReadFile(filepath.Join(a.env["GITHUB_WORKSPACE"], f))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := assets[filepath.Base(f)]; !ok || string(got) != string(want) {
			t.Errorf("release asset %s missing or different (have %d assets)", filepath.Base(f), len(assets))
		}
	}
	if len(assets) != 4 {
		t.Errorf("%d release assets, want 4 (2 platforms x 2 formats)", len(assets))
	}

	snaps := gh.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("%d dependency snapshots, want 1", len(snaps))
	}
	var snap struct {
		Version   int    `json:"version"`
		Sha       string `json:"sha"`
		Ref       string `json:"ref"`
		Manifests map[string]struct {
			Resolved map[string]struct {
				PackageURL string `json:"package_url"`
			} `json:"resolved"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(snaps[0], &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Sha != sha || snap.Ref != "refs/tags/v1.2.3" || len(snap.Manifests) != 1 {
		t.Errorf("snapshot for %s %s with %d manifests", snap.Sha, snap.Ref, len(snap.Manifests))
	}
	found := false
	for _, m := range snap.Manifests {
		for _, p := range m.Resolved {
			found = found || strings.HasPrefix(p.PackageURL, "pkg:apk/alpine/busybox@1.36.1-r0")
		}
	}
	if !found {
		t.Errorf("the snapshot does not list busybox: %s", snaps[0])
	}
}
