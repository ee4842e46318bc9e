// Package meta derives image tags, labels and annotations from a GitHub
// event, with the rule syntax of docker/metadata-action (`type=semver,...`,
// Handlebars templates, flavor). It is pure: the caller passes the event,
// the repository and the clock, and gets the tags back.
package meta
