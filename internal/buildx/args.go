package buildx

import (
	"slices"
	"strings"
)

// Secret is a build secret. Value secrets reach buildx through its
// environment (env=VAR), file secrets by path: never a value on the command
// line.
type Secret struct {
	ID string
	// Env is the environment variable that holds the value.
	Env string
	// File is the path of a secret file.
	File string
}

// BuildOptions is one `buildx build`.
type BuildOptions struct {
	Builder        string
	Context        string
	File           string
	Target         string
	Platforms      []string
	Tags           []string
	Labels         []string
	Annotations    []string
	BuildArgs      []string
	BuildContexts  []string
	Secrets        []Secret
	CacheFrom      []string
	CacheTo        []string
	NoCache        bool
	NoCacheFilters []string
	// Provenance is the --provenance value, such as mode=max or false.
	Provenance string
	// SBOM is the --sbom value, "" for none.
	SBOM string
	Push bool
	// PushByDigest pushes the image to this repository by digest only, with
	// no tag: one platform of a build spread over several runners.
	PushByDigest string
	MetadataFile string
}

// BuildArgs is the argv after the buildx binary for a build: one flag and
// its value per element pair, in a fixed order, so the golden files read as
// one argument per line.
func BuildArgs(o BuildOptions) []string {
	args := []string{"build", "--progress=rawjson"}
	add := func(flag string, values ...string) {
		for _, v := range values {
			args = append(args, flag, v)
		}
	}
	if o.Builder != "" {
		add("--builder", o.Builder)
	}
	if o.File != "" {
		add("--file", o.File)
	}
	if o.Target != "" {
		add("--target", o.Target)
	}
	if len(o.Platforms) > 0 {
		add("--platform", strings.Join(o.Platforms, ","))
	}
	if o.PushByDigest == "" {
		add("--tag", o.Tags...)
	}
	add("--label", o.Labels...)
	add("--annotation", o.Annotations...)
	add("--build-arg", o.BuildArgs...)
	add("--build-context", o.BuildContexts...)
	for _, s := range o.Secrets {
		if s.File != "" {
			add("--secret", "id="+s.ID+",src="+s.File)
		} else {
			add("--secret", "id="+s.ID+",env="+s.Env)
		}
	}
	add("--cache-from", o.CacheFrom...)
	add("--cache-to", o.CacheTo...)
	if o.NoCache {
		args = append(args, "--no-cache")
	}
	add("--no-cache-filter", o.NoCacheFilters...)
	if o.Provenance != "" {
		args = append(args, "--provenance="+o.Provenance)
	}
	if o.SBOM != "" {
		args = append(args, "--sbom="+o.SBOM)
	}
	switch {
	case o.PushByDigest != "":
		add("--output", "type=image,name="+o.PushByDigest+",push-by-digest=true,name-canonical=true,push=true")
	case o.Push:
		args = append(args, "--push")
	}
	if o.MetadataFile != "" {
		add("--metadata-file", o.MetadataFile)
	}
	context := o.Context
	if context == "" {
		context = "."
	}
	return append(args, context)
}

// missingPlatforms returns the wanted platforms the builder does not list.
// A builder listing linux/arm64 serves linux/arm64/v8 too.
func missingPlatforms(want, have []string) []string {
	var missing []string
	for _, w := range want {
		alt := strings.TrimSuffix(w, "/v8")
		if !slices.Contains(have, w) && !slices.Contains(have, alt) {
			missing = append(missing, w)
		}
	}
	return missing
}
