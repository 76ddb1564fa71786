#!/usr/bin/env bash
# Runs one container's process the way a container runtime does, for test/support/pod-runner.ts.
# Called inside a fresh mount namespace (unshare --mount --propagation private), as root:
#   container-sandbox.sh ROOTFS READONLY UID GID WORKDIR [HOSTPATH:PATH:ro|rw]... -- ARGV...
# ROOTFS is the container's own copy of the image's filesystem (buildah mount). It gets /proc, a
# /dev of a few devices and each volume; then, when READONLY is 1, the root itself becomes read-only
# (only the volumes stay writable, as with readOnlyRootFilesystem). The process starts in WORKDIR as
# UID:GID with no supplementary groups, no capabilities (a non-root uid keeps none) and no_new_privs
# (allowPrivilegeEscalation: false). It shares the host's network, as a Pod's containers share one.
set -euo pipefail
root=$1 readonly=$2 uid=$3 gid=$4 workdir=$5
shift 5
mounts=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do mounts+=("$1"); shift; done
[ "${1:-}" = -- ] || { echo "container-sandbox: no -- before the command" >&2; exit 2; }
shift

# PATH inside the root with its symbolic links resolved inside the root, as runtimes resolve mount
# targets (Debian's /var/run is a link to /run: followed on the host it would land outside).
inside() {
  local path="" part link rest="${1#/}" hops=0
  while [ -n "$rest" ]; do
    part="${rest%%/*}"
    if [ "$part" = "$rest" ]; then rest=""; else rest="${rest#*/}"; fi
    case "$part" in '' | .) continue ;; ..) path="${path%/*}"; continue ;; esac
    if [ -L "$root$path/$part" ]; then
      hops=$((hops + 1))
      [ "$hops" -le 40 ] || { echo "container-sandbox: too many links in $1" >&2; exit 1; }
      link=$(readlink "$root$path/$part")
      case "$link" in /*) path="" ;; esac
      rest="${link#/}${rest:+/$rest}"
    else
      path="$path/$part"
    fi
  done
  echo "$root$path"
}

mount --bind "$root" "$root"
mkdir -p "$root/proc" "$root/dev"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,mode=0755,size=1m tmpfs "$root/dev"
for device in null zero full random urandom tty; do
  touch "$root/dev/$device"
  mount --bind "/dev/$device" "$root/dev/$device"
done
mkdir -p "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
for m in "${mounts[@]}"; do
  IFS=: read -r source target mode <<<"$m"
  at=$(inside "$target")
  if [ -d "$source" ]; then mkdir -p "$at"; else mkdir -p "$(dirname "$at")"; touch "$at"; fi
  mount --bind "$source" "$at"
  [ "$mode" = rw ] || mount -o remount,bind,ro "$at"
done
[ "$readonly" = 0 ] || mount -o remount,bind,ro "$root"
exec setpriv --no-new-privs unshare --root="$root" --wd="$workdir" --setgid="$gid" --setuid="$uid" -- "$@"
