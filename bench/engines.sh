#!/usr/bin/env bash
# Engines benchmark, in one KVM test host run, side by side:
#   - median wall time of `podman run --rm IMG /bin/true`, hull vs crun;
#   - median wall time of `ctr run --rm IMG ID /bin/true`, hull vs runc;
#     (BENCH_RUNS runs each, default 5, alternating hull and the other);
#   - host memory of idle `sleep` containers started with ctr (BENCH_MEM_COUNTS,
#     default "1 20" containers at once): the PSS (/proc/PID/smaps_rollup) of
#     every process of each container's sandbox, i.e. the process in the pid
#     file the runtime wrote (hull's sandbox process; with runc, the workload)
#     and all its descendants (hull-vmm), plus the drop of MemAvailable. runc
#     alongside for scale.
#   - `hull run --image DIR -- /bin/true` (a `podman save --format oci-dir`
#     layout; first run unpacking its layers, then warm) against `podman run
#     --rm` of the same image with hull as Podman's runtime;
#   BENCH_PARTS selects (default "podman ctr image mem").
#
#   bench/engines.sh            builds nothing; needs make build; boots the test host
#   HULL_BIN=... bench/engines.sh --inside ROOT   (what runs inside)
#
# Numbers inside the test host are 10-30x slower than on metal: read the ratios.
set -euo pipefail

if [ "${1:-}" != --inside ]; then
  cd "$(dirname "$0")/.."
  tests/engines/deps
  for f in target/release/hull target/release/hull-vmm build/kernel/vmlinux build/initramfs.cpio; do
    [ -f "$f" ] || { echo "bench: $f is missing; run make build first" >&2; exit 1; }
  done
  export HULL_TESTHOST_ENV="${HULL_TESTHOST_ENV:-} BENCH_RUNS BENCH_MEM_COUNTS BENCH_SETTLE_S BENCH_PARTS"
  # One test-host vCPU by default: with two, the test host's kernel was seen
  # to crash (in svm_vcpu_run) while 20 microVMs ran at once.
  exec tests/testhost/run --cpus "${HULL_TESTHOST_CPUS:-1}" --mem "${HULL_TESTHOST_MEM:-6144}" --timeout 3600 -- \
    tests/testhost/staged "$PWD" "$PWD/bench/engines.sh" --inside "$PWD"
fi

root="$2"
"$root/tests/engines/install-staged"
HULL="${HULL_BIN:-/usr/local/bin/hull}"
runs="${BENCH_RUNS:-5}"
export HULL_ENGINES_BIN="$HULL" ENGINES_EXPECT_VM=1 ENGINES_SHARED=/tmp/engines-shared
ENGINE=bench
# shellcheck source=../tests/engines/lib.sh
source "$root/tests/engines/lib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# timed FILE CMD...: appends CMD's wall time in ms to FILE; CMD must succeed.
timed() {
  local file="$1" s e
  shift
  s=$(now_ms)
  if ! timeout 600 "$@" >/dev/null 2>"$TMPD/timed.err"; then
    echo "bench: failed: $* ($(tail -3 "$TMPD/timed.err" | tr '\n' ' '))" >&2
    return 1
  fi
  e=$(now_ms)
  echo $((e - s)) >>"$file"
}
report() { # report LABEL A-NAME A-FILE B-NAME B-FILE
  local a b
  a=$(median <"$3")
  b=$(median <"$5")
  printf '  %-5s median %8.0f ms   (runs: %s)\n' "$2" "$a" "$(tr '\n' ' ' <"$3")"
  printf '  %-5s median %8.0f ms   (runs: %s)\n' "$4" "$b" "$(tr '\n' ' ' <"$5")"
  awk -v a="$a" -v b="$b" -v l="$1" 'BEGIN {printf "  ratio %s: %.2f\n", l, (b > 0) ? a / b : 0}'
}

parts="${BENCH_PARTS:-podman ctr image mem}"
has_part() { [[ " $parts " == *" $1 "* ]]; }

podman_config
image_archive
podman image exists "$IMAGE" || podman load -q -i "$IMAGE_ARCHIVE" >/dev/null
if has_part podman; then
echo "== podman run --rm --network none IMG /bin/true: $runs runs each, alternating"
# One uncounted run each: image and storage caches.
podman --runtime "$HULL" run --rm --network none "$IMAGE" /bin/true >/dev/null 2>&1 || true
podman --runtime /usr/bin/crun run --rm --network none "$IMAGE" /bin/true >/dev/null 2>&1 || true
: >"$TMPD/p-hull"; : >"$TMPD/p-crun"
for ((i = 0; i < runs; i++)); do
  timed "$TMPD/p-hull" podman --runtime "$HULL" run --rm --network none "$IMAGE" /bin/true || true
  timed "$TMPD/p-crun" podman --runtime /usr/bin/crun run --rm --network none "$IMAGE" /bin/true || true
done
report hull/crun hull "$TMPD/p-hull" crun "$TMPD/p-crun"
fi

# ---- ctr run --rm --------------------------------------------------------------
start_containerd
C=(ctr --address "$CONTAINERD_SOCK" -n bench)
"${C[@]}" images import "$IMAGE_ARCHIVE" >/dev/null
ref="$("${C[@]}" images ls -q | grep -m1 busybox)"
if has_part ctr; then
echo "== ctr run --rm IMG ID /bin/true: $runs runs each, alternating"
: >"$TMPD/c-hull"; : >"$TMPD/c-runc"
for ((i = 0; i < runs; i++)); do
  timed "$TMPD/c-hull" "${C[@]}" run --rm --runc-binary "$HULL" "$ref" "t-hull-$i" /bin/true || true
  timed "$TMPD/c-runc" "${C[@]}" run --rm --runc-binary /usr/sbin/runc "$ref" "t-runc-$i" /bin/true || true
done
report hull/runc hull "$TMPD/c-hull" runc "$TMPD/c-runc"
fi

# ---- memory of idle containers ------------------------------------------------------
# The pid the runtime wrote to its pid file (ctr task ls shows it) and all its
# descendants (from ps: the test-host kernel has no /proc/PID/task/TID/children).
tree() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      print root; n = 1; q[1] = root
      while (n > 0) {
        p = q[n--]
        for (c in parent) if (parent[c] == p) { print c; q[++n] = c }
      }
    }'
}
pss_kib() { # PIDS...: total PSS in KiB
  local p total=0 v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
mem_available_kib() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
task_pid() { "${C[@]}" task ls | awk -v id="$1" '$1 == id && $3 == "RUNNING" {print $2}'; }
task_running() { [ -n "$(task_pid "$1")" ]; }

mem_round() { # NAME RUNTIME COUNT
  local name="$1" rt="$2" n="$3" before after i pid total=0 procs=0 pids
  before=$(mem_available_kib)
  for ((i = 0; i < n; i++)); do
    "${C[@]}" run -d --runc-binary "$rt" "$ref" "m-$name-$i" sleep 1000000 >/dev/null
  done
  for ((i = 0; i < n; i++)); do
    poll 300 task_running "m-$name-$i" || true
  done
  # A measurement pause, not synchronisation: boot-time work (page cache,
  # guest init) settles before the idle footprint is read.
  sleep "${BENCH_SETTLE_S:-10}"
  for ((i = 0; i < n; i++)); do
    pid=$(task_pid "m-$name-$i")
    [ -n "$pid" ] || { echo "  $name: container m-$name-$i is not running" >&2; continue; }
    # (no process substitution: the test host has no /dev/fd)
    read -r -a pids <<<"$(tree "$pid" | tr '\n' ' ')"
    procs=$((procs + ${#pids[@]}))
    total=$((total + $(pss_kib "${pids[@]}")))
  done
  after=$(mem_available_kib)
  awk -v name="$name" -v n="$n" -v t="$total" -v p="$procs" -v d="$((before - after))" 'BEGIN {
    printf "  %-5s %2d idle: PSS %7.1f MiB total, %6.1f MiB per container (%d processes); MemAvailable fell %.1f MiB (%.1f per container)\n",
      name, n, t / 1024, t / 1024 / n, p, d / 1024, d / 1024 / n }'
  for ((i = 0; i < n; i++)); do
    "${C[@]}" task kill -s SIGKILL "m-$name-$i" >/dev/null 2>&1 || true
  done
  for ((i = 0; i < n; i++)); do
    poll 120 eval "! ${C[*]} task ls | grep -q '^m-$name-$i .*RUNNING'" || true
    "${C[@]}" task rm -f "m-$name-$i" >/dev/null 2>&1 || true
    "${C[@]}" containers rm "m-$name-$i" >/dev/null 2>&1 || true
  done
}
if has_part image; then
echo "== hull run --image DIR -- /bin/true (no engine) vs podman run --rm --network none IMG /bin/true (hull as its runtime): $runs runs each"
layout="$TMPD/layout"
podman save -q --format oci-dir -o "$layout" "$IMAGE"
export HULL_IMAGE_STORE="$TMPD/image-store"
: >"$TMPD/i-cold"; : >"$TMPD/i-warm"; : >"$TMPD/i-podman"
for ((i = 0; i < runs; i++)); do
  rm -rf "$HULL_IMAGE_STORE/layers"
  timed "$TMPD/i-cold" "$HULL" run --image "$layout" -- /bin/true || true
  timed "$TMPD/i-warm" "$HULL" run --image "$layout" -- /bin/true || true
  timed "$TMPD/i-podman" podman --runtime "$HULL" run --rm --network none "$IMAGE" /bin/true || true
done
report "first-run/podman" first "$TMPD/i-cold" podman "$TMPD/i-podman"
report "warm-run/podman" warm "$TMPD/i-warm" podman "$TMPD/i-podman"
report "warm/first" warm "$TMPD/i-warm" first "$TMPD/i-cold"
fi
has_part mem || exit 0
echo "== memory: idle sleep containers (ctr run -d), PSS of each sandbox: pid-file process and descendants"
for n in ${BENCH_MEM_COUNTS:-1 20}; do
  mem_round hull "$HULL" "$n"
  mem_round runc /usr/sbin/runc "$n"
done
