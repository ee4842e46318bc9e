package testutil

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

func TestWriteTrivyDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := time.Now().UTC()
	WriteTrivyDB(t, dir,
		PlantedVuln{ID: "CVE-2099-0001", Family: "alpine", Release: "3.19", Package: "busybox", FixedVersion: "1.36.1-r1", Severity: "CRITICAL", Title: "busybox: planted"},
		PlantedVuln{ID: "CVE-2099-0002", Family: "alpine", Release: "3.19", Package: "musl", Severity: "LOW", Title: "musl: unfixed"},
	)

	db, err := bbolt.Open(filepath.Join(dir, "db", "trivy.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Every key of the DB as bucket/.../key = value.
	got := map[string]string{}
	var walk func(prefix string, b *bbolt.Bucket) error
	walk = func(prefix string, b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			got[prefix+string(k)] = string(v)
			return nil
		})
	}
	var roots []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			roots = append(roots, string(name))
			return walk(string(name)+"/", b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(roots)
	// Trivy reads these; the build's temporary buckets (vulnerability-id,
	// vulnerability-detail, advisory-detail) must be gone.
	if diff := cmp.Diff([]string{"alpine 3.19", "data-source", "vulnerability"}, roots); diff != "" {
		t.Errorf("root buckets (-want +got):\n%s", diff)
	}
	want := map[string]any{
		"alpine 3.19/busybox/CVE-2099-0001": map[string]any{"FixedVersion": "1.36.1-r1"},
		"alpine 3.19/musl/CVE-2099-0002":    map[string]any{},
		"data-source/alpine 3.19":           map[string]any{"ID": "alpine", "Name": "phialo test advisories", "URL": "https://example.invalid/alpine"},
		"vulnerability/CVE-2099-0001": map[string]any{
			"Title": "busybox: planted", "Description": "busybox: planted", "Severity": "CRITICAL",
			"VendorSeverity": map[string]any{"alpine": float64(4)},
		},
		"vulnerability/CVE-2099-0002": map[string]any{
			"Title": "musl: unfixed", "Description": "musl: unfixed", "Severity": "LOW",
			"VendorSeverity": map[string]any{"alpine": float64(1)},
		},
	}
	decoded := map[string]any{}
	for k, v := range got {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		decoded[k] = x
	}
	if diff := cmp.Diff(want, decoded); diff != "" {
		t.Errorf("DB contents (-want +got):\n%s", diff)
	}

	data, err := os.ReadFile(filepath.Join(dir, "db", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Version               int
		NextUpdate, UpdatedAt time.Time
	}
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	if md.Version != 2 {
		t.Errorf("metadata Version = %d, want 2", md.Version)
	}
	if md.UpdatedAt.Before(before.Add(-time.Second)) || !md.NextUpdate.After(time.Now()) {
		t.Errorf("metadata is not fresh: UpdatedAt %s, NextUpdate %s", md.UpdatedAt, md.NextUpdate)
	}
}

func TestWriteTrivyDBRejectsIncompleteVulns(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]PlantedVuln{
		"no package":       {ID: "CVE-2099-0001", Family: "alpine", Release: "3.19", Severity: "HIGH"},
		"unknown severity": {ID: "CVE-2099-0001", Family: "alpine", Release: "3.19", Package: "busybox", Severity: "SEVERE"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := writeTrivyDB(filepath.Join(t.TempDir(), "db"), time.Now(), []PlantedVuln{v}); err == nil {
				t.Errorf("writeTrivyDB(%+v) succeeded", v)
			}
		})
	}
}

func TestWriteTrivyDBEmpty(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	WriteTrivyDB(t, dir)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		if _, err := os.Stat(filepath.Join(dir, "db", f)); err != nil {
			t.Error(err)
		}
	}
}
