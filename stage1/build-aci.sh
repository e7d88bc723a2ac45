#!/bin/sh
# stage1/build-aci.sh HULL_STAGE1 BUSYBOX OUT.aci [VERSION]
# Builds hull's stage1 image for rkt: an ACI (gzip'd tar of `manifest` and
# `rootfs/`) whose image manifest names the entrypoints of rkt's stage1
# interface (version 5) by annotation. rootfs:
#   hull-stage1                  the entrypoints' binary
#   entrypoints/<name>           symlinks to it (it dispatches on its name)
#   pause/rootfs/bin/busybox     the pod's sandbox (pause) process
#   rkt/status/, rkt/env/        the directories stage0 expects
set -eu
bin="$1"; busybox="$2"; out="$3"; version="${4:-0.1.0}"
[ -x "$bin" ] || { echo "build-aci: $bin is not executable" >&2; exit 1; }
[ -x "$busybox" ] || { echo "build-aci: $busybox is not executable" >&2; exit 1; }
if readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
  echo "build-aci: $busybox is not static (Debian's busybox-static is)" >&2; exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
r="$tmp/rootfs"
mkdir -p "$r/entrypoints" "$r/pause/rootfs/bin" "$r/rkt/status" "$r/rkt/env"
for d in dev proc sys etc tmp; do mkdir -p "$r/pause/rootfs/$d"; done
install -m 0755 "$bin" "$r/hull-stage1"
install -m 0755 "$busybox" "$r/pause/rootfs/bin/busybox"
for e in run enter gc stop app-add app-start app-stop app-rm; do
  ln -s ../hull-stage1 "$r/entrypoints/$e"
done
cat >"$tmp/manifest" <<JSON
{
  "acKind": "ImageManifest",
  "acVersion": "0.8.11",
  "name": "hull.io/rkt/stage1-hull",
  "labels": [
    {"name": "version", "value": "$version"},
    {"name": "arch", "value": "amd64"},
    {"name": "os", "value": "linux"}
  ],
  "annotations": [
    {"name": "coreos.com/rkt/stage1/run", "value": "/entrypoints/run"},
    {"name": "coreos.com/rkt/stage1/enter", "value": "/entrypoints/enter"},
    {"name": "coreos.com/rkt/stage1/gc", "value": "/entrypoints/gc"},
    {"name": "coreos.com/rkt/stage1/stop", "value": "/entrypoints/stop"},
    {"name": "coreos.com/rkt/stage1/app/add", "value": "/entrypoints/app-add"},
    {"name": "coreos.com/rkt/stage1/app/start", "value": "/entrypoints/app-start"},
    {"name": "coreos.com/rkt/stage1/app/stop", "value": "/entrypoints/app-stop"},
    {"name": "coreos.com/rkt/stage1/app/rm", "value": "/entrypoints/app-rm"},
    {"name": "coreos.com/rkt/stage1/interface-version", "value": "5"}
  ]
}
JSON
mkdir -p "$(dirname "$out")"
tar -C "$tmp" --owner=0 --group=0 --numeric-owner -czf "$out.tmp" manifest rootfs
mv -f "$out.tmp" "$out"
echo "built $out"
