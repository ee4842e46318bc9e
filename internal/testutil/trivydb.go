package testutil

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
	bolt "go.etcd.io/bbolt"
)

// PlantedVuln is one advisory WriteTrivyDB puts into a Trivy vulnerability
// database: the OS package Package of Family Release is vulnerable to ID
// below FixedVersion.
type PlantedVuln struct {
	// ID is the vulnerability ID, such as "CVE-2099-0001".
	ID string
	// Family is the OS family as Trivy names it, such as "alpine".
	Family string
	// Release is the major.minor release, such as "3.19".
	Release string
	// Package is the source package name, such as "busybox".
	Package string
	// FixedVersion is the first version without the vulnerability; ""
	// means no fix exists.
	FixedVersion string
	// Severity is "CRITICAL", "HIGH", "MEDIUM", "LOW" or "UNKNOWN".
	Severity string
	// Title is the vulnerability's one-line title.
	Title string
}

// trivyDBMu serializes WriteTrivyDB: trivy-db's pkg/db keeps the open
// database in a package variable.
var trivyDBMu sync.Mutex

// WriteTrivyDB writes a Trivy vulnerability database holding vulns to
// cacheDir/db/trivy.db, with cacheDir/db/metadata.json (schema version 2,
// updated now, next update in a day), so that `trivy --cache-dir cacheDir
// --skip-db-update` scans against it offline.
//
// It repeats the phases of trivy-db's own build, because Trivy reads only
// what they leave behind: the data source and the advisory details with
// the vulnerability IDs and details go in first; then each ID's advisories
// are copied into the "<family> <release>" > package buckets
// (SaveAdvisoryDetails) and its normalized vulnerability is stored
// (PutVulnerability); finally the temporary buckets are deleted.
func WriteTrivyDB(t testing.TB, cacheDir string, vulns ...PlantedVuln) {
	t.Helper()
	if err := writeTrivyDB(filepath.Join(cacheDir, "db"), time.Now(), vulns); err != nil {
		t.Fatalf("writing Trivy DB: %v", err)
	}
}

func writeTrivyDB(dir string, now time.Time, vulns []PlantedVuln) (err error) {
	trivyDBMu.Lock()
	defer trivyDBMu.Unlock()
	for _, v := range vulns {
		if v.ID == "" || v.Family == "" || v.Release == "" || v.Package == "" {
			return fmt.Errorf("planted vulnerability %+v lacks an ID, Family, Release or Package", v)
		}
		if _, err := types.NewSeverity(v.Severity); err != nil {
			return fmt.Errorf("planted vulnerability %s: %w", v.ID, err)
		}
	}
	if err := db.Init(dir); err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	dbc := db.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		for _, v := range vulns {
			platform := v.Family + " " + v.Release
			src := types.DataSource{ID: types.SourceID(v.Family), Name: "phialo test advisories", URL: "https://example.invalid/" + v.Family}
			if err := dbc.PutDataSource(tx, platform, src); err != nil {
				return err
			}
			if err := dbc.PutAdvisoryDetail(tx, v.ID, v.Package, []string{platform}, types.Advisory{FixedVersion: v.FixedVersion}); err != nil {
				return err
			}
			if err := dbc.PutVulnerabilityID(tx, v.ID); err != nil {
				return err
			}
			sev, _ := types.NewSeverity(v.Severity)
			detail := types.VulnerabilityDetail{ID: v.ID, Title: v.Title, Description: v.Title, Severity: sev}
			if err := dbc.PutVulnerabilityDetail(tx, v.ID, types.SourceID(v.Family), detail); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(vulns) > 0 {
		if err := optimizeTrivyDB(dbc); err != nil {
			return err
		}
	}
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version:    db.SchemaVersion,
		NextUpdate: now.UTC().Add(24 * time.Hour),
		UpdatedAt:  now.UTC(),
	})
}

// optimizeTrivyDB is the second and last phase of trivy-db's build: the
// advisories and normalized vulnerabilities Trivy reads are derived from
// the temporary buckets, which are then deleted.
func optimizeTrivyDB(dbc db.Config) error {
	vc := vulnerability.New(dbc)
	err := dbc.ForEachVulnerabilityID(func(tx *bolt.Tx, id string) error {
		if err := dbc.SaveAdvisoryDetails(tx, id); err != nil {
			return err
		}
		details := vc.GetDetails(id)
		if len(details) == 0 {
			return nil
		}
		return dbc.PutVulnerability(tx, id, vc.Normalize(id, details))
	})
	if err != nil {
		return err
	}
	if err := dbc.DeleteVulnerabilityIDBucket(); err != nil {
		return err
	}
	if err := dbc.DeleteVulnerabilityDetailBucket(); err != nil {
		return err
	}
	return dbc.DeleteAdvisoryDetailBucket()
}
