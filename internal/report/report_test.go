package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-githubactions"
	"gopkg.in/yaml.v3"

	"github.com/barde/phialo-image-action/internal/meta"
)

func TestMetaOutputsSeparatorsAndJSON(t *testing.T) {
	t.Parallel()
	res := meta.Result{
		Version:     "1.0",
		Tags:        []string{"ghcr.io/a/b:1.0", "ghcr.io/a/b:latest"},
		TagNames:    []string{"1.0", "latest"},
		Labels:      []string{"a=x=y", "b=<&>"},
		Annotations: []string{"manifest:a=1", "index:a=1"},
	}
	outs, err := MetaOutputs(res, Separators{Tags: ",", Labels: ";", Annotations: " "})
	if err != nil {
		t.Fatal(err)
	}
	want := []Output{
		{"version", "1.0"},
		{"tags", "ghcr.io/a/b:1.0,ghcr.io/a/b:latest"},
		{"tag-names", "1.0,latest"},
		{"labels", "a=x=y;b=<&>"},
		{"annotations", "manifest:a=1 index:a=1"},
		// Keys sorted, '=' kept in values, no HTML escaping of <&>.
		{"json", `{"tags":["ghcr.io/a/b:1.0","ghcr.io/a/b:latest"],"labels":{"a":"x=y","b":"<&>"},"annotations":{"index:a":"1","manifest:a":"1"}}`},
	}
	if diff := cmp.Diff(want, outs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}

	outs, err = MetaOutputs(meta.Result{}, Separators{})
	if err != nil {
		t.Fatal(err)
	}
	if got := outs[len(outs)-1].Value; got != `{"tags":[],"labels":{},"annotations":{}}` {
		t.Errorf("json of an empty result = %s", got)
	}
}

func TestSummaryEscapesCells(t *testing.T) {
	t.Parallel()
	md := Summary(meta.Result{Labels: []string{"k=a|b\nc"}}, Facts{Event: "push", Ref: "refs/heads/main", PushReason: "pull request from a fork"})
	for _, want := range []string{"| `k` | a\\|b c |", "| Push | no: pull request from a fork |", "(none: no rule produced a tag for this event)"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

func TestWriteOutputsRefusesTheDelimiter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "output")
	env := map[string]string{"GITHUB_OUTPUT": path}
	gha := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }))
	err := WriteOutputs(gha, &bytes.Buffer{}, []Output{{"labels", "x=" + delimiter}})
	if err == nil || !strings.Contains(err.Error(), `writing output "labels"`) {
		t.Errorf("WriteOutputs = %v, want an error naming the output", err)
	}
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("a broken output was written: %q", data)
	}
}

func TestWriteOutputsUnwritableFile(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GITHUB_OUTPUT": filepath.Join(t.TempDir(), "missing-dir", "output")}
	gha := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }))
	err := WriteOutputs(gha, &bytes.Buffer{}, []Output{{"version", "1"}})
	if err == nil || !strings.Contains(err.Error(), "GITHUB_OUTPUT") {
		t.Errorf("WriteOutputs = %v, want an error (not a panic) naming GITHUB_OUTPUT", err)
	}
}

// TestOutputsDeclared checks that every output the action writes is
// declared in action.yml, and every declared one is written.
func TestOutputsDeclared(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Outputs map[string]any `yaml:"outputs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	outs, err := MetaOutputs(meta.Result{}, Separators{})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, BuildOutputs(Build{})...)
	outs = append(outs, SupplyOutputs(Supply{})...)
	outs = append(outs, CleanupOutputs(Cleanup{})...)
	outs = append(outs, MigrateOutputs(nil)...)
	written := map[string]bool{}
	for _, o := range outs {
		written[o.Name] = true
		if _, ok := action.Outputs[o.Name]; !ok {
			t.Errorf("output %q is written but not declared in action.yml", o.Name)
		}
	}
	for name := range action.Outputs {
		if !written[name] {
			t.Errorf("output %q is declared in action.yml but never written", name)
		}
	}
}
