# The action's image: the static action binary on a minimal base.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ . ./cmd/phialo-sbom

FROM ${BASE_IMAGE}
COPY --from=build /out/phialo-image-action /out/phialo-sbom /usr/local/bin/
USER 0
ENTRYPOINT ["/usr/local/bin/phialo-image-action"]
