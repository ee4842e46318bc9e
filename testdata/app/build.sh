#!/usr/bin/env bash
# Makes a build context of the example app in DIR: the Dockerfiles and the
# app cross-compiled for linux/ARCH, by default amd64 and arm64.
#
#   testdata/app/build.sh DIR [ARCH...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: build.sh DIR [ARCH...]}
shift
arches=("$@")
((${#arches[@]})) || arches=(amd64 arm64)
mkdir -p "$dir"
cp "$here"/Dockerfile "$here"/Dockerfile.fail "$here"/Dockerfile.warn "$dir"/
for arch in "${arches[@]}"; do
  (cd "$here" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags="-s -w" -o "$dir/bin/linux_$arch/app" .)
done
