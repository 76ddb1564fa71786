# Sourced by the build scripts: where Go-built test tools are cached, and Go on PATH.
# CACHE: $IMAGE_CLONE_CACHE, else $XDG_CACHE_HOME or ~/.cache, under image-clone-controller/
# (devenv/cache.ts uses the same rule).
CACHE="${IMAGE_CLONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-clone-controller}"
mkdir -p "$CACHE/bin"
# Go's own installer puts it in /usr/local/go; a non-login shell may not have that on PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
require_go() {
  command -v go >/dev/null || { echo "go is required to build $1 (https://go.dev/dl or Debian's golang-go)" >&2; exit 1; }
}
