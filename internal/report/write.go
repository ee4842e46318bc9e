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

// WriteSummary appends markdown to GITHUB_STEP_SUMMARY, when the runner set it.
func WriteSummary(gha *githubactions.Action, markdown string) error {
	if gha.Getenv("GITHUB_STEP_SUMMARY") == "" {
		return nil
	}
	if err := fileCommand(func() { gha.AddStepSummary(markdown) }); err != nil {
		return fmt.Errorf("writing GITHUB_STEP_SUMMARY: %w", err)
	}
	return nil
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
