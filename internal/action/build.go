package action

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/buildx"
	"github.com/barde/phialo-image-action/internal/cache"
	"github.com/barde/phialo-image-action/internal/config"
	"github.com/barde/phialo-image-action/internal/ghevent"
	"github.com/barde/phialo-image-action/internal/meta"
	"github.com/barde/phialo-image-action/internal/registry"
	"github.com/barde/phialo-image-action/internal/report"
)

// buildPlan is everything a build needs, decided before anything runs.
type buildPlan struct {
	opts  buildx.BuildOptions
	cache cache.Plan
	// secretEnv holds the secret values, passed to buildx in its
	// environment only.
	secretEnv []string
}

// planBuild turns the configuration and the derived metadata into buildx
// options. It does no I/O.
func planBuild(cfg *config.Config, ev *ghevent.Context, res meta.Result, private bool) buildPlan {
	b := cfg.Build
	req := cache.Request{
		Kinds:         b.Cache,
		Scope:         b.CacheScope,
		Ref:           b.CacheRef,
		Mode:          b.CacheMode,
		Force:         b.ForceRebuild,
		DefaultBranch: ev.DefaultBranch(),
		Fork:          ev.IsFork(),
	}
	if req.Scope == "" && len(res.Images) > 0 {
		req.Scope = cache.DefaultScope(res.Images[0], b.Target)
	}
	if cfg.Distributed.PushByDigest && len(b.Platforms) == 1 {
		// Runners building one platform each must not overwrite each
		// other's cache: gha scopes and the registry cache tag get the
		// platform.
		req.Scope += "-" + b.Platforms[0]
		if req.Ref != "" {
			req.Ref += "-" + meta.Sanitize(b.Platforms[0])
		}
	}
	if len(res.Tags) > 0 {
		req.InlineFrom = res.Tags[0]
	}
	switch {
	case ev.IsPullRequest():
		req.PullRequest, req.BaseBranch = ev.PRNumber(), ev.PRBaseRef()
	case strings.HasPrefix(ev.Ref, "refs/heads/"):
		req.Branch = strings.TrimPrefix(ev.Ref, "refs/heads/")
	}
	cp := cache.Decide(req)

	p := buildPlan{cache: cp}
	provenance := b.Provenance
	if provenance == "" {
		provenance = "mode=max"
		if private {
			provenance = "mode=min"
		}
	}
	p.opts = buildx.BuildOptions{
		Context:        b.Context,
		File:           b.File,
		Target:         b.Target,
		Platforms:      b.Platforms,
		Tags:           res.Tags,
		Labels:         res.Labels,
		Annotations:    res.Annotations,
		BuildArgs:      append(append([]string(nil), b.BuildArgs...), cp.BuildArgs...),
		BuildContexts:  b.BuildContexts,
		CacheFrom:      cp.From,
		CacheTo:        cp.To,
		NoCache:        cp.NoCache,
		NoCacheFilters: b.NoCacheFilters,
		Provenance:     provenance,
		SBOM:           b.SBOMAttestation,
		Push:           cfg.Push,
	}
	if cfg.Distributed.PushByDigest && cfg.Push && len(res.Images) > 0 {
		p.opts.PushByDigest = res.Images[0]
	}
	for i, s := range b.Secrets {
		env := "PHIALO_SECRET_" + strconv.Itoa(i)
		p.opts.Secrets = append(p.opts.Secrets, buildx.Secret{ID: s.Key, Env: env})
		p.secretEnv = append(p.secretEnv, env+"="+s.Value)
	}
	for _, s := range b.SecretFiles {
		p.opts.Secrets = append(p.opts.Secrets, buildx.Secret{ID: s.Key, File: s.Value})
	}
	return p
}

// buildOutcome is what a finished (or failed) build reports.
type buildOutcome struct {
	result  buildx.Result
	image   registry.Image
	inspect error
}

// session is what the steps of one run share: a work directory under
// RUNNER_TEMP and the Docker config with the run's credentials in it. Both
// are removed when the run ends, also on failure and on cancellation.
type session struct {
	work         string
	dockerConfig string
	logins       []registry.Login
	// host is the runner's Docker daemon and the action's container on it.
	host host
}

// newSession makes the run's work directory under RUNNER_TEMP and the
// Docker config in it. Runners older than 2.331 (GHES) pass RUNNER_TEMP as
// the host's path, which does not exist in the action's container: the
// work directory is then a private one in the container's temporary
// directory.
func newSession(gha *githubactions.Action, b config.Build) (*session, error) {
	parent := gha.Getenv("RUNNER_TEMP")
	work, err := os.MkdirTemp(parent, "phialo-image-action-")
	if err != nil && parent != "" && errors.Is(err, os.ErrNotExist) {
		gha.Debugf("RUNNER_TEMP %q does not exist in the action's container (a runner older than 2.331 passes the host's path); the work directory is a private one under %q instead", parent, os.TempDir())
		parent = ""
		work, err = os.MkdirTemp(parent, "phialo-image-action-")
	}
	if err != nil {
		if parent == "" {
			parent = os.TempDir()
		}
		return nil, fmt.Errorf("creating a work directory under %q: %w", parent, err)
	}
	s := &session{work: work}
	if b.Password != "" {
		gha.AddMask(b.Password)
		s.logins = append(s.logins, registry.Login{Registry: b.Registry, Username: b.Username, Password: b.Password})
	}
	if s.dockerConfig, err = registry.NewDockerConfig(work, s.logins); err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	return s, nil
}

func (s *session) close() error {
	if err := os.RemoveAll(s.work); err != nil {
		return fmt.Errorf("removing %q: %w", s.work, err)
	}
	return nil
}

// runBuild sets up the builder, builds and pushes, and reads the pushed
// image back. The builder it created is removed before it returns, also
// on failure and on cancellation.
func runBuild(ctx context.Context, gha *githubactions.Action, stdout io.Writer, cfg *config.Config, ev *ghevent.Context, p buildPlan, image string, s *session) (out buildOutcome, err error) {
	b := cfg.Build
	work, dockerConfig := s.work, s.dockerConfig
	bin, err := buildx.FindBinary(gha.Getenv)
	if err != nil {
		return out, err
	}
	bx := &buildx.Buildx{Bin: bin, Env: buildxEnv(gha.Getenv, dockerConfig, work, b.Builder != "", p.secretEnv), Log: stdout}
	if b.Builder == "" {
		bx.ConfigDir = filepath.Join(work, "buildx")
		bx.NodeID = nodeID(ev)
	}

	gha.Group("Builder")
	opts0 := buildx.SetupOptions{
		Existing:  b.Builder,
		Endpoint:  b.BuildKitEndpoint,
		Name:      builderName(ev),
		Platforms: b.Platforms,
	}
	var bl *buildx.Builder
	switch {
	case b.Builder != "" && b.Builder != "default" && !builderRecorded(userBuildxConfig(gha.Getenv), b.Builder):
		err = errBuilderHidden(b.Builder, filepath.Join(userBuildxConfig(gha.Getenv), "instances"))
	case b.Builder == "" && b.BuildKitEndpoint == "" && s.host.docker != nil:
		var remove func() error
		bl, remove, err = ownBuildKit(ctx, gha, stdout, s.host, b, bx, opts0, work)
		defer func() {
			if rmErr := remove(); rmErr != nil {
				err = errors.Join(err, rmErr)
			}
		}()
	default:
		bl, err = bx.Setup(ctx, opts0)
	}
	if bl != nil {
		fmt.Fprintf(stdout, "builder %s", bl.Name)
		if bl.Driver != "" {
			fmt.Fprintf(stdout, " (%s driver)", bl.Driver)
		}
		if len(bl.Platforms) > 0 {
			fmt.Fprintf(stdout, ", platforms %s", strings.Join(bl.Platforms, ", "))
		}
		fmt.Fprintln(stdout)
	}
	gha.EndGroup()
	if err != nil {
		return out, err
	}

	opts := p.opts
	opts.Builder = bl.Name
	opts.MetadataFile = filepath.Join(work, "metadata.json")
	bctx := ctx
	if b.BuildTimeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, b.BuildTimeout)
		defer cancel()
	}
	// The pushed image is read back for the summary as soon as its first
	// tag is in the registry, while buildx pushes the others.
	reader := registry.NewReader(s.logins)
	type readBack struct {
		digest string
		image  registry.Image
		err    error
	}
	early := make(chan readBack, 1)
	earlyStarted := false // set by the progress reader, which Build waits for
	if cfg.Push && image != "" {
		bx.Pushed = func(ref string) {
			_, digest, ok := strings.Cut(ref, "@")
			if !ok {
				return
			}
			earlyStarted = true
			go func() {
				img, err := reader.Inspect(ctx, image+"@"+digest)
				early <- readBack{digest, img, err}
			}()
		}
	}
	gha.Group("Build")
	report.Command(stdout, filepath.Base(bin), buildx.BuildArgs(opts))
	out.result, err = bx.Build(bctx, opts)
	// One more try when the registry failed a push in a way that can pass:
	// everything built is in BuildKit's cache, so it costs a push.
	var be *buildx.BuildError
	if errors.As(err, &be) && be.Transient != "" && bctx.Err() == nil {
		gha.Warningf("the registry failed a push (%s); pushing again", be.Transient)
		out.result, err = bx.Build(bctx, opts)
	}
	gha.EndGroup()
	if err != nil {
		switch {
		case bctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
			err = fmt.Errorf("build-timeout %s reached: %w", b.BuildTimeout, err)
		case ctx.Err() == nil && bl.Platforms == nil:
			// The platforms were not checked up front; a missing one is the
			// likeliest cause and deserves the message that says what to do.
			if missing, perr := bx.CheckPlatforms(ctx, bl, b.Platforms); missing != nil {
				err = fmt.Errorf("%w\n%w", perr, err)
			}
		}
		return out, err
	}
	digest := out.result.Metadata.Digest
	if !cfg.Push || digest == "" || image == "" {
		return out, nil
	}
	if earlyStarted {
		if rb := <-early; rb.digest == digest {
			out.image, out.inspect = rb.image, rb.err
			return out, nil
		}
	}
	out.image, out.inspect = reader.Inspect(ctx, image+"@"+digest)
	return out, nil
}

// buildxEnv is the environment of every buildx call: the action's own,
// without inputs (they may hold secrets) and without the user's Docker
// config, plus the run's Docker config, the gha cache protocol switch and
// the build secrets.
func buildxEnv(getenv func(string) string, dockerConfig, work string, existingBuilder bool, secretEnv []string) []string {
	env := childEnv(dockerConfig, "BUILDX_CONFIG", "BUILDX_BUILDER")
	// A builder the user made (docker/setup-buildx-action) lives in the
	// user's buildx state; one this run creates lives in the work directory.
	if existingBuilder {
		env = append(env, "BUILDX_CONFIG="+userBuildxConfig(getenv))
	} else {
		env = append(env, "BUILDX_CONFIG="+filepath.Join(work, "buildx"))
	}
	// GitHub's runner does not pass ACTIONS_CACHE_SERVICE_V2 to container
	// actions; without it buildx falls back to the retired v1 cache protocol.
	if getenv("ACTIONS_RESULTS_URL") != "" {
		env = append(env, "ACTIONS_CACHE_SERVICE_V2=true")
	}
	return append(env, secretEnv...)
}

// childEnv is the environment of the tools the action runs: its own,
// without the inputs (they may hold secrets), the variables named in drop
// and the user's Docker config, plus the run's Docker config.
func childEnv(dockerConfig string, drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INPUT_") || k == "DOCKER_CONFIG" || slices.Contains(drop, k) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_CONFIG="+dockerConfig)
}

func userBuildxConfig(getenv func(string) string) string {
	if d := getenv("BUILDX_CONFIG"); d != "" {
		return d
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "buildx")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker", "buildx")
}

// builderRecorded reports whether buildx's state in dir records a builder
// named name.
func builderRecorded(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, "instances", name))
	return err == nil
}

// nodeID is the run's buildx client identity: the same for runs of one
// repository and workspace on one machine, as if buildx kept its state
// there, so a long-lived BuildKit reuses the build context it received
// before; different on every other machine.
func nodeID(ev *ghevent.Context) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("phialo-image-action\x00" + host + "\x00" + ev.Repository + "\x00" + ev.Workspace))
	return hex.EncodeToString(sum[:8])
}

// builderName is unique per run, so parallel jobs on one daemon never share
// or remove each other's builders.
func builderName(ev *ghevent.Context) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "phialo-" + hex.EncodeToString(b[:])
	if ev.RunID != "" {
		name = "phialo-" + ev.RunID + "-" + hex.EncodeToString(b[:])
	}
	return name
}
