// Package scan scans pushed images for vulnerabilities with Trivy and
// prepares its SARIF for GitHub code scanning.
//
// Trivy runs once per platform against the image's digest in the registry
// (--image-src remote), so nothing is pulled into a daemon; credentials
// reach it through DOCKER_CONFIG in its environment, never through argv.
// The vulnerability database is brought up to date once (DownloadDB)
// before the scans, which then only read it and keep their scan cache in
// memory, so the platforms are scanned at once without waiting on each
// other's locks in the cache directory.
// The argv is built by a pure function (Args) and golden-tested.
//
// Process then turns Trivy's SARIF into what GitHub accepts and shows
// usefully: results of the chosen severities only, a run category per image
// and platform (automationDetails.id), every result pointed at the
// Dockerfile (an image has no source lines), and no more than GitHub's
// upload limits, cutting the least severe results first.
package scan
