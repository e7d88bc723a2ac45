#!/usr/bin/env bash
# rkt with hull's stage1 (stage1/, build/stage1-hull.aci). rkt is archived
# and has no binary here: tests/engines/rkt-stage0 does what its stage0 does
# around the entrypoints (the pod directory, the stage1 ACI unpacked under
# stage1/, each app's ACI under stage1/rootfs/opt/stage2/<app>, the pod
# directory locked and passed as RKT_LOCK_FD, the argument lists of each
# entrypoint). Pods: one app (exit status, status file, env, user, workdir,
# a host volume, --interactive), two apps sharing localhost on the default
# CNI network (enter, stop, gc), a mutable pod with an app added later, a
# run killed by SIGKILL then gc, and bad input. After each pod's gc nothing
# may be left: no hull-vmm, hull state, mount or network namespace.
ENGINE=rkt
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stage0="$root/tests/engines/rkt-stage0"
[ -x "$root/target/release/hull-stage1" ] || { fail "stage1" "target/release/hull-stage1 is missing (make build)"; exit 1; }
cp "$root/target/release/hull-stage1" "$TMPD/hull-stage1"
call "$root/stage1/build-aci.sh" "$TMPD/hull-stage1" /bin/busybox "$TMPD/stage1-hull.aci"
expect "the stage1 ACI builds" 0
ACI="$TMPD/stage1-hull.aci"
export HULL_BIN="$RUNTIME" HULL_RKT_ROOT=/run/hull-rkt
PODS="$TMPD/pods/run"
mkdir -p "$PODS"
busybox_rootfs_tar "$TMPD/busybox.tar"

# app_aci NAME APP_JSON: an ACI of busybox with that app section.
app_aci() {
  local d="$TMPD/aci-$1"
  mkdir -p "$d/rootfs"
  tar -C "$d/rootfs" -xf "$TMPD/busybox.tar"
  cat >"$d/manifest" <<EOF
{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/$1",
 "labels": [{"name": "arch", "value": "amd64"}, {"name": "os", "value": "linux"}],
 "app": $2}
EOF
  tar -C "$d" -czf "$TMPD/$1.aci" manifest rootfs
  echo "$TMPD/$1.aci"
}
# new_pod APPS_JSON VOLUMES_JSON MUTABLE NAME=ACI...: prepares a pod; sets POD.
new_pod() {
  local apps="$1" vols="$2" mutable="$3"
  shift 3
  POD="$PODS/$(cat /proc/sys/kernel/random/uuid)"
  cat >"$TMPD/pod.json" <<EOF
{"acKind": "PodManifest", "acVersion": "1.30.0", "apps": $apps, "volumes": $vols,
 "annotations": [{"name": "coreos.com/rkt/stage1/mutable", "value": "$mutable"}]}
EOF
  "$stage0" prepare "$POD" "$ACI" "$TMPD/pod.json" "$@"
  at_exit "'$stage0' gc '$POD'"
}
ra() { echo "{\"name\": \"$1\", \"image\": {\"name\": \"example.com/$1\", \"id\": \"sha512-00\"}, \"app\": $2, \"mounts\": ${3:-[]}}"; }
vmm_count() { pgrep -x hull-vmm | grep -c . || true; }
# Nothing of pod POD is left after its gc.
expect_clean() {
  local uuid; uuid="$(basename "$POD")"
  call "$stage0" gc "$POD"
  expect "$1: gc" 0
  call "$stage0" gc "$POD"
  expect "$1: gc again (idempotent)" 0
  call sh -c "'$RUNTIME' --root /run/hull-rkt list -q | grep -c 'rkt-$uuid' || true"
  expect_exact "$1: no hull state left" 0 "0"
  call sh -c "grep -c '$POD' /proc/self/mountinfo || true"
  expect_exact "$1: no mount left" 0 "0"
  call sh -c "ls /run/netns 2>/dev/null | grep -c 'hull-rkt-$uuid' || true"
  expect_exact "$1: no network namespace left" 0 "0"
  call sh -c "pgrep -x hull-vmm | grep -c . || true"
  expect_exact "$1: no hull-vmm left" 0 "0"
}

# ---- one app: status, env, user, workdir, a host volume ---------------------
mkdir -p "$TMPD/hostvol"
one="$(app_aci one '{"exec": ["/bin/sh", "-c", "echo app=$AC_APP_NAME foo=$FOO uid=$(id -u) cwd=$(pwd); uname -v; echo written > /hostvol/out; exit 3"], "user": "root", "group": "0", "workingDirectory": "/tmp", "environment": [{"name": "FOO", "value": "image"}], "mountPoints": [{"name": "hv", "path": "/hostvol"}], "isolators": [{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE"]}}, {"name": "os/linux/seccomp-remove-set", "value": {"set": ["mkdir", "mkdirat"], "errno": "EPERM"}}]}')"
new_pod "[$(ra one '{"exec": ["/bin/sh", "-c", "echo app=$AC_APP_NAME foo=$FOO uid=$(id -u) cwd=$(pwd); uname -v; grep CapBnd /proc/self/status; mkdir /tmp/blocked || echo mkdir-refused; echo written > /hostvol/out; exit 3"], "user": "root", "group": "0", "workingDirectory": "/tmp", "environment": [{"name": "FOO", "value": "pod"}]}' '[{"volume": "hv", "path": "/hostvol"}]')]" \
  "[{\"name\": \"hv\", \"kind\": \"host\", \"source\": \"$TMPD/hostvol\"}]" false "one=$one"
call "$stage0" run "$POD" --net=none
expect "one app: run exits with the app's status" 3 '^app=one foo=pod uid=0 cwd=/tmp$'
expect_vm "one app: the app runs in a hull VM"
printf '%s\n' "$out" >"$TMPD/run-one.out"
call cat "$POD/stage1/rootfs/rkt/status/one"
expect_exact "one app: status file" 0 "3"
call grep -c -e '^CapBnd:.0000000000000400$' -e '^mkdir-refused$' "$TMPD/run-one.out"
expect_exact "one app: capability retain set and seccomp remove set apply" 0 "2"
call cat "$TMPD/hostvol/out"
expect_exact "one app: host volume written" 0 "written"
call cat "$POD/pid"
expect "one app: pid file" 0 '^[0-9]+$'
expect_clean "one app"

# ---- --interactive: stdin reaches the app ------------------------------------
echoer="$(app_aci echoer '{"exec": ["/bin/sh", "-c", "read x; echo got-$x"], "user": "0", "group": "0"}')"
new_pod "[$(ra echoer null)]" "[]" false "echoer=$echoer"
call_in "hello" "$stage0" run "$POD" --net=none --interactive
expect "interactive: stdin reaches the app" 0 '^got-hello$'
expect_clean "interactive"
new_pod "[$(ra echoer '{"exec": ["/bin/sh", "-c", "test -t 0 && echo on-a-tty; exit 4"], "user": "0", "group": "0"}')]" "[]" false "echoer=$echoer"
call_tty "$stage0" run "$POD" --net=none --interactive
expect "interactive: a terminal when stdin is one" 4 'on-a-tty'
expect_clean "interactive on a terminal"

source "$(dirname "${BASH_SOURCE[0]}")/rkt-pods.sh"
