# shellcheck shell=bash
# Source me: builds the pinned Go developer tools from the Go module proxy
# into $PHIALO_CACHE/tools/<tool>-<version>/ once, and puts them on PATH.
STATICCHECK_VERSION=v0.8.2
ACTIONLINT_VERSION=v1.7.12

PHIALO_CACHE=${PHIALO_CACHE:-$HOME/.cache/phialo-image-action}
export PHIALO_CACHE

# go_tool NAME PACKAGE VERSION: install PACKAGE@VERSION unless cached, then
# put its directory first on PATH.
go_tool() {
  local dir=$PHIALO_CACHE/tools/$1-$3
  if [[ ! -x $dir/$1 ]]; then
    echo "building $1 $3 (once; cached in $dir)" >&2
    mkdir -p "$dir.tmp"
    CGO_ENABLED=0 GOBIN=$dir.tmp go install "$2@$3"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  PATH=$dir:$PATH
}

go_tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"
go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
export PATH
