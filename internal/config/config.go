// Package config reads and validates the action's inputs. Every bad input is
// reported at once, each with the input's name, the value and what is
// accepted.
package config

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/pelletier/go-toml/v2"

	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
)

// Config is the typed, validated set of inputs.
type Config struct {
	Images      []meta.Image
	Rules       []meta.Rule
	Flavor      meta.Flavor
	Labels      []string
	Annotations []string
	// AnnotationLevels are the buildx levels annotations are written for.
	AnnotationLevels []string
	// SepTags, SepLabels and SepAnnotations join the list outputs.
	SepTags, SepLabels, SepAnnotations string
	ShortSHALength                     int
	// PRHeadSHA describes a pull request by its head commit instead of the
	// merge commit GitHub creates.
	PRHeadSHA bool
	// DateFormat is the moment.js format of the default date tag.
	DateFormat  string
	GitHubToken string
	DryRun      bool
	// Push is the resolved push decision; PushReason says why when it was
	// not asked for explicitly.
	Push       bool
	PushReason string
	// Build holds the inputs of the build step.
	Build Build
	// Supply holds the inputs of the SBOM and scan steps.
	Supply Supply
	// Mode is the job: build, merge, cleanup or migrate.
	Mode string
	// Distributed holds the inputs of builds spread over several runners.
	Distributed Distributed
	// Cleanup and Migrate hold the inputs of those steps.
	Cleanup Cleanup
	Migrate Migrate
	// Warnings are about inputs the mode ignores.
	Warnings []string
}

// Cleanup is the configuration of registry housekeeping.
type Cleanup struct {
	// Enabled is the resolved decision; "" in the input means on for
	// default-branch builds after a successful push (Auto).
	Enabled     bool
	Auto        bool
	Keep        int
	Untagged    bool
	OlderThan   time.Duration
	Tags        []string
	ExcludeTags []string
	DryRun      bool
	// Package overrides the container package name.
	Package string
	// PRTags removes pr-<n> on a closed pull request.
	PRTags bool
}

// Distributed is the configuration of a build spread over runners: each
// pushes one platform by digest, a last job merges them.
type Distributed struct {
	PushByDigest bool
	// Digests are the digests to merge (mode merge), from the digests input
	// and the files of DigestsDir.
	Digests    []string
	DigestsDir string
}

// Migrate is the configuration of the migrate mode.
type Migrate struct {
	From               string
	Tags               []string
	Username, Password string
}

// Supply is the configuration of the SBOM, scan and upload steps.
type Supply struct {
	SBOM bool
	// SBOMFormats are sbom-format entries: spdx-json, cyclonedx-json, syft-json.
	SBOMFormats        []string
	SBOMDir            string
	SBOMReleaseAssets  bool
	DependencySnapshot bool
	Scan               bool
	// ScanSeverities are the severities kept, upper case.
	ScanSeverities    []string
	ScanIgnoreUnfixed bool
	// ScanFailOn is "none", "critical" or "high".
	ScanFailOn        string
	TrivyDBRepository string
	TrivyCacheDir     string
	UploadSARIF       bool
	SARIFDir          string
}

// Build is the configuration of `buildx build` and its surroundings.
type Build struct {
	Context, File, Target string
	BuildArgs             []string
	BuildContexts         []string
	// Secrets are id=value pairs; SecretFiles id=path pairs.
	Secrets, SecretFiles []KV
	Platforms            []string
	// Registry, Username and Password are the login; no password, no login.
	Registry, Username, Password string
	Builder, BuildKitEndpoint    string
	// BuildKitImage is the image of the BuildKit container the action
	// starts on the Docker daemon; BinfmtImage installs QEMU emulators.
	BuildKitImage, BinfmtImage string
	// BuildKitdConfig is buildkitd.toml for that container (mirrors,
	// private CAs), parsed as TOML when read.
	BuildKitdConfig string
	// Cache lists the enabled cache kinds: gha, registry, inline.
	Cache                           []string
	CacheScope, CacheRef, CacheMode string
	ForceRebuild                    bool
	// ForceRebuildReason says where force-rebuild came from.
	ForceRebuildReason string
	// Provenance is the --provenance value; "" decides by the repository's
	// visibility (mode=max public, mode=min private).
	Provenance      string
	SBOMAttestation string
	NoCacheFilters  []string
	BuildTimeout    time.Duration
}

// KV is an id=value input entry.
type KV struct{ Key, Value string }

// Defaults that the README and action.yml document.
const (
	DefaultDateFormat       = "YYYYMMDD"
	DefaultShortSHALength   = 7
	DefaultAnnotationLevels = "manifest,index"
)

// Getter returns the raw value of an input by name, "" when unset.
type Getter func(name string) string

// Load reads every input through get and the environment through getenv,
// with ev for the defaults that depend on the event.
func Load(get Getter, getenv func(string) string, ev *ghevent.Context) (*Config, error) {
	// Every input is read below, whatever the mode; the names read are the
	// inputs the mode warnings look at.
	var names []string
	raw := get
	get = func(name string) string {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return raw(name)
	}
	l := &loader{get: get}
	c := &Config{}
	trimmed := func(name string) string { return strings.TrimSpace(get(name)) }

	c.DryRun = l.boolean("dry-run", false)
	c.PRHeadSHA = l.boolean("pr-head-sha", strings.EqualFold(getenv("DOCKER_METADATA_PR_HEAD_SHA"), "true"))
	c.GitHubToken = trimmed("github-token")

	c.DateFormat = trimmed("date-format")
	if c.DateFormat == "" {
		c.DateFormat = DefaultDateFormat
	} else if strings.ContainsAny(c.DateFormat, "'\"{}\n") {
		l.errorf("date-format", c.DateFormat, "a moment.js format such as YYYYMMDD or YYYYMMDD-HHmmss, without quotes or braces")
	}

	imageLines := meta.SplitLines(get("images"))
	if len(imageLines) == 0 {
		if ev.Repository == "" {
			l.errs = append(l.errs, errors.New(`input "images": empty and GITHUB_REPOSITORY is not set; want one image per line, such as ghcr.io/owner/app`))
		} else {
			imageLines = []string{"ghcr.io/" + strings.ToLower(ev.Repository)}
		}
	}
	var err error
	c.Images, err = meta.ParseImages(imageLines)
	l.add(err)

	if tagLines := meta.SplitLines(get("tags")); len(tagLines) > 0 {
		c.Rules, err = meta.ParseRules(tagLines)
	} else {
		c.Rules, err = meta.DefaultRules(c.DateFormat)
	}
	l.add(err)
	c.Flavor, err = meta.ParseFlavor(meta.SplitLines(get("flavor")))
	l.add(err)
	c.Labels = meta.SplitLines(get("labels"))
	c.Annotations = meta.SplitLines(get("annotations"))

	levels := trimmed("annotations-levels")
	if levels == "" {
		levels = getenv("DOCKER_METADATA_ANNOTATIONS_LEVELS")
	}
	if levels == "" {
		levels = DefaultAnnotationLevels
	}
	for _, lvl := range strings.Split(levels, ",") {
		switch lvl = strings.TrimSpace(lvl); lvl {
		case "manifest", "index", "manifest-descriptor", "index-descriptor":
			c.AnnotationLevels = append(c.AnnotationLevels, lvl)
		case "":
		default:
			l.errorf("annotations-levels", lvl, "a comma-separated list of manifest, index, manifest-descriptor, index-descriptor")
		}
	}

	c.SepTags = separator(get("sep-tags"))
	c.SepLabels = separator(get("sep-labels"))
	c.SepAnnotations = separator(get("sep-annotations"))

	c.ShortSHALength = DefaultShortSHALength
	ssl := trimmed("short-sha-length")
	if ssl == "" {
		ssl = getenv("DOCKER_METADATA_SHORT_SHA_LENGTH")
	}
	if ssl != "" {
		n, err := strconv.Atoi(ssl)
		if err != nil || n < 1 || n > 40 {
			l.errorf("short-sha-length", ssl, "a whole number from 1 to 40")
		} else {
			c.ShortSHALength = n
		}
	}

	switch p := strings.ToLower(trimmed("push")); p {
	case "", "auto":
		switch {
		case c.DryRun:
			c.Push, c.PushReason = false, "dry-run"
		case ev.IsFork() && ev.EventName == "pull_request_target":
			c.Push, c.PushReason = false, "pull request from a fork (pull_request_target: a fork's code is never pushed with the base repository's token)"
		case ev.IsFork():
			c.Push, c.PushReason = false, "pull request from a fork (its token cannot write packages)"
		default:
			c.Push = true
		}
	default:
		c.Push = l.boolean("push", true)
		if c.DryRun && c.Push {
			c.Push, c.PushReason = false, "dry-run"
		}
	}
	c.Build = l.build(get, getenv, ev, c)
	c.Supply = l.supply(get, ev)
	c.Mode = strings.ToLower(trimmed("mode"))
	switch c.Mode {
	case "":
		c.Mode = "build"
	case "build", "merge", "cleanup", "migrate":
	default:
		l.errorf("mode", c.Mode, "build, merge, cleanup or migrate")
	}
	c.Distributed = l.distributed(get, ev, c)
	c.Cleanup = l.cleanup(get, c.Mode)
	c.Migrate = l.migrate(get, c.Mode)
	c.Warnings = ignoredInputs(raw, names, c.Mode)
	return c, errors.Join(l.errs...)
}

// DefaultBuildKitImage is the BuildKit image the action starts on the
// Docker daemon: the one buildx's docker-container driver uses.
const DefaultBuildKitImage = "moby/buildkit:buildx-stable-1"

// DefaultBinfmtImage installs QEMU emulators. Its tags follow
// tonistiigi/binfmt's release scheme, qemu-v<QEMU version>-<build>.
const DefaultBinfmtImage = "tonistiigi/binfmt:qemu-v10.2.3-68"

// DefaultPlatforms is the platforms input's default.
const DefaultPlatforms = "linux/amd64,linux/arm64"

func (l *loader) build(get Getter, getenv func(string) string, ev *ghevent.Context, c *Config) Build {
	trimmed := func(name string) string { return strings.TrimSpace(get(name)) }
	b := Build{
		Context:          trimmed("context"),
		File:             trimmed("file"),
		Target:           trimmed("target"),
		BuildArgs:        meta.SplitLines(get("build-args")),
		BuildContexts:    meta.SplitLines(get("build-contexts")),
		Builder:          trimmed("builder"),
		BuildKitEndpoint: trimmed("buildkit-endpoint"),
		BuildKitImage:    trimmed("buildkit-image"),
		BinfmtImage:      trimmed("binfmt-image"),
		BuildKitdConfig:  get("buildkitd-config"),
		CacheScope:       trimmed("cache-scope"),
		CacheRef:         trimmed("cache-ref"),
		Provenance:       trimmed("provenance"),
		NoCacheFilters:   splitList(get("no-cache-filters")),
	}
	if b.Context == "" {
		b.Context = "."
	}
	for _, a := range b.BuildArgs {
		if k, _, ok := strings.Cut(a, "="); !ok || strings.TrimSpace(k) == "" {
			l.errorf("build-args", a, "NAME=value, one per line")
		}
	}
	for _, a := range b.BuildContexts {
		if k, _, ok := strings.Cut(a, "="); !ok || strings.TrimSpace(k) == "" {
			l.errorf("build-contexts", a, "name=path or name=docker-image://ref, one per line")
		}
	}
	b.Secrets = l.pairs("secrets", get("secrets"), "id=value, one per line (the value is never shown)", true)
	b.SecretFiles = l.pairs("secret-files", get("secret-files"), "id=path, one per line", false)

	platforms := trimmed("platforms")
	if platforms == "" {
		platforms = DefaultPlatforms
	}
	for _, p := range splitList(platforms) {
		if _, err := v1.ParsePlatform(p); err != nil || strings.Count(p, "/") < 1 {
			l.errorf("platforms", p, "os/arch[/variant] such as linux/amd64 or linux/arm64, separated by commas")
			continue
		}
		b.Platforms = append(b.Platforms, p)
	}

	if len(c.Images) > 0 {
		b.Registry, _ = registryOf(c.Images[0].Name)
	}
	if r := trimmed("registry"); r != "" {
		b.Registry = r
	}
	b.Username = trimmed("username")
	if b.Username == "" {
		b.Username = ev.Actor
	}
	b.Password = trimmed("password")
	if b.Password == "" && b.Registry == "ghcr.io" {
		b.Password = c.GitHubToken
	}

	if e := b.BuildKitEndpoint; e != "" && !strings.HasPrefix(e, "unix://") && !strings.HasPrefix(e, "tcp://") {
		l.errorf("buildkit-endpoint", e, "unix:///path/to/buildkitd.sock or tcp://host:port")
	}
	if b.BuildKitImage == "" {
		b.BuildKitImage = DefaultBuildKitImage
	}
	if b.BinfmtImage == "" {
		b.BinfmtImage = DefaultBinfmtImage
	}
	for _, in := range [][2]string{{"buildkit-image", b.BuildKitImage}, {"binfmt-image", b.BinfmtImage}} {
		if _, err := name.ParseReference(in[1]); err != nil {
			l.errorf(in[0], in[1], "an image reference such as "+Defaults[in[0]])
		}
	}
	if strings.TrimSpace(b.BuildKitdConfig) != "" {
		var v map[string]any
		if err := toml.Unmarshal([]byte(b.BuildKitdConfig), &v); err != nil {
			l.errs = append(l.errs, fmt.Errorf(`input "buildkitd-config": not valid TOML (%v); want buildkitd.toml's content, such as [registry."mirror.example:5000"] with ca = ["/path/ca.pem"]`, err))
		}
	}
	if b.Builder != "" && b.BuildKitEndpoint != "" {
		l.errs = append(l.errs, fmt.Errorf(`inputs "builder" and "buildkit-endpoint": both set (%q, %q); want one of them`, b.Builder, b.BuildKitEndpoint))
	}

	cacheIn := trimmed("cache")
	if cacheIn == "" {
		cacheIn = "gha,registry"
	}
	for _, k := range splitList(cacheIn) {
		switch k {
		case "gha", "registry", "inline":
			if !slices.Contains(b.Cache, k) {
				b.Cache = append(b.Cache, k)
			}
		case "none":
		default:
			l.errorf("cache", k, "a comma-separated list of gha, registry, inline, or none")
		}
	}
	if slices.Contains(splitList(cacheIn), "none") && len(b.Cache) > 0 {
		l.errorf("cache", cacheIn, "none alone, or a list of gha, registry, inline")
	}
	if b.CacheRef == "" && len(c.Images) > 0 {
		b.CacheRef = c.Images[0].Name + ":buildcache"
	}
	if b.CacheRef != "" {
		if _, err := name.ParseReference(b.CacheRef); err != nil {
			l.errorf("cache-ref", b.CacheRef, "an image reference such as ghcr.io/owner/app:buildcache")
		}
	}
	b.CacheMode = strings.ToLower(trimmed("cache-mode"))
	switch b.CacheMode {
	case "":
		b.CacheMode = "max"
	case "min", "max":
	default:
		l.errorf("cache-mode", b.CacheMode, "min or max")
	}

	b.ForceRebuild = l.boolean("force-rebuild", false)
	if b.ForceRebuild {
		b.ForceRebuildReason = "input force-rebuild"
	} else if ev.EventName == "workflow_dispatch" {
		if v, ok := ev.Input("force-rebuild"); ok {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				b.ForceRebuild, b.ForceRebuildReason = true, "workflow_dispatch input force-rebuild"
			case "false", "":
			default:
				l.errs = append(l.errs, fmt.Errorf("event payload inputs.force-rebuild: %q is not valid; want true or false", v))
			}
		}
	}

	switch sbom := trimmed("sbom-attestation"); strings.ToLower(sbom) {
	case "", "false":
	case "true":
		b.SBOMAttestation = "true"
	default:
		if !strings.Contains(sbom, "=") {
			l.errorf("sbom-attestation", sbom, "true, false, or buildx --sbom attributes such as generator=IMAGE")
		}
		b.SBOMAttestation = sbom
	}
	if p := b.Provenance; p != "" && p != "true" && p != "false" && !strings.Contains(p, "=") {
		l.errorf("provenance", p, "true, false, or buildx --provenance attributes such as mode=max")
	}

	if t := trimmed("build-timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			l.errorf("build-timeout", t, "a positive duration such as 45m or 1h30m")
		} else {
			b.BuildTimeout = d
		}
	}
	return b
}

func (l *loader) supply(get Getter, ev *ghevent.Context) Supply {
	trimmed := func(name string) string { return strings.TrimSpace(get(name)) }
	s := Supply{
		SBOM:               l.boolean("sbom", true),
		SBOMReleaseAssets:  l.boolean("sbom-release-assets", false),
		DependencySnapshot: l.boolean("dependency-snapshot", false),
		Scan:               l.boolean("scan", true),
		ScanIgnoreUnfixed:  l.boolean("scan-ignore-unfixed", false),
		UploadSARIF:        l.boolean("upload-sarif", true),
		TrivyDBRepository:  trimmed("trivy-db-repository"),
		TrivyCacheDir:      trimmed("trivy-cache-dir"),
	}
	workspace := ev.Workspace
	inWorkspace := func(input, def string) string {
		d := trimmed(input)
		if d == "" {
			d = def
		}
		if !filepath.IsAbs(d) && workspace != "" {
			d = filepath.Join(workspace, d)
		}
		return d
	}
	s.SBOMDir = inWorkspace("sbom-dir", "sbom")
	s.SARIFDir = inWorkspace("sarif-dir", "sarif")
	if s.TrivyCacheDir != "" && !filepath.IsAbs(s.TrivyCacheDir) && workspace != "" {
		s.TrivyCacheDir = filepath.Join(workspace, s.TrivyCacheDir)
	}

	formats := trimmed("sbom-format")
	if formats == "" {
		formats = "spdx-json"
	}
	for _, f := range splitList(formats) {
		switch f = strings.ToLower(f); f {
		case "spdx-json", "cyclonedx-json", "syft-json":
			if !slices.Contains(s.SBOMFormats, f) {
				s.SBOMFormats = append(s.SBOMFormats, f)
			}
		default:
			l.errorf("sbom-format", f, "a comma-separated list of spdx-json, cyclonedx-json, syft-json")
		}
	}
	severities := trimmed("scan-severity")
	if severities == "" {
		severities = "CRITICAL,HIGH"
	}
	for _, v := range splitList(severities) {
		switch v = strings.ToUpper(v); v {
		case "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN":
			if !slices.Contains(s.ScanSeverities, v) {
				s.ScanSeverities = append(s.ScanSeverities, v)
			}
		default:
			l.errorf("scan-severity", v, "a comma-separated list of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN")
		}
	}
	switch s.ScanFailOn = strings.ToLower(trimmed("scan-fail-on")); s.ScanFailOn {
	case "":
		s.ScanFailOn = "none"
	case "none", "critical", "high":
	default:
		l.errorf("scan-fail-on", s.ScanFailOn, "none, critical or high")
	}
	return s
}

func (l *loader) cleanup(get Getter, mode string) Cleanup {
	trimmed := func(name string) string { return strings.TrimSpace(get(name)) }
	c := Cleanup{
		Keep:        5,
		Untagged:    l.boolean("cleanup-untagged", true),
		Tags:        splitList(get("cleanup-tags")),
		ExcludeTags: splitList(get("cleanup-exclude-tags")),
		DryRun:      l.boolean("cleanup-dry-run", false),
		Package:     trimmed("cleanup-package"),
		PRTags:      l.boolean("cleanup-pr-tags", false),
	}
	switch v := strings.ToLower(trimmed("cleanup")); v {
	case "", "auto":
		c.Auto = true
		c.Enabled = mode == "cleanup"
	default:
		c.Enabled = l.boolean("cleanup", false)
	}
	if k := trimmed("cleanup-keep"); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 {
			l.errorf("cleanup-keep", k, "a whole number of images to keep, 0 or more")
		} else {
			c.Keep = n
		}
	}
	if o := trimmed("cleanup-older-than"); o != "" {
		d, err := ParseAge(o)
		if err != nil {
			l.errorf("cleanup-older-than", o, "a duration such as 30d, 2w or 12h")
		} else {
			c.OlderThan = d
		}
	}
	for _, p := range append(append([]string(nil), c.Tags...), c.ExcludeTags...) {
		if _, err := path.Match(p, ""); err != nil {
			l.errorf("cleanup-tags", p, "tag patterns such as pr-* or sha-*")
		}
	}
	return c
}

func (l *loader) distributed(get Getter, ev *ghevent.Context, c *Config) Distributed {
	d := Distributed{PushByDigest: l.boolean("push-by-digest", false)}
	d.DigestsDir = strings.TrimSpace(get("digests-dir"))
	if d.DigestsDir == "" {
		d.DigestsDir = "digests"
	}
	if !filepath.IsAbs(d.DigestsDir) && ev.Workspace != "" {
		d.DigestsDir = filepath.Join(ev.Workspace, d.DigestsDir)
	}
	if d.PushByDigest && len(c.Build.Platforms) != 1 {
		l.errorf("platforms", strings.Join(c.Build.Platforms, ","), "exactly one platform with push-by-digest: true (each runner builds one)")
	}
	for _, v := range splitList(get("digests")) {
		if _, err := v1.NewHash(v); err != nil {
			l.errorf("digests", v, "sha256:<64 hex> digests, one per line")
			continue
		}
		d.Digests = append(d.Digests, v)
	}
	return d
}

// ParseAge reads a duration that may count days (d) and weeks (w), such as
// 30d, 2w or 36h.
func ParseAge(s string) (time.Duration, error) {
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit == 0 {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = fmt.Errorf("duration %q is not positive", s)
		}
		return d, err
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("parsing duration %q: want a positive whole number before %q", s, s[len(s)-1:])
	}
	return time.Duration(n) * unit, nil
}

func (l *loader) migrate(get Getter, mode string) Migrate {
	trimmed := func(name string) string { return strings.TrimSpace(get(name)) }
	m := Migrate{
		From:     trimmed("migrate-from"),
		Tags:     splitList(get("migrate-tags")),
		Username: trimmed("migrate-username"),
		Password: trimmed("migrate-password"),
	}
	if mode == "migrate" {
		if m.From == "" {
			l.errs = append(l.errs, errors.New(`input "migrate-from": empty; mode migrate needs the source repository, such as docker.io/user/image`))
		} else if _, err := name.NewRepository(m.From); err != nil {
			l.errorf("migrate-from", m.From, "a repository such as docker.io/user/image")
		}
	}
	for _, p := range m.Tags {
		if _, err := path.Match(p, ""); err != nil {
			l.errorf("migrate-tags", p, "tag patterns such as v* or latest")
		}
	}
	return m
}

// pairs reads id=value lines. Secret values are never put in errors.
func (l *loader) pairs(input, raw, want string, secret bool) []KV {
	var out []KV
	for i, line := range meta.SplitLines(raw) {
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			shown := line
			if secret {
				shown = fmt.Sprintf("line %d", i+1)
			}
			l.errorf(input, shown, want)
			continue
		}
		out = append(out, KV{Key: k, Value: v})
	}
	return out
}

// splitList splits a comma- or newline-separated list.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func registryOf(image string) (string, error) {
	r, err := name.NewRepository(image)
	if err != nil {
		return "", err
	}
	return r.RegistryStr(), nil
}

// separator keeps a separator input as written (a space is a valid
// separator); empty means a newline.
func separator(s string) string {
	if s == "" {
		return "\n"
	}
	return s
}

type loader struct {
	get  Getter
	errs []error
}

func (l *loader) add(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

func (l *loader) errorf(input, value, want string) {
	l.errs = append(l.errs, fmt.Errorf(`input %q: %q is not valid; want %s`, input, value, want))
}

// boolean reads a YAML-style boolean input; empty gives def.
func (l *loader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(l.get(name))
	switch strings.ToLower(v) {
	case "":
		return def
	case "true":
		return true
	case "false":
		return false
	}
	l.errorf(name, v, "true or false")
	return def
}
