#!/usr/bin/env bash
# dockerd (over a containerd of our own) with the runtime under test
# registered in daemon.json "runtimes" as "hull": docker run --rm --runtime
# hull (exit statuses, output, stdin), -it, exec (-i, -it, exit status),
# logs, stop (SIGTERM reaches the workload), kill; networking on the default
# bridge (iptables, the userland proxy for -p): net-checks.sh.
ENGINE=docker
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The CLI of the same release as the daemon (a newer one may sit earlier in PATH).
DOCKER_CLI="${ENGINES_DOCKER_CLI:-/usr/bin/docker}"
if [ ! -s "$IMAGE_ARCHIVE" ]; then podman_config; image_archive; fi
start_containerd
d="$TMPD/docker"
mkdir -p "$d"
cat >"$d/daemon.json" <<EOF
{
  "hosts": ["unix://$d/docker.sock"],
  "data-root": "$d/data",
  "exec-root": "$d/exec",
  "pidfile": "$d/docker.pid",
  "containerd": "$CONTAINERD_SOCK",
  "ip6tables": false,
  "runtimes": {"hull": {"path": "$RUNTIME"}}
}
EOF
start_daemon dockerd dockerd --config-file "$d/daemon.json"
D=("$DOCKER_CLI" -H "unix://$d/docker.sock")
if ! poll 180 "${D[@]}" version; then
  daemon_log dockerd
  fail "dockerd starts" "docker version did not answer in 180 s"
  exit 1
fi
at_exit "${D[*]} rm -f eng-stop eng-kill eng-web"
call "${D[@]}" load -i "$IMAGE_ARCHIVE"
expect "load" 0
CLI=("${D[@]}")
RUN=("${D[@]}" run --runtime hull --network none)
# shellcheck source=cli-checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli-checks.sh"

check_run
check_seccomp
# Docker's default profile is enforced in the guest: creating a user namespace
# without CAP_SYS_ADMIN is denied by it, and allowed without the profile.
call "${RUN[@]}" --rm "$IMAGE" sh -c 'unshare -U true 2>&1; echo rc=$?'
expect "default seccomp profile: a new user namespace is denied" 0 'Operation not permitted'
call "${RUN[@]}" --rm --security-opt seccomp=unconfined "$IMAGE" sh -c 'unshare -U true 2>&1; echo rc=$?'
expect "seccomp=unconfined: the same call works" 0 '^rc=0$'

check_detached_exec
call "${D[@]}" top eng-stop
if [ "${ENGINES_EXPECT_VM:-1}" = 1 ]; then
  # hull's ps lists the container's host processes: its sandbox and VMM.
  expect "top (runtime ps): the sandbox's host processes" 0 'hull-vmm'
else
  expect "top (runtime ps)" 0 'sleep 1000'
fi
check_stop
check_kill

# -- networking: the default bridge, iptables, -p through docker-proxy ------------
net_t0=$SECONDS
# shellcheck source=net-checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/net-checks.sh"
NET_RUN=("${D[@]}" run --runtime hull)
nsfs_before="$(nsfs_mounts)"
net_check_bridge 8081
call "${D[@]}" rm -f eng-web
expect "net: rm -f the bridged container" 0
net_expect_no_leftovers "$nsfs_before"
echo "$ENGINE: networking checks took $((SECONDS - net_t0)) s"
