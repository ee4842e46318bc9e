package testutil

import (
	"os"
	"testing"
	"time"
)

// TestBuildKitLock checks which uses of one daemon wait for each other.
// flock(2) locks conflict between open files, within one process as
// between two, so two acquisitions here stand for two test binaries.
func TestBuildKitLock(t *testing.T) {
	host := "unix:///phialo-lock-test-" + randomHex(t) + ".sock"
	t.Cleanup(func() { os.Remove(BuildKitLockFile(host)) })
	for _, tc := range []struct {
		name          string
		first, second BuildKitUse
		wantWait      bool
	}{
		{"shared beside shared", BuildKitShared, BuildKitShared, false},
		{"alone waits for shared", BuildKitShared, BuildKitAlone, true},
		{"shared waits for alone", BuildKitAlone, BuildKitShared, true},
		{"alone waits for alone", BuildKitAlone, BuildKitAlone, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release, err := AcquireBuildKitLock(host, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan func() error)
			go func() {
				second, err := AcquireBuildKitLock(host, tc.second)
				if err != nil {
					t.Error(err)
				}
				got <- second
			}()
			var second func() error
			select {
			case second = <-got:
				if tc.wantWait {
					t.Errorf("the second lock did not wait for the first")
				}
			case <-time.After(200 * time.Millisecond):
				if !tc.wantWait {
					t.Errorf("the second lock waits for the first")
				}
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			if second == nil {
				select {
				case second = <-got:
				case <-time.After(10 * time.Second):
					t.Fatal("the second lock still waits after the first was released")
				}
			}
			if second != nil {
				if err := second(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
