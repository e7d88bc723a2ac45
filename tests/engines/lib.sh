# shellcheck shell=bash
# tests/engines/lib.sh: what podman.sh, containerd.sh and docker.sh share.
#
# Each script sets ENGINE and sources this file. It gets:
#   RUNTIME        the OCI runtime under test (HULL_ENGINES_BIN, else HULL_BIN,
#                  else /usr/local/bin/hull)
#   TMPD           a private scratch directory, removed on exit
#   call CMD...    run CMD under a timeout, stdin from /dev/null; sets rc, out, err
#   call_in TEXT CMD...   the same with TEXT on stdin (a pipe)
#   call_tty CMD...       the same on a pseudo-terminal (script(1))
#   expect NAME RC [REGEX]       PASS if the last call exited RC and its stdout
#                                has a line matching REGEX (extended)
#   expect_exact NAME RC TEXT    PASS if the last call exited RC and printed TEXT
#   expect_vm NAME         PASS if the last call's stdout has a `uname -v` line
#                          of hull's guest kernel (ENGINES_EXPECT_VM=1, the
#                          default) or of this host's kernel (ENGINES_EXPECT_VM=0)
#   poll SECONDS CMD...    rerun CMD until it succeeds, at most SECONDS
#   at_exit CMD            run CMD (a string) on exit, last registered first
#   start_daemon NAME CMD...   start CMD in the background, log in $TMPD/NAME.log,
#                          stopped on exit
#   image_archive          $IMAGE_ARCHIVE: the busybox image as a docker-archive
#
# Results go to stdout and are appended to $ENGINES_RESULTS: "PASS engine: name",
# "FAIL engine: name: reason", and "VM engine: name" for each container whose
# kernel was checked to be hull's guest kernel.
set -euo pipefail

: "${ENGINE:?set ENGINE before sourcing lib.sh}"
RUNTIME="${HULL_ENGINES_BIN:-${HULL_BIN:-/usr/local/bin/hull}}"
ENGINES_EXPECT_VM="${ENGINES_EXPECT_VM:-1}"
ENGINES_TIMEOUT="${ENGINES_TIMEOUT:-240}"
ENGINES_RESULTS="${ENGINES_RESULTS:-/dev/null}"
# Where podman.sh leaves the image archive for the other engines.
ENGINES_SHARED="${ENGINES_SHARED:-/tmp/engines-shared}"
IMAGE=localhost/busybox:latest
IMAGE_ARCHIVE="$ENGINES_SHARED/busybox-docker.tar"
TMPD="$(mktemp -d "/tmp/engines-$ENGINE.XXXXXX")"
rc=0 out="" err=""

[ -x "$RUNTIME" ] || { echo "$ENGINE: runtime $RUNTIME is not executable" >&2; exit 1; }

# ---- cleanup ---------------------------------------------------------------
_cleanups=()
at_exit() { _cleanups+=("$1"); }
_run_cleanups() {
  local i
  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
  done
  # Engines can leave overlay or shm mounts under their state directories.
  awk -v d="$TMPD/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$TMPD" 2>/dev/null || true
}
trap _run_cleanups EXIT

# ---- running commands ------------------------------------------------------
_finish_call() {
  out="$(tr -d '\r' <"$TMPD/.out")"
  err="$(tr -d '\r' <"$TMPD/.err")"
}
call() {
  rc=0
  timeout -k 10 "$ENGINES_TIMEOUT" "$@" </dev/null >"$TMPD/.out" 2>"$TMPD/.err" || rc=$?
  _finish_call
}
call_in() {
  local input="$1"
  shift
  rc=0
  printf '%s\n' "$input" >"$TMPD/.in"
  timeout -k 10 "$ENGINES_TIMEOUT" "$@" <"$TMPD/.in" >"$TMPD/.out" 2>"$TMPD/.err" || rc=$?
  _finish_call
}
# The command gets a new pseudo-terminal as stdin, stdout and stderr; its
# exit status is script's (-e). script's own stdin is a FIFO kept open and
# empty, like a user who types nothing: at EOF, script would type ^D (or ^@
# on a raw terminal) into the terminal.
call_tty() {
  local cmd holder
  cmd="$(printf '%q ' "$@")"
  rm -f "$TMPD/.tty-in"
  mkfifo "$TMPD/.tty-in"
  sleep "$((ENGINES_TIMEOUT + 30))" >"$TMPD/.tty-in" &
  holder=$!
  rc=0
  timeout -k 10 "$ENGINES_TIMEOUT" script -qefc "$cmd" /dev/null <"$TMPD/.tty-in" >"$TMPD/.out" 2>"$TMPD/.err" || rc=$?
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  _finish_call
}

poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ---- results ---------------------------------------------------------------
_record() { printf '%s\n' "$1" | tee -a "$ENGINES_RESULTS"; }
pass() { _record "PASS $ENGINE: $1"; }
fail() { _record "FAIL $ENGINE: $1: $2"; }
_context() {
  printf '; stdout: %s; stderr: %s' "$(tail -c 300 <<<"$out")" "$(tail -c 600 <<<"$err")" | tr '\n' ' '
}
expect() {
  local name="$1" want_rc="$2" re="${3:-}"
  if [ "$rc" != "$want_rc" ]; then
    fail "$name" "exit status $rc, wanted $want_rc$(_context)"
  elif [ -n "$re" ] && ! grep -Eq -- "$re" <<<"$out"; then
    fail "$name" "no line of the output matches /$re/$(_context)"
  else
    pass "$name"
  fi
}
expect_exact() {
  local name="$1" want_rc="$2" want_out="$3"
  if [ "$rc" != "$want_rc" ]; then
    fail "$name" "exit status $rc, wanted $want_rc$(_context)"
  elif [ "$out" != "$want_out" ]; then
    fail "$name" "output is not '$want_out'$(_context)"
  else
    pass "$name"
  fi
}

# The guest kernel hull boots: HULL_KERNEL (set by tests/testhost/staged), else
# the installed one. `uname -v` ("#1 SMP <build date>") tells kernels apart
# where `uname -r` does not: the test host's kernel is the same version.
guest_kernel() {
  local k
  for k in "${HULL_KERNEL:-}" /usr/local/share/hull/vmlinux; do
    [ -n "$k" ] && [ -f "$k" ] && { echo "$k"; return 0; }
  done
  return 1
}
expect_vm() {
  local name="$1" line host kernel
  line="$(grep -m1 -E '^#[0-9]+ ' <<<"$out" || true)"
  host="$(uname -v)"
  if [ -z "$line" ]; then
    fail "$name" "no \`uname -v\` line in the output$(_context)"
  elif [ "$ENGINES_EXPECT_VM" = 0 ]; then
    if [ "$line" = "$host" ]; then pass "$name (host kernel, ENGINES_EXPECT_VM=0)"; else
      fail "$name" "kernel '$line' is not this host's '$host'"; fi
  elif [ "$line" = "$host" ]; then
    fail "$name" "the container runs on the host's kernel ($line): no microVM"
  elif kernel="$(guest_kernel)" && ! grep -qaF -- ") $line" "$kernel"; then
    fail "$name" "kernel '$line' is neither the host's nor hull's guest kernel $kernel"
  else
    pass "$name (guest kernel $line)"
    _record "VM $ENGINE: $name" >/dev/null
  fi
}

# ---- daemons ---------------------------------------------------------------
start_daemon() {
  local name="$1" pid
  shift
  "$@" >"$TMPD/$name.log" 2>&1 &
  pid=$!
  at_exit "stop_daemon $name $pid"
  echo "$ENGINE: started $name (pid $pid, log $TMPD/$name.log)"
}
stop_daemon() {
  local name="$1" pid="$2"
  kill -TERM "$pid" 2>/dev/null || return 0
  poll 30 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
daemon_log() { tail -n "${2:-20}" "$TMPD/$1.log" 2>/dev/null | sed "s/^/  $1: /"; }

# containerd with its state under TMPD; prints nothing, sets CONTAINERD_SOCK.
# Its CRI plugin is off, unless START_CONTAINERD_CRI holds the TOML that
# configures it.
start_containerd() {
  local d="$TMPD/containerd"
  mkdir -p "$d"
  CONTAINERD_SOCK="$d/containerd.sock"
  local off='disabled_plugins = ["io.containerd.grpc.v1.cri"]' cri=""
  if [ -n "${START_CONTAINERD_CRI:-}" ]; then off="" cri="$START_CONTAINERD_CRI"; fi
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
$off
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = "$d/debug.sock"
$cri
EOF
  start_daemon containerd containerd --config "$d/config.toml"
  if ! poll 120 ctr --address "$CONTAINERD_SOCK" version; then
    daemon_log containerd
    fail "containerd starts" "ctr version did not answer in 120 s"
    exit 1
  fi
}

# containerd with its CRI plugin, as a Kubernetes node runs it: runtime
# handlers hull (the default: io.containerd.runc.v2 with BinaryName = the
# runtime under test, Root = $CRI_HULL_ROOT) and runc; a CNI bridge
# (containernetworking-plugins, 10.99.0.0/24); the busybox image and a pause
# image (busybox sleeping; containerd kills it with SIGKILL) in the k8s.io
# namespace. Sets CONTAINERD_SOCK, CRI_HULL_ROOT and PAUSE.
start_cri_containerd() {
  if [ ! -s "$IMAGE_ARCHIVE" ]; then podman_config; image_archive; fi
  # The sandbox ("pause") image: busybox sleeping (containerd kills it with
  # SIGKILL when the pod stops).
  PAUSE=localhost/hull-pause:1
  PAUSE_ARCHIVE="$ENGINES_SHARED/hull-pause-docker.tar"
  if [ ! -s "$PAUSE_ARCHIVE" ]; then
    podman_config
    busybox_rootfs_tar "$TMPD/pause-rootfs.tar"
    podman import -q --change 'CMD ["/bin/sleep", "2147483647"]' "$TMPD/pause-rootfs.tar" "$PAUSE" >/dev/null
    podman save -q --format docker-archive -o "$PAUSE_ARCHIVE" "$PAUSE"
  fi

  d="$TMPD/containerd"
  hull_root="$d/hull-root"
  mkdir -p "$d/cni" "$d/logs" "$hull_root"
  cat >"$d/cni/10-hull-cri.conflist" <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "hull-cri",
  "plugins": [
    {"type": "bridge", "bridge": "hullcri0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
    ]
}
EOF
  START_CONTAINERD_CRI="$(cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE"
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "hull"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull.options]
        BinaryName = "$RUNTIME"
        Root = "$hull_root"
  [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$d/cni"
EOF
)"
  start_containerd
  at_exit "ip link del hullcri0"
  C=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
  call "${C[@]}" images import "$IMAGE_ARCHIVE"
  expect "images import (busybox)" 0
  call "${C[@]}" images import "$PAUSE_ARCHIVE"
  expect "images import (pause)" 0
  CRI_HULL_ROOT="$hull_root"
}

# ---- the image ---------------------------------------------------------------
# A busybox rootfs tarball: /bin/busybox and a symlink per applet. The applet
# named busybox is skipped: its symlink would replace the binary.
busybox_rootfs_tar() {
  local r="$TMPD/rootfs" a
  mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root,run}
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  echo 'root:x:0:' >"$r/etc/group"
  tar -C "$r" -cf "$1" .
}

# podman's configuration, with its storage under TMPD: exports CONTAINERS_CONF
# and CONTAINERS_STORAGE_CONF.
podman_config() {
  local d="$TMPD/podman"
  mkdir -p "$d"
  cat >"$d/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/events.log"
tmp_dir = "$d/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$d/networks"
EOF
  cat >"$d/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$d/runroot"
graphroot = "$d/graphroot"
EOF
  export CONTAINERS_CONF="$d/containers.conf" CONTAINERS_STORAGE_CONF="$d/storage.conf"
}

# Podman configured (podman_config) with the busybox image loaded.
podman_image() {
  podman_config
  image_archive
  if ! podman image exists "$IMAGE"; then
    podman load -q -i "$IMAGE_ARCHIVE" >/dev/null
  fi
}

# Makes $IMAGE_ARCHIVE unless an earlier script did: podman import of the
# busybox rootfs, then podman save --format docker-archive. Needs podman_config.
image_archive() {
  [ -s "$IMAGE_ARCHIVE" ] && return 0
  mkdir -p "$ENGINES_SHARED"
  busybox_rootfs_tar "$TMPD/rootfs.tar"
  podman import -q --change "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$TMPD/rootfs.tar" "$IMAGE" >/dev/null
  podman save -q --format docker-archive -o "$IMAGE_ARCHIVE.tmp" "$IMAGE"
  mv "$IMAGE_ARCHIVE.tmp" "$IMAGE_ARCHIVE"
}

echo "$ENGINE: runtime $RUNTIME, expecting $([ "$ENGINES_EXPECT_VM" = 0 ] && echo 'no microVM' || echo 'a microVM per container')"
