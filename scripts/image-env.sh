# Sourced by the image scripts (after go-env.sh, which sets CACHE): buildah's storage lives under the
# cache, with the vfs driver (no overlay mounts needed) and chroot isolation (no runtime daemon), so
# it never mixes with a storage configuration the machine already has. test/image/ reads the same
# CONTAINERS_STORAGE_CONF.
IMAGES="$CACHE/images"
mkdir -p "$IMAGES" "$CACHE/containers"
export CONTAINERS_STORAGE_CONF="$CACHE/containers/storage.conf"
if [ ! -s "$CONTAINERS_STORAGE_CONF" ]; then
  cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "vfs"
graphroot = "$CACHE/containers/storage"
runroot = "$CACHE/containers/run"
CONF
fi
export BUILDAH_ISOLATION=chroot
