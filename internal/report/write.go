package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// delimiter is the heredoc delimiter go-githubactions writes; a value that
// contains it would end the output early.
const delimiter = "_GitHubActionsFileCommandDelimeter_"

// WriteOutputs writes the outputs to GITHUB_OUTPUT in the heredoc form. When
// the runner set no GITHUB_OUTPUT (a local run), they go to w instead.
func WriteOutputs(gha *githubactions.Action, w io.Writer, outs []Output) error {
	if gha.Getenv("GITHUB_OUTPUT") == "" {
		for _, o := range outs {
			fmt.Fprintf(w, "output %s:\n%s\n", o.Name, indent(o.Value))
		}
		return nil
	}
	for _, o := range outs {
		if strings.Contains(o.Value, delimiter) {
			return fmt.Errorf("writing output %q: the value contains %q", o.Name, delimiter)
		}
		if err := fileCommand(func() { gha.SetOutput(o.Name, o.Value) }); err != nil {
			return fmt.Errorf("writing output %q to GITHUB_OUTPUT: %w", o.Name, err)
		}
	}
	return nil
}

// maxSummary is the most WriteSummary writes: GitHub drops a step summary
// over 1 MiB whole. The parts of the summary are bounded well below it
// (see maxRows); this is the last guard.
const maxSummary = 1<<20 - 64<<10

// WriteSummary appends markdown to GITHUB_STEP_SUMMARY, when the runner set
// it, cut at a line to maxSummary bytes when it is longer.
func WriteSummary(gha *githubactions.Action, markdown string) error {
	if gha.Getenv("GITHUB_STEP_SUMMARY") == "" {
		return nil
	}
	markdown = capSummary(markdown, maxSummary)
	if err := fileCommand(func() { gha.AddStepSummary(markdown) }); err != nil {
		return fmt.Errorf("writing GITHUB_STEP_SUMMARY: %w", err)
	}
	return nil
}

// capSummary cuts markdown at the end of a line so that it and the note
// saying so fit in max bytes.
func capSummary(markdown string, max int) string {
	if len(markdown) <= max {
		return markdown
	}
	const note = "\n**The summary was cut here: GitHub shows no summary over 1 MiB.**\n"
	cut := strings.LastIndexByte(markdown[:max-len(note)], '\n') + 1
	return markdown[:cut] + note
}

// fileCommand runs a go-githubactions file command, which panics when the
// file cannot be written, and returns that as an error.
func fileCommand(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	f()
	return nil
}

func indent(s string) string {
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
