package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// decode reads JSON keeping numbers as written, so a uint64 that float64
// would round compares exactly.
func decode(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode: %v\n%s", err, data)
	}
	return v
}

// withoutCaps is what the rewrite must give: doc with names removed from
// every capability set under process (the object at path).
func withoutCaps(t *testing.T, data []byte, path []string, names ...string) any {
	t.Helper()
	doc := decode(t, data)
	obj := doc.(map[string]any)
	for _, p := range path {
		obj = obj[p].(map[string]any)
	}
	caps := obj["capabilities"].(map[string]any)
	for set, list := range caps {
		if list == nil {
			continue
		}
		kept := []any{}
		for _, n := range list.([]any) {
			if !slices.Contains(names, n.(string)) {
				kept = append(kept, n)
			}
		}
		caps[set] = kept
	}
	return doc
}

func dropOf(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func TestRewrite(t *testing.T) {
	config, err := os.ReadFile(filepath.Join("testdata", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The exec process file is the "process" object of a config.json.
	var whole map[string]json.RawMessage
	if err := json.Unmarshal(config, &whole); err != nil {
		t.Fatal(err)
	}
	processFile := []byte(whole["process"])

	noCaps := []byte(`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}`)
	nullSets := []byte(`{"process":{"capabilities":{"bounding":["CAP_KILL","CAP_SYS_RESOURCE"],"ambient":null}}}`)
	noProcess := []byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`)

	tests := []struct {
		name    string
		rewrite func([]byte, map[string]bool) ([]byte, bool, error)
		in      []byte
		drop    map[string]bool
		changed bool
		want    any // nil: output must equal the input byte for byte
		wantErr bool
	}{
		{
			name:    "config without CAP_SYS_RESOURCE",
			rewrite: rewriteConfig, in: config, drop: dropOf("CAP_SYS_RESOURCE"),
			changed: true, want: withoutCaps(t, config, []string{"process"}, "CAP_SYS_RESOURCE"),
		},
		{
			name:    "config without two capabilities",
			rewrite: rewriteConfig, in: config, drop: dropOf("CAP_SYS_RESOURCE", "CAP_BPF"),
			changed: true, want: withoutCaps(t, config, []string{"process"}, "CAP_SYS_RESOURCE", "CAP_BPF"),
		},
		{
			name:    "config with nothing to drop",
			rewrite: rewriteConfig, in: config, drop: dropOf("CAP_NOT_THERE"),
		},
		{
			name:    "config without capabilities",
			rewrite: rewriteConfig, in: noCaps, drop: dropOf("CAP_SYS_RESOURCE"),
		},
		{
			name:    "config without process",
			rewrite: rewriteConfig, in: noProcess, drop: dropOf("CAP_SYS_RESOURCE"),
		},
		{
			name:    "null set stays null",
			rewrite: rewriteConfig, in: nullSets, drop: dropOf("CAP_SYS_RESOURCE"),
			changed: true, want: decode(t, []byte(`{"process":{"capabilities":{"bounding":["CAP_KILL"],"ambient":null}}}`)),
		},
		{
			name:    "exec process file",
			rewrite: rewriteProcess, in: processFile, drop: dropOf("CAP_SYS_RESOURCE"),
			changed: true, want: withoutCaps(t, processFile, nil, "CAP_SYS_RESOURCE"),
		},
		{
			name:    "invalid JSON",
			rewrite: rewriteConfig, in: []byte(`{"process":`), drop: dropOf("CAP_SYS_RESOURCE"),
			wantErr: true,
		},
		{
			name:    "capability set not a list",
			rewrite: rewriteProcess, in: []byte(`{"capabilities":{"bounding":"CAP_KILL"}}`), drop: dropOf("CAP_KILL"),
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := tt.rewrite(tt.in, tt.drop)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; output %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if tt.want == nil {
				if !bytes.Equal(out, tt.in) {
					t.Errorf("output differs from input:\n%s", out)
				}
				return
			}
			if got := decode(t, out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant the input without %v", out, tt.drop)
			}
		})
	}
}

// The rewrite must not round numbers or escape strings it does not touch.
func TestRewriteKeepsLiterals(t *testing.T) {
	config, err := os.ReadFile(filepath.Join("testdata", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := rewriteConfig(config, dropOf("CAP_SYS_RESOURCE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lit := range []string{`18446744073709551615`, `9223372036854775807`, `"a<b & c>d"`} {
		if !bytes.Contains(out, []byte(lit)) {
			t.Errorf("output lost %s:\n%s", lit, out)
		}
	}
	if bytes.Contains(out, []byte("CAP_SYS_RESOURCE")) {
		t.Errorf("CAP_SYS_RESOURCE still in output")
	}
}

func TestMissingCaps(t *testing.T) {
	tests := []struct {
		status string
		want   []string
	}{
		{"Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n", []string{"CAP_SYS_RESOURCE"}},
		{"CapBnd:\t000001ffffffffff\n", nil},
		{"CapBnd:\t000001ffffdfffff\n", []string{"CAP_SYS_ADMIN"}},
		{"CapBnd:\t000000fffeffffff\n", []string{"CAP_SYS_RESOURCE", "CAP_CHECKPOINT_RESTORE"}},
	}
	for _, tt := range tests {
		bound, err := parseBounding([]byte(tt.status))
		if err != nil {
			t.Fatalf("%q: %v", tt.status, err)
		}
		got := missingCaps(bound)
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.status, got, tt.want)
		}
		for _, n := range tt.want {
			if !got[n] {
				t.Errorf("%q: %s not dropped (got %v)", tt.status, n, got)
			}
		}
	}
	if _, err := parseBounding([]byte("Name:\tx\n")); err == nil {
		t.Error("no error without a CapBnd line")
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args                 []string
		cmd, bundle, process string
	}{
		{
			args: []string{"--root", "/run/x/runtime-runc/moby", "--log", "/run/x/log.json", "--log-format", "json",
				"create", "--bundle", "/run/x/bundle", "--pid-file", "/run/x/init.pid", "0123abcd"},
			cmd: "create", bundle: "/run/x/bundle",
		},
		{args: []string{"--systemd-cgroup", "run", "-b", "/b", "id"}, cmd: "run", bundle: "/b"},
		{args: []string{"create", "--bundle=/b", "id"}, cmd: "create", bundle: "/b"},
		{
			args: []string{"--root", "/r", "exec", "--process", "/tmp/runc-process1", "--detach", "--pid-file", "/p", "id"},
			cmd:  "exec", process: "/tmp/runc-process1",
		},
		{args: []string{"exec", "-p=/f", "id"}, cmd: "exec", process: "/f"},
		// What follows the container ID is exec's command line, not runc's.
		{args: []string{"exec", "-t", "id", "ps", "-p", "1", "-b", "x"}, cmd: "exec"},
		{args: []string{"--root", "/r", "delete", "--force", "id"}, cmd: "delete"},
		{args: []string{"--version"}},
	}
	for _, tt := range tests {
		cmd, bundle, process := parseArgs(tt.args)
		if cmd != tt.cmd || bundle != tt.bundle || process != tt.process {
			t.Errorf("parseArgs(%q) = %q, %q, %q; want %q, %q, %q",
				tt.args, cmd, bundle, process, tt.cmd, tt.bundle, tt.process)
		}
	}
}
