// Package registry keeps the run's registry credentials in an isolated
// Docker config and reads pushed images back with go-containerregistry.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Login is one registry's credentials.
type Login struct {
	Registry, Username, Password string
}

// ConfigKey is the key of a registry in a Docker config's auths: Docker Hub
// keeps its historical URL.
func ConfigKey(registry string) string {
	switch registry {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "https://index.docker.io/v1/"
	}
	return registry
}

// NewDockerConfig creates a fresh Docker config directory under parent whose
// config.json holds the logins, readable by the owner only. The caller
// removes the directory when the run ends.
func NewDockerConfig(parent string, logins []Login) (string, error) {
	dir, err := os.MkdirTemp(parent, "phialo-docker-config-")
	if err != nil {
		return "", fmt.Errorf("creating Docker config under %q: %w", parent, err)
	}
	type auth struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]auth `json:"auths"`
	}{Auths: map[string]auth{}}
	for _, l := range logins {
		cfg.Auths[ConfigKey(l.Registry)] = auth{Auth: base64.StdEncoding.EncodeToString([]byte(l.Username + ":" + l.Password))}
	}
	data, err := json.Marshal(cfg)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("writing Docker config in %q: %w", dir, err)
	}
	return dir, nil
}

// RegistryOf is the registry host of an image repository, such as ghcr.io.
func RegistryOf(image string) (string, error) {
	r, err := name.NewRepository(image)
	if err != nil {
		return "", fmt.Errorf("parsing image %q: %w", image, err)
	}
	return r.RegistryStr(), nil
}

// Reader reads images with the run's credentials, retrying transient
// registry errors (429, 5xx) with bounded backoff.
type Reader struct {
	logins []Login
}

// NewReader returns a Reader that authenticates with logins.
func NewReader(logins []Login) *Reader { return &Reader{logins: logins} }

// Resolve implements authn.Keychain.
func (r *Reader) Resolve(res authn.Resource) (authn.Authenticator, error) {
	for _, l := range r.logins {
		if ConfigKey(l.Registry) == ConfigKey(res.RegistryStr()) && l.Password != "" {
			return authn.FromConfig(authn.AuthConfig{Username: l.Username, Password: l.Password}), nil
		}
	}
	return authn.Anonymous, nil
}

func (r *Reader) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 5}),
		remote.WithRetryStatusCodes(408, 429, 500, 502, 503, 504),
	}
}

// Platform is one image of a pushed index.
type Platform struct {
	// Platform is os/arch[/variant].
	Platform string
	Digest   string
	// Size is the compressed size: config plus layers, as a pull downloads.
	Size int64
}

// Image describes a pushed image.
type Image struct {
	Digest    string
	MediaType types.MediaType
	// Platforms lists the images (attestation manifests left out).
	Platforms []Platform
	// Attestations counts the attestation manifests of the index.
	Attestations int
	// Annotations are the index's (or manifest's) annotations.
	Annotations map[string]string
}

// Inspect reads an image (index or manifest) by reference. Each call is
// bounded to a minute in all.
func (r *Reader) Inspect(ctx context.Context, ref string) (Image, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rf, err := name.ParseReference(ref)
	if err != nil {
		return Image{}, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	desc, err := remote.Get(rf, r.options(ctx)...)
	if err != nil {
		return Image{}, fmt.Errorf("reading %q: %w", ref, err)
	}
	out := Image{Digest: desc.Digest.String(), MediaType: desc.MediaType}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return Image{}, fmt.Errorf("reading image %q: %w", ref, err)
		}
		p, err := imagePlatform(img, desc.Descriptor)
		if err != nil {
			return Image{}, fmt.Errorf("reading image %q: %w", ref, err)
		}
		m, _ := img.Manifest()
		if m != nil {
			out.Annotations = m.Annotations
		}
		out.Platforms = []Platform{p}
		return out, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return Image{}, fmt.Errorf("reading index %q: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return Image{}, fmt.Errorf("reading index %q: %w", ref, err)
	}
	out.Annotations = im.Annotations
	// The platform manifests are read concurrently: this runs after every
	// build, and each read is a round trip to the registry.
	var images []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			out.Attestations++
			continue
		}
		images = append(images, d)
	}
	out.Platforms = make([]Platform, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, d := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := idx.Image(d.Digest)
			if err == nil {
				out.Platforms[i], err = imagePlatform(img, d)
			}
			if err != nil {
				errs[i] = fmt.Errorf("reading %s of %q: %w", d.Digest, ref, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Image{}, err
	}
	return out, nil
}

func imagePlatform(img v1.Image, d v1.Descriptor) (Platform, error) {
	m, err := img.Manifest()
	if err != nil {
		return Platform{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	p := Platform{Digest: d.Digest.String(), Size: size}
	if d.Platform != nil {
		p.Platform = d.Platform.String()
	} else if cf, err := img.ConfigFile(); err == nil {
		p.Platform = cf.Platform().String()
	}
	return p, nil
}

// HumanSize formats a byte count as B, KiB, MiB or GiB.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(div), strings.Split("KiB MiB GiB", " ")[exp])
}

// Digest resolves a reference to its manifest digest with a HEAD request.
func (r *Reader) Digest(ctx context.Context, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rf, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	d, err := remote.Head(rf, r.options(ctx)...)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", ref, err)
	}
	return d.Digest.String(), nil
}

// Logins returns the reader's credentials.
func (r *Reader) Logins() []Login { return r.logins }
