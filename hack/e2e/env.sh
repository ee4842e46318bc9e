# shellcheck shell=sh
# Source me (bash or sh): sets PHIALO_CACHE and PHIALO_BIN and puts PHIALO_BIN
# first on PATH. It only sets variables; hack/e2e/install.sh fills the cache.
#
#   . hack/e2e/env.sh
#
# PHIALO_BIN holds symlinks, kept by install.sh, to the tool versions that
# install.sh pins: buildkitd, buildctl, buildx, docker-buildx, trivy (if built).
PHIALO_CACHE=${PHIALO_CACHE:-$HOME/.cache/phialo-image-action}
PHIALO_BIN=$PHIALO_CACHE/bin/current
case ":$PATH:" in
  *":$PHIALO_BIN:"*) ;;
  *) PATH=$PHIALO_BIN:$PATH ;;
esac
export PHIALO_CACHE PHIALO_BIN PATH
