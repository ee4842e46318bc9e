// Package report turns the action's results into step outputs, the step
// summary and log lines.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/barde/phialo-image-action/internal/meta"
)

// Output is one step output.
type Output struct {
	Name, Value string
}

// Separators join the list outputs.
type Separators struct {
	Tags, Labels, Annotations string
}

// metaJSON has the shape of docker/metadata-action's json output.
type metaJSON struct {
	Tags        []string          `json:"tags"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// MetaOutputs are the outputs of the tag and label engine, in the order the
// README lists them.
func MetaOutputs(res meta.Result, sep Separators) ([]Output, error) {
	j := metaJSON{Tags: res.Tags, Labels: kvMap(res.Labels), Annotations: kvMap(res.Annotations)}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("encoding json output: %w", err)
	}
	return []Output{
		{"version", res.Version},
		{"tags", strings.Join(res.Tags, sep.Tags)},
		{"tag-names", strings.Join(res.TagNames, sep.Tags)},
		{"labels", strings.Join(res.Labels, sep.Labels)},
		{"annotations", strings.Join(res.Annotations, sep.Annotations)},
		{"json", strings.TrimSuffix(b.String(), "\n")},
	}, nil
}

func kvMap(pairs []string) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

// Facts are the lines of the summary's header.
type Facts struct {
	Event, Ref, SHA string
	Push            bool
	PushReason      string
	DryRun          bool
}

// Summary renders the step summary of the metadata in Markdown.
func Summary(res meta.Result, f Facts) string {
	var b strings.Builder
	title := "phialo-image-action"
	if len(res.Images) > 0 {
		title += ": " + strings.Join(res.Images, ", ")
	}
	fmt.Fprintf(&b, "### %s\n\n", title)
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, cell(v)) }
	row("Event", fmt.Sprintf("`%s` on `%s`", f.Event, f.Ref))
	row("Commit", "`"+f.SHA+"`")
	row("Version", "`"+res.Version+"`")
	switch {
	case f.DryRun:
		row("Push", "no: dry run, nothing built")
	case f.Push:
		row("Push", "yes")
	default:
		row("Push", "no: "+f.PushReason)
	}
	b.WriteString("\n| Tag |\n| --- |\n")
	if len(res.Tags) == 0 {
		b.WriteString("| (none: no rule produced a tag for this event) |\n")
	}
	for _, t := range res.Tags[:min(len(res.Tags), maxRows)] {
		fmt.Fprintf(&b, "| `%s` |\n", cell(t))
	}
	b.WriteString(more(len(res.Tags), "tags"))
	b.WriteString("\n| Label | Value |\n| --- | --- |\n")
	for _, l := range res.Labels[:min(len(res.Labels), maxRows)] {
		k, v, _ := strings.Cut(l, "=")
		fmt.Fprintf(&b, "| `%s` | %s |\n", cell(k), cell(v))
	}
	b.WriteString(more(len(res.Labels), "labels"))
	if len(res.Warnings) > 0 {
		b.WriteString("\n**Warnings**\n\n")
		for _, w := range res.Warnings[:min(len(res.Warnings), maxRows)] {
			fmt.Fprintf(&b, "- %s\n", clip(w))
		}
		b.WriteString(more(len(res.Warnings), "warnings"))
	}
	return b.String()
}

// Bounds of the step summary, which GitHub drops whole when it is over
// 1 MiB: every list or table shows at most maxRows entries and then says
// how many it left out (more), a cell holds at most maxCell bytes and a
// list of tags in a cell maxCellTags tags. With tags of 128 characters
// the cleanup table, the largest, stays under 200 KB.
const (
	maxRows     = 200
	maxCell     = 1000
	maxCellTags = 5
)

// more is the line that ends a list or table cut at maxRows entries of n,
// saying how many of what it left out; "" when nothing was cut.
func more(n int, what string) string {
	if n <= maxRows {
		return ""
	}
	return fmt.Sprintf("\nand %d more %s\n", n-maxRows, what)
}

// clip cuts s to maxCell bytes (on a rune boundary), saying so.
func clip(s string) string {
	if len(s) <= maxCell {
		return s
	}
	cut := maxCell
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" … (%d more bytes)", len(s)-cut)
}

// tagList joins tags with ", ", the first maxCellTags of them.
func tagList(tags []string) string {
	if len(tags) <= maxCellTags {
		return strings.Join(tags, ", ")
	}
	return strings.Join(tags[:maxCellTags], ", ") + fmt.Sprintf(" and %d more", len(tags)-maxCellTags)
}

// cell makes a value safe inside a Markdown table cell, and cuts it to
// maxCell bytes.
func cell(s string) string {
	s = strings.ReplaceAll(clip(s), "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Plan prints what a run would do, for dry runs and the log.
func Plan(w io.Writer, res meta.Result, f Facts) {
	fmt.Fprintf(w, "version: %s\n", res.Version)
	fmt.Fprintln(w, "tags:")
	for _, t := range res.Tags {
		fmt.Fprintf(w, "  %s\n", t)
	}
	fmt.Fprintln(w, "labels:")
	for _, l := range res.Labels {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w, "annotations:")
	annotations := append([]string(nil), res.Annotations...)
	sort.Strings(annotations)
	for _, a := range annotations {
		fmt.Fprintf(w, "  %s\n", a)
	}
	switch {
	case f.DryRun:
		fmt.Fprintln(w, "push: no (dry run: nothing is built or pushed)")
	case f.Push:
		fmt.Fprintln(w, "push: yes")
	default:
		fmt.Fprintf(w, "push: no (%s)\n", f.PushReason)
	}
}
