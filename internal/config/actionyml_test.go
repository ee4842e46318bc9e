package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/barde/phialo-image-action/internal/config"
)

// TestActionYMLDeclaresEveryInput checks that action.yml declares exactly
// the inputs the action reads: an undeclared input never reaches the
// action on GitHub's runner, and a declared one that is never read is a lie.
func TestActionYMLDeclaresEveryInput(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]struct {
			Description string  `yaml:"description"`
			Default     *string `yaml:"default"`
		} `yaml:"inputs"`
		Outputs map[string]struct {
			Description string `yaml:"description"`
		} `yaml:"outputs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatalf("action.yml is not valid YAML: %v", err)
	}
	var declared []string
	for name, in := range action.Inputs {
		declared = append(declared, name)
		if in.Description == "" || in.Default == nil {
			t.Errorf("input %q lacks a description or a default", name)
		}
	}
	var read []string
	get := func(name string) string {
		if !slices.Contains(read, name) {
			read = append(read, name)
		}
		return ""
	}
	if _, err := config.Load(get, fake(nil), loadEvent(t, "push-main")); err != nil {
		t.Fatalf("Load: %v", err)
	}
	sort.Strings(declared)
	sort.Strings(read)
	if diff := cmp.Diff(declared, read); diff != "" {
		t.Errorf("inputs declared in action.yml (-) and read by the action (+):\n%s", diff)
	}
	for name, in := range action.Inputs {
		if def := *in.Default; def != config.Defaults[name] {
			t.Errorf("input %q: action.yml default %q, config.Defaults %q", name, def, config.Defaults[name])
		}
	}
	for name, out := range action.Outputs {
		if out.Description == "" {
			t.Errorf("output %q lacks a description", name)
		}
	}
}

// TestREADMEListsEveryInputAndOutput keeps the README's input and output
// tables equal to action.yml.
func TestREADMEListsEveryInputAndOutput(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs  map[string]any `yaml:"inputs"`
		Outputs map[string]any `yaml:"outputs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	for section, declared := range map[string]map[string]any{"## Inputs": action.Inputs, "## Outputs": action.Outputs} {
		listed := tableNames(string(readme), section)
		var want []string
		for name := range declared {
			want = append(want, name)
		}
		sort.Strings(want)
		sort.Strings(listed)
		if diff := cmp.Diff(want, listed); diff != "" {
			t.Errorf("README %q table and action.yml differ (-action.yml +README):\n%s", section, diff)
		}
	}
}

// tableNames returns the `name` of each row of the first table after the
// heading.
func tableNames(md, heading string) []string {
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		return nil
	}
	var names []string
	inTable := false
	for _, line := range strings.Split(md[i+len(heading)+2:], "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		c := strings.TrimSpace(cells[1])
		if strings.HasPrefix(c, "`") && strings.HasSuffix(c, "`") {
			names = append(names, strings.Trim(c, "`"))
		}
	}
	return names
}

// TestREADMEExamplesAreCheckedFiles keeps every example workflow of the
// README equal to a file of docs/examples, which actionlint checks.
func TestREADMEExamplesAreCheckedFiles(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../docs/examples/*.yml")
	if err != nil || len(files) < 4 {
		t.Fatalf("docs/examples: %d files (%v)", len(files), err)
	}
	examples := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples[string(data)] = filepath.Base(f)
	}
	blocks := strings.Split(string(readme), "```yaml\n")[1:]
	found := 0
	for _, b := range blocks {
		block := b[:strings.Index(b, "```")]
		if !strings.HasPrefix(block, "name:") {
			continue // a fragment, not a workflow
		}
		found++
		if _, ok := examples[block]; !ok {
			t.Errorf("README workflow is in no file of docs/examples:\n%s", block)
		}
	}
	if found < 4 {
		t.Errorf("%d example workflows in the README, want at least 4", found)
	}
}
