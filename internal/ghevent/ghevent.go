// Package ghevent reads the GitHub Actions context of a run: the GITHUB_*
// environment and the event payload the runner writes to GITHUB_EVENT_PATH.
//
// Only the payload fields the action uses are decoded; everything else in the
// (often large) payload is ignored.
package ghevent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Context is the typed GitHub context of one run.
type Context struct {
	// EventName is GITHUB_EVENT_NAME, for example "push" or "pull_request".
	EventName string
	// Ref is the ref the run builds. For pull_request_target it is the pull
	// request's merge ref, as docker/metadata-action uses.
	Ref string
	// SHA is GITHUB_SHA: the commit the runner checked out.
	SHA string
	// Repository is "owner/name" from GITHUB_REPOSITORY.
	Repository string
	// RepositoryOwner is GITHUB_REPOSITORY_OWNER.
	RepositoryOwner string
	// Actor is GITHUB_ACTOR.
	Actor string
	// ServerURL is GITHUB_SERVER_URL (default https://github.com).
	ServerURL string
	// APIURL is GITHUB_API_URL (default https://api.github.com).
	APIURL string
	// RunID is GITHUB_RUN_ID.
	RunID string
	// Workspace is GITHUB_WORKSPACE.
	Workspace string
	// EventPath is GITHUB_EVENT_PATH, empty when the runner set none.
	EventPath string
	// Payload is the decoded event payload; zero when there is none.
	Payload Payload
}

// Payload holds the fields of a webhook event payload that the action reads.
type Payload struct {
	Action      string           `json:"action"`
	Number      int              `json:"number"`
	BaseRef     *string          `json:"base_ref"`
	Repository  *Repository      `json:"repository"`
	PullRequest *PullRequest     `json:"pull_request"`
	HeadCommit  *Commit          `json:"head_commit"`
	Commits     []Commit         `json:"commits"`
	Release     *Release         `json:"release"`
	Inputs      map[string]Input `json:"inputs"`
}

// Repository is the payload's repository object.
type Repository struct {
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	HTMLURL       string   `json:"html_url"`
	Description   string   `json:"description"`
	DefaultBranch string   `json:"default_branch"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility"`
	Fork          bool     `json:"fork"`
	License       *License `json:"license"`
	Owner         *Owner   `json:"owner"`
}

// License is a repository's license as GitHub detected it.
type License struct {
	SPDXID string `json:"spdx_id"`
}

// Owner is a repository owner.
type Owner struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// PullRequest is the payload's pull_request object.
type PullRequest struct {
	Number int       `json:"number"`
	Merged bool      `json:"merged"`
	Head   BranchRef `json:"head"`
	Base   BranchRef `json:"base"`
}

// BranchRef is one side of a pull request.
type BranchRef struct {
	Ref  string      `json:"ref"`
	SHA  string      `json:"sha"`
	Repo *Repository `json:"repo"`
}

// Commit is a commit of a push payload.
type Commit struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
}

// Release is the payload's release object.
type Release struct {
	ID         int64  `json:"id"`
	TagName    string `json:"tag_name"`
	Prerelease bool   `json:"prerelease"`
}

// Input is one workflow_dispatch input. The payload carries strings for most
// input types but booleans and numbers for some; Input keeps the value as text.
type Input string

// UnmarshalJSON accepts a JSON string, boolean, number or null.
func (in *Input) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*in = Input(s)
	case bytes.Equal(b, []byte("null")):
		*in = ""
	case bytes.Equal(b, []byte("true")), bytes.Equal(b, []byte("false")):
		*in = Input(b)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string, boolean or number, got %s", b)
		}
		*in = Input(n.String())
	}
	return nil
}

// Load reads the context from the environment through getenv. A missing
// GITHUB_EVENT_PATH is no error (the payload is then empty); a named event
// file that cannot be read or decoded is. The returned context is usable even
// when the error is not nil.
func Load(getenv func(string) string) (*Context, error) {
	c := &Context{
		EventName:       getenv("GITHUB_EVENT_NAME"),
		Ref:             getenv("GITHUB_REF"),
		SHA:             getenv("GITHUB_SHA"),
		Repository:      getenv("GITHUB_REPOSITORY"),
		RepositoryOwner: getenv("GITHUB_REPOSITORY_OWNER"),
		Actor:           getenv("GITHUB_ACTOR"),
		ServerURL:       strings.TrimSuffix(getenv("GITHUB_SERVER_URL"), "/"),
		APIURL:          strings.TrimSuffix(getenv("GITHUB_API_URL"), "/"),
		RunID:           getenv("GITHUB_RUN_ID"),
		Workspace:       getenv("GITHUB_WORKSPACE"),
		EventPath:       getenv("GITHUB_EVENT_PATH"),
	}
	if c.ServerURL == "" {
		c.ServerURL = "https://github.com"
	}
	if c.APIURL == "" {
		c.APIURL = "https://api.github.com"
	}
	if c.RepositoryOwner == "" {
		c.RepositoryOwner, _, _ = strings.Cut(c.Repository, "/")
	}
	var err error
	if c.EventPath != "" {
		var data []byte
		data, err = os.ReadFile(c.EventPath)
		if err != nil {
			err = fmt.Errorf("reading event file %q (GITHUB_EVENT_PATH): %w", c.EventPath, err)
		} else if c.Payload, err = Decode(data); err != nil {
			err = fmt.Errorf("decoding event file %q (GITHUB_EVENT_PATH): %w", c.EventPath, err)
		}
	}
	if c.EventName == "pull_request_target" {
		if n := c.PRNumber(); n > 0 {
			c.Ref = "refs/pull/" + strconv.Itoa(n) + "/merge"
		}
	}
	return c, err
}

// Decode decodes an event payload. An empty file is an empty payload.
func Decode(data []byte) (Payload, error) {
	var p Payload
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return Payload{}, fmt.Errorf("want a JSON object: %w", err)
	}
	return p, nil
}

// PRNumber is the pull request number of a pull_request-like event, or 0.
func (c *Context) PRNumber() int {
	if c.Payload.PullRequest != nil && c.Payload.PullRequest.Number > 0 {
		return c.Payload.PullRequest.Number
	}
	if c.Payload.PullRequest != nil {
		return c.Payload.Number
	}
	return 0
}

// IsPullRequest reports whether the run builds a pull request ref.
func (c *Context) IsPullRequest() bool {
	return strings.HasPrefix(c.Ref, "refs/pull/")
}

// IsFork reports whether the event is a pull request whose head lives in
// another repository. Such runs get a read-only token and no secrets. A
// pull request whose head repository was deleted (head.repo is null) came
// from a fork.
func (c *Context) IsFork() bool {
	pr := c.Payload.PullRequest
	if pr == nil {
		return false
	}
	if pr.Head.Repo == nil {
		return true
	}
	if pr.Base.Repo == nil {
		return false
	}
	return !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName)
}

// BuildSHA is the commit the image describes: GITHUB_SHA, or with prHead the
// pull request's head commit instead of the merge commit GitHub creates.
func (c *Context) BuildSHA(prHead bool) string {
	if prHead && c.Payload.PullRequest != nil && c.Payload.PullRequest.Head.SHA != "" {
		return c.Payload.PullRequest.Head.SHA
	}
	return c.SHA
}

// DefaultBranch is the repository's default branch from the payload, or "".
func (c *Context) DefaultBranch() string {
	if c.Payload.Repository != nil {
		return c.Payload.Repository.DefaultBranch
	}
	return ""
}

// BaseRef is the payload's base_ref (set on tag pushes made from a branch
// head), or "".
func (c *Context) BaseRef() string {
	if c.Payload.BaseRef != nil {
		return *c.Payload.BaseRef
	}
	return ""
}

// PRBaseRef is the pull request's base branch, or "".
func (c *Context) PRBaseRef() string {
	if c.Payload.PullRequest != nil {
		return c.Payload.PullRequest.Base.Ref
	}
	return ""
}

// CommitDate returns the commit time of sha when the payload lists that
// commit (push events do), else false.
func (c *Context) CommitDate(sha string) (time.Time, bool) {
	commits := c.Payload.Commits
	if c.Payload.HeadCommit != nil {
		commits = append([]Commit{*c.Payload.HeadCommit}, commits...)
	}
	for _, cm := range commits {
		if cm.ID != sha || cm.Timestamp == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, cm.Timestamp); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Input returns a workflow_dispatch input of the payload and whether it is set.
func (c *Context) Input(name string) (string, bool) {
	v, ok := c.Payload.Inputs[name]
	return string(v), ok
}
