package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The predicate types BuildKit writes SLSA provenance with.
var slsaProvenance = map[string]bool{
	"https://slsa.dev/provenance/v0.2": true,
	"https://slsa.dev/provenance/v1":   true,
}

// inTotoStatement is an in-toto attestation statement, as BuildKit writes
// it into a layer of an attestation manifest.
type inTotoStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate struct {
		// SLSA v1: the platform the build was for.
		BuildDefinition struct {
			InternalParameters struct {
				TargetPlatform string `json:"targetPlatform"`
			} `json:"internalParameters"`
		} `json:"buildDefinition"`
	} `json:"predicate"`
}

// checkProvenance reads the attestation manifest att of idx and returns an
// error unless it holds exactly one SLSA provenance statement, an in-toto
// layer whose predicate type its annotation names too, about the image
// manifest att refers to (vnd.docker.reference.digest), which must be the
// one of platforms[...] for its platform. It returns that platform and the
// predicate type.
func checkProvenance(idx v1.ImageIndex, att v1.Descriptor, platforms map[string]string) (string, string, error) {
	subject := att.Annotations["vnd.docker.reference.digest"]
	platform, ok := platforms[subject]
	if !ok {
		return "", "", fmt.Errorf("attestation %s refers to %q, not to an image of the index", att.Digest, subject)
	}
	img, err := idx.Image(att.Digest)
	if err != nil {
		return "", "", fmt.Errorf("reading attestation manifest %s: %w", att.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return "", "", fmt.Errorf("reading attestation manifest %s: %w", att.Digest, err)
	}
	var found []string
	for _, l := range m.Layers {
		pt := l.Annotations["in-toto.io/predicate-type"]
		if !slsaProvenance[pt] {
			continue
		}
		if l.MediaType != "application/vnd.in-toto+json" {
			return "", "", fmt.Errorf("%s: provenance layer %s has media type %q", platform, l.Digest, l.MediaType)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return "", "", fmt.Errorf("%s: provenance layer %s: %w", platform, l.Digest, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return "", "", fmt.Errorf("%s: provenance layer %s: %w", platform, l.Digest, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return "", "", fmt.Errorf("%s: reading provenance layer %s: %w", platform, l.Digest, err)
		}
		var st inTotoStatement
		if err := json.Unmarshal(data, &st); err != nil {
			return "", "", fmt.Errorf("%s: provenance layer %s is not an in-toto statement: %w", platform, l.Digest, err)
		}
		if !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") || st.PredicateType != pt {
			return "", "", fmt.Errorf("%s: statement of type %q with predicate %q, annotated %q", platform, st.Type, st.PredicateType, pt)
		}
		// One subject per tag, each the image for its platform.
		if len(st.Subject) == 0 {
			return "", "", fmt.Errorf("%s: statement without subjects", platform)
		}
		for _, sub := range st.Subject {
			if "sha256:"+sub.Digest["sha256"] != subject || !strings.HasSuffix(sub.Name, "?platform="+url.QueryEscape(platform)) {
				return "", "", fmt.Errorf("%s: statement subject %+v, want the image %s for %s", platform, sub, subject, platform)
			}
		}
		if tp := st.Predicate.BuildDefinition.InternalParameters.TargetPlatform; tp != "" && tp != platform {
			return "", "", fmt.Errorf("%s: provenance for target platform %s", platform, tp)
		}
		found = append(found, pt)
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("%s: attestation %s has %d SLSA provenance layers, want 1: %+v", platform, att.Digest, len(found), m.Layers)
	}
	return platform, found[0], nil
}
