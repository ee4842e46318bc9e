package sbom

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ platform, format, want string }{
		{"linux/amd64", "spdx-json", "app_linux-amd64.spdx.json"},
		{"linux/arm/v7", "cyclonedx-json", "app_linux-arm-v7.cyclonedx.json"},
		{"linux/arm64", "syft-json", "app_linux-arm64.syft.json"},
	} {
		if got := FileName("app", tc.platform, tc.format); got != tc.want {
			t.Errorf("FileName(app, %s, %s) = %q, want %q", tc.platform, tc.format, got, tc.want)
		}
	}
}

// fakeGenerator writes a script that records its standard input and
// answers with a fixed result, standing in for phialo-sbom.
func fakeGenerator(t *testing.T, answer string, exit int) (bin, stdin string) {
	t.Helper()
	dir := t.TempDir()
	stdin = filepath.Join(dir, "stdin.json")
	bin = filepath.Join(dir, "phialo-sbom")
	script := "#!/bin/sh\ncat > " + stdin + "\necho '" + answer + "'\necho 'a complaint' >&2\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, stdin
}

func TestGenerateSendsCredentialsOnStdin(t *testing.T) {
	t.Parallel()
	bin, stdin := fakeGenerator(t, `{"platforms":[{"platform":"linux/amd64","files":["/s/app_linux-amd64.spdx.json"],"packages":[{"name":"busybox","version":"1.36.1-r0","type":"apk"}]}]}`, 0)
	req := Request{
		Targets:     []Target{{Ref: "ghcr.io/a/app@sha256:1", Platform: "linux/amd64"}},
		Formats:     []string{"spdx-json"},
		Dir:         "/s",
		Name:        "app",
		Credentials: []Credential{{Registry: "ghcr.io", Username: "barde", Password: "s3cret"}},
	}
	res, err := Generate(context.Background(), bin, req, []string{"PATH=/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Platforms: []Platform{{Platform: "linux/amd64", Files: []string{"/s/app_linux-amd64.spdx.json"}, Packages: []Package{{Name: "busybox", Version: "1.36.1-r0", Type: "apk"}}}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(stdin)
	if err != nil {
		t.Fatal(err)
	}
	var got Request
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("request on stdin (-want +got):\n%s", diff)
	}
}

func TestGenerateFailure(t *testing.T) {
	t.Parallel()
	bin, _ := fakeGenerator(t, "", 3)
	_, err := Generate(context.Background(), bin, Request{}, []string{"PATH=/usr/bin:/bin"})
	if err == nil || !strings.Contains(err.Error(), "a complaint") {
		t.Errorf("Generate = %v, want the generator's error output", err)
	}
}
