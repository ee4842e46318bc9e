// Package e2e holds the end-to-end tests: the action binary runs as GitHub's
// runner starts it, against a real BuildKit daemon, the real buildx CLI and
// a real registry that ./hack/test.sh starts (hack/e2e/up.sh).
package e2e
