// Package syftgen generates SBOMs of images in a registry with the syft
// library. Only the phialo-sbom binary links it.
package syftgen

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"
	"github.com/google/go-containerregistry/pkg/name"
	_ "modernc.org/sqlite" // cataloguers that read SQLite package databases (rpm) need a driver

	phsbom "github.com/barde/phialo-image-action/internal/sbom"
)

// Run generates the SBOMs of every target concurrently. A failing target is
// reported in its own result; the others stand.
func Run(ctx context.Context, req phsbom.Request) phsbom.Result {
	// syft builds a licence scanner for every SBOM unless the context holds
	// one; building it is most of the CPU time of a small image. One scanner
	// serves all platforms, and it is built while the images download.
	withScanner := sync.OnceValue(func() context.Context {
		c, err := syft.SetContextLicenseScanner(ctx, syft.DefaultCreateSBOMConfig().Licenses)
		if err != nil {
			return ctx
		}
		return c
	})
	go withScanner()
	res := phsbom.Result{Platforms: make([]phsbom.Platform, len(req.Targets))}
	var wg sync.WaitGroup
	for i, t := range req.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := one(ctx, withScanner, req, t)
			if err != nil {
				p.Error = err.Error()
			}
			res.Platforms[i] = p
		}()
	}
	wg.Wait()
	return res
}

func one(ctx context.Context, withScanner func() context.Context, req phsbom.Request, t phsbom.Target) (phsbom.Platform, error) {
	out := phsbom.Platform{Platform: t.Platform}
	opts := &image.RegistryOptions{InsecureUseHTTP: loopback(t.Ref)}
	for _, c := range req.Credentials {
		opts.Credentials = append(opts.Credentials, image.RegistryCredentials{Authority: c.Registry, Username: c.Username, Password: c.Password})
	}
	cfg := syft.DefaultGetSourceConfig().WithSources("registry").WithRegistryOptions(opts)
	src, err := syft.GetSource(ctx, t.Ref, cfg)
	if err != nil {
		return out, fmt.Errorf("reading image %q: %w", t.Ref, err)
	}
	defer src.Close()
	s, err := syft.CreateSBOM(withScanner(), src, syft.DefaultCreateSBOMConfig().WithTool("phialo-image-action", ""))
	if err != nil {
		return out, fmt.Errorf("cataloguing %q: %w", t.Ref, err)
	}
	for _, p := range s.Artifacts.Packages.Sorted() {
		out.Packages = append(out.Packages, phsbom.Package{Name: p.Name, Version: p.Version, Type: string(p.Type), PURL: p.PURL})
	}
	for _, f := range req.Formats {
		path := filepath.Join(req.Dir, phsbom.FileName(req.Name, t.Platform, f))
		if err := write(path, f, *s); err != nil {
			return out, err
		}
		out.Files = append(out.Files, path)
	}
	return out, nil
}

func write(path, format string, s sbom.SBOM) error {
	var enc sbom.FormatEncoder
	var err error
	switch format {
	case "spdx-json":
		enc, err = spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	case "cyclonedx-json":
		enc, err = cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.DefaultEncoderConfig())
	case "syft-json":
		enc, err = syftjson.NewFormatEncoderWithConfig(syftjson.DefaultEncoderConfig())
	default:
		return fmt.Errorf("encoding SBOM: unknown format %q", format)
	}
	if err != nil {
		return fmt.Errorf("encoding SBOM as %s: %w", format, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing SBOM %q: %w", path, err)
	}
	if err := enc.Encode(f, s); err != nil {
		f.Close()
		return fmt.Errorf("writing SBOM %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing SBOM %q: %w", path, err)
	}
	return nil
}

// loopback reports whether ref's registry is on this machine, where
// registries speak plain HTTP.
func loopback(ref string) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	host, _, err := net.SplitHostPort(r.Context().RegistryStr())
	if err != nil {
		host = r.Context().RegistryStr()
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
