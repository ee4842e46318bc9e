// Package cleanup decides which versions of a GHCR container package a
// registry cleanup deletes. It is pure: the caller lists the package's
// versions, reads the manifest graph from the registry and passes the
// clock; Decide returns a Plan and does no I/O of its own.
//
// GHCR keeps one package version per manifest digest: images, indexes,
// platform manifests, attestation manifests, signatures. Deleting every
// "untagged" version, as common cleanup actions do, breaks multi-platform
// images, since the platform manifests and attestations a tagged index
// points to are untagged versions themselves. The planner reasons about
// images instead of versions:
//
//   - The top-level images ("roots") are the versions no other version of
//     the package references through Graph.Refs. Everything reachable from
//     a root is part of that image.
//   - The policy (Keep, OlderThan, Untagged, Tags, ExcludeTags, Protect)
//     is applied to roots only, newest first.
//   - What is kept is closed under references: every root not deleted,
//     every protected digest and everything reachable from them stays. A
//     version is deleted only when all the images that reach it are
//     deleted.
//   - When the registry cannot be read (Graph.Unreadable) or the policy is
//     invalid, nothing is deleted.
//
// Plan.Deletions lists the versions to delete with every parent before its
// children, so an executor that stops midway never leaves a tag pointing at
// a missing manifest. The plan is deterministic: the same versions (in any
// order), graph and policy give the same decisions, in the same order, with
// the same reasons.
package cleanup
