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
	// The deleted versions first, then the kept ones, each in the plan's
	// order; no more than maxRows of them.
	rows := make([]cleanup.Decision, 0, len(c.Plan.Decisions))
	for _, first := range []bool{true, false} {
		for _, d := range c.Plan.Decisions {
			if deleted[d.Version.Digest] == first {
				rows = append(rows, d)
			}
		}
	}
	for _, d := range rows[:min(len(rows), maxRows)] {
		what, why := "kept", d.Reason
		switch {
		case deleted[d.Version.Digest] && c.DryRun:
			what = "would delete"
		case deleted[d.Version.Digest]:
			what = "deleted"
		case skipped[d.Version.Digest] != "":
			why = "kept: " + skipped[d.Version.Digest]
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", short(d.Version.Digest), cell(tagList(d.Version.Tags)), what, cell(why))
	}
	if len(rows) > maxRows {
		var del int
		for _, d := range rows[maxRows:] {
			if deleted[d.Version.Digest] {
				del++
			}
		}
		word := "deleted"
		if c.DryRun {
			word = "would delete"
		}
		fmt.Fprintf(&b, "\nand %d more versions (%s: %d, kept: %d)\n", len(rows)-maxRows, word, del, len(rows)-maxRows-del)
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

// MigrateSummary renders what the migration copied: the failed tags
// first, then the others, no more than maxRows of them.
func MigrateSummary(from, to string, copied []registry.Copied) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Migration from %s to %s\n\n| Tag | Digest | |\n| --- | --- | --- |\n", from, to)
	rows := make([]registry.Copied, 0, len(copied))
	for _, failed := range []bool{true, false} {
		for _, c := range copied {
			if (c.Err != nil) == failed {
				rows = append(rows, c)
			}
		}
	}
	for _, c := range rows[:min(len(rows), maxRows)] {
		what := "copied"
		switch {
		case c.Err != nil:
			what = "failed: " + cell(c.Err.Error())
		case c.Skipped:
			what = "already there"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", cell(c.Tag), c.Digest, what)
	}
	if len(rows) > maxRows {
		var failed, skipped int
		for _, c := range rows[maxRows:] {
			switch {
			case c.Err != nil:
				failed++
			case c.Skipped:
				skipped++
			}
		}
		fmt.Fprintf(&b, "\nand %d more tags (copied: %d, already there: %d, failed: %d)\n", len(rows)-maxRows, len(rows)-maxRows-failed-skipped, skipped, failed)
	}
	return b.String()
}
