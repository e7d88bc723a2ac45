#!/bin/sh
# Network benchmark, run inside the KVM test host by bench/run-net
# (HULL_BIN, HULL_KERNEL, HULL_INITRD exported by tests/testhost/staged).
# The "container" end runs the servers (iperf3 -s, hull-bench netrr server);
# the test host runs the clients:
#   - TCP throughput host -> container (iperf3 -c) and container -> host
#     (iperf3 -c -R: the server sends);
#   - TCP request/response latency: hull-bench netrr, 1-byte round trips.
# For three ends, all brought up first, then measured in alternating rounds
# (so drift in the machine's load hits all alike; medians reported):
#   (a) crun    a network namespace with a veth pair, the peer end native;
#   (b) qemu    qemu-system-x86_64 -M microvm, -netdev tap (vhost=off) +
#               virtio-net-device, booting hull's vmlinux with hull's
#               initramfs plus an overlay holding busybox, iperf3 and
#               hull-bench (rdinit=/netbench/init);
#   (c) hull    `hull run --bundle` of a container in a netns with a veth,
#               see hull_up (HULL_BENCH_NET_HULL=0 leaves it out).
#
#   net.sh HULL_BENCH_BINARY
# Environment: HULL_BENCH_NET_ROUNDS (3), HULL_BENCH_NET_SECS (5, per iperf3
# direction), HULL_BENCH_NET_RR_COUNT (2000), HULL_BENCH_NET_HULL=0 (leave hull out).
set -eu
bench="$1"
rounds="${HULL_BENCH_NET_ROUNDS:-3}"
secs="${HULL_BENCH_NET_SECS:-5}"
count="${HULL_BENCH_NET_RR_COUNT:-2000}"
work=/tmp/hull-net
rm -rf "$work"; mkdir -p "$work"
RR_PORT=7777
ends=""   # the ends that came up, with their address: "crun=10.77.1.2 ..."

# --- one round against one end: appends "tx rx median p99" to $work/END.results
# tx: host -> container Mbit/s, rx: container -> host Mbit/s (receiver side).
mbits() { awk '/receiver/ {v = $(NF-2); u = $(NF-1)} END {
  if (u == "Gbits/sec") v *= 1000; if (u == "Kbits/sec") v /= 1000; print v + 0 }'; }
iperf() {
  out="$1"; shift
  iperf3 "$@" -t "$secs" -f m >"$out" 2>&1 || { sleep 2; iperf3 "$@" -t "$secs" -f m >"$out" 2>&1; } ||
    { tail -3 "$out" >&2; return 1; }
}
measure() {
  name="$1"; ip="$2"; round="$3"
  iperf "$work/$name.tx" -c "$ip" || return 1
  iperf "$work/$name.rx" -c "$ip" -R || return 1
  "$bench" netrr client --connect "$ip:$RR_PORT" --count "$count" >"$work/$name.rr" || return 1
  tx=$(mbits <"$work/$name.tx"); rx=$(mbits <"$work/$name.rx")
  med=$(sed -n 's/.*median_us=\([0-9.]*\).*/\1/p' "$work/$name.rr")
  p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$work/$name.rr")
  echo "$tx $rx $med $p99" >>"$work/$name.results"
  echo "  round $round $name: host->ctr $tx Mbit/s, ctr->host $rx Mbit/s, rr median $med us, p99 $p99 us"
}

# Waits up to $2 seconds for the netrr server ($1 = ip:port) to accept
# (connect only: no round trip), giving up early if process $3 (the VMM or
# hull) has ended. The iperf3 server is started before it.
wait_port() {
  deadline=$(($(date +%s) + $2))
  while ! "$bench" netrr client --connect "$1" --count 0 --warmup 0 >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
    sleep 0.5
  done
}

# A netns $1 whose veth end $2 has $4/24, its host end $3 $5/24.
netns_veth() {
  ip netns add "$1"
  ip link add "$3" type veth peer name "$2"
  ip link set "$2" netns "$1"
  ip addr add "$5/24" dev "$3"; ip link set "$3" up
  ip netns exec "$1" sh -c "ip link set lo up; ip addr add $4/24 dev $2; ip link set $2 up"
}

# --- (a) crun: native baseline, the peer in a netns behind a veth ----------
crun_up() {
  netns_veth hull-bench-c hb-c1 hb-c0 10.77.1.2 10.77.1.1
  ip netns exec hull-bench-c iperf3 -s -D -I "$work/crun-iperf.pid"
  ip netns exec hull-bench-c "$bench" netrr server --listen "0.0.0.0:$RR_PORT" 2>/dev/null &
  echo $! >"$work/crun-rr.pid"
  if wait_port "10.77.1.2:$RR_PORT" 30; then ends="$ends crun=10.77.1.2"; else echo "  crun: the netns servers did not come up"; fi
}
crun_down() {
  kill "$(cat "$work/crun-rr.pid")" "$(cat "$work/crun-iperf.pid")" 2>/dev/null || true
  ip link del hb-c0 2>/dev/null || true
  ip netns del hull-bench-c 2>/dev/null || true
}

# --- (b) qemu microvm: tap + user-space virtio-net ---------------------------
# The overlay tree: busybox, iperf3 and hull-bench with their shared libraries.
overlay() {
  root="$work/overlay"
  mkdir -p "$root/netbench" "$root/bin" "$root/lib64" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh ip mount mkdir sleep cat echo; do ln -sf busybox "$root/bin/$a"; done
  cp "$(command -v iperf3)" "$bench" "$root/bin/"
  for lib in $(ldd "$(command -v iperf3)" "$bench" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
  done
  cat >"$root/netbench/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
ip link set lo up; ip addr add 10.77.2.2/24 dev eth0; ip link set eth0 up
iperf3 -s -D
hull-bench netrr server --listen 0.0.0.0:7777 2>/dev/null &
echo NETBENCH-READY
while :; do sleep 3600; done
INIT
  chmod 755 "$root/netbench/init"
}
qemu_up() {
  [ -d "$work/overlay" ] || overlay
  (cd "$work/overlay" && find . | cpio -o -H newc --quiet) >"$work/overlay.cpio"
  cat "$HULL_INITRD" "$work/overlay.cpio" >"$work/initrd-net.cpio"
  ip tuntap add hb-tap0 mode tap
  ip addr add 10.77.2.1/24 dev hb-tap0; ip link set hb-tap0 up
  qemu-system-x86_64 -M microvm,acpi=off -enable-kvm -cpu host -m 256M -smp 1 \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$work/qemu.console" \
    -netdev tap,id=n0,ifname=hb-tap0,script=no,downscript=no,vhost=off \
    -device virtio-net-device,netdev=n0 \
    -kernel "$HULL_KERNEL" -initrd "$work/initrd-net.cpio" \
    -append "console=ttyS0 reboot=k panic=-1 quiet nomodule 8250.nr_uarts=1 no_timer_check tsc=reliable rdinit=/netbench/init" \
    2>"$work/qemu.err" &
  echo $! >"$work/qemu.pid"
  if wait_port "10.77.2.2:$RR_PORT" 300 "$(cat "$work/qemu.pid")"; then
    ends="$ends qemu=10.77.2.2"
  else
    echo "  qemu: the guest's servers did not come up; console and stderr:"
    tail -20 "$work/qemu.console" "$work/qemu.err"
  fi
}
qemu_down() {
  kill "$(cat "$work/qemu.pid")" 2>/dev/null || true
  ip link del hb-tap0 2>/dev/null || true
}

# --- (c) hull: the hook ------------------------------------------------------
# hull's networking (tap in the netns, tc mirred veth <-> tap,
# virtio-net, the agent configuring eth0): a netns
# with a veth whose peer (10.77.3.1) stays on the test host, and a bundle
# (busybox + iperf3 + hull-bench, the overlay tree above) whose
# linux.namespaces network entry has "path": "/var/run/netns/hull-bench-h",
# run with `hull run --bundle`; then the same clients against 10.77.3.2.
hull_up() {
  if [ "${HULL_BENCH_NET_HULL:-1}" != 1 ]; then
    echo "  hull: not measured (HULL_BENCH_NET_HULL=0)"
    return 0
  fi
  [ -d "$work/overlay" ] || overlay
  netns_veth hull-bench-h hb-h1 hb-h0 10.77.3.2 10.77.3.1
  b="$work/hull-bundle"
  scripts/busybox-bundle "$b" sh -c "iperf3 -s -D; exec hull-bench netrr server --listen 0.0.0.0:$RR_PORT"
  cp -a "$work/overlay/bin/iperf3" "$work/overlay/bin/hull-bench" "$b/rootfs/bin/"
  for d in lib lib64 usr; do [ ! -d "$work/overlay/$d" ] || cp -a "$work/overlay/$d" "$b/rootfs/"; done
  sed -i 's|{"type": "network"}|{"type": "network", "path": "/var/run/netns/hull-bench-h"}|' "$b/config.json"
  grep -q hull-bench-h "$b/config.json" || { echo "  hull: could not point the bundle's network namespace at the netns"; return 0; }
  "$HULL_BIN" --root "$work/state" run --bundle "$b" hull-net >"$work/hull.out" 2>&1 &
  echo $! >"$work/hull.pid"
  if wait_port "10.77.3.2:$RR_PORT" 180 "$(cat "$work/hull.pid")"; then
    ends="$ends hull=10.77.3.2"
  else
    echo "  hull: the container's servers did not come up:"; tail -5 "$work/hull.out"
  fi
}
hull_down() {
  [ -f "$work/hull.pid" ] || return 0
  "$HULL_BIN" --root "$work/state" kill hull-net KILL 2>/dev/null || kill "$(cat "$work/hull.pid")" 2>/dev/null || true
  ip link del hb-h0 2>/dev/null || true
  ip netns del hull-bench-h 2>/dev/null || true
}

trap 'hull_down; qemu_down; crun_down' EXIT
echo "== network: TCP throughput ($secs s per direction, iperf3) and 1-byte request/response ($count round trips, hull-bench netrr), $rounds rounds alternating"
crun_up
qemu_up
hull_up
round=1
while [ "$round" -le "$rounds" ]; do
  for end in $ends; do
    measure "${end%%=*}" "${end#*=}" "$round" || echo "  round $round ${end%%=*}: measurement failed"
  done
  round=$((round + 1))
done

# --- the table: medians over the rounds ---------------------------------------
get() {
  [ -s "$work/$1.results" ] || { echo -; return; }
  awk -v i="$2" '{print $i}' "$work/$1.results" | sort -n |
    awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
printf '\n%-20s %10s %10s %10s %10s %10s %10s\n' "median of $rounds" crun qemu hull qemu/crun hull/qemu hull/crun
for row in "1 host->ctr Mbit/s" "2 ctr->host Mbit/s" "3 rr median us" "4 rr p99 us"; do
  i=${row%% *}; label=${row#* }
  c=$(get crun "$i"); q=$(get qemu "$i"); h=$(get hull "$i")
  printf '%-20s %10s %10s %10s %10s %10s %10s\n' "$label" "$c" "$q" "$h" \
    "$(ratio "$q" "$c")" "$(ratio "$h" "$q")" "$(ratio "$h" "$c")"
done
echo "(test host: everything 10-30x slower than on hardware; compare ratios, not absolutes)"
