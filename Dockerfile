# The action's image: the static action and phialo-sbom binaries, with the
# buildx and Trivy they drive, on a static base with CA certificates. The
# action speaks to the runner's Docker daemon through its API, so there is
# no Docker CLI. Every base is a build argument, so a mirror can replace it;
# GitHub's runner builds this file with no build arguments.
#
# Each default is a tag in its publisher's documented scheme:
# - golang: the Docker Official Image's `<Go version>-<Debian codename>`
#   (docker-library/golang, "Supported tags").
# - gcr.io/distroless/static-debian12: `latest`, `nonroot`, `debug`
#   (GoogleContainerTools/distroless README, "Docker images").
# - docker/buildx-bin: the buildx release without a `v` (docker/buildx's
#   release workflow tags the image with `{{version}}`).
# - aquasec/trivy: the Trivy release without a `v` (aquasecurity/trivy's
#   goreleaser config pushes `aquasec/trivy:{{ .Version }}`).
# The release workflow builds the published image from these and names it
# by digest in action.yml.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:latest
# /buildx
ARG BUILDX_IMAGE=docker/buildx-bin:0.38.2
# /usr/local/bin/trivy
ARG TRIVY_IMAGE=aquasec/trivy:0.74.0
# The stage, or an image, holding /out/phialo-image-action and
# /out/phialo-sbom: "build" compiles them; a test passes an image with
# prebuilt binaries to skip the Go build.
ARG BINARIES=build

FROM ${BUILDX_IMAGE} AS buildx
FROM ${TRIVY_IMAGE} AS trivy

# Cross-compiled on the build machine's platform: the arm64 image is not
# compiled under QEMU.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ . ./cmd/phialo-sbom

FROM ${BINARIES} AS binaries

FROM ${BASE_IMAGE}
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
# Least to most often changing: Trivy, buildx, then ours.
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
COPY --from=buildx /buildx /usr/local/lib/docker/cli-plugins/docker-buildx
COPY --from=binaries /out/phialo-image-action /out/phialo-sbom /usr/local/bin/
# The runner's workspace and temp files belong to root.
USER 0
ENTRYPOINT ["/usr/local/bin/phialo-image-action"]
