// Package config reads and validates the action's inputs. Every bad input is
// reported at once, each with the input's name, the value and what is
// accepted.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

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
}

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
	return c, errors.Join(l.errs...)
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
