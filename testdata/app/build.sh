#!/usr/bin/env bash
# Makes a build context of the example app in DIR: the Dockerfiles and the
# app cross-compiled for linux/amd64 and linux/arm64.
#
#   testdata/app/build.sh DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: build.sh DIR}
mkdir -p "$dir"
cp "$here"/Dockerfile "$here"/Dockerfile.fail "$here"/Dockerfile.warn "$dir"/
for arch in amd64 arm64; do
  (cd "$here" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags="-s -w" -o "$dir/bin/linux_$arch/app" .)
done
