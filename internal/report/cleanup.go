package report

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/barde/phialo-image-action/internal/cleanup"
	"github.com/barde/phialo-image-action/internal/registry"
)

// Cleanup is what the registry cleanup decided and did.
type Cleanup struct {
	// Package is owner/package.
	Package string
	DryRun  bool
	Plan    cleanup.Plan
	// Deleted are the digests deleted (in a dry run: that would be).
	Deleted []string
	// Skipped are planned deletions that did not happen, and why.
	Skipped []Skip
	// Ran is false when the cleanup did not run at all.
	Ran bool
	Err error
}

// Skip is a planned deletion that was not carried out.
type Skip struct{ Digest, Reason string }

// CleanupOutputs are the cleanup's outputs.
func CleanupOutputs(c Cleanup) []Output {
	kept := ""
	if c.Ran {
		kept = strconv.Itoa(len(c.Plan.Decisions) - len(c.Deleted))
		if c.DryRun {
			kept = strconv.Itoa(c.Plan.Kept())
		}
	}
	return []Output{
		{"cleanup-deleted", strings.Join(c.Deleted, "\n")},
		{"cleanup-kept", kept},
	}
}

// CleanupSummary renders the cleanup's part of the step summary: what was
// deleted, what was kept, and why.
func CleanupSummary(c Cleanup) string {
	if !c.Ran {
		return ""
	}
	var b strings.Builder
	title := "Cleanup of " + c.Package
	if c.DryRun {
		title += " (dry run: nothing deleted)"
	}
	fmt.Fprintf(&b, "\n#### %s\n\n", title)
	if c.Err != nil {
		fmt.Fprintf(&b, "Not done: %s\n", cell(c.Err.Error()))
		return b.String()
	}
	deleted := map[string]bool{}
	for _, d := range c.Deleted {
		deleted[d] = true
	}
	skipped := map[string]string{}
	for _, s := range c.Skipped {
		skipped[s.Digest] = s.Reason
	}
	fmt.Fprintf(&b, "%d deleted, %d kept.\n\n| Version | Tags | | Why |\n| --- | --- | --- | --- |\n", len(c.Deleted), len(c.Plan.Decisions)-len(c.Deleted))
	for _, d := range c.Plan.Decisions {
		what, why := "kept", d.Reason
		switch {
		case deleted[d.Version.Digest] && c.DryRun:
			what = "would delete"
		case deleted[d.Version.Digest]:
			what = "deleted"
		case skipped[d.Version.Digest] != "":
			why = "kept: " + skipped[d.Version.Digest]
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", short(d.Version.Digest), cell(strings.Join(d.Version.Tags, ", ")), what, cell(why))
	}
	return b.String()
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// MigrateOutputs is the migrate mode's output.
func MigrateOutputs(copied []registry.Copied) []Output {
	type entry struct {
		Tag     string `json:"tag"`
		Digest  string `json:"digest"`
		Skipped bool   `json:"skipped"`
		Error   string `json:"error,omitempty"`
	}
	list := []entry{}
	for _, c := range copied {
		e := entry{Tag: c.Tag, Digest: c.Digest, Skipped: c.Skipped}
		if c.Err != nil {
			e.Error = c.Err.Error()
		}
		list = append(list, e)
	}
	data, _ := json.Marshal(list)
	return []Output{{"migrated", string(data)}}
}

// MigrateSummary renders what the migration copied.
func MigrateSummary(from, to string, copied []registry.Copied) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Migration from %s to %s\n\n| Tag | Digest | |\n| --- | --- | --- |\n", from, to)
	for _, c := range copied {
		what := "copied"
		switch {
		case c.Err != nil:
			what = "failed: " + cell(c.Err.Error())
		case c.Skipped:
			what = "already there"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", cell(c.Tag), c.Digest, what)
	}
	return b.String()
}
