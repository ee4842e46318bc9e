package meta

import (
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	pep440 "github.com/aquasecurity/go-pep440-version"
)

// parsedVersion is a release version read from a tag name.
type parsedVersion struct {
	// fields are the template fields a pattern sees: raw, version, major,
	// minor, patch (and for semver prerelease and build).
	fields     map[string]any
	prerelease bool
}

// parseSemver reads s as Semantic Versioning 2.0 with an optional leading
// "v" or "=", as node-semver's valid() does.
func parseSemver(s string) (parsedVersion, bool) {
	t := strings.TrimSpace(s)
	t = strings.TrimLeft(t, "=v")
	v, err := semver.StrictNewVersion(t)
	if err != nil {
		return parsedVersion{}, false
	}
	version := strconv.FormatUint(v.Major(), 10) + "." + strconv.FormatUint(v.Minor(), 10) + "." + strconv.FormatUint(v.Patch(), 10)
	if v.Prerelease() != "" {
		version += "-" + v.Prerelease()
	}
	return parsedVersion{
		fields: map[string]any{
			"raw":        strings.TrimSpace(s),
			"version":    version,
			"major":      v.Major(),
			"minor":      v.Minor(),
			"patch":      v.Patch(),
			"prerelease": v.Prerelease(),
			"build":      v.Metadata(),
		},
		prerelease: v.Prerelease() != "",
	}, true
}

// parsePep440 reads s as a PEP 440 version. Pre-, post- and development
// releases count as pre-releases, as in docker/metadata-action.
func parsePep440(s string) (parsedVersion, bool) {
	v, err := pep440.Parse(s)
	if err != nil {
		return parsedVersion{}, false
	}
	release := v.BaseVersion()
	if _, r, ok := strings.Cut(release, "!"); ok {
		release = r
	}
	parts := strings.Split(release, ".")
	part := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return "0"
	}
	return parsedVersion{
		fields: map[string]any{
			"raw":     s,
			"version": v.String(),
			"major":   part(0),
			"minor":   part(1),
			"patch":   part(2),
		},
		prerelease: v.IsPreRelease() || v.IsPostRelease(),
	}, true
}

// tagVersion reads a git tag name as semver, else PEP 440.
func tagVersion(tag string) (parsedVersion, bool) {
	if tag == "" {
		return parsedVersion{}, false
	}
	if v, ok := parseSemver(tag); ok {
		return v, true
	}
	return parsePep440(tag)
}
