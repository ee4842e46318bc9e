package testutil

import (
	"fmt"
	"os"
	"testing"
)

// TestMain holds the BuildKit daemon at BUILDKIT_HOST alone for the
// package's run, when one is set: TestGHACacheBuildx prunes its cache and
// then counts a step taken from the gha cache.
func TestMain(m *testing.M) {
	host := os.Getenv("BUILDKIT_HOST")
	if host == "" {
		os.Exit(m.Run())
	}
	unlock, err := AcquireBuildKitLock(host, BuildKitAlone)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := unlock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}
