#!/usr/bin/env bash
# containerd's runc v2 shim driving the runtime under test: `ctr run
# --runc-binary RUNTIME` (run --rm, -t, exit statuses; not stdin: ctr run
# never closes the task's stdin at EOF), and a runtime
# given as io.containerd.runc.v2 with options BinaryName and Root (what a
# containerd runtime configured with options.BinaryName hands the shim), with
# ctr task exec, ps, kill and delete; networking with `ctr run --cni` and the
# bridge plugin (net-checks.sh).
ENGINE=containerd
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ ! -s "$IMAGE_ARCHIVE" ]; then podman_config; image_archive; fi
start_containerd
C=(ctr --address "$CONTAINERD_SOCK" -n engines)
call "${C[@]}" images import "$IMAGE_ARCHIVE"
expect "images import" 0
call "${C[@]}" images ls -q
ref="$(grep -m1 busybox <<<"$out" || true)"
[ -n "$ref" ] || { fail "image listed" "no busybox in: $out"; exit 1; }
RUN=("${C[@]}" run --runc-binary "$RUNTIME")

# -- ctr run --rm ---------------------------------------------------------------
call "${RUN[@]}" --rm "$ref" eng-true true
expect_exact "run --rm true" 0 ""

call "${RUN[@]}" --rm "$ref" eng-exit3 sh -c 'echo hello; uname -v; exit 3'
expect "run --rm: exit status 3 and output" 3 '^hello$'
expect_vm "run --rm: guest kernel"

call_tty "${RUN[@]}" --rm -t "$ref" eng-tty sh -c 'tty; uname -v; exit 4'
expect "run -t: stdin is a terminal, output reaches the caller" 4 '^/dev/'
expect "run -t: the terminal is the container's /dev/pts/N, as with runc" 4 '^/dev/pts/[0-9]+$'
expect_vm "run -t: guest kernel"

# -- a runtime with BinaryName and Root in its options ---------------------------
# `--runtime io.containerd.runc.v2 --runc-binary B --runc-root R` makes ctr send
# the shim runc's options {BinaryName: B, Root: R}: the same message a
# containerd runtime configured with options.BinaryName (CRI) or dockerd's
# "runtimes" produces.
BN=("${C[@]}" run --runtime io.containerd.runc.v2 --runc-binary "$RUNTIME" --runc-root "$TMPD/runtime-root")
call "${BN[@]}" -d "$ref" eng-bn sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait'
expect "BinaryName runtime: run -d" 0
status_is() { "${C[@]}" task ls | awk -v id="$1" '$1 == id {print $3}' | grep -qx "$2"; }

# kill_and_remove NAME WHAT [KILL_ARGS...]: task kill, wait for STOPPED, task rm, containers rm.
kill_and_remove() {
  local name="$1" what="$2"; shift 2
  call "${C[@]}" task kill "$@" "$name"
  expect "$what" 0
  if poll 60 status_is "$name" STOPPED; then pass "$what: STOPPED"; else
    fail "$what: STOPPED" "$("${C[@]}" task ls 2>&1 | tr '\n' ' ')"; fi
  call "${C[@]}" task rm "$name"
  expect "task rm" 0
  call "${C[@]}" containers rm "$name"
  expect "containers rm" 0
}

if poll 60 status_is eng-bn RUNNING; then pass "BinaryName runtime: task RUNNING"; else
  fail "BinaryName runtime: task RUNNING" "$("${C[@]}" task ls 2>&1 | tr '\n' ' ')"; fi
if [ -d "$TMPD/runtime-root" ]; then pass "BinaryName runtime: the runtime used the configured root"; else
  fail "BinaryName runtime: the runtime used the configured root" "$TMPD/runtime-root was not created"; fi

call "${C[@]}" task exec --exec-id e1 eng-bn echo exec-ok
expect_exact "task exec: output" 0 "exec-ok"
call "${C[@]}" task exec --exec-id e2 eng-bn uname -v
expect_vm "task exec: guest kernel"
call "${C[@]}" task exec --exec-id e3 eng-bn sh -c 'exit 5'
expect "task exec: exit status 5" 5
call_tty "${C[@]}" task exec -t --exec-id e4 eng-bn sh -c 'tty; exit 6'
expect "task exec -t: stdin is a terminal" 6 '^/dev/'
expect "task exec -t: the terminal is a /dev/pts/N, as with runc" 6 '^/dev/pts/[0-9]+$'
call "${C[@]}" task ps eng-bn
expect "task ps" 0 '^[0-9]+'

kill_and_remove eng-bn "task kill (SIGTERM)"

# -- kill -9 of a running task started with ctr run -d ------------------------------
call "${RUN[@]}" -d "$ref" eng-kill sleep 1000
expect "run -d sleep" 0
kill_and_remove eng-kill "task kill -s SIGKILL" -s SIGKILL

# -- networking: ctr run --cni, a bridge conflist of our own ------------------------
net_t0=$SECONDS
# shellcheck source=net-checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/net-checks.sh"
# ctr loads the first configuration in /etc/cni/net.d (the test host's tmpfs
# overlay) and runs the plugins of containernetworking-plugins (/usr/lib/cni).
cni_conf=/etc/cni/net.d/10-hull-test.conflist
mkdir -p /etc/cni/net.d
cat >"$cni_conf" <<EOF
{"cniVersion": "0.4.0", "name": "hull-test", "plugins": [
  {"type": "bridge", "bridge": "hull-cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$TMPD/cni-ipam",
            "ranges": [[{"subnet": "10.99.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
at_exit "rm -f $cni_conf; ip link del hull-cni0"
nsfs_before="$(nsfs_mounts)"
call "${RUN[@]}" --cni -d "$ref" eng-cni sh -c "$(net_web_cmd eng-cni)"
expect "net: run --cni -d httpd" 0
call "${C[@]}" task exec --exec-id n1 eng-cni uname -v
expect_vm "net: the CNI container runs in a guest kernel"
net_inside "${C[@]}" task exec --exec-id n2 eng-cni
if grep -Eq '^10\.99\.0\.[0-9]+$' <<<"$NET_INSIDE_IP"; then pass "net: eth0's address is of the conflist's subnet 10.99.0.0/24"; else
  fail "net: eth0's address is of the conflist's subnet 10.99.0.0/24" "eth0 has '$NET_INSIDE_IP'"; fi
expect_page "net: test host -> CNI container by TCP" "http://$NET_INSIDE_IP/" "$(net_page eng-cni)"
kill_and_remove eng-cni "net: task kill -s SIGKILL of the CNI container" -s SIGKILL
# The kernel frees a dead namespace's veth in the background: a few seconds.
bridge_empty() { [ -z "$(ip -o link show master hull-cni0 2>&1)" ]; }
if poll 60 bridge_empty; then pass "net: no interface left on the CNI bridge"; else
  fail "net: no interface left on the CNI bridge" "$(ip -o link show master hull-cni0 2>&1 | tr '\n' ' ')"; fi
if net_faults_wanted; then
  call "${RUN[@]}" --rm --with-ns network:/nonexistent "$ref" eng-badns true
  net_expect_clean_failure "net fault: --with-ns network:/nonexistent fails, naming the path"
  call "${C[@]}" containers ls -q
  if ! grep -qx eng-badns <<<"$out"; then pass "net fault: no container left behind"; else
    fail "net fault: no container left behind" "containers: $(tr '\n' ' ' <<<"$out")"; fi
fi
net_expect_no_leftovers "$nsfs_before"
echo "$ENGINE: networking checks took $((SECONDS - net_t0)) s"
