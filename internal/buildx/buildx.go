// Package buildx drives the buildx CLI: it creates and removes builders,
// runs builds, reads their progress stream and metadata file. The argv is
// built by pure functions (BuildArgs, CreateArgs) and golden-tested.
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
)

// ExecFunc runs bin with args and exactly env. It is the seam unit tests
// replace; Exec runs the real binary.
type ExecFunc func(ctx context.Context, bin string, args, env []string, stdout, stderr io.Writer) error

// Exec runs a command. When ctx is cancelled the command gets SIGINT, which
// makes buildx cancel the build, and is killed if it has not ended 20 s later.
func Exec(ctx context.Context, bin string, args, env []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	return cmd.Run()
}

// Buildx is the buildx CLI with the environment of one action run.
type Buildx struct {
	// Bin is the buildx binary, run standalone.
	Bin string
	// Env is the environment of every buildx call (DOCKER_CONFIG with the
	// run's credentials, BUILDX_CONFIG, cache service variables).
	Env []string
	// Exec runs the binary; nil means Exec.
	Exec ExecFunc
	// Log receives the readable build log.
	Log io.Writer
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
		run = Exec
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
	// Created is true when the run created it and must remove it.
	Created bool
	// Platforms are the platforms its nodes support.
	Platforms []string
}

// SetupOptions chooses the builder.
type SetupOptions struct {
	// Existing names a builder to use as it is.
	Existing string
	// Endpoint creates a remote builder for a running BuildKit daemon.
	Endpoint string
	// Docker reports whether a Docker daemon is reachable (GitHub's runner
	// mounts its socket into container actions): a docker-container builder
	// is created there.
	Docker bool
	// Name is the name of a created builder; unique per run.
	Name string
	// Platforms must all be supported.
	Platforms []string
	// InstallQEMU installs emulators for the missing platforms through the
	// host's Docker daemon; nil when there is none.
	InstallQEMU func(ctx context.Context, platforms []string) error
}

// Setup returns a builder that supports every wanted platform, creating one
// when no existing builder is named. On error, a builder that was created
// is returned too, so the caller removes it.
func (b *Buildx) Setup(ctx context.Context, o SetupOptions) (*Builder, error) {
	bl := &Builder{Name: o.Existing}
	if bl.Name == "" {
		if o.Endpoint == "" && !o.Docker {
			return nil, errors.New("no builder: set buildkit-endpoint (unix:// or tcp:// address of a BuildKit daemon) or builder, or run where a Docker daemon is reachable")
		}
		bl.Name = o.Name
		if _, err := b.output(ctx, CreateArgs(o.Name, o.Endpoint)...); err != nil {
			return nil, fmt.Errorf("creating builder %q: %w", o.Name, err)
		}
		bl.Created = true
	}
	var err error
	if bl.Platforms, err = b.platforms(ctx, bl.Name); err != nil {
		return bl, err
	}
	missing := missingPlatforms(o.Platforms, bl.Platforms)
	if len(missing) == 0 {
		return bl, nil
	}
	if o.InstallQEMU == nil || o.Existing != "" || o.Endpoint != "" {
		return bl, fmt.Errorf("builder %q does not support %s (it supports %s): install QEMU emulators on the BuildKit host (binfmt_misc, for example docker run --privileged --rm tonistiigi/binfmt --install all), or build each platform on a native runner", bl.Name, strings.Join(missing, ", "), strings.Join(bl.Platforms, ", "))
	}
	if err := o.InstallQEMU(ctx, missing); err != nil {
		return bl, fmt.Errorf("installing QEMU emulators for %s through the Docker daemon: %w", strings.Join(missing, ", "), err)
	}
	if bl.Platforms, err = b.platforms(ctx, bl.Name); err != nil {
		return bl, err
	}
	if still := missingPlatforms(o.Platforms, bl.Platforms); len(still) > 0 {
		return bl, fmt.Errorf("builder %q still lacks %s after installing QEMU emulators (it supports %s)", bl.Name, strings.Join(still, ", "), strings.Join(bl.Platforms, ", "))
	}
	return bl, nil
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

// Remove removes a builder the run created. It uses its own short
// deadline, so it also runs after the run's context was cancelled.
func (b *Buildx) Remove(bl *Builder) error {
	if bl == nil || !bl.Created {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.output(ctx, "rm", "--force", bl.Name); err != nil {
		return fmt.Errorf("removing builder %q: %w", bl.Name, err)
	}
	return nil
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
	Err    error
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
	tail := &tailWriter{w: b.Log, max: 20}
	var rep Report
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep, readErr = ReadProgress(pr, tail)
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := b.exec(ctx, BuildArgs(o), tail, pw)
	pw.Close()
	wg.Wait()
	res := Result{Report: rep, Duration: time.Since(start)}
	if err != nil {
		be := &BuildError{Step: rep.Failed, Tail: tail.lines(), Err: err}
		be.Denied = denied(tail.lines()) || (rep.Failed != nil && denied([]string{rep.Failed.Error}))
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

// tailWriter passes lines through to w and keeps the last max lines.
type tailWriter struct {
	w    io.Writer
	max  int
	mu   sync.Mutex
	buf  []string
	part string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		t.buf = append(t.buf, l)
		if len(t.buf) > t.max {
			t.buf = t.buf[1:]
		}
	}
	if t.w == nil {
		return len(p), nil
	}
	return t.w.Write(p)
}

func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.buf...)
	if strings.TrimSpace(t.part) != "" {
		out = append(out, t.part)
	}
	return out
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
