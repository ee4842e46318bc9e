package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"
)

// ErrNotFound is wrapped by the errors of package calls GitHub answered with
// 404 Not Found: the package, the version or the owner does not exist, or the
// token may not see it (GitHub answers 404 rather than 403 for a package the
// workflow's repository has not been given access to).
var ErrNotFound = errors.New("not found")

// The owner types of GitHub accounts that own packages, as GET /users/{owner}
// reports them in "type".
const (
	OwnerUser         = "User"
	OwnerOrganization = "Organization"
)

// packageType is the GitHub Packages type of images on ghcr.io.
const packageType = "container"

// Bounds of the waits on GitHub's rate limits, per request: a request is
// retried at most maxRetries times, and waits at most maxWait in all. A wait
// GitHub asks for that would go past maxWait is not started.
const (
	maxRetries = 5
	maxWait    = 2 * time.Minute
	// unknownWait is the wait on a secondary rate limit that does not say
	// how long to wait: GitHub documents "at least one minute".
	unknownWait = time.Minute
	// resetMargin is added to a wait until X-RateLimit-Reset, whose
	// seconds are truncated.
	resetMargin = time.Second
)

// Sleep waits d, or until ctx is done with ctx's error. The package calls
// (OwnerType, ListVersions, GetVersion, DeleteVersion) wait with it on
// GitHub's rate limits. Tests replace it to not sleep for real; a test that
// does must not run in parallel with others of its package.
var Sleep = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PackageVersion is one version of a container package on GitHub Packages:
// one manifest (image, index, attestation, signature...) pushed to the
// package's repository on ghcr.io.
type PackageVersion struct {
	// ID is GitHub's id of the version.
	ID int64
	// Digest is the manifest's digest (the version's name), sha256:<hex>.
	Digest string
	// Tags are the version's tags (metadata.container.tags); nil for none.
	Tags []string
	// Created is when the version was created.
	Created time.Time
}

// OwnerType reads GET /users/{owner} and returns the account's type: "User"
// (OwnerUser) or "Organization" (OwnerOrganization), which decides the paths
// of the package calls.
func (c *Client) OwnerType(ctx context.Context, owner string) (string, error) {
	if owner == "" {
		return "", errors.New("getting owner: no owner")
	}
	var u *github.User
	err := retry(ctx, c, func(gh *github.Client) (resp *github.Response, err error) {
		u, resp, err = gh.Users.Get(ctx, owner)
		return resp, err
	})
	if err != nil {
		return "", fmt.Errorf("getting owner %q: %w", owner, describe(err, "", "the account does not exist"))
	}
	switch t := u.GetType(); t {
	case OwnerUser, OwnerOrganization:
		return t, nil
	default:
		return "", fmt.Errorf("getting owner %q: GitHub says it is of type %q, want User or Organization", owner, t)
	}
}

// ListVersions lists the active versions of the container package pkg of
// owner (whose type OwnerType tells) with
// GET /users/{owner}/packages/container/{pkg}/versions or
// GET /orgs/{owner}/packages/container/{pkg}/versions, 100 a page, following
// the Link headers, in GitHub's order (newest first). A pkg with slashes
// (owner/repo/image on ghcr.io is package repo/image) is sent path-escaped.
//
// A 403 wraps ErrForbidden, a 404 ErrNotFound.
func (c *Client) ListVersions(ctx context.Context, owner, ownerType, pkg string) ([]PackageVersion, error) {
	if err := checkPackage(owner, ownerType, pkg); err != nil {
		return nil, fmt.Errorf("listing versions of %q: %w", pkg, err)
	}
	opts := &github.PackageListOptions{
		State:       github.String("active"),
		ListOptions: github.ListOptions{PerPage: 100},
	}
	var out []PackageVersion
	for page := 1; ; {
		var vs []*github.PackageVersion
		var next int
		err := retry(ctx, c, func(gh *github.Client) (resp *github.Response, err error) {
			if ownerType == OwnerOrganization {
				vs, resp, err = gh.Organizations.PackageGetAllVersions(ctx, owner, packageType, pkg, opts)
			} else {
				// Users.PackageGetAllVersions, unlike the Organizations
				// one, does not escape the package name.
				vs, resp, err = gh.Users.PackageGetAllVersions(ctx, owner, packageType, url.PathEscape(pkg), opts)
			}
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("listing versions of %q: %w", pkg,
				describe(err, "the workflow token needs the packages: read permission", notFoundHint))
		}
		for _, v := range vs {
			out = append(out, version(v))
		}
		if next == 0 {
			return out, nil
		}
		if next <= page {
			return nil, fmt.Errorf("listing versions of %q: page %d links to page %d as the next one", pkg, page, next)
		}
		page, opts.Page = next, next
	}
}

// GetVersion reads version id of the container package pkg of owner with
// GET /{users|orgs}/{owner}/packages/container/{pkg}/versions/{id}, to see
// its tags as they are now.
//
// A 403 wraps ErrForbidden, a 404 (the version was deleted) ErrNotFound.
func (c *Client) GetVersion(ctx context.Context, owner, ownerType, pkg string, id int64) (PackageVersion, error) {
	if err := checkPackage(owner, ownerType, pkg); err != nil {
		return PackageVersion{}, fmt.Errorf("getting version %d of %q: %w", id, pkg, err)
	}
	var v *github.PackageVersion
	err := retry(ctx, c, func(gh *github.Client) (resp *github.Response, err error) {
		if ownerType == OwnerOrganization {
			v, resp, err = gh.Organizations.PackageGetVersion(ctx, owner, packageType, pkg, id)
		} else {
			v, resp, err = gh.Users.PackageGetVersion(ctx, owner, packageType, url.PathEscape(pkg), id)
		}
		return resp, err
	})
	if err != nil {
		return PackageVersion{}, fmt.Errorf("getting version %d of %q: %w", id, pkg,
			describe(err, "the workflow token needs the packages: read permission", notFoundHint))
	}
	if v == nil {
		return PackageVersion{}, fmt.Errorf("getting version %d of %q: the response is empty", id, pkg)
	}
	return version(v), nil
}

// DeleteVersion deletes version id of the container package pkg of owner
// with DELETE /{users|orgs}/{owner}/packages/container/{pkg}/versions/{id}.
//
// A 403 wraps ErrForbidden, a 404 ErrNotFound.
func (c *Client) DeleteVersion(ctx context.Context, owner, ownerType, pkg string, id int64) error {
	if err := checkPackage(owner, ownerType, pkg); err != nil {
		return fmt.Errorf("deleting version %d of %q: %w", id, pkg, err)
	}
	err := retry(ctx, c, func(gh *github.Client) (*github.Response, error) {
		if ownerType == OwnerOrganization {
			return gh.Organizations.PackageDeleteVersion(ctx, owner, packageType, pkg, id)
		}
		return gh.Users.PackageDeleteVersion(ctx, owner, packageType, url.PathEscape(pkg), id)
	})
	if err != nil {
		return fmt.Errorf("deleting version %d of %q: %w", id, pkg,
			describe(err, "the workflow token needs the packages: write permission, and the repository the Admin role on the package (its Manage Actions access)", notFoundHint))
	}
	return nil
}

// notFoundHint explains a 404 of the package calls.
const notFoundHint = "the package or version does not exist, or the workflow's repository has no access to the package (its Manage Actions access)"

// checkPackage checks the arguments of the package calls.
func checkPackage(owner, ownerType, pkg string) error {
	switch {
	case owner == "":
		return errors.New("no owner")
	case pkg == "":
		return errors.New("no package name")
	case ownerType != OwnerUser && ownerType != OwnerOrganization:
		return fmt.Errorf("owner type %q: want User or Organization", ownerType)
	}
	return nil
}

// version converts go-github's package version.
func version(v *github.PackageVersion) PackageVersion {
	out := PackageVersion{ID: v.GetID(), Digest: v.GetName(), Created: v.GetCreatedAt().Time}
	if tags := v.GetMetadata().GetContainer().Tags; len(tags) > 0 {
		out.Tags = append([]string(nil), tags...)
	}
	return out
}

// retry runs call until it succeeds, fails other than on a rate limit, or
// the bounds (maxRetries, maxWait) are reached, waiting with Sleep what GitHub
// asks between attempts.
//
// Each attempt gets a go-github client of its own, which shares c's
// transport (and token) but not its memory of rate limits: go-github answers
// a request itself, with a RateLimitError and without sending it, while the
// last response it saw said the limit is spent and the reset is ahead of the
// clock, which would make the retry after a wait shorter than the real one
// (a replaced Sleep) no retry at all.
func retry(ctx context.Context, c *Client, call func(*github.Client) (*github.Response, error)) error {
	var waited time.Duration
	for retries := 0; ; retries++ {
		gh := github.NewClient(c.gh.Client())
		gh.BaseURL, gh.UploadURL, gh.UserAgent = c.gh.BaseURL, c.gh.UploadURL, c.gh.UserAgent
		_, err := call(gh)
		if err == nil {
			return nil
		}
		wait, limited := rateLimitWait(err)
		switch {
		case !limited:
			return err
		case retries == maxRetries:
			return fmt.Errorf("rate limited, gave up after %d retries: %w", maxRetries, err)
		case waited+wait > maxWait:
			return fmt.Errorf("rate limited, gave up: GitHub asks to wait %v, past the %v of waiting a request may do (%v waited): %w", wait, maxWait, waited, err)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("waiting %v on a rate limit: %w (after %w)", wait, serr, err)
		}
		waited += wait
	}
}

// rateLimitWait tells whether err is GitHub's answer to a rate limit, and
// how long to wait before the next attempt, as GitHub documents it:
// Retry-After when the response has it; else, when X-RateLimit-Remaining is
// 0, until X-RateLimit-Reset; else a minute. The answers to a rate limit are
// a 429, and a 403 that go-github makes a *github.RateLimitError (primary
// limit: X-RateLimit-Remaining: 0) or a *github.AbuseRateLimitError
// (secondary limit, told by its documentation URL) of, or that has
// Retry-After.
//
// go-github v62 makes a plain *github.ErrorResponse of a 429, and its
// AbuseRateLimitError.RetryAfter falls back to X-RateLimit-Reset even when
// requests remain, so the headers are read here.
func rateLimitWait(err error) (time.Duration, bool) {
	var (
		resp  *http.Response
		reset time.Time
		known bool
		rl    *github.RateLimitError
		ab    *github.AbuseRateLimitError
		er    *github.ErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		resp, reset, known = rl.Response, rl.Rate.Reset.Time, true
	case errors.As(err, &ab):
		resp, known = ab.Response, true
	case errors.As(err, &er):
		resp = er.Response
	default:
		return 0, false
	}
	var h http.Header
	if resp != nil {
		h = resp.Header
		if !known && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusForbidden {
			return 0, false
		}
	} else if !known {
		return 0, false
	}
	if d, ok := retryAfter(h.Get("Retry-After")); ok {
		return d, true
	}
	if rl != nil || h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil && s > 0 {
			reset = time.Unix(s, 0)
		}
		return untilReset(reset), true
	}
	if known || resp.StatusCode == http.StatusTooManyRequests {
		return unknownWait, true
	}
	return 0, false
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return max(time.Duration(s)*time.Second, 0), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// untilReset is the wait until reset, a minute when it is unknown.
func untilReset(reset time.Time) time.Duration {
	if reset.IsZero() {
		return unknownWait
	}
	return max(time.Until(reset), 0) + resetMargin
}

// describe wraps ErrForbidden and needPermission around a 403 and
// ErrNotFound and notFound around a 404, leaving rate limits (which GitHub
// may also answer with 403) and other errors as they are. An empty hint
// leaves that status as it is.
func describe(err error, needPermission, notFound string) error {
	if _, limited := rateLimitWait(err); limited {
		return err
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return err
	}
	switch er.Response.StatusCode {
	case http.StatusForbidden:
		if needPermission != "" {
			return fmt.Errorf("%w: %s: %w", ErrForbidden, needPermission, err)
		}
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	case http.StatusNotFound:
		if notFound != "" {
			return fmt.Errorf("%w: %s: %w", ErrNotFound, notFound, err)
		}
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
