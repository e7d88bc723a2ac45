#!/bin/sh
# Container benchmark, run inside the KVM test host by bench/run-container
# (HULL_BIN etc. exported by tests/testhost/staged). Side by side, alternating:
#   - `hull run` of /bin/true, broken into hull's phases (--timings), and the
#     same bundle under `crun run` (native baseline);
#   - 100 MiB through stdout;
#   - file system work on the rootfs: in the microVM (virtio-fs) and on the
#     same directory from the test host itself.
set -eu
runs="${HULL_BENCH_RUNS:-5}"
work=/tmp/hull-bench
rm -rf "$work"; mkdir -p "$work"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# A busybox bundle (scripts/busybox-bundle, run from the checkout): $1 dir, then the command.
bundle() { dir="$1"; shift; scripts/busybox-bundle "$dir" "$@"; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

bundle "$work/true" true
echo "== hull run vs crun run: /bin/true, $runs runs each, alternating (test host)"
: >"$work/hull.t"; : >"$work/crun.t"
i=0
while [ $i -lt "$runs" ]; do
  "$HULL_BIN" --root "$work/state" run --timings --bundle "$work/true" "t$i" 2>>"$work/hull.t" >/dev/null
  s=$(now_ms); crun run --bundle "$work/true" "c$i" >/dev/null; e=$(now_ms)
  echo $((e - s)) >>"$work/crun.t"
  i=$((i + 1))
done
for phase in sandbox_setup vm_boot agent_connect container_create process_start exit_delivered teardown total; do
  printf '  hull %-17s %8.1f ms\n' "$phase" "$(field "${phase}_ms" <"$work/hull.t" | median)"
done
hull_total=$(field total_ms <"$work/hull.t" | median)
crun_total=$(median <"$work/crun.t")
printf '  crun total             %8.1f ms\n' "$crun_total"
awk -v h="$hull_total" -v c="$crun_total" 'BEGIN {printf "  ratio hull/crun: %.1f\n", h / c}'

echo "== stdout: 100 MiB through hull run's stdout"
bundle "$work/bulk" cat /data
dd if=/dev/urandom of="$work/bulk/rootfs/data" bs=1M count=100 2>/dev/null
s=$(now_ms)
timeout 600 "$HULL_BIN" --root "$work/state" run --timings --bundle "$work/bulk" bulk 2>"$work/bulk.t" | wc -c >"$work/bulk.n"
e=$(now_ms)
stream_ms=$(field exit_delivered_ms <"$work/bulk.t")
awk -v n="$(cat "$work/bulk.n")" -v t="$stream_ms" -v w=$((e - s)) 'BEGIN {
  printf "  %d bytes; start->exit %.0f ms: %.1f MiB/s (whole run %d ms)\n", n, t, n / 1048576 / (t / 1000), w }'

echo "== virtio-fs: 64 MiB write+fsync, 64 MiB read, 10000 x (create, stat), unlink all"
cat >"$work/fs.sh" <<'FS'
cd "$1"
up() { read u _ </proc/uptime; echo "${u%.*}${u#*.}0"; }
t0=$(up); dd if=/dev/zero of=big bs=1M count=64 conv=fsync 2>/dev/null
t1=$(up); dd if=big of=/dev/null bs=1M 2>/dev/null
t2=$(up); mkdir m; i=0; while [ $i -lt 10000 ]; do : >m/f$i; [ -e m/f$i ]; i=$((i+1)); done; rm -rf m
t3=$(up); rm -f big
echo "write_ms=$((t1-t0)) read_ms=$((t2-t1)) meta_ms=$((t3-t2))"
FS
bundle "$work/fs" sh /fs.sh /work
mkdir -p "$work/fs/rootfs/work"; cp "$work/fs.sh" "$work/fs/rootfs/fs.sh"
vm=$(timeout 900 "$HULL_BIN" --root "$work/state" run --bundle "$work/fs" fs)
host=$(busybox sh "$work/fs.sh" "$work/fs/rootfs/work")
echo "  microVM (virtio-fs): $vm"
echo "  test host (same dir): $host"
for k in write_ms read_ms meta_ms; do
  g=$(echo "$vm" | sed -n "s/.*$k=\([0-9]*\).*/\1/p"); h=$(echo "$host" | sed -n "s/.*$k=\([0-9]*\).*/\1/p")
  awk -v k="$k" -v g="$g" -v h="$h" 'BEGIN {printf "  %s ratio virtio-fs/host: %.1f\n", k, (h > 0) ? g / h : 0}'
done
