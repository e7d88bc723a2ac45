#!/usr/bin/env bash
# Podman (with conmon) driving the runtime under test: podman --runtime RUNTIME.
# run --rm (exit statuses, output, stdin), run -it on a terminal, exec
# (-i, -it, exit status), logs, stop (SIGTERM reaches the workload), kill;
# networking with netavark: net-checks.sh and a network of our own (MTU, DNS).
ENGINE=podman
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

podman_image
CLI=(podman --runtime "$RUNTIME")
RUN=("${CLI[@]}" run --network none)
at_exit "podman rm -af -t 0"
# shellcheck source=cli-checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli-checks.sh"

check_run
check_seccomp
call "${RUN[@]}" --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMAGE" \
  sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u'
expect "run --uidmap: the guest user namespace has the map" 0 '^ *0 +100000 +65536$'
expect "run --uidmap: root in the container" 0 '^0$'
check_detached_exec
call "${CLI[@]}" exec eng-stop ps
expect "exec: ps sees the workload" 0 'sleep 1000'
check_stop
check_kill

# -- attached run without --rm, then logs ---------------------------------------------
call "${RUN[@]}" --name eng-logs "$IMAGE" sh -c 'echo line1; echo line2'
expect "run attached" 0 '^line2$'
call "${CLI[@]}" logs eng-logs
expect_exact "logs of an exited container" 0 "line1
line2"
call "${CLI[@]}" rm eng-logs
expect "rm" 0

# -- networking: netavark's default bridge, a network of our own, none -------------
net_t0=$SECONDS
# shellcheck source=net-checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/net-checks.sh"
NET_RUN=("${CLI[@]}" run)
nsfs_before="$(nsfs_mounts)"
net_check_bridge 8080
call "${CLI[@]}" network create --subnet 10.77.0.0/24 --opt mtu=1400 eng-net1
expect "net: network create --subnet 10.77.0.0/24 --opt mtu=1400" 0
at_exit "podman network rm -f eng-net1"
call "${NET_RUN[@]}" --rm --network eng-net1 --name eng-net1c "$IMAGE" \
  sh -c 'cat /sys/class/net/eth0/mtu; ip -4 -o addr show dev eth0; nslookup eng-net1c'
expect "net: user-defined network: eth0's MTU is 1400 inside" 0 '^1400$'
expect "net: user-defined network: eth0 has an address of its subnet" 0 ' inet 10\.77\.0\.[0-9]+/24 '
expect "net: user-defined network: aardvark-dns resolves the container's name" 0 \
  '^Address:[[:space:]]*10\.77\.0\.[0-9]+$'
net_check_none
call "${CLI[@]}" rm -f -t 0 eng-web
expect "net: rm -f the bridged container" 0
call "${CLI[@]}" network rm eng-net1
expect "net: network rm" 0
if net_faults_wanted; then
  # Podman itself refuses a missing path; a file that is no namespace reaches
  # the runtime, whose setns must fail.
  call "${NET_RUN[@]}" --rm --name eng-badns --network ns:/nonexistent "$IMAGE" true
  net_expect_clean_failure "net fault: --network ns:/nonexistent fails, naming the path"
  # hull must name the file; crun's error does not ("write to sync socket").
  : >"$TMPD/not-a-netns"
  want="$TMPD/not-a-netns"
  [ "$ENGINES_EXPECT_VM" = 1 ] || want="OCI runtime error"
  call "${NET_RUN[@]}" --rm --name eng-badns --network "ns:$TMPD/not-a-netns" "$IMAGE" true
  net_expect_clean_failure "net fault: --network ns:FILE (no namespace) fails in the runtime" "$want"
  call "${CLI[@]}" ps -aq --filter name=eng-badns
  expect_exact "net fault: no container left behind" 0 ""
fi
net_expect_no_leftovers "$nsfs_before"
echo "$ENGINE: networking checks took $((SECONDS - net_t0)) s"
