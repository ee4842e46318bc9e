// Command phialo-image-action is a GitHub Docker container action that turns
// a push, tag, pull request, schedule or manual dispatch into a published,
// described, scanned and tidy container image on GitHub Container Registry.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // {{date tz='...'}} works on images without zoneinfo

	"github.com/sethvargo/go-githubactions"

	"github.com/barde/phialo-image-action/internal/action"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	gha := githubactions.New()
	err := action.Run(ctx, gha, os.Stdout)
	stop()
	if err != nil {
		gha.Errorf("%v", err)
		os.Exit(1)
	}
}
