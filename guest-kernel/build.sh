#!/usr/bin/env bash
# Builds hull's guest kernel (an uncompressed, PVH-bootable vmlinux) from
# Debian's linux-source-6.12: `allnoconfig` forced with the fragments in this
# directory, then `olddefconfig`. Verifies every option the fragments set made
# it into the final .config. Results are cached by a hash of the fragments,
# this script and the source package, so a second build is instant.
#
#   guest-kernel/build.sh OUT     (writes OUT/vmlinux and OUT/config)
#
# HULL_KERNEL_CACHE: cache directory (default /var/cache/hull/kernel).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
cache="${HULL_KERNEL_CACHE:-/var/cache/hull/kernel}"
src_tar=/usr/src/linux-source-6.12.tar.xz
fragments=("$here"/base.config "$here"/virtio.config "$here"/container.config)

die() { echo "guest-kernel: $*" >&2; exit 1; }

if [ ! -f "$src_tar" ]; then
  echo "guest-kernel: installing linux-source-6.12 and build tools" >&2
  pkgs=(linux-source-6.12 build-essential flex bison bc libelf-dev libssl-dev)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
  } || die "could not install ${pkgs[*]}"
fi

key="$( (cat "${fragments[@]}" "$0"; stat -c '%s %Y' "$src_tar") | sha256sum | cut -c1-16)"
entry="$cache/$key"
mkdir -p "$cache"
if [ ! -f "$entry/vmlinux" ]; then
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$entry/vmlinux" ]; then
    echo "guest-kernel: building vmlinux $key (a few minutes, once)" >&2
    build="$(mktemp -d "$cache/build.XXXXXX")"
    trap 'rm -rf "$build"' EXIT
    tar -C "$build" -xf "$src_tar"
    ksrc="$(echo "$build"/linux-source-*)"
    cat "${fragments[@]}" >"$build/fragment.config"
    make -C "$ksrc" -s KCONFIG_ALLCONFIG="$build/fragment.config" allnoconfig >"$build/config.log" 2>&1 \
      || { cat "$build/config.log" >&2; die "allnoconfig failed"; }
    make -C "$ksrc" -s olddefconfig >>"$build/config.log" 2>&1 || die "olddefconfig failed"
    # Every option the fragments name must have the value they give.
    missing=0
    while IFS= read -r line; do
      case "$line" in
        CONFIG_*=n) opt="${line%=n}"
          if grep -q "^$opt=" "$ksrc/.config"; then echo "  $opt should be unset" >&2; missing=1; fi ;;
        CONFIG_*=*)
          if ! grep -qx "$line" "$ksrc/.config"; then
            echo "  wanted $line, got: $(grep "^$(echo "${line%%=*}")=" "$ksrc/.config" || echo unset)" >&2; missing=1
          fi ;;
      esac
    done <"$build/fragment.config"
    [ "$missing" = 0 ] || die "the final .config lacks options the fragments require (above)"
    make -C "$ksrc" -j"$(nproc)" vmlinux >"$build/build.log" 2>&1 \
      || { tail -40 "$build/build.log" >&2; die "kernel build failed"; }
    grep -q '^CONFIG_PVH=y' "$ksrc/.config" || die "CONFIG_PVH missing: vmlinux would not be direct-bootable"
    mkdir -p "$entry.tmp"
    cp "$ksrc/vmlinux" "$entry.tmp/vmlinux"
    cp "$ksrc/.config" "$entry.tmp/config"
    rm -rf "$entry" && mv "$entry.tmp" "$entry"
  fi
  exec 9>&-
fi
mkdir -p "$out"
cp "$entry/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$entry/config" "$out/config"
echo "guest-kernel: $out/vmlinux ($key)" >&2
