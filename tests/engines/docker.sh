#!/usr/bin/env bash
# dockerd (over a containerd of our own) with the runtime under test
# registered in daemon.json "runtimes" as "hull": docker run --rm --runtime
# hull (exit statuses, output, stdin), -it, exec (-i, -it, exit status),
# logs, stop (SIGTERM reaches the workload), kill.
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
  "iptables": false,
  "ip6tables": false,
  "bridge": "none",
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
at_exit "${D[*]} rm -f eng-stop eng-kill"
call "${D[@]}" load -i "$IMAGE_ARCHIVE"
expect "load" 0
RUN=("${D[@]}" run --runtime hull --network none)

# -- run --rm ---------------------------------------------------------------------
call "${RUN[@]}" --rm "$IMAGE" true
expect_exact "run --rm true" 0 ""

call "${RUN[@]}" --rm "$IMAGE" sh -c 'echo hello; uname -v; exit 3'
expect "run --rm: exit status 3 and output" 3 '^hello$'
expect_vm "run --rm: guest kernel"

call_in "from-stdin" "${RUN[@]}" --rm -i "$IMAGE" cat
expect_exact "run --rm -i: stdin reaches the container" 0 "from-stdin"

call_tty "${RUN[@]}" --rm -it "$IMAGE" sh -c 'tty; uname -v; exit 4'
expect "run -it: stdin is a terminal, output reaches the caller" 4 '^/dev/'
expect "run -it: the terminal is the container's pty (/dev/pts/N; hull names the init's /dev/console)" 4 '^/dev/(pts/[0-9]+|console)$'
expect_vm "run -it: guest kernel"

# -- a detached container: logs, exec, stop ------------------------------------------
call "${RUN[@]}" -d --name eng-stop "$IMAGE" \
  sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait'
expect "run -d" 0
logs_have() { "${D[@]}" logs "$1" 2>&1 | grep -qx "$2"; }
state_is() { [ "$("${D[@]}" inspect -f '{{.State.Status}}' "$1")" = "$2" ]; }
if poll 60 logs_have eng-stop started; then pass "logs: output of a detached container"; else
  fail "logs: output of a detached container" "no 'started' in: $("${D[@]}" logs eng-stop 2>&1 | tail -5)"; fi

call "${D[@]}" exec eng-stop echo exec-ok
expect_exact "exec: output" 0 "exec-ok"
call "${D[@]}" exec eng-stop uname -v
expect_vm "exec: the container runs in a guest kernel"
call "${D[@]}" exec eng-stop sh -c 'exit 5'
expect "exec: exit status 5" 5
call_in "exec-stdin" "${D[@]}" exec -i eng-stop cat
expect_exact "exec -i: stdin" 0 "exec-stdin"
call_tty "${D[@]}" exec -it eng-stop sh -c 'tty; exit 6'
expect "exec -it: stdin is a terminal" 6 '^/dev/'
expect "exec -it: the terminal is a /dev/pts/N, as with runc" 6 '^/dev/pts/[0-9]+$'
call "${D[@]}" top eng-stop
if [ "${ENGINES_EXPECT_VM:-1}" = 1 ]; then
  # hull's ps lists the container's host processes: its sandbox and VMM.
  expect "top (runtime ps): the sandbox's host processes" 0 'hull-vmm'
else
  expect "top (runtime ps)" 0 'sleep 1000'
fi

call "${D[@]}" stop -t 60 eng-stop
expect "stop" 0
call "${D[@]}" inspect -f '{{.State.ExitCode}}' eng-stop
expect_exact "stop: SIGTERM ran the workload's trap (exit code 7)" 0 7
if logs_have eng-stop got-term; then pass "logs: output after stop"; else
  fail "logs: output after stop" "no 'got-term' in: $("${D[@]}" logs eng-stop 2>&1 | tail -5)"; fi
call "${D[@]}" rm eng-stop
expect "rm after stop" 0

# -- kill --------------------------------------------------------------------------------
call "${RUN[@]}" -d --name eng-kill "$IMAGE" sleep 1000
expect "run -d sleep" 0
if poll 60 state_is eng-kill running; then pass "run -d: running"; else
  fail "run -d: running" "state $("${D[@]}" inspect -f '{{.State.Status}}' eng-kill 2>&1)"; fi
call "${D[@]}" kill eng-kill
expect "kill (SIGKILL)" 0
if poll 60 state_is eng-kill exited; then
  call "${D[@]}" inspect -f '{{.State.ExitCode}}' eng-kill
  expect_exact "kill: exit code 137" 0 137
else
  fail "kill: the container exits" "state $("${D[@]}" inspect -f '{{.State.Status}}' eng-kill 2>&1)"
fi
call "${D[@]}" rm eng-kill
expect "rm after kill" 0
