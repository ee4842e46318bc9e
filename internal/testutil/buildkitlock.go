package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BuildKitUse says how a test uses a BuildKit daemon that other test
// processes use at the same time (go test runs packages in parallel).
type BuildKitUse int

const (
	// BuildKitShared is a test that builds: it may run beside other builds.
	BuildKitShared BuildKitUse = iota
	// BuildKitAlone is a test that runs `buildctl prune --all` and then
	// counts the steps a build takes from an imported cache: no other
	// build may fill the local cache meanwhile, and no other prune may
	// empty it under a build.
	BuildKitAlone
)

// LockBuildKit takes the lock of the BuildKit daemon at host for the rest
// of the test, shared or alone (an flock(2) lock on a file named after
// host in the temporary directory, so it holds across the test binaries
// of all packages), and releases it with t.Cleanup. Take it once per test,
// in the top-level test: flock(2) locks of one process conflict as those
// of two do, so a test that locked BuildKitAlone and locks again waits for
// itself.
func LockBuildKit(t testing.TB, host string, use BuildKitUse) {
	t.Helper()
	start := time.Now()
	unlock, err := AcquireBuildKitLock(host, use)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %s for the BuildKit lock", waited.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		if err := unlock(); err != nil {
			t.Error(err)
		}
	})
}

// AcquireBuildKitLock is LockBuildKit for a TestMain: it blocks until it
// has the lock and returns the function that releases it.
func AcquireBuildKitLock(host string, use BuildKitUse) (func() error, error) {
	path := BuildKitLockFile(host)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("opening the BuildKit lock %q: %w", path, err)
	}
	how := syscall.LOCK_SH
	if use == BuildKitAlone {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %q: %w", path, err)
	}
	return func() error {
		// Closing the file releases the lock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("releasing the BuildKit lock %q: %w", path, err)
		}
		return nil
	}, nil
}

// BuildKitLockFile is the lock file of the BuildKit daemon at host.
func BuildKitLockFile(host string) string {
	sum := sha256.Sum256([]byte(host))
	return filepath.Join(os.TempDir(), "phialo-buildkit-"+hex.EncodeToString(sum[:8])+".lock")
}
