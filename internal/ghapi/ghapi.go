// Package ghapi talks to GitHub's REST API through go-github, at the address
// the runner gives in GITHUB_API_URL (GitHub Enterprise Server included).
package ghapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
)

// Client is a GitHub REST API client for one repository.
type Client struct {
	gh          *github.Client
	owner, repo string
}

// New returns a client for the repository "owner/name" at apiURL, with token
// when it is not empty. Each call is bounded by timeout.
func New(apiURL, repository, token string, timeout time.Duration) (*Client, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("parsing repository %q: want owner/name", repository)
	}
	base, err := url.Parse(strings.TrimSuffix(apiURL, "/") + "/")
	if err != nil {
		return nil, fmt.Errorf("parsing GITHUB_API_URL %q: %w", apiURL, err)
	}
	gh := github.NewClient(&http.Client{Timeout: timeout})
	if token != "" {
		gh = gh.WithAuthToken(token)
	}
	gh.BaseURL = base
	gh.UserAgent = "phialo-image-action"
	return &Client{gh: gh, owner: owner, repo: repo}, nil
}

// Repository describes a repository for the image's OCI labels.
type Repository struct {
	Name, Description, HTMLURL, License, DefaultBranch string
	Private                                            bool
}

// Repository reads GET /repos/{owner}/{repo}.
func (c *Client) Repository(ctx context.Context) (Repository, error) {
	r, _, err := c.gh.Repositories.Get(ctx, c.owner, c.repo)
	if err != nil {
		return Repository{}, fmt.Errorf("getting repository %q: %w", c.owner+"/"+c.repo, err)
	}
	out := Repository{
		Name:          r.GetName(),
		Description:   r.GetDescription(),
		HTMLURL:       r.GetHTMLURL(),
		DefaultBranch: r.GetDefaultBranch(),
		Private:       r.GetPrivate(),
	}
	if r.License != nil {
		out.License = r.License.GetSPDXID()
	}
	return out, nil
}

// CommitDate reads the committer date of sha with
// GET /repos/{owner}/{repo}/commits/{sha}.
func (c *Client) CommitDate(ctx context.Context, sha string) (time.Time, error) {
	cm, _, err := c.gh.Repositories.GetCommit(ctx, c.owner, c.repo, sha, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("getting commit %q: %w", sha, err)
	}
	if d := cm.GetCommit().GetCommitter().GetDate(); !d.IsZero() {
		return d.Time, nil
	}
	if d := cm.GetCommit().GetAuthor().GetDate(); !d.IsZero() {
		return d.Time, nil
	}
	return time.Time{}, fmt.Errorf("getting commit %q: the response has no date", sha)
}
