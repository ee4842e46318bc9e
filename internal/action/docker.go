package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/docker"
	"github.com/barde/phialo-image-action/internal/meta"
)

// dockerSocket is where GitHub's runner mounts its Docker daemon's socket
// into container actions.
const dockerSocket = "/var/run/docker.sock"

// dockerAvailable reports whether a Docker daemon is reachable.
func dockerAvailable(getenv func(string) string) bool {
	if getenv("DOCKER_HOST") != "" {
		return true
	}
	st, err := os.Stat(dockerSocket)
	return err == nil && st.Mode()&os.ModeSocket != 0
}

// host is the Docker daemon the runner shares with the action and the
// action's own container on it; both nil without a daemon.
type host struct {
	docker *docker.Client
	self   *docker.Self
}

// connectDocker connects to the runner's Docker daemon and finds the
// action's own container. Without a daemon it returns an empty host; a
// daemon that cannot be asked is a warning, and the action goes on as if
// it ran on the host.
func connectDocker(ctx context.Context, gha *githubactions.Action) host {
	if !dockerAvailable(gha.Getenv) {
		return host{}
	}
	dk, err := docker.New(gha.Getenv)
	if err != nil {
		gha.Warningf("%v", err)
		return host{}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	self, err := dk.Self(ctx)
	if err != nil {
		gha.Warningf("%v; paths of the runner in inputs are used as they are", err)
	}
	return host{docker: dk, self: self}
}

func (h host) close() {
	if h.docker != nil {
		h.docker.Close()
	}
}

// translateInputs rewrites the runner's host paths inside input values to
// the action container's paths. The runner translates only values that
// start with one of its directories; a path inside a value
// (secret-files: id=/home/runner/work/_temp/s) or one the workflow built
// (${{ runner.temp }}/x in build-contexts) reaches the action untranslated.
// A path that exists as it is stays as it is.
func translateInputs(gha *githubactions.Action, self *docker.Self, cfg *config.Config) {
	if self == nil {
		return
	}
	tr := func(input, p string) string {
		if !filepath.IsAbs(p) {
			return p
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
		c, ok := self.ContainerPath(p)
		if !ok {
			return p
		}
		gha.Debugf("input %q: runner path %s is %s in the action's container", input, p, c)
		return c
	}
	b := &cfg.Build
	b.Context = tr("context", b.Context)
	b.File = tr("file", b.File)
	for i, bc := range b.BuildContexts {
		if k, v, ok := strings.Cut(bc, "="); ok {
			b.BuildContexts[i] = k + "=" + tr("build-contexts", v)
		}
	}
	for i := range b.SecretFiles {
		b.SecretFiles[i].Value = tr("secret-files", b.SecretFiles[i].Value)
	}
	if p, ok := strings.CutPrefix(b.BuildKitEndpoint, "unix://"); ok {
		b.BuildKitEndpoint = "unix://" + tr("buildkit-endpoint", p)
	}
	s := &cfg.Supply
	s.SBOMDir = tr("sbom-dir", s.SBOMDir)
	s.SARIFDir = tr("sarif-dir", s.SARIFDir)
	s.TrivyCacheDir = tr("trivy-cache-dir", s.TrivyCacheDir)
	cfg.Distributed.DigestsDir = tr("digests-dir", cfg.Distributed.DigestsDir)
}

// buildkitConfig is the buildkitd-config input made usable in the BuildKit
// container: every file it names (registry CAs and key pairs) is copied to
// dir/certs and the TOML points at the copies as the container sees them
// (under inner). cas are the PEM contents of the registry CAs.
func buildkitConfig(in string, self *docker.Self, dir, inner string) (cfgTOML []byte, cas [][]byte, err error) {
	var doc map[string]any
	if err := toml.Unmarshal([]byte(in), &doc); err != nil {
		return nil, nil, fmt.Errorf(`parsing input "buildkitd-config": %w`, err)
	}
	n := 0
	copyFile := func(registry, p string) (string, []byte, error) {
		src := p
		if _, err := os.Stat(src); err != nil {
			if c, ok := self.ContainerPath(p); ok {
				src = c
			}
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return "", nil, fmt.Errorf(`input "buildkitd-config": reading %q of registry %q: %w`, p, registry, err)
		}
		n++
		name := fmt.Sprintf("%d-%s", n, filepath.Base(p))
		sub := filepath.Join("certs", meta.Sanitize(registry))
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return "", nil, fmt.Errorf("creating %q: %w", filepath.Join(dir, sub), err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, name), data, 0o600); err != nil {
			return "", nil, fmt.Errorf("writing %q: %w", name, err)
		}
		return filepath.Join(inner, sub, name), data, nil
	}
	regs, _ := doc["registry"].(map[string]any)
	for reg, v := range regs {
		r, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if list, ok := r["ca"].([]any); ok {
			for i, c := range list {
				p, ok := c.(string)
				if !ok {
					continue
				}
				inside, data, err := copyFile(reg, p)
				if err != nil {
					return nil, nil, err
				}
				list[i] = inside
				cas = append(cas, data)
			}
		}
		if list, ok := r["keypair"].([]any); ok {
			for _, kp := range list {
				m, ok := kp.(map[string]any)
				if !ok {
					continue
				}
				for _, k := range []string{"key", "cert"} {
					p, ok := m[k].(string)
					if !ok {
						continue
					}
					inside, _, err := copyFile(reg, p)
					if err != nil {
						return nil, nil, err
					}
					m[k] = inside
				}
			}
		}
	}
	out, err := toml.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf(`encoding input "buildkitd-config": %w`, err)
	}
	return out, cas, nil
}

// systemCAFiles are where Go looks for the system's CA bundle on Linux.
var systemCAFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// trustRegistryCAs makes the action and every tool it runs (buildx,
// phialo-sbom, Trivy: all Go) trust the registry CAs of buildkitd-config
// besides the system's: it writes both into one bundle under dir and
// points SSL_CERT_FILE at it. It must run before the first TLS connection,
// since Go reads the system roots once.
func trustRegistryCAs(dir string, cas [][]byte) (string, error) {
	var bundle bytes.Buffer
	files := systemCAFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			bundle.Write(data)
			bundle.WriteByte('\n')
			break
		}
	}
	for _, c := range cas {
		bundle.Write(c)
		bundle.WriteByte('\n')
	}
	path := filepath.Join(dir, "ca-bundle.pem")
	if err := os.WriteFile(path, bundle.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("writing %q: %w", path, err)
	}
	return path, os.Setenv("SSL_CERT_FILE", path)
}

// trustConfigCAs trusts the registry CAs of buildkitd-config for the whole
// run (see trustRegistryCAs); done removes the bundle.
func trustConfigCAs(in string, h host) (done func(), err error) {
	dir, err := os.MkdirTemp("", "phialo-ca-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the CA bundle: %w", err)
	}
	done = func() { os.RemoveAll(dir) }
	_, cas, err := buildkitConfig(in, h.self, dir, dir)
	if err == nil && len(cas) > 0 {
		_, err = trustRegistryCAs(dir, cas)
	}
	if err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// ownBuildKit starts the run's BuildKit container on the Docker daemon
// (on the job's network, labelled with the run), waits for it, and records
// a builder for it. remove removes the container and its volume; it is
// set whenever something was created, also on error.
func ownBuildKit(ctx context.Context, gha *githubactions.Action, log io.Writer, h host, b config.Build, bx *buildx.Buildx, opts buildx.SetupOptions, work string) (bl *buildx.Builder, remove func() error, err error) {
	remove = func() error { return nil }
	dir := filepath.Join(work, "buildkit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, remove, fmt.Errorf("creating %q: %w", dir, err)
	}
	hostDir, ok := h.self.HostPath(dir)
	if !ok {
		return nil, remove, fmt.Errorf("the run's directory %q is on no mount of the action's container, so the BuildKit container cannot share its socket: the runner mounts RUNNER_TEMP at /github/runner_temp; with an older runner, set buildkit-endpoint", dir)
	}
	// A run whose container was killed (docker kill, out of memory) left
	// its BuildKit behind; the runner runs one job at a time, so whatever
	// an earlier run on this runner left is stale.
	run, runner := docker.RunValue(gha.Getenv), gha.Getenv("RUNNER_NAME")
	if runner != "" {
		removed, err := h.docker.RemoveStale(ctx, runner, run)
		for _, r := range removed {
			fmt.Fprintf(log, "removed %s, left behind by an earlier run on this runner\n", r)
		}
		if err != nil {
			gha.Warningf("removing what an earlier run left on the Docker daemon: %v", err)
		}
	}
	bk := docker.BuildKit{
		Name:      opts.Name,
		Image:     b.BuildKitImage,
		Network:   h.self.JobNetwork(),
		Labels:    map[string]string{docker.RunLabel: run, docker.RunnerLabel: runner},
		SocketDir: hostDir,
	}
	if strings.TrimSpace(b.BuildKitdConfig) != "" {
		data, _, err := buildkitConfig(b.BuildKitdConfig, h.self, dir, "/run/phialo")
		if err != nil {
			return nil, remove, err
		}
		if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), data, 0o600); err != nil {
			return nil, remove, fmt.Errorf("writing buildkitd.toml: %w", err)
		}
		bk.Config = true
	}
	network := bk.Network
	if network == "" {
		network = "the default bridge"
	}
	fmt.Fprintf(log, "starting BuildKit (%s) as container %s on %s\n", bk.Image, bk.Name, network)
	if err := h.docker.StartBuildKit(ctx, bk, log); err != nil {
		return nil, remove, err
	}
	remove = func() error {
		// Its own deadline: this also runs after the run was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return h.docker.RemoveBuildKit(ctx, bk.Name)
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	if err := h.docker.WaitBuildKit(ctx, bk.Name, sock); err != nil {
		return nil, remove, err
	}
	opts.Endpoint = "unix://" + sock
	opts.Driver = "docker-container"
	opts.CheckFirst = true
	opts.InstallQEMU = func(ctx context.Context, platforms []string) error {
		var arches []string
		for _, p := range platforms {
			if parts := strings.Split(p, "/"); len(parts) > 1 {
				arches = append(arches, parts[1])
			}
		}
		fmt.Fprintf(log, "installing QEMU emulators for %s with %s\n", strings.Join(arches, ", "), b.BinfmtImage)
		if err := h.docker.InstallQEMU(ctx, b.BinfmtImage, arches, bk.Labels, log); err != nil {
			return err
		}
		return h.docker.RestartBuildKit(ctx, bk.Name, sock)
	}
	bl, err = bx.Setup(ctx, opts)
	return bl, remove, err
}

// errBuilderHidden explains why a builder made by an earlier step is not
// there: docker/setup-buildx-action records it in the runner's
// ~/.docker/buildx, which the runner does not mount into container actions.
func errBuilderHidden(name, dir string) error {
	return errors.New("builder " + fmt.Sprintf("%q", name) + " is not recorded in " + dir + ": a builder that docker/setup-buildx-action made lives in the runner's ~/.docker/buildx, which GitHub's runner does not mount into container actions. Leave builder empty (the action starts its own BuildKit on the runner's Docker daemon, with QEMU for foreign platforms), or give the BuildKit daemon's address as buildkit-endpoint (for example a tcp:// endpoint of setup-buildx-action's remote driver)")
}
