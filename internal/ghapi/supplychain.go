package ghapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
)

// ErrForbidden is wrapped by the errors of calls GitHub refused with 403
// Forbidden: the workflow token lacks a permission, or a repository feature
// the call needs is disabled. Rate limits, which GitHub also answers with
// 403, are not ErrForbidden.
var ErrForbidden = errors.New("forbidden")

const (
	// detectorName and detectorURL describe the action as the detector of
	// the dependency snapshots it submits.
	detectorName = "phialo-image-action"
	detectorURL  = "https://github.com/barde/phialo-image-action"

	// githubAPIURL and githubUploadURL are go-github's defaults, the
	// addresses of github.com.
	githubAPIURL    = "https://api.github.com/"
	githubUploadURL = "https://uploads.github.com/"
)

// SARIFRef is the ref a SARIF analysis is uploaded for: a pull request
// (pull_request or pull_request_target with a number) uploads for
// refs/pull/<n>/head, so commitSHA must then be the pull request's head
// commit; every other event uploads for ref as is.
func SARIFRef(eventName, ref string, prNumber int) string {
	switch eventName {
	case "pull_request", "pull_request_target":
		if prNumber > 0 {
			return "refs/pull/" + strconv.Itoa(prNumber) + "/head"
		}
	}
	return ref
}

// UploadSARIF uploads the SARIF 2.1.0 document sarif as a code scanning
// analysis of commitSHA (40 hex digits) on ref (refs/heads/..., refs/tags/...
// or refs/pull/...) with POST /repos/{owner}/{repo}/code-scanning/sarifs,
// gzipped and base64-encoded as GitHub wants it, and returns the id of the
// upload. GitHub answers 202 Accepted and processes the analysis later.
//
// A 403 (the token lacks security-events: write, or code scanning is not
// enabled for the repository) wraps ErrForbidden.
func (c *Client) UploadSARIF(ctx context.Context, commitSHA, ref string, sarif []byte) (string, error) {
	if err := checkCommit(commitSHA, ref); err != nil {
		return "", fmt.Errorf("uploading SARIF for %q: %w", ref, err)
	}
	if !json.Valid(sarif) {
		return "", fmt.Errorf("uploading SARIF for %q: the SARIF is not a JSON document", ref)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(sarif); err != nil {
		return "", fmt.Errorf("uploading SARIF for %q: compressing: %w", ref, err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("uploading SARIF for %q: compressing: %w", ref, err)
	}
	analysis := &github.SarifAnalysis{
		CommitSHA: github.String(commitSHA),
		Ref:       github.String(ref),
		Sarif:     github.String(base64.StdEncoding.EncodeToString(gz.Bytes())),
	}
	// CodeScanning.UploadSarif of go-github v62 decodes the body of a 202
	// only: on any other 2xx it returns a nil id and no error. The same
	// request through the client's Do reads the id from a 202 (the body of
	// go-github's AcceptedError) and from a 200 or 201 alike.
	req, err := c.gh.NewRequest(http.MethodPost, fmt.Sprintf("repos/%v/%v/code-scanning/sarifs", c.owner, c.repo), analysis)
	if err != nil {
		return "", fmt.Errorf("uploading SARIF for %q: %w", ref, err)
	}
	var id github.SarifID
	_, err = c.gh.Do(ctx, req, &id)
	if err = accepted(err, &id); err != nil {
		return "", fmt.Errorf("uploading SARIF for %q: %w", ref,
			forbidden(err, "the workflow token needs the security-events: write permission, and code scanning must be enabled for the repository"))
	}
	if id.GetID() == "" {
		return "", fmt.Errorf("uploading SARIF for %q: the response has no id", ref)
	}
	return id.GetID(), nil
}

// Package is one resolved dependency of a manifest in a dependency snapshot.
type Package struct {
	// PURL is the package URL, such as pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64.
	PURL string
	// Relationship is "direct" or "indirect"; empty leaves it out.
	Relationship string
	// Scope is "runtime" or "development"; empty leaves it out.
	Scope string
}

// NewSnapshot builds a dependency snapshot (version 0) of commit sha on ref
// for POST /repos/{owner}/{repo}/dependency-graph/snapshots. job is the job's
// id (GITHUB_RUN_ID) and correlator groups the snapshots that replace one
// another (for example GITHUB_WORKFLOW and GITHUB_JOB). The detector is this
// action at version; scanned is the scan time, in UTC.
//
// manifests is keyed by the manifest's path relative to the repository root
// (the Dockerfile), which is both its name and its file.source_location.
// Resolved packages are keyed by PURL; a PURL listed twice in a manifest is
// direct if either is direct and runtime if either is runtime. Packages with
// no PURL are skipped.
func NewSnapshot(job, correlator, sha, ref string, manifests map[string][]Package, version string, scanned time.Time) *github.DependencyGraphSnapshot {
	snap := &github.DependencyGraphSnapshot{
		Version: 0,
		Sha:     github.String(sha),
		Ref:     github.String(ref),
		Job: &github.DependencyGraphSnapshotJob{
			Correlator: github.String(correlator),
			ID:         github.String(job),
		},
		Detector: &github.DependencyGraphSnapshotDetector{
			Name:    github.String(detectorName),
			Version: github.String(version),
			URL:     github.String(detectorURL),
		},
		Scanned:   &github.Timestamp{Time: scanned.UTC()},
		Manifests: make(map[string]*github.DependencyGraphSnapshotManifest, len(manifests)),
	}
	for name, pkgs := range manifests {
		resolved := make(map[string]*github.DependencyGraphSnapshotResolvedDependency, len(pkgs))
		for _, p := range pkgs {
			if p.PURL == "" {
				continue
			}
			d := resolved[p.PURL]
			if d == nil {
				d = &github.DependencyGraphSnapshotResolvedDependency{PackageURL: github.String(p.PURL)}
				resolved[p.PURL] = d
			}
			d.Relationship = stronger(d.Relationship, p.Relationship, "direct")
			d.Scope = stronger(d.Scope, p.Scope, "runtime")
		}
		snap.Manifests[name] = &github.DependencyGraphSnapshotManifest{
			Name:     github.String(name),
			File:     &github.DependencyGraphSnapshotManifestFile{SourceLocation: github.String(name)},
			Resolved: resolved,
		}
	}
	return snap
}

// stronger merges the value v into old: strongest wins, then whichever is
// set. Empty stays nil, so that the field is left out of the JSON.
func stronger(old *string, v, strongest string) *string {
	switch {
	case v == "":
		return old
	case old == nil || v == strongest:
		return github.String(v)
	default:
		return old
	}
}

// SubmitDependencySnapshot submits snap with
// POST /repos/{owner}/{repo}/dependency-graph/snapshots and returns the id of
// the snapshot. A snapshot GitHub reports INVALID is an error.
//
// A 403 (the token lacks contents: write) wraps ErrForbidden.
func (c *Client) SubmitDependencySnapshot(ctx context.Context, snap *github.DependencyGraphSnapshot) (int64, error) {
	if snap == nil {
		return 0, errors.New("submitting dependency snapshot: no snapshot")
	}
	ref := snap.GetRef()
	if err := checkCommit(snap.GetSha(), ref); err != nil {
		return 0, fmt.Errorf("submitting dependency snapshot for %q: %w", ref, err)
	}
	created, _, err := c.gh.DependencyGraph.CreateSnapshot(ctx, c.owner, c.repo, snap)
	if err != nil {
		// GitHub documents 201; read a 202 the same way should it come.
		created = new(github.DependencyGraphSnapshotCreationData)
		err = accepted(err, created)
	}
	if err != nil {
		return 0, fmt.Errorf("submitting dependency snapshot for %q: %w", ref,
			forbidden(err, "the workflow token needs the contents: write permission"))
	}
	if created == nil {
		return 0, fmt.Errorf("submitting dependency snapshot for %q: the response is empty", ref)
	}
	if strings.EqualFold(created.GetResult(), "INVALID") {
		return 0, fmt.Errorf("submitting dependency snapshot for %q: GitHub found snapshot %d invalid: %s", ref, created.ID, created.GetMessage())
	}
	return created.ID, nil
}

// SetUploadURL sets the address of GitHub's upload API, which release asset
// uploads go to, and adds a missing trailing slash. Without it the client
// uses UploadURLFor its API URL. Call it before using the client from
// several goroutines.
func (c *Client) SetUploadURL(u string) error {
	parsed, err := parseAbsolute(u)
	if err != nil {
		return fmt.Errorf("setting upload URL %q: %w", u, err)
	}
	c.gh.UploadURL = parsed
	return nil
}

// UploadURLFor derives the upload API address from the REST API address
// apiURL (GITHUB_API_URL):
//
//   - https://api.github.com → https://uploads.github.com/, and likewise
//     https://api.<subdomain>.ghe.com → https://uploads.<subdomain>.ghe.com/
//     (an "api." host becomes "uploads.");
//   - GitHub Enterprise Server's https://<host>/api/v3 →
//     https://<host>/api/uploads/;
//   - any other address (a proxy, a test server) is taken to serve uploads
//     itself, and is returned with a trailing slash.
func UploadURLFor(apiURL string) (string, error) {
	u, err := parseAbsolute(apiURL)
	if err != nil {
		return "", fmt.Errorf("deriving the upload URL from %q: %w", apiURL, err)
	}
	switch {
	case strings.HasSuffix(u.Path, "/api/v3/"):
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "uploads/"
		u.RawPath = ""
	case strings.HasPrefix(u.Host, "api."):
		u.Host = "uploads." + strings.TrimPrefix(u.Host, "api.")
	}
	return u.String(), nil
}

// parseAbsolute parses an absolute http(s) URL and gives it a trailing slash.
func parseAbsolute(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an absolute http(s) URL")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// uploads returns the go-github client for the upload API. When the upload
// URL is still go-github's default (uploads.github.com) but the API URL is
// not github.com's, it is a copy of the client with UploadURLFor the API URL,
// so that GitHub Enterprise and test servers get the uploads too.
func (c *Client) uploads() (*github.Client, error) {
	if c.gh.UploadURL.String() != githubUploadURL || c.gh.BaseURL.String() == githubAPIURL {
		return c.gh, nil
	}
	derived, err := UploadURLFor(c.gh.BaseURL.String())
	if err != nil {
		return nil, err
	}
	up, err := url.Parse(derived)
	if err != nil {
		return nil, err
	}
	// WithEnterpriseURLs is go-github's only copy that keeps the transport
	// (the token); it rewrites both URLs, so set them back.
	gh, err := c.gh.WithEnterpriseURLs(c.gh.BaseURL.String(), derived)
	if err != nil {
		return nil, err
	}
	gh.BaseURL, gh.UploadURL = c.gh.BaseURL, up
	return gh, nil
}

// UploadReleaseAsset uploads the file at path to release releaseID as an
// asset named after the file's base name, with
// POST /repos/{owner}/{repo}/releases/{release_id}/assets?name=... on the
// upload API (see SetUploadURL). An asset of that name that already exists
// (422 already_exists) is replaced: it is deleted, found by name among the
// release's assets, and the file is uploaded again.
//
// GitHub renames names with special characters (spaces become dots, for
// example); keep asset file names to letters, digits, '.', '-' and '_'.
func (c *Client) UploadReleaseAsset(ctx context.Context, releaseID int64, path string) error {
	name := filepath.Base(path)
	gh, err := c.uploads()
	if err != nil {
		return fmt.Errorf("uploading release asset %q: %w", path, err)
	}
	err = c.uploadAsset(ctx, gh, releaseID, name, path)
	if !alreadyExists(err) {
		if err != nil {
			return fmt.Errorf("uploading release asset %q: %w", path, err)
		}
		return nil
	}
	if err := c.deleteAsset(ctx, releaseID, name); err != nil {
		return fmt.Errorf("replacing release asset %q: %w", path, err)
	}
	if err := c.uploadAsset(ctx, gh, releaseID, name, path); err != nil {
		return fmt.Errorf("replacing release asset %q: uploading again: %w", path, err)
	}
	return nil
}

// uploadAsset opens path and uploads it; each attempt opens the file afresh
// since the HTTP client reads and closes the request body.
func (c *Client) uploadAsset(ctx context.Context, gh *github.Client, releaseID int64, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := &github.UploadOptions{Name: name, MediaType: assetMediaType(name)}
	_, _, err = gh.Repositories.UploadReleaseAsset(ctx, c.owner, c.repo, releaseID, opts, f)
	return forbidden(err, "the workflow token needs the contents: write permission")
}

// deleteAsset deletes the asset called name of release releaseID with
// DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}, after finding it
// with GET /repos/{owner}/{repo}/releases/{release_id}/assets.
func (c *Client) deleteAsset(ctx context.Context, releaseID int64, name string) error {
	opts := &github.ListOptions{PerPage: 100}
	for {
		assets, resp, err := c.gh.Repositories.ListReleaseAssets(ctx, c.owner, c.repo, releaseID, opts)
		if err != nil {
			return fmt.Errorf("listing the assets of release %d: %w", releaseID, err)
		}
		for _, a := range assets {
			if a.GetName() != name {
				continue
			}
			if _, err := c.gh.Repositories.DeleteReleaseAsset(ctx, c.owner, c.repo, a.GetID()); err != nil {
				return fmt.Errorf("deleting asset %q (id %d): %w", name, a.GetID(),
					forbidden(err, "the workflow token needs the contents: write permission"))
			}
			return nil
		}
		if resp.NextPage == 0 {
			return fmt.Errorf("finding asset %q: GitHub reported it exists but release %d does not list it", name, releaseID)
		}
		opts.Page = resp.NextPage
	}
}

// assetMediaType is the Content-Type of an asset, from its extension. It
// does not use mime.TypeByExtension, whose answers depend on the host's
// MIME tables.
func assetMediaType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return "application/json"
	case ".sarif":
		return "application/sarif+json"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	case ".gz", ".tgz":
		return "application/gzip"
	case ".zip":
		return "application/zip"
	case ".tar":
		return "application/x-tar"
	default:
		return "application/octet-stream"
	}
}

// alreadyExists reports whether err is GitHub's 422 for an asset name that is
// taken: {"message":"Validation Failed","errors":[{"resource":"ReleaseAsset",
// "code":"already_exists","field":"name"}]}.
func alreadyExists(err error) bool {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range er.Errors {
		if e.Code == "already_exists" {
			return true
		}
	}
	return false
}

// accepted turns go-github's AcceptedError, its error for a 202 Accepted,
// into success by decoding the 202's body into v. Other errors are returned
// unchanged.
func accepted(err error, v any) error {
	var ae *github.AcceptedError
	if !errors.As(err, &ae) {
		return err
	}
	if err := json.Unmarshal(ae.Raw, v); err != nil {
		return fmt.Errorf("decoding the 202 Accepted response %q: %w", ae.Raw, err)
	}
	return nil
}

// forbidden wraps ErrForbidden and the hint need around err when GitHub
// answered 403 Forbidden, keeping GitHub's message (err) in the chain.
func forbidden(err error, need string) error {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %s: %w", ErrForbidden, need, err)
	}
	return err
}

// checkCommit checks a commit SHA and ref the way GitHub's code scanning and
// dependency submission APIs document them: 40 hex digits and a full ref.
func checkCommit(sha, ref string) error {
	if len(sha) != 40 || strings.Trim(sha, "0123456789abcdefABCDEF") != "" {
		return fmt.Errorf("commit %q: want a 40 hex digit SHA", sha)
	}
	if !strings.HasPrefix(ref, "refs/") {
		return fmt.Errorf("ref %q: want a full ref such as refs/heads/main", ref)
	}
	return nil
}
