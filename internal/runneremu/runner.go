// Package runneremu starts a Docker container action the way GitHub's
// runner does (actions/runner, src/Runner.Worker/Handlers/
// ContainerActionHandler.cs and Container/DockerCommandManager.cs): it
// builds the action's Dockerfile with `docker build`, lays out the runner's
// work directories owned by the runner's user, translates host paths in the
// step's environment, starts the container with the runner's `docker run`
// flags and mounts on the job's network, cancels it with the runner's
// signals, and reads the file commands back. Tests use it to run the
// action's image as it runs on GitHub.
package runneremu

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// RunnerUID and RunnerGID own the runner's directories, as the `runner`
// user of GitHub's hosted runners does.
const (
	RunnerUID = 1001
	RunnerGID = 1001
)

// Runner is one runner machine: its work directory and the Docker daemon
// its jobs share.
type Runner struct {
	// Docker is the docker CLI; Env its environment (DOCKER_HOST,
	// DOCKER_CONFIG with the buildx plugin).
	Docker string
	Env    []string
	// Socket is the daemon's socket on the host. The runner mounts
	// /var/run/docker.sock; a test daemon listens elsewhere, so its socket
	// is mounted at that path instead.
	Socket string
	// Root is the runner's root; jobs run in Root/_work.
	Root string
	// Label is the runner's instance label (the first 6 hex digits of the
	// SHA-256 of its .runner file) on everything it creates.
	Label string
}

// New lays out a runner under root, owned by RunnerUID.
func New(root, docker, socket string, env []string) (*Runner, error) {
	sum := sha256.Sum256([]byte(root))
	r := &Runner{Docker: docker, Env: env, Socket: socket, Root: root, Label: hex.EncodeToString(sum[:])[:6]}
	for _, d := range []string{root, r.work(), r.temp(), filepath.Join(r.temp(), "_github_home"),
		filepath.Join(r.temp(), "_github_workflow"), filepath.Join(r.temp(), "_runner_file_commands")} {
		if err := mkdirOwned(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Runner) work() string { return filepath.Join(r.Root, "_work") }
func (r *Runner) temp() string { return filepath.Join(r.work(), "_temp") }

// Temp is the runner's temp directory (runner.temp, RUNNER_TEMP).
func (r *Runner) Temp() string { return r.temp() }

func mkdirOwned(d string) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("creating %q: %w", d, err)
	}
	if err := os.Chown(d, RunnerUID, RunnerGID); err != nil {
		return fmt.Errorf("chowning %q: %w", d, err)
	}
	return nil
}

// docker runs the docker CLI and returns its combined output.
func (r *Runner) docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.Docker, args...)
	cmd.Env = r.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 30))
	}
	return string(out), nil
}

// Build builds an action's image as the runner does for `image:
// Dockerfile`: `docker build -t <label>:<step id> -f <dir>/Dockerfile <dir>`,
// with no build arguments. It returns the image and docker's output.
func (r *Runner) Build(ctx context.Context, actionDir string) (image, log string, err error) {
	image = r.Label + ":" + newID()
	dockerfile := filepath.Join(actionDir, "Dockerfile")
	log, err = r.docker(ctx, "build", "-t", image, "-f", dockerfile, actionDir)
	return image, log, err
}

// Job is one job on the runner: a workspace and, when it has services, a
// network of its own with the service containers on it.
type Job struct {
	*Runner
	// Workspace is GITHUB_WORKSPACE on the host: _work/<repo>/<repo>.
	Workspace string
	// Network is the job's network ("" without services).
	Network    string
	containers []string
}

// Service is a service container of the job.
type Service struct {
	// Alias is the service's name in the workflow: its DNS name on the
	// job's network.
	Alias string
	Image string
	// Options are extra `docker create` options (-v, -e, -p, --entrypoint).
	Options []string
	// Args follow the image.
	Args []string
}

// NewJob makes the workspace of repo (owner/name) and, with services, the
// job's network and its service containers, as the runner's container
// operation provider does.
func (r *Runner) NewJob(ctx context.Context, repo string, services ...Service) (*Job, error) {
	name := repo[strings.LastIndex(repo, "/")+1:]
	j := &Job{Runner: r, Workspace: filepath.Join(r.work(), name, name)}
	if err := mkdirOwned(filepath.Dir(j.Workspace)); err != nil {
		return nil, err
	}
	if err := mkdirOwned(j.Workspace); err != nil {
		return nil, err
	}
	if len(services) == 0 {
		return j, nil
	}
	j.Network = "github_network_" + newID()
	if _, err := r.docker(ctx, "network", "create", "--label", r.Label, j.Network); err != nil {
		return nil, err
	}
	for _, s := range services {
		cname := s.Alias + "_" + sanitize(s.Image) + "_" + newID()[:6]
		args := append([]string{"create", "--name", cname, "--label", r.Label, "--network", j.Network, "--network-alias", s.Alias}, s.Options...)
		args = append(append(args, s.Image), s.Args...)
		if _, err := r.docker(ctx, args...); err != nil {
			return j, errors.Join(err, j.Close())
		}
		j.containers = append(j.containers, cname)
		if _, err := r.docker(ctx, "start", cname); err != nil {
			return j, errors.Join(err, j.Close())
		}
	}
	return j, nil
}

// ServiceContainer is the container name of the job's service alias.
func (j *Job) ServiceContainer(alias string) string {
	for _, c := range j.containers {
		if strings.HasPrefix(c, alias+"_") {
			return c
		}
	}
	return ""
}

// Close removes the job's service containers and network, as the runner
// does when the job ends.
func (j *Job) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, c := range j.containers {
		if _, err := j.docker(ctx, "rm", "--force", c); err != nil {
			errs = append(errs, err)
		}
	}
	j.containers = nil
	if j.Network != "" {
		if _, err := j.docker(ctx, "network", "rm", j.Network); err != nil {
			errs = append(errs, err)
		}
		j.Network = ""
	}
	return errors.Join(errs...)
}

// Step is one use of the action in the job.
type Step struct {
	Image string
	// Entrypoint overrides the image's (action.yml's entrypoint,
	// pre-entrypoint or post-entrypoint).
	Entrypoint string
	// Inputs are the `with:` values, already merged with action.yml's
	// defaults as the runner evaluates them.
	Inputs map[string]string
	// Env is the step's environment besides the inputs: the github and
	// runner contexts (GITHUB_*, RUNNER_*), ACTIONS_* of the system
	// connection, and the step's env:. Paths in it are host paths; those
	// under the runner's directories are translated.
	Env map[string]string
	// Event is the event payload, written to _github_workflow/event.json.
	Event []byte
	// State is the state a main step saved, given to its post step as
	// STATE_<name>.
	State map[string]string
}

// Result is a finished step.
type Result struct {
	ExitCode int
	// Log is what the container printed (stdout and stderr, interleaved).
	Log     string
	Outputs map[string]string
	Summary string
	State   map[string]string
	// Args is the `docker run` argv, for the test's log.
	Args []string
}

// Cancel is how a test cancels a running step: the runner sends SIGINT to
// the docker CLI, SIGTERM 7.5 s later, and kills it 2.5 s after that.
type Cancel struct {
	// When is closed to cancel.
	When <-chan struct{}
	// After, when set, cancels once the step's log contains it.
	After string
}

// Runner's cancellation timings (ProcessInvoker's _sigintTimeout and
// _sigtermTimeout).
const (
	SIGINTTimeout  = 7500 * time.Millisecond
	SIGTERMTimeout = 2500 * time.Millisecond
)

// Run runs a step and waits for it. cancel may be nil.
func (j *Job) Run(ctx context.Context, s Step, cancel *Cancel) (Result, error) {
	id := newID()
	fc := filepath.Join(j.temp(), "_runner_file_commands")
	// The runner makes them for every job; a test may have cleaned them.
	for _, d := range []string{fc, filepath.Join(j.temp(), "_github_home"), filepath.Join(j.temp(), "_github_workflow")} {
		if err := mkdirOwned(d); err != nil {
			return Result{}, err
		}
	}
	files := map[string]string{
		"GITHUB_OUTPUT":       filepath.Join(fc, "set_output_"+id),
		"GITHUB_STEP_SUMMARY": filepath.Join(fc, "step_summary_"+id),
		"GITHUB_STATE":        filepath.Join(fc, "save_state_"+id),
		"GITHUB_ENV":          filepath.Join(fc, "set_env_"+id),
		"GITHUB_PATH":         filepath.Join(fc, "add_path_"+id),
	}
	env := map[string]string{}
	for k, v := range s.Env {
		env[k] = v
	}
	for k, v := range files {
		if err := writeOwned(v, nil); err != nil {
			return Result{}, err
		}
		env[k] = v
	}
	event := filepath.Join(j.temp(), "_github_workflow", "event.json")
	if err := writeOwned(event, s.Event); err != nil {
		return Result{}, err
	}
	env["GITHUB_EVENT_PATH"] = event
	env["GITHUB_WORKSPACE"] = j.Workspace
	env["RUNNER_TEMP"] = j.temp()
	// ContainerActionHandler: inputs, then HOME.
	for k, v := range s.Inputs {
		env["INPUT_"+strings.ToUpper(strings.ReplaceAll(k, " ", "_"))] = v
	}
	home := filepath.Join(j.temp(), "_github_home")
	env["HOME"] = home
	for k, v := range s.State {
		env["STATE_"+k] = v
	}
	// Later mappings are checked first (AddPathTranslateMapping inserts at
	// the front).
	mappings := [][2]string{
		{j.temp(), "/github/runner_temp"},
		{home, "/github/home"},
		{filepath.Join(j.temp(), "_github_workflow"), "/github/workflow"},
		{fc, "/github/file_commands"},
		{j.Workspace, "/github/workspace"},
	}
	translated := map[string]string{}
	for k, v := range env {
		translated[k] = translateToContainer(v, mappings)
	}

	args := []string{"run", "--name", sanitize(s.Image) + "_" + id[:6], "--label", j.Label,
		"--workdir", "/github/workspace", "--rm"}
	keys := make([]string, 0, len(translated))
	for k := range translated {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "-e", k)
	}
	args = append(args, "-e", "GITHUB_ACTIONS=true")
	if _, ok := translated["CI"]; !ok {
		args = append(args, "-e", "CI=true")
	}
	if s.Entrypoint != "" {
		args = append(args, "--entrypoint", s.Entrypoint)
	}
	if j.Network != "" {
		args = append(args, "--network", j.Network)
	}
	args = append(args,
		"-v", j.Socket+":/var/run/docker.sock",
		"-v", j.temp()+":/github/runner_temp",
		"-v", home+":/github/home",
		"-v", filepath.Join(j.temp(), "_github_workflow")+":/github/workflow",
		"-v", fc+":/github/file_commands",
		"-v", j.Workspace+":/github/workspace",
		s.Image)

	cmd := exec.Command(j.Docker, args...)
	cmd.Env = append([]string(nil), j.Env...)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+translated[k])
	}
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	res := Result{Args: args}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting docker run: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var when <-chan struct{}
	finished := make(chan struct{})
	defer close(finished)
	if cancel != nil {
		when = cancel.When
		if cancel.After != "" {
			seen := make(chan struct{})
			when = seen
			go func() {
				for {
					select {
					case <-finished:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if strings.Contains(log.String(), cancel.After) {
						close(seen)
						return
					}
				}
			}()
		}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = <-done
	case <-when:
		err = cancelProcess(cmd.Process, done)
	}
	res.Log = log.String()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return res, fmt.Errorf("running docker run: %w", err)
	}
	var rerr error
	if res.Outputs, err = readKV(files["GITHUB_OUTPUT"]); err != nil {
		rerr = errors.Join(rerr, err)
	}
	if res.State, err = readKV(files["GITHUB_STATE"]); err != nil {
		rerr = errors.Join(rerr, err)
	}
	data, err := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	if err != nil {
		rerr = errors.Join(rerr, fmt.Errorf("reading the step summary: %w", err))
	}
	res.Summary = string(data)
	return res, rerr
}

// cancelProcess is ProcessInvoker.CancelAndKillProcessTree with
// killProcessOnCancel false: SIGINT, SIGTERM after 7.5 s, SIGKILL after
// 2.5 s more.
func cancelProcess(p *os.Process, done <-chan error) error {
	_ = p.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		return err
	case <-time.After(SIGINTTimeout):
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(SIGTERMTimeout):
	}
	_ = p.Kill()
	return <-done
}

// translateToContainer is ContainerInfo.TranslateToContainerPath: a value
// equal to a mapped host path, or starting with it and a slash, gets the
// container path; the first mapping in the list's reverse order wins.
func translateToContainer(v string, mappings [][2]string) string {
	for i := len(mappings) - 1; i >= 0; i-- {
		host, ctr := mappings[i][0], mappings[i][1]
		if v == host {
			return ctr
		}
		if strings.HasPrefix(v, host+"/") {
			return ctr + v[len(host):]
		}
	}
	return v
}

func writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := os.Chown(path, RunnerUID, RunnerGID); err != nil {
		return fmt.Errorf("chowning %q: %w", path, err)
	}
	return nil
}

// readKV reads a file command file of name<<delimiter blocks (or
// name=value lines), as the runner does.
func readKV(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", path, err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var lines []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				lines = append(lines, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("%q: no closing delimiter %q for %q", path, delim, name)
			}
			out[name] = strings.Join(lines, "\n")
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%q: line %q is neither name=value nor name<<delimiter", path, line)
		}
		out[name] = value
	}
	return out, sc.Err()
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// sanitize is NameValidation.Sanitize: a container name from an image.
func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "") }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockedBuffer is a bytes.Buffer for two writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*lockedBuffer)(nil)

// ServeUnix forwards connections on a unix socket at path to the TCP
// address addr (a test's fake API on 127.0.0.1), until ctx ends.
func ServeUnix(ctx context.Context, path, addr string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on %q: %w", path, err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				Pipe(c, u)
			}()
		}
	}()
	return nil
}

// Pipe copies between a and b both ways until either side ends.
func Pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
}

// DeleteAsRunner deletes everything under each dir as the runner's user
// would before the next job (actions/checkout cleans the workspace as
// that user), and returns what it could not delete.
func DeleteAsRunner(dirs ...string) ([]string, error) {
	var left []string
	for _, d := range dirs {
		cmd := exec.Command("find", d, "-mindepth", "1", "-delete")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: RunnerUID, Gid: RunnerGID}}
		out, _ := cmd.CombinedOutput()
		entries, err := os.ReadDir(d)
		if err != nil {
			return left, fmt.Errorf("reading %q: %w", d, err)
		}
		for _, e := range entries {
			left = append(left, filepath.Join(d, e.Name()))
		}
		if len(entries) > 0 {
			left = append(left, strings.TrimSpace(lastLines(string(out), 10)))
		}
	}
	return left, nil
}

// Inputs merges with: values over action.yml's input defaults, as the
// runner evaluates them; ${{ github.token }} becomes token.
func Inputs(actionYML []byte, with map[string]string, token string) (map[string]string, error) {
	var doc struct {
		Inputs map[string]struct {
			Default *string `yaml:"default"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(actionYML, &doc); err != nil {
		return nil, fmt.Errorf("parsing action.yml: %w", err)
	}
	in := map[string]string{}
	for name, i := range doc.Inputs {
		if i.Default != nil {
			in[name] = strings.ReplaceAll(*i.Default, "${{ github.token }}", token)
		}
	}
	for k, v := range with {
		if _, ok := doc.Inputs[k]; !ok {
			return nil, fmt.Errorf("input %q is not declared in action.yml", k)
		}
		in[k] = v
	}
	return in, nil
}

// RemoveImage removes an image the runner built.
func (r *Runner) RemoveImage(ctx context.Context, image string) error {
	_, err := r.docker(ctx, "rmi", "--force", image)
	return err
}
