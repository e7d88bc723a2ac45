#!/usr/bin/env bash
# CRI benchmark (make bench-cri): pods through containerd's CRI plugin,
# hull against runc, in one KVM test-host run (hull-cri-test bench, see
# tests/cri/src/bench.rs): a pod's start (RunPodSandbox + one container
# created and started), a second container added to a running pod, the
# host memory (PSS) of a pod with 1 and with 3 containers against 3
# one-container pods, and 10 pods started at once. Medians of BENCH_ROUNDS
# (default 3).
#
#   bench/cri.sh                  needs make build and make cri-client; boots the test host
#   bench/cri.sh --inside ROOT    (what runs inside)
#
# Numbers inside the test host are 10-30x slower than on metal: read the ratios.
set -euo pipefail

if [ "${1:-}" != --inside ]; then
  cd "$(dirname "$0")/.."
  tests/engines/deps
  for f in target/release/hull target/release/hull-vmm target/release/hull-cri-test \
    build/kernel/vmlinux build/initramfs.cpio; do
    [ -f "$f" ] || { echo "bench: $f is missing; run make build cri-client first" >&2; exit 1; }
  done
  export HULL_TESTHOST_ENV="${HULL_TESTHOST_ENV:-} BENCH_ROUNDS"
  exec tests/testhost/run --cpus "${HULL_TESTHOST_CPUS:-1}" --mem "${HULL_TESTHOST_MEM:-6144}" --timeout 3600 -- \
    tests/testhost/staged "$PWD" "$PWD/bench/cri.sh" --inside "$PWD"
fi

root="$2"
"$root/tests/engines/install-staged"
export ENGINES_RESULTS=/dev/null ENGINES_SHARED=/tmp/bench-cri-shared
ENGINE=bench-cri
# shellcheck source=../tests/engines/lib.sh
source "$root/tests/engines/lib.sh"
start_cri_containerd
"$root/target/release/hull-cri-test" bench "$CONTAINERD_SOCK" "$IMAGE" "$TMPD/containerd/logs" \
  "$CRI_HULL_ROOT" "${BENCH_ROUNDS:-3}"
