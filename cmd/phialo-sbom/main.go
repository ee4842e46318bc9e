// Command phialo-sbom is phialo-image-action's SBOM generator: it reads a
// request (images by digest, formats, directory, credentials) as JSON on
// standard input, writes one SBOM per platform and format with the syft
// library, and answers with JSON on standard output.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/barde/phialo-image-action/internal/sbom"
	"github.com/barde/phialo-image-action/internal/sbom/syftgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var req sbom.Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "phialo-sbom: decoding the request on standard input: %v\n", err)
		os.Exit(2)
	}
	res := syftgen.Run(ctx, req)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "phialo-sbom: writing the answer: %v\n", err)
		os.Exit(1)
	}
}
