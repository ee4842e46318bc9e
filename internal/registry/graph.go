package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// graphReadTimeout bounds each registry read of Graph, its retries included.
const graphReadTimeout = time.Minute

// attachTag matches the tags that attach artifacts to a manifest by its
// digest: sha256-<hex> (the OCI referrers tag schema, an index of the
// referrers for registries without the referrers API) and cosign's
// sha256-<hex>.sig, .att and .sbom.
var attachTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(?:\.sig|\.att|\.sbom)?$`)

// Graph reads the manifest graph of the repository repo (such as
// ghcr.io/owner/app) for digests, the package's versions: for each digest,
// the digests of the manifests that must live as long as it does:
//
//   - if it is an index, its manifests[] (the platform images, and the
//     attestation manifests buildx adds, which carry
//     vnd.docker.reference.digest);
//   - the OCI 1.1 referrers whose subject it is (the referrers API, or on
//     registries without it, such as ghcr.io, the index tagged with the
//     referrers tag schema sha256-<hex>), and that index itself;
//   - the manifests tagged sha256-<hex>.sig, .att and .sbom (cosign).
//
// The edges are direct: a child's own children are under the child's key
// when it is among digests. Every digest has a key; the lists are sorted and
// hold no duplicates (nil for none).
//
// The tags are listed once; then every read (a manifest, the referrers of a
// digest, the digest of a tag) runs with at most concurrency (at least 1) in
// flight, each retried as the Reader does and bounded to a minute. An error
// reading anything fails the whole call.
func (r *Reader) Graph(ctx context.Context, repo string, digests []string, concurrency int) (map[string][]string, error) {
	rp, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest graph of %q: %w", repo, err)
	}
	concurrency = max(concurrency, 1)
	want := make(map[string]bool, len(digests))
	var refs []name.Digest
	for _, d := range digests {
		if want[d] {
			continue
		}
		if _, err := v1.NewHash(d); err != nil {
			return nil, fmt.Errorf("reading the manifest graph of %q: digest %q: %w", repo, d, err)
		}
		want[d] = true
		refs = append(refs, rp.Digest(d))
	}
	if len(refs) == 0 {
		return map[string][]string{}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The Puller authenticates once for the repository and its reads
	// share the token.
	puller, err := remote.NewPuller(r.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest graph of %q: %w", repo, err)
	}

	var tags []string
	err = withReadTimeout(ctx, func(ctx context.Context) (err error) {
		tags, err = puller.List(ctx, rp)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the manifest graph of %q: listing tags: %w", repo, err)
	}
	// attached maps a digest to the tags that attach artifacts to it.
	attached := map[string][]string{}
	for _, tag := range tags {
		if m := attachTag.FindStringSubmatch(tag); m != nil && want["sha256:"+m[1]] {
			attached["sha256:"+m[1]] = append(attached["sha256:"+m[1]], tag)
		}
	}

	g := &manifestGraph{edges: make(map[string]map[string]bool, len(refs))}
	for _, d := range refs {
		g.edges[d.DigestStr()] = map[string]bool{}
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	// read waits for a place under the semaphore, then runs f in a
	// goroutine and adds the digests it returns as children of from. Once
	// ctx is done (an earlier read failed), it runs nothing.
	read := func(from, what string, f func(ctx context.Context) ([]string, error)) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			var children []string
			err := withReadTimeout(ctx, func(ctx context.Context) (err error) {
				children, err = f(ctx)
				return err
			})
			if err != nil {
				g.fail(fmt.Errorf("%s: %w", what, err))
				cancel()
				return
			}
			g.add(from, children)
		}()
	}
	opts := func(ctx context.Context) []remote.Option {
		return []remote.Option{remote.WithContext(ctx), remote.Reuse(puller)}
	}
	for _, d := range refs {
		from := d.DigestStr()
		read(from, "reading "+from, func(ctx context.Context) ([]string, error) {
			desc, err := puller.Get(ctx, d)
			if err != nil || !desc.MediaType.IsIndex() {
				return nil, err
			}
			idx, err := desc.ImageIndex()
			if err != nil {
				return nil, err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return nil, err
			}
			var out []string
			for _, m := range im.Manifests {
				out = append(out, m.Digest.String())
			}
			return out, nil
		})
		read(from, "reading the referrers of "+from, func(ctx context.Context) ([]string, error) {
			idx, err := remote.Referrers(d, opts(ctx)...)
			if err != nil {
				return nil, err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return nil, err
			}
			var out []string
			for _, m := range im.Manifests {
				out = append(out, m.Digest.String())
			}
			return out, nil
		})
		for _, tag := range attached[from] {
			read(from, "reading tag "+tag, func(ctx context.Context) ([]string, error) {
				desc, err := puller.Head(ctx, rp.Tag(tag))
				if err != nil {
					return nil, err
				}
				return []string{desc.Digest.String()}, nil
			})
		}
	}
	wg.Wait()
	err = g.err()
	if err == nil {
		// Reads were skipped only if ctx is done.
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the manifest graph of %q: %w", repo, err)
	}
	return g.result(), nil
}

// withReadTimeout runs f with a context bounded to graphReadTimeout.
func withReadTimeout(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, graphReadTimeout)
	defer cancel()
	return f(ctx)
}

// manifestGraph collects the edges and errors of concurrent reads.
type manifestGraph struct {
	mu    sync.Mutex
	edges map[string]map[string]bool
	errs  []error
}

func (g *manifestGraph) add(from string, to []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range to {
		if d != from {
			g.edges[from][d] = true
		}
	}
}

// fail records err.
func (g *manifestGraph) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, err)
}

// err joins the errors recorded, leaving out those of the reads cancelled
// after a first failure; when all were cancelled (the caller's ctx), it is
// the first.
func (g *manifestGraph) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var failed []error
	for _, err := range g.errs {
		if !errors.Is(err, context.Canceled) {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 && len(g.errs) > 0 {
		return g.errs[0]
	}
	return errors.Join(failed...)
}

func (g *manifestGraph) result() map[string][]string {
	out := make(map[string][]string, len(g.edges))
	for from, to := range g.edges {
		var list []string
		for d := range to {
			list = append(list, d)
		}
		slices.Sort(list)
		out[from] = list
	}
	return out
}
