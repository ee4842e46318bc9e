package meta

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Flavor holds the global tag settings of the `flavor` input.
type Flavor struct {
	// Latest is "auto", "true" or "false".
	Latest string
	// Prefix and Suffix go around every tag whose rule sets none of its own.
	Prefix, Suffix string
	// PrefixLatest and SuffixLatest also put them around the latest tag.
	PrefixLatest, SuffixLatest bool
}

// ParseFlavor parses the lines of the `flavor` input, such as
// `latest=auto` or `prefix=dev-,onlatest=true`.
func ParseFlavor(lines []string) (Flavor, error) {
	f := Flavor{Latest: "auto"}
	var errs []error
	for _, line := range lines {
		if err := f.parseLine(line); err != nil {
			errs = append(errs, fmt.Errorf(`input "flavor", line %q: %w`, line, err))
		}
	}
	return f, errors.Join(errs...)
}

func (f *Flavor) parseLine(line string) error {
	fields, err := splitFields(line)
	if err != nil {
		return err
	}
	onlatestFor := ""
	for _, field := range fields {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return fmt.Errorf("entry %q is not key=value; want latest=, prefix=, suffix= or onlatest=", field)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "latest":
			if v != "auto" && v != "true" && v != "false" {
				return fmt.Errorf("latest=%q; want auto, true or false", v)
			}
			f.Latest = v
		case "prefix":
			f.Prefix, onlatestFor = v, "prefix"
		case "suffix":
			f.Suffix, onlatestFor = v, "suffix"
		case "onlatest":
			if v != "true" && v != "false" {
				return fmt.Errorf("onlatest=%q; want true or false", v)
			}
			switch onlatestFor {
			case "prefix":
				f.PrefixLatest = v == "true"
			case "suffix":
				f.SuffixLatest = v == "true"
			default:
				return errors.New("onlatest must follow prefix= or suffix= on the same line")
			}
		default:
			return fmt.Errorf("unknown key %q; want latest, prefix, suffix or onlatest", k)
		}
	}
	return nil
}

// Image is one entry of the `images` input.
type Image struct {
	// Name is the lowercased repository, such as ghcr.io/owner/app.
	Name string
	// Enable is a template that renders to true or false.
	Enable string
}

// ParseImages parses the lines of the `images` input: `ghcr.io/owner/app`
// or `name=ghcr.io/owner/app,enable=...`.
func ParseImages(lines []string) ([]Image, error) {
	var images []Image
	var errs []error
	for _, line := range lines {
		img, err := parseImage(line)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "images", line %q: %w`, line, err))
			continue
		}
		images = append(images, img)
	}
	return images, errors.Join(errs...)
}

func parseImage(line string) (Image, error) {
	fields, err := splitFields(line)
	if err != nil {
		return Image{}, err
	}
	img := Image{Enable: "true"}
	for _, field := range fields {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			img.Name = field
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "name":
			img.Name = strings.TrimSpace(v)
		case "enable":
			img.Enable = strings.TrimSpace(v)
		default:
			return Image{}, fmt.Errorf("unknown attribute %q; want name= or enable=", k)
		}
	}
	img.Name = strings.ToLower(img.Name)
	if err := ValidateImage(img.Name); err != nil {
		return Image{}, err
	}
	return img, nil
}

// ValidateImage checks that s is an image repository without tag or digest,
// such as ghcr.io/owner/app.
func ValidateImage(s string) error {
	if s == "" {
		return errors.New("empty image name; want a repository such as ghcr.io/owner/app")
	}
	if _, err := name.NewRepository(s); err != nil {
		return fmt.Errorf("image %q is not a repository such as ghcr.io/owner/app (without :tag or @digest): %w", s, err)
	}
	return nil
}
