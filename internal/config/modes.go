package config

import (
	"fmt"
	"slices"
	"strings"
)

// Defaults are the defaults action.yml declares for inputs whose default
// is not empty. GitHub's runner passes them to every run, so an input that
// still holds its default was not set by the workflow. A test keeps this
// table and action.yml equal.
var Defaults = map[string]string{
	"github-token":        "${{ github.token }}",
	"context":             ".",
	"platforms":           DefaultPlatforms,
	"buildkit-image":      DefaultBuildKitImage,
	"binfmt-image":        DefaultBinfmtImage,
	"cache":               "gha,registry",
	"cache-mode":          "max",
	"force-rebuild":       "false",
	"sbom-attestation":    "false",
	"sbom":                "true",
	"sbom-format":         "spdx-json",
	"sbom-dir":            "sbom",
	"sbom-release-assets": "false",
	"dependency-snapshot": "false",
	"scan":                "true",
	"scan-severity":       "CRITICAL,HIGH",
	"scan-ignore-unfixed": "false",
	"scan-fail-on":        "none",
	"upload-sarif":        "true",
	"sarif-dir":           "sarif",
	"mode":                "build",
	"cleanup-keep":        "5",
	"cleanup-untagged":    "true",
	"cleanup-dry-run":     "false",
	"cleanup-pr-tags":     "false",
	"dry-run":             "false",
	"push-by-digest":      "false",
	"digests-dir":         "digests",
}

// common are the inputs every mode reads.
var common = []string{"images", "github-token", "dry-run", "mode", "registry", "username", "password", "buildkitd-config"}

// modeInputs lists, per mode, the inputs it reads besides the common ones.
// The README documents the same.
var modeInputs = map[string][]string{
	"build": nil, // every input
	"cleanup": {"tags", "flavor", "sep-tags", "short-sha-length", "date-format", "pr-head-sha",
		"cleanup", "cleanup-keep", "cleanup-untagged", "cleanup-older-than", "cleanup-tags",
		"cleanup-exclude-tags", "cleanup-dry-run", "cleanup-package", "cleanup-pr-tags", "cache-ref"},
	"migrate": {"migrate-from", "migrate-tags", "migrate-username", "migrate-password"},
	"merge": {"tags", "flavor", "labels", "annotations", "annotations-levels", "sep-tags", "sep-labels",
		"sep-annotations", "short-sha-length", "date-format", "pr-head-sha", "push", "digests", "digests-dir",
		"sbom", "sbom-format", "sbom-dir", "sbom-release-assets", "dependency-snapshot", "scan", "scan-severity",
		"scan-ignore-unfixed", "scan-fail-on", "trivy-db-repository", "trivy-cache-dir", "upload-sarif", "sarif-dir",
		"cleanup", "cleanup-keep", "cleanup-untagged", "cleanup-older-than", "cleanup-tags", "cleanup-exclude-tags",
		"cleanup-dry-run", "cleanup-package", "cleanup-pr-tags", "cache-ref", "context", "file"},
}

// ignoredInputs warns of inputs the workflow set that the mode does not
// read (an input at its declared default was not set).
func ignoredInputs(get Getter, names []string, mode string) []string {
	reads, ok := modeInputs[mode]
	if !ok || reads == nil {
		return nil
	}
	var warnings []string
	for _, name := range names {
		if slices.Contains(common, name) || slices.Contains(reads, name) {
			continue
		}
		v := strings.TrimSpace(get(name))
		if v == "" || v == Defaults[name] {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("input %q is set but mode %s does not read it", name, mode))
	}
	return warnings
}
