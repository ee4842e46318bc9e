package registry

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestMerge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/barde/app"
	rp, _ := name.NewRepository(repo)

	// amd64 as a runner with provenance pushes it: an index of the image and
	// its attestation; arm64 as a plain image manifest.
	amd, _ := random.Image(64, 1)
	amd, _ = mutate.ConfigFile(amd, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}})
	amdLayer, _ := random.Layer(64, "application/vnd.oci.image.layer.v1.tar+gzip")
	amd, _ = mutate.AppendLayers(amd, amdLayer)
	att, _ := random.Image(16, 1)
	amdDigest, _ := amd.Digest()
	amdIdx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amdDigest.String()}}})
	ai, _ := amdIdx.Digest()
	if err := remote.WriteIndex(rp.Digest(ai.String()), amdIdx); err != nil {
		t.Fatal(err)
	}
	arm, _ := random.Image(64, 1)
	arm, _ = mutate.ConfigFile(arm, &v1.ConfigFile{OS: "linux", Architecture: "arm64", Variant: "v8", RootFS: v1.RootFS{Type: "layers"}})
	armDigest, _ := arm.Digest()
	if err := remote.Write(rp.Digest(armDigest.String()), arm); err != nil {
		t.Fatal(err)
	}

	tags := []string{repo + ":latest", repo + ":sha-abc"}
	got, err := NewReader(nil).Merge(context.Background(), repo, []string{ai.String(), armDigest.String()}, tags, map[string]string{"org.opencontainers.image.description": "merged"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		ref, _ := name.ParseReference(tg)
		desc, err := remote.Get(ref)
		if err != nil || desc.Digest.String() != got {
			t.Fatalf("%s: %v %v, want the merged index %s", tg, desc, err, got)
		}
	}
	ref, _ := name.ParseReference(repo + "@" + got)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Digest.String()+" "+m.Platform.String())
	}
	attDigest, _ := att.Digest()
	want := []string{amdDigest.String() + " linux/amd64", attDigest.String() + " unknown/unknown", armDigest.String() + " linux/arm64/v8"}
	if diff := cmp.Diff(want, platforms); diff != "" {
		t.Errorf("index manifests (-want +got):\n%s", diff)
	}
	if im.Annotations["org.opencontainers.image.description"] != "merged" || im.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("index annotations %v, media type %s", im.Annotations, im.MediaType)
	}

	if _, err := NewReader(nil).Merge(context.Background(), repo, []string{"sha256:" + strings.Repeat("0", 64)}, tags, nil); err == nil {
		t.Error("Merge of a digest the registry lacks succeeded")
	}
}
