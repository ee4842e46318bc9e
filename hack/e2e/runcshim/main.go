// Command runcshim is an OCI runtime that the end-to-end tests' dockerd calls
// in place of runc. It drops from the container's capability sets every
// capability that this machine's capability bounding set lacks, then execs
// the real runc with the same arguments.
//
// It adapts this test machine only: the machines the tests run on have no
// CAP_SYS_RESOURCE in their bounding set (CapBnd 000001fffeffffff), so runc
// fails every --privileged container (and buildx's docker-container driver
// always starts BuildKit privileged) with "unable to apply caps: operation
// not permitted". A GitHub runner has the full set, and the action must not
// know about this shim: hack/e2e/up.sh registers it with dockerd as
// --add-runtime phialo-e2e=PATH --default-runtime phialo-e2e.
//
// Two places carry capabilities: the bundle's config.json (runc create, run
// and restore with --bundle DIR or -b DIR) and the process file of runc exec
// (--process FILE or -p FILE, used by docker exec). Only the lists under
// process.capabilities change; every other byte of meaning is kept, as the
// JSON is decoded into json.RawMessage values, not into typed structs.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames maps capability bit numbers to the names runtime-spec uses
// (linux/capability.h, up to CAP_CHECKPOINT_RESTORE).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capSets are the lists under process.capabilities in runtime-spec.
var capSets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// valueFlags are runc's flags (global, and of create, run, exec and restore)
// that take a separate value when written without "=". parseArgs skips
// their values so that it finds where the positional arguments start.
var valueFlags = map[string]bool{
	"root": true, "log": true, "log-format": true, "criu": true, "rootless": true,
	"bundle": true, "b": true, "console-socket": true, "pid-file": true,
	"preserve-fds": true, "process": true, "p": true, "cwd": true, "env": true,
	"e": true, "user": true, "u": true, "additional-gids": true, "g": true,
	"process-label": true, "apparmor": true, "cap": true, "c": true,
	"cgroup": true, "image-path": true, "work-path": true, "parent-path": true,
	"page-server": true, "manage-cgroups-mode": true, "empty-ns": true,
	"lsm-profile": true, "lsm-mount-context": true,
}

func main() {
	args := os.Args[1:]
	if err := adapt(args); err != nil {
		fmt.Fprintf(os.Stderr, "phialo-e2e runc shim: %v\n", err)
		os.Exit(1)
	}
	runc, err := findRunc()
	if err != nil {
		fmt.Fprintf(os.Stderr, "phialo-e2e runc shim: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "phialo-e2e runc shim: exec %s: %v\n", runc, err)
	os.Exit(1)
}

// adapt rewrites the capability lists that runc is about to read.
func adapt(args []string) error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	bound, err := parseBounding(status)
	if err != nil {
		return err
	}
	drop := missingCaps(bound)
	if len(drop) == 0 {
		return nil
	}
	cmd, bundle, process := parseArgs(args)
	if bundle != "" {
		if err := rewriteFile(filepath.Join(bundle, "config.json"), drop, rewriteConfig); err != nil {
			return err
		}
	}
	if cmd == "exec" && process != "" {
		if err := rewriteFile(process, drop, rewriteProcess); err != nil {
			return err
		}
	}
	return nil
}

// parseBounding reads the CapBnd line of a /proc/PID/status file.
func parseBounding(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapBnd line in /proc/self/status")
}

// missingCaps names the known capabilities whose bit is clear in bound.
func missingCaps(bound uint64) map[string]bool {
	drop := map[string]bool{}
	for bit, name := range capNames {
		if bound&(1<<bit) == 0 {
			drop[name] = true
		}
	}
	return drop
}

// parseArgs finds runc's command (the first positional argument), and the
// values of --bundle/-b and --process/-p among the flags that follow it.
// Flags end at the next positional argument (the container ID): what comes
// after it is the command line of runc exec, not runc's.
func parseArgs(args []string) (cmd, bundle, process string) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			cmd = a
			i++
			break
		}
		if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && valueFlags[name] {
			i++
		}
	}
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && valueFlags[name] && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "bundle", "b":
			bundle = value
		case "process", "p":
			process = value
		}
	}
	return cmd, bundle, process
}

// rewriteFile applies rewrite to the JSON file at path and writes it back
// when something changed.
func rewriteFile(path string, drop map[string]bool, rewrite func([]byte, map[string]bool) ([]byte, bool, error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := rewrite(data, drop)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	// WriteFile on an existing file keeps its mode and owner.
	return os.WriteFile(path, out, 0o600)
}

// rewriteConfig drops capabilities from a bundle's config.json.
func rewriteConfig(data []byte, drop map[string]bool) ([]byte, bool, error) {
	var config map[string]json.RawMessage
	if err := json.Unmarshal(data, &config); err != nil {
		return nil, false, err
	}
	process, ok := config["process"]
	if !ok {
		return data, false, nil
	}
	process, changed, err := rewriteProcess(process, drop)
	if err != nil || !changed {
		return data, false, err
	}
	config["process"] = process
	out, err := marshal(config)
	return out, true, err
}

// rewriteProcess drops capabilities from a runtime-spec process object: the
// "process" of a config.json, or the whole file of runc exec --process.
func rewriteProcess(data []byte, drop map[string]bool) ([]byte, bool, error) {
	var process map[string]json.RawMessage
	if err := json.Unmarshal(data, &process); err != nil {
		return nil, false, err
	}
	raw, ok := process["capabilities"]
	if !ok || string(raw) == "null" {
		return data, false, nil
	}
	var caps map[string]json.RawMessage
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, false, fmt.Errorf("process.capabilities: %w", err)
	}
	changed := false
	for _, set := range capSets {
		raw, ok := caps[set]
		if !ok || string(raw) == "null" {
			continue
		}
		var names []string
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, false, fmt.Errorf("process.capabilities.%s: %w", set, err)
		}
		kept := make([]string, 0, len(names))
		for _, n := range names {
			if !drop[n] {
				kept = append(kept, n)
			}
		}
		if len(kept) == len(names) {
			continue
		}
		out, err := marshal(kept)
		if err != nil {
			return nil, false, err
		}
		caps[set] = out
		changed = true
	}
	if !changed {
		return data, false, nil
	}
	var err error
	if process["capabilities"], err = marshal(caps); err != nil {
		return nil, false, err
	}
	out, err := marshal(process)
	return out, true, err
}

// marshal encodes v without HTML escaping, so strings such as "a<b" in
// untouched fields come out as they went in.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// findRunc returns the real runc: /usr/sbin/runc, else the first runc on
// PATH, never this program itself (it may be installed under that name).
func findRunc() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	selfInfo, err := os.Stat(self)
	if err != nil {
		return "", err
	}
	candidates := []string{"/usr/sbin/runc"}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			candidates = append(candidates, filepath.Join(dir, "runc"))
		}
	}
	for _, c := range candidates {
		info, err := os.Stat(c)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 || os.SameFile(info, selfInfo) {
			continue
		}
		return c, nil
	}
	return "", errors.New("no runc found in /usr/sbin or on PATH")
}
