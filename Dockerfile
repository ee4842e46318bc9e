# The action's image: the static action and phialo-sbom binaries, with the
# Docker CLI, buildx and Trivy they drive, on a static base with CA
# certificates. Every base is a build argument so a test (or a mirror) can
# replace it.
#
# The defaults below are pinned by version only: digests of public images
# cannot be looked up from the machines this was written on. The release
# workflow that builds the published image must pin every one of them by
# digest (IMAGE:TAG@sha256:...).
ARG GO_IMAGE=golang:1.26.8-bookworm
# Static, with CA certificates.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:latest
# /buildx
ARG BUILDX_IMAGE=docker/buildx-bin:v0.38.2
# /usr/local/bin/docker
ARG DOCKER_IMAGE=docker:28.2.2-cli
# /usr/local/bin/trivy
ARG TRIVY_IMAGE=aquasec/trivy:0.74.0
# The stage, or an image, holding /out/phialo-image-action and
# /out/phialo-sbom: "build" compiles them; a test passes an image with
# prebuilt binaries to skip the Go build.
ARG BINARIES=build

FROM ${BUILDX_IMAGE} AS buildx
FROM ${DOCKER_IMAGE} AS docker
FROM ${TRIVY_IMAGE} AS trivy

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ . ./cmd/phialo-sbom

FROM ${BINARIES} AS binaries

FROM ${BASE_IMAGE}
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
# Least to most often changing: the Docker CLI, Trivy, buildx, then ours.
COPY --from=docker /usr/local/bin/docker /usr/local/bin/docker
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
COPY --from=buildx /buildx /usr/local/lib/docker/cli-plugins/docker-buildx
# The action runs buildx standalone, from PATH.
COPY --from=binaries /out/phialo-image-action /out/phialo-sbom /usr/local/bin/
# The runner's workspace and temp files belong to root.
USER 0
ENTRYPOINT ["/usr/local/bin/phialo-image-action"]
