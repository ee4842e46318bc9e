// Package docker speaks to the Docker daemon that GitHub's runner shares
// with a container action through /var/run/docker.sock: it learns the
// action's own container (mounts, networks), starts and removes the run's
// BuildKit container, and installs QEMU emulators. It uses the daemon's API
// directly, so the action's image needs no Docker CLI.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// RunLabel is the label that every container and volume the action creates
// carries; its value names the run (see RunValue), so the next run on the
// same runner can find what a killed run left behind.
const RunLabel = "dev.phialo.image-action.run"

// RunnerLabel names the runner (RUNNER_NAME) whose run created a
// container or volume.
const RunnerLabel = "dev.phialo.image-action.runner"

// RunValue names one job of one run on one runner: a matrix job's legs
// share GITHUB_JOB, but never a runner at the same time.
func RunValue(getenv func(string) string) string {
	parts := []string{getenv("GITHUB_RUN_ID"), getenv("GITHUB_RUN_ATTEMPT"), getenv("GITHUB_JOB"), getenv("RUNNER_NAME")}
	return strings.Join(parts, "-")
}

// Client is a connection to a Docker daemon.
type Client struct {
	api *client.Client
}

// New connects to the daemon named by DOCKER_HOST, else the default socket.
// It makes no request.
func New(getenv func(string) string) (*Client, error) {
	var opts []client.Opt
	if h := getenv("DOCKER_HOST"); h != "" {
		opts = append(opts, client.WithHost(h))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker daemon: %w", err)
	}
	return &Client{api: api}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.api.Close() }

// Mount is one bind mount of the action's container: Source on the daemon's
// host, Destination inside the container.
type Mount struct {
	Source, Destination string
}

// Self is the container the action runs in.
type Self struct {
	ID string
	// Mounts are its bind mounts.
	Mounts []Mount
	// NetworkMode is its network mode (a network name, "bridge", "host").
	NetworkMode string
	// Networks are the networks it is attached to.
	Networks []string
}

// Self finds the action's own container: Docker sets a container's
// hostname to the start of its ID. It returns nil, without error, when the
// process does not run in a container of this daemon (a local run).
func (c *Client) Self(ctx context.Context) (*Self, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("reading the hostname: %w", err)
	}
	res, err := c.api.ContainerInspect(ctx, host, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting the action's container %q: %w", host, err)
	}
	ct := res.Container
	s := &Self{ID: ct.ID}
	for _, m := range ct.Mounts {
		if m.Type == mount.TypeBind && m.Source != "" {
			s.Mounts = append(s.Mounts, Mount{Source: m.Source, Destination: m.Destination})
		}
	}
	if ct.HostConfig != nil {
		s.NetworkMode = string(ct.HostConfig.NetworkMode)
	}
	if ct.NetworkSettings != nil {
		for n := range ct.NetworkSettings.Networks {
			s.Networks = append(s.Networks, n)
		}
		slices.Sort(s.Networks)
	}
	return s, nil
}

// JobNetwork is the network a sibling container must join to reach what the
// action reaches: the job's network of a job with services (the runner
// starts the action on it), "host" for a host-network action, "" for the
// daemon's default bridge.
func (s *Self) JobNetwork() string {
	if s == nil {
		return ""
	}
	switch s.NetworkMode {
	case "host":
		return "host"
	case "", "default", "bridge", "none":
	default:
		if !strings.HasPrefix(s.NetworkMode, "container:") {
			return s.NetworkMode
		}
	}
	for _, n := range s.Networks {
		if n != "bridge" && n != "host" && n != "none" {
			return n
		}
	}
	return ""
}

// HostPath is the daemon host's path of a path in the action's container,
// for a bind mount into a sibling container. ok is false when no mount holds
// it. Without a container (a local run) paths are the host's.
func (s *Self) HostPath(p string) (string, bool) {
	if s == nil {
		return p, true
	}
	return translate(p, s.Mounts, func(m Mount) (string, string) { return m.Destination, m.Source })
}

// ContainerPath is the action container's path of a host path, when a bind
// mount holds it. ok is false, and the path is returned as it is, when none
// does.
func (s *Self) ContainerPath(p string) (string, bool) {
	if s == nil {
		return p, false
	}
	return translate(p, s.Mounts, func(m Mount) (string, string) { return m.Source, m.Destination })
}

// translate maps p through the mount whose from-side is its longest
// prefix, as whole path elements.
func translate(p string, mounts []Mount, sides func(Mount) (from, to string)) (string, bool) {
	best, bestLen := "", -1
	for _, m := range mounts {
		from, to := sides(m)
		from = filepath.Clean(from)
		if from == "/" || len(from) <= bestLen {
			continue
		}
		if p == from {
			best, bestLen = to, len(from)
		} else if rest, ok := strings.CutPrefix(p, from+"/"); ok {
			best, bestLen = filepath.Join(to, rest), len(from)
		}
	}
	if bestLen < 0 {
		return p, false
	}
	return best, true
}

// pull pulls image. When the pull fails and the daemon has an image of that
// name, that one is used, as buildx's docker-container driver does; the
// pull's error is returned only when there is none.
func (c *Client) pull(ctx context.Context, image string, log io.Writer) error {
	resp, err := c.api.ImagePull(ctx, image, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
		resp.Close()
	}
	if err == nil {
		return nil
	}
	if _, ierr := c.api.ImageInspect(ctx, image); ierr == nil {
		fmt.Fprintf(log, "pulling %s failed; using the local image of that name (%v)\n", image, firstLine(err.Error()))
		return nil
	}
	return fmt.Errorf("pulling %q: %w", image, err)
}

// BuildKit is the run's BuildKit container.
type BuildKit struct {
	// Name of the container; its state volume is Name + "_state".
	Name string
	// Image is the BuildKit image, such as moby/buildkit:buildx-stable-1.
	Image string
	// Network is the network it joins ("" for the default bridge).
	Network string
	// Labels go on the container and its volume (RunLabel among them).
	Labels map[string]string
	// SocketDir is a directory of the daemon's host, mounted at
	// /run/phialo in the container, where BuildKit listens on
	// buildkitd.sock and reads buildkitd.toml when Config is set.
	SocketDir string
	// Config is true when SocketDir holds a buildkitd.toml.
	Config bool
}

// buildKitDir is where the BuildKit container sees SocketDir.
const buildKitDir = "/run/phialo"

// StartBuildKit pulls the image (or uses a local one of that name), then
// creates and starts a privileged BuildKit container, as buildx's
// docker-container driver does, that listens on a unix socket in SocketDir.
// On error, whatever was created is removed.
func (c *Client) StartBuildKit(ctx context.Context, b BuildKit, log io.Writer) (err error) {
	if err := c.pull(ctx, b.Image, log); err != nil {
		return err
	}
	vol := b.Name + "_state"
	if _, err := c.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: b.Labels}); err != nil {
		return fmt.Errorf("creating volume %q: %w", vol, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.RemoveBuildKit(context.WithoutCancel(ctx), b.Name))
		}
	}()
	cmd := []string{"--addr", "unix://" + buildKitDir + "/buildkitd.sock", "--allow-insecure-entitlement=network.host"}
	if b.Config {
		cmd = append(cmd, "--config", buildKitDir+"/buildkitd.toml")
	}
	init := true
	hc := &container.HostConfig{
		Privileged: true,
		Init:       &init,
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: vol, Target: "/var/lib/buildkit"},
			{Type: mount.TypeBind, Source: b.SocketDir, Target: buildKitDir},
		},
	}
	if b.Network != "" {
		hc.NetworkMode = container.NetworkMode(b.Network)
	}
	if _, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       b.Name,
		Config:     &container.Config{Image: b.Image, Cmd: cmd, Labels: b.Labels},
		HostConfig: hc,
	}); err != nil {
		return fmt.Errorf("creating container %q: %w", b.Name, err)
	}
	if _, err := c.api.ContainerStart(ctx, b.Name, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting container %q: %w", b.Name, err)
	}
	return nil
}

// WaitBuildKit waits until BuildKit's socket exists at sock (the action's
// path of SocketDir/buildkitd.sock), or fails with the container's last log
// lines when it exits first.
func (c *Client) WaitBuildKit(ctx context.Context, name, sock string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if st, err := os.Stat(sock); err == nil && st.Mode()&os.ModeSocket != 0 {
			return nil
		}
		res, err := c.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting container %q: %w", name, err)
		}
		if st := res.Container.State; st != nil && !st.Running {
			return fmt.Errorf("BuildKit container %q exited (code %d): %s", name, st.ExitCode, c.tail(ctx, name))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for BuildKit in container %q: %w: %s", name, ctx.Err(), c.tail(context.WithoutCancel(ctx), name))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RestartBuildKit restarts the BuildKit container and waits for its socket
// at sock again. BuildKit reads the kernel's emulators when it starts and
// keeps that list for a while, so a restart makes emulators installed
// since then count at once.
func (c *Client) RestartBuildKit(ctx context.Context, name, sock string) error {
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing BuildKit's socket %q: %w", sock, err)
	}
	timeout := 10
	if _, err := c.api.ContainerRestart(ctx, name, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("restarting container %q: %w", name, err)
	}
	return c.WaitBuildKit(ctx, name, sock)
}

// tail is the last lines a container printed, for an error message.
func (c *Client) tail(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := c.api.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && out.Len() == 0 {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	return strings.TrimSpace(out.String())
}

// RemoveBuildKit removes the BuildKit container and its state volume. A
// missing one is no error.
func (c *Client) RemoveBuildKit(ctx context.Context, name string) error {
	var errs []error
	if _, err := c.api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("removing container %q: %w", name, err))
	}
	if _, err := c.api.VolumeRemove(ctx, name+"_state", client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("removing volume %q: %w", name+"_state", err))
	}
	return errors.Join(errs...)
}

// RemoveStale removes every container and volume that a run on runner
// other than run created, and returns their names.
func (c *Client) RemoveStale(ctx context.Context, runner, run string) ([]string, error) {
	f := make(client.Filters).Add("label", RunnerLabel+"="+runner)
	stale := func(labels map[string]string) bool { return labels[RunLabel] != run }
	var removed []string
	var errs []error
	cs, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers of runner %q: %w", runner, err)
	}
	for _, ct := range cs.Items {
		if !stale(ct.Labels) {
			continue
		}
		name := ct.ID
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		if _, err := c.api.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %q: %w", name, err))
			continue
		}
		removed = append(removed, "container "+name)
	}
	vs, err := c.api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("listing volumes of runner %q: %w", runner, err))...)
	}
	for _, v := range vs.Items {
		if !stale(v.Labels) {
			continue
		}
		if _, err := c.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %q: %w", v.Name, err))
			continue
		}
		removed = append(removed, "volume "+v.Name)
	}
	return removed, errors.Join(errs...)
}

// InstallQEMU registers QEMU emulators for arches (arm64, riscv64, ...) with
// the host kernel by running image (tonistiigi/binfmt) privileged with
// --install, as docker/setup-qemu-action does. Its output goes to log.
func (c *Client) InstallQEMU(ctx context.Context, image string, arches []string, labels map[string]string, log io.Writer) (err error) {
	if err := c.pull(ctx, image, log); err != nil {
		return err
	}
	res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Cmd: []string{"--install", strings.Join(arches, ",")}, Labels: labels},
		HostConfig: &container.HostConfig{Privileged: true},
	})
	if err != nil {
		return fmt.Errorf("creating a container of %q: %w", image, err)
	}
	defer func() {
		if _, rerr := c.api.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = errors.Join(err, fmt.Errorf("removing the %q container: %w", image, rerr))
		}
	}()
	wait := c.api.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting a container of %q: %w", image, err)
	}
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		return fmt.Errorf("waiting for the %q container: %w", image, err)
	}
	out := c.tail(ctx, res.ID)
	if out != "" {
		fmt.Fprintln(log, out)
	}
	if code != 0 {
		return fmt.Errorf("%s --install %s exited with code %d: %s", image, strings.Join(arches, ","), code, out)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
