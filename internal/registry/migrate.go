package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// defaultMigrateConcurrency is how many tags Migrate copies at once when
// MigrateOptions.Concurrency is not set.
const defaultMigrateConcurrency = 4

// MigrateOptions says which tags Migrate copies, from where to where, and
// with which credentials.
type MigrateOptions struct {
	// From is the source repository, such as docker.io/user/image.
	From string
	// To is the destination repository, such as ghcr.io/owner/image.
	To string
	// Tags are path.Match patterns of the tags to copy, such as "v*" or
	// "latest"; a tag is copied when any pattern matches it. Empty means
	// every tag.
	Tags []string
	// FromLogin holds the credentials for the source registry; nil reads
	// anonymously. An empty Registry stands for From's registry.
	FromLogin *Login
	// ToLogins hold the credentials for the destination; the one whose
	// Registry is To's registry is used.
	ToLogins []Login
	// Concurrency is how many tags are copied at once; 0 or less means 4.
	Concurrency int

	// backoff, when set, replaces the Reader's retry backoff (tests use a
	// short one).
	backoff *remote.Backoff
}

// Copied is what Migrate did with one tag.
type Copied struct {
	// Tag is the tag's name, the same in both repositories.
	Tag string
	// Digest is the digest of the source manifest (an index or an image),
	// which the destination tag has after the copy. It is set exactly when
	// the source manifest was read, also when the copy then failed or was
	// cancelled; empty when the read failed or the run was cancelled
	// before it.
	Digest string
	// Skipped reports that the destination tag already had Digest, so
	// nothing was written.
	Skipped bool
	// Err is why the tag could not be copied; nil when it was copied or
	// skipped.
	Err error
}

// Migrate copies every tag of o.From that matches o.Tags to o.To, byte for
// byte: a multi-platform index with all its manifests (attestation
// manifests included) and their blobs, or a single image. The raw manifests
// are pushed as read, so every digest stays the same. A tag whose
// destination already has the source's digest is skipped.
//
// Up to o.Concurrency tags are copied at once, and transient registry errors
// (429, 5xx) are retried with bounded backoff on both sides. The result
// holds one Copied per matching tag, sorted by tag. A tag that fails is
// reported in its Copied while the others go on; the returned error then
// joins the failures. Listing the source's tags failing, or invalid
// options, yields no result and an error.
func Migrate(ctx context.Context, o MigrateOptions) ([]Copied, error) {
	src, err := name.NewRepository(o.From)
	if err != nil {
		return nil, fmt.Errorf("parsing source repository %q: %w", o.From, err)
	}
	dst, err := name.NewRepository(o.To)
	if err != nil {
		return nil, fmt.Errorf("parsing destination repository %q: %w", o.To, err)
	}
	for _, p := range o.Tags {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("tag pattern %q: %w", p, err)
		}
	}
	var fromLogins []Login
	if o.FromLogin != nil {
		l := *o.FromLogin
		if l.Registry == "" {
			l.Registry = src.RegistryStr()
		}
		fromLogins = []Login{l}
	}
	puller, err := remote.NewPuller(o.remoteOptions(ctx, fromLogins)...)
	if err != nil {
		return nil, err
	}
	dstOpts := o.remoteOptions(ctx, o.ToLogins)
	dstPuller, err := remote.NewPuller(dstOpts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(dstOpts...)
	if err != nil {
		return nil, err
	}

	all, err := puller.List(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", src, err)
	}
	tags := matchTags(all, o.Tags)

	m := migration{src: src, dst: dst, puller: puller, dstPuller: dstPuller, pusher: pusher}
	out := make([]Copied, len(tags))
	n := o.Concurrency
	if n <= 0 {
		n = defaultMigrateConcurrency
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(tags)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = m.copyTag(ctx, tags[i])
			}
		}()
	}
	for i := range tags {
		next <- i
	}
	close(next)
	wg.Wait()

	var errs []error
	for _, c := range out {
		if c.Err != nil {
			errs = append(errs, c.Err)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("migrating %s to %s: %d of %d tags failed: %w", src, dst, len(errs), len(out), errors.Join(errs...))
	}
	return out, nil
}

// remoteOptions are the Reader's options for logins: its keychain and its
// retries, with o.backoff in place of its backoff when set.
func (o MigrateOptions) remoteOptions(ctx context.Context, logins []Login) []remote.Option {
	opts := NewReader(logins).options(ctx)
	if o.backoff != nil {
		opts = append(opts, remote.WithRetryBackoff(*o.backoff))
	}
	return opts
}

// matchTags returns the tags that match any of patterns (all of them when
// there is no pattern), sorted. The patterns have been checked.
func matchTags(tags, patterns []string) []string {
	var out []string
	for _, t := range tags {
		ok := len(patterns) == 0
		for _, p := range patterns {
			if m, _ := path.Match(p, t); m {
				ok = true
				break
			}
		}
		if ok {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// migration holds what each tag's copy shares: the repositories and the
// clients, which keep their registry tokens and skip blobs already written.
type migration struct {
	src, dst  name.Repository
	puller    *remote.Puller // source
	dstPuller *remote.Puller // destination, for checking its tags
	pusher    *remote.Pusher // destination
}

// copyTag copies one tag, or skips it when the destination already has it.
func (m migration) copyTag(ctx context.Context, tag string) Copied {
	c := Copied{Tag: tag}
	from, to := m.src.Tag(tag), m.dst.Tag(tag)
	if err := ctx.Err(); err != nil {
		c.Err = fmt.Errorf("copying %s: %w", from, err)
		return c
	}
	desc, err := m.puller.Get(ctx, from)
	if err != nil {
		c.Err = fmt.Errorf("reading %s: %w", from, err)
		return c
	}
	c.Digest = desc.Digest.String()
	// A 404, or any other failure to read the destination tag, leads to the
	// push, which reports a destination out of reach.
	if have, err := m.dstPuller.Head(ctx, to); err == nil && have.Digest == desc.Digest {
		c.Skipped = true
		return c
	}
	// A remote descriptor pushes its manifest's raw bytes, and those of
	// every manifest an index lists, after the blobs they refer to: nothing
	// is re-serialised, so the digests stay the source's.
	if err := m.pusher.Push(ctx, to, desc); err != nil {
		c.Err = fmt.Errorf("copying %s to %s: %w", from, to, err)
	}
	return c
}
