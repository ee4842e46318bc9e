// Package buildx drives the buildx CLI: it records builders, checks their platforms,
// runs builds, reads their progress stream and metadata file. The argv is
// built by a pure function (BuildArgs) and golden-tested.
package buildx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/barde/phialo-image-action/internal/proc"
)

// ExecFunc runs bin with args and exactly env; see proc.ExecFunc.
type ExecFunc = proc.ExecFunc

// Buildx is the buildx CLI with the environment of one action run.
type Buildx struct {
	// Bin is the buildx binary, run standalone.
	Bin string
	// Env is the environment of every buildx call (DOCKER_CONFIG with the
	// run's credentials, BUILDX_CONFIG, cache service variables).
	Env []string
	// Exec runs the binary; nil means proc.Exec.
	Exec ExecFunc
	// Log receives the readable build log.
	Log io.Writer
	// ConfigDir is the run's buildx state (BUILDX_CONFIG) where builders the
	// run creates are recorded.
	ConfigDir string
	// Pushed, when set, is called once with the first manifest a build has
	// pushed (image:tag@sha256:...), while buildx may still push more tags.
	Pushed func(ref string)
	// NodeID, when set, is the client identity buildx presents to BuildKit
	// (.buildNodeID in ConfigDir). BuildKit keys the build context it keeps
	// from earlier transfers by it: a stable one lets a long-lived BuildKit
	// send only what changed, as it does for a machine that keeps its buildx
	// state.
	NodeID string
}

// FindBinary locates buildx: $BUILDX_BIN, else buildx on PATH, else the
// docker-buildx plugin on PATH or in Docker's plugin directories (a plugin
// binary runs standalone too).
func FindBinary(getenv func(string) string) (string, error) {
	if p := getenv("BUILDX_BIN"); p != "" {
		return p, nil
	}
	for _, name := range []string{"buildx", "docker-buildx"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, dir := range []string{"/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins"} {
		p := filepath.Join(dir, "docker-buildx")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("finding buildx: no buildx binary on PATH, no docker-buildx plugin, and BUILDX_BIN is not set")
}

func (b *Buildx) exec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	run := b.Exec
	if run == nil {
		run = proc.Exec
	}
	return run(ctx, b.Bin, args, b.Env, stdout, stderr)
}

// output runs buildx and returns its combined output.
func (b *Buildx) output(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := b.exec(ctx, args, &out, &out)
	if err != nil {
		return out.String(), fmt.Errorf("running buildx %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(lastLines(out.String(), 10)))
	}
	return out.String(), nil
}

// Builder is the builder a run uses.
type Builder struct {
	Name string
	// Driver is what the builder is, as shown in the log: "remote", or
	// "docker-container" for the run's own BuildKit container; "" for an
	// existing builder.
	Driver string
	// Created is true when the run recorded it.
	Created bool
	// Platforms are the platforms its nodes support, when they were read.
	Platforms []string
}

// SetupOptions chooses the builder.
type SetupOptions struct {
	// Existing names a builder to use as it is.
	Existing string
	// Endpoint is the address of a running BuildKit daemon: a remote
	// builder is recorded for it.
	Endpoint string
	// Driver is shown for the recorded builder; "" means "remote".
	Driver string
	// Name is the name of a recorded builder; unique per run.
	Name string
	// CheckFirst reads the builder's platforms before the build and
	// installs emulators for the missing ones (the run's own BuildKit,
	// whose host the run can change); otherwise they are checked only when
	// a build fails.
	CheckFirst bool
	// Platforms must all be supported.
	Platforms []string
	// InstallQEMU installs emulators for the missing platforms through the
	// host's Docker daemon; nil when there is none.
	InstallQEMU func(ctx context.Context, platforms []string) error
}

// Setup returns the builder to build with. An existing builder is used as
// it is and a remote one is registered without starting a process. Unless
// CheckFirst is set, their platforms are checked only when a build fails
// (CheckPlatforms), so a build that works pays nothing for the check. With
// CheckFirst, missing platforms get QEMU emulators before the build.
func (b *Buildx) Setup(ctx context.Context, o SetupOptions) (*Builder, error) {
	if b.NodeID != "" && b.ConfigDir != "" {
		if err := os.MkdirAll(b.ConfigDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating buildx state %q: %w", b.ConfigDir, err)
		}
		if err := os.WriteFile(filepath.Join(b.ConfigDir, ".buildNodeID"), []byte(b.NodeID), 0o600); err != nil {
			return nil, fmt.Errorf("writing buildx node identity: %w", err)
		}
	}
	switch {
	case o.Existing != "":
		return &Builder{Name: o.Existing}, nil
	case o.Endpoint == "":
		return nil, errors.New("no builder: set buildkit-endpoint (unix:// or tcp:// address of a BuildKit daemon) or builder, or run where a Docker daemon is reachable")
	}
	if err := b.registerRemote(o.Name, o.Endpoint); err != nil {
		return nil, err
	}
	bl := &Builder{Name: o.Name, Driver: o.Driver, Created: true}
	if bl.Driver == "" {
		bl.Driver = "remote"
	}
	if !o.CheckFirst {
		return bl, nil
	}
	missing, err := b.CheckPlatforms(ctx, bl, o.Platforms)
	if err == nil || missing == nil || o.InstallQEMU == nil {
		return bl, err
	}
	if err := o.InstallQEMU(ctx, missing); err != nil {
		return bl, fmt.Errorf("installing QEMU emulators for %s through the Docker daemon: %w", strings.Join(missing, ", "), err)
	}
	if _, err := b.CheckPlatforms(ctx, bl, o.Platforms); err != nil {
		return bl, fmt.Errorf("after installing QEMU emulators: %w", err)
	}
	return bl, nil
}

// CheckPlatforms bootstraps the builder, reads its platforms, and returns
// the wanted ones it lacks with an error that says what to do.
func (b *Buildx) CheckPlatforms(ctx context.Context, bl *Builder, want []string) ([]string, error) {
	var err error
	if bl.Platforms, err = b.platforms(ctx, bl.Name); err != nil {
		return nil, err
	}
	missing := missingPlatforms(want, bl.Platforms)
	if len(missing) == 0 {
		return nil, nil
	}
	return missing, fmt.Errorf("builder %q does not support %s (it supports %s): install QEMU emulators on the BuildKit host (binfmt_misc, for example docker run --privileged --rm tonistiigi/binfmt --install all), or build each platform on a native runner", bl.Name, strings.Join(missing, ", "), strings.Join(bl.Platforms, ", "))
}

// registerRemote records a remote builder in the run's own buildx state,
// as `buildx create --driver remote` would, without starting a process:
// the file is buildx's node group record (instances/<name>).
func (b *Buildx) registerRemote(name, endpoint string) error {
	if b.ConfigDir == "" {
		return errors.New("registering a remote builder: the run has no buildx config directory")
	}
	ng := nodeGroup{Name: name, Driver: "remote", Nodes: []node{{Name: name + "0", Endpoint: endpoint}}}
	data, err := json.Marshal(ng)
	if err != nil {
		return fmt.Errorf("registering builder %q: %w", name, err)
	}
	dir := filepath.Join(b.ConfigDir, "instances")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registering builder %q: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		return fmt.Errorf("registering builder %q: %w", name, err)
	}
	// The activity record says the builder was just used, as after `buildx
	// create`; without it buildx re-checks the builder on the first build,
	// which costs a cached rebuild about a tenth of its time.
	act := filepath.Join(b.ConfigDir, "activity")
	if err := os.MkdirAll(act, 0o700); err != nil {
		return fmt.Errorf("registering builder %q: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(act, name), []byte(time.Now().UTC().Format(time.RFC3339)), 0o600); err != nil {
		return fmt.Errorf("registering builder %q: %w", name, err)
	}
	return nil
}

// nodeGroup and node are buildx's builder record (store.NodeGroup).
type nodeGroup struct {
	Name    string
	Driver  string
	Nodes   []node
	Dynamic bool
}

type node struct {
	Name       string
	Endpoint   string
	Platforms  []any
	DriverOpts map[string]string
	Flags      []string
	Files      map[string][]byte
}

// platforms bootstraps a builder and reads the platforms of its nodes.
func (b *Buildx) platforms(ctx context.Context, name string) ([]string, error) {
	out, err := b.output(ctx, "inspect", "--bootstrap", "--builder", name)
	if err != nil {
		return nil, fmt.Errorf("inspecting builder %q: %w", name, err)
	}
	return parsePlatforms(out), nil
}

// parsePlatforms reads the "Platforms:" lines of `buildx inspect`.
func parsePlatforms(out string) []string {
	var ps []string
	for _, line := range strings.Split(out, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Platforms:")
		if !ok {
			continue
		}
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSuffix(strings.TrimSpace(p), "*"); p != "" {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// Metadata is buildx's --metadata-file.
type Metadata struct {
	Digest       string `json:"containerimage.digest"`
	ConfigDigest string `json:"containerimage.config.digest"`
	ImageName    string `json:"image.name"`
	BuildRef     string `json:"buildx.build.ref"`
	// Raw is the whole file.
	Raw json.RawMessage `json:"-"`
}

// ReadMetadata reads a metadata file.
func ReadMetadata(path string) (Metadata, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Metadata{}, fmt.Errorf("reading metadata file %q: %w", path, err)
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return Metadata{}, fmt.Errorf("decoding metadata file %q: %w", path, err)
	}
	m.Raw = json.RawMessage(bytes.TrimSpace(data))
	return m, nil
}

// Result is a finished build.
type Result struct {
	Metadata Metadata
	Report   Report
	Duration time.Duration
}

// BuildError is a failed build with what the log said about it.
type BuildError struct {
	// Step is the failing step, nil if buildx failed before any step.
	Step *Step
	// Tail are the last lines buildx printed outside the progress stream.
	Tail []string
	// Denied is true when the registry refused the push.
	Denied bool
	// Transient is set to the registry's answer when a push failed in a way
	// that another try can mend (a 429 or 5xx, or an upload the registry
	// lost, as concurrent uploads of one blob can make it do).
	Transient string
	Err       error
}

func (e *BuildError) Error() string {
	var b strings.Builder
	switch {
	case e.Denied:
		b.WriteString("the registry denied the push: give the workflow `permissions: packages: write`, and in the package's settings (Manage Actions access) give this repository the Write role")
	case e.Step != nil:
		fmt.Fprintf(&b, "build step %q failed: %s", e.Step.Name, e.Step.Error)
	default:
		fmt.Fprintf(&b, "buildx build failed: %v", e.Err)
	}
	if e.Step != nil && len(e.Step.Logs) > 0 {
		b.WriteString("\nlast lines of the step:\n  " + strings.Join(e.Step.Logs, "\n  "))
	}
	tail := e.Tail
	if e.Step != nil {
		// The step's own lines are above; keep what buildx added after them
		// (the Dockerfile excerpt, the final error).
		tail = nil
		for _, l := range e.Tail {
			if !strings.HasPrefix(l, "#") {
				tail = append(tail, l)
			}
		}
	}
	if len(tail) > 0 {
		b.WriteString("\nbuildx said:\n  " + strings.Join(tail, "\n  "))
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return e.Err }

// Build runs `buildx build` and reads its progress into the log.
func (b *Buildx) Build(ctx context.Context, o BuildOptions) (Result, error) {
	start := time.Now()
	pr, pw := io.Pipe()
	tail := &proc.Tail{W: b.Log, Max: 20}
	var rep Report
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep, readErr = readProgress(pr, tail, b.Pushed)
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := b.exec(ctx, BuildArgs(o), tail, pw)
	pw.Close()
	wg.Wait()
	res := Result{Report: rep, Duration: time.Since(start)}
	if err != nil {
		be := &BuildError{Step: rep.Failed, Tail: tail.Lines(), Err: err}
		be.Denied = denied(tail.Lines()) || (rep.Failed != nil && denied([]string{rep.Failed.Error}))
		if !be.Denied {
			be.Transient = transient(tail.Lines())
		}
		if ctx.Err() != nil {
			be.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return res, be
	}
	if readErr != nil {
		return res, readErr
	}
	if o.MetadataFile != "" {
		if res.Metadata, err = ReadMetadata(o.MetadataFile); err != nil {
			return res, err
		}
	}
	return res, nil
}

// denied reports whether lines say a registry refused a push.
func denied(lines []string) bool {
	for _, l := range lines {
		l = strings.ToLower(l)
		if strings.Contains(l, "permission_denied") || strings.Contains(l, "write_package") ||
			strings.Contains(l, "denied:") || strings.Contains(l, "403 forbidden") {
			return true
		}
	}
	return false
}

// transient returns the line that says a push failed for a reason another
// try can mend, or "".
func transient(lines []string) string {
	for _, l := range lines {
		low := strings.ToLower(l)
		for _, s := range []string{"provided digest did not match uploaded content", "blob unknown to registry",
			"429 too many requests", "500 internal server error", "502 bad gateway", "503 service unavailable", "504 gateway timeout"} {
			if strings.Contains(low, s) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
