package config_test

import (
	"os"
	"slices"
	"sort"
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
