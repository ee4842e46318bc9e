package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Merge creates, in repo, the multi-platform index of images pushed by
// digest (one per platform, as separate runners build them), tags it with
// every tag and gives it the annotations. A digest that is an index (an
// image with its attestations) contributes all its manifests as they are;
// an image manifest contributes itself with the platform of its config.
// It returns the index digest.
func (r *Reader) Merge(ctx context.Context, repo string, digests, tags []string, annotations map[string]string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if len(digests) == 0 {
		return "", errors.New("merging: no digests")
	}
	if len(tags) == 0 {
		return "", errors.New("merging: no tags to push the index to")
	}
	rp, err := name.NewRepository(repo)
	if err != nil {
		return "", fmt.Errorf("parsing repository %q: %w", repo, err)
	}
	opts := r.options(ctx)
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]bool{}
	for _, d := range digests {
		desc, err := remote.Get(rp.Digest(d), opts...)
		if err != nil {
			return "", fmt.Errorf("reading %s@%s: %w", repo, d, err)
		}
		if desc.MediaType.IsIndex() {
			child, err := desc.ImageIndex()
			if err != nil {
				return "", fmt.Errorf("reading index %s@%s: %w", repo, d, err)
			}
			im, err := child.IndexManifest()
			if err != nil {
				return "", fmt.Errorf("reading index %s@%s: %w", repo, d, err)
			}
			for _, m := range im.Manifests {
				if seen[m.Digest.String()] {
					continue
				}
				seen[m.Digest.String()] = true
				img, err := child.Image(m.Digest)
				if err != nil {
					return "", fmt.Errorf("reading %s of %s@%s: %w", m.Digest, repo, d, err)
				}
				idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: m})
			}
			continue
		}
		img, err := desc.Image()
		if err != nil {
			return "", fmt.Errorf("reading image %s@%s: %w", repo, d, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return "", fmt.Errorf("reading the config of %s@%s: %w", repo, d, err)
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: cf.Platform(),
		}})
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("computing the index digest: %w", err)
	}
	for i, t := range tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return "", fmt.Errorf("parsing tag %q: %w", t, err)
		}
		if i == 0 {
			err = remote.WriteIndex(tag, idx, opts...)
		} else {
			err = remote.Tag(tag, idx, opts...)
		}
		if err != nil {
			return "", fmt.Errorf("pushing the index to %q: %w", t, err)
		}
	}
	return digest.String(), nil
}
