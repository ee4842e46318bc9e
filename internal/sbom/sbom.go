// Package sbom asks the action's companion binary, phialo-sbom, for the
// SBOMs of a pushed image, one per platform, and names their files.
//
// phialo-sbom generates them with the syft library (package syftgen). It
// is a process of its own because linking syft into the action binary
// would cost every run, SBOM or not, 20-40 ms of package initialisation
// and some 70 MB of binary; one phialo-sbom process handles all platforms
// of an image concurrently.
package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/barde/phialo-image-action/internal/proc"
)

// Formats the sbom-format input accepts, with the part of the file name
// that names them.
var Formats = map[string]string{
	"spdx-json":      "spdx",
	"cyclonedx-json": "cyclonedx",
	"syft-json":      "syft",
}

// Request is what the action asks of phialo-sbom, as JSON on its standard
// input (so credentials never reach argv).
type Request struct {
	Targets     []Target     `json:"targets"`
	Formats     []string     `json:"formats"`
	Dir         string       `json:"dir"`
	Name        string       `json:"name"`
	Credentials []Credential `json:"credentials,omitempty"`
}

// Target is one platform image, by digest.
type Target struct {
	// Ref is image@sha256:... of the platform's manifest.
	Ref      string `json:"ref"`
	Platform string `json:"platform"`
}

// Credential is a registry login.
type Credential struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Result is phialo-sbom's answer, as JSON on its standard output.
type Result struct {
	Platforms []Platform `json:"platforms"`
}

// Platform is the outcome for one target.
type Platform struct {
	Platform string    `json:"platform"`
	Files    []string  `json:"files"`
	Packages []Package `json:"packages"`
	// Error is set when this platform failed; the others stand.
	Error string `json:"error,omitempty"`
}

// Package is one package the SBOM lists.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    string `json:"type"`
	PURL    string `json:"purl,omitempty"`
}

// FileName is the SBOM file of an image's platform in a format:
// <image-name>_<os>-<arch>[-<variant>].<format>.json.
func FileName(name, platform, format string) string {
	return name + "_" + strings.ReplaceAll(platform, "/", "-") + "." + Formats[format] + ".json"
}

// FindBinary locates phialo-sbom: $PHIALO_SBOM_BIN, else beside the
// running executable, else on PATH.
func FindBinary(getenv func(string) string) (string, error) {
	if p := getenv("PHIALO_SBOM_BIN"); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "phialo-sbom")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("phialo-sbom"); err == nil {
		return p, nil
	}
	return "", errors.New("finding phialo-sbom: not beside the action binary, not on PATH, and PHIALO_SBOM_BIN is not set")
}

// Generate runs phialo-sbom at bin for req, with the environment env.
func Generate(ctx context.Context, bin string, req Request, env []string) (Result, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("encoding SBOM request: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	stderr := &proc.Tail{Max: 5}
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("running %s: %w: %s", bin, err, strings.Join(stderr.Lines(), "\n"))
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return Result{}, fmt.Errorf("decoding the answer of %s: %w", bin, err)
	}
	return res, nil
}
