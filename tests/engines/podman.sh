#!/usr/bin/env bash
# Podman (with conmon) driving the runtime under test: podman --runtime RUNTIME.
# run --rm (exit statuses, output, stdin), run -it on a terminal, exec
# (-i, -it, exit status), logs, stop (SIGTERM reaches the workload), kill.
ENGINE=podman
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

podman_config
image_archive
if ! podman image exists "$IMAGE"; then
  podman load -q -i "$IMAGE_ARCHIVE" >/dev/null
fi
P=(podman --runtime "$RUNTIME")
RUN=("${P[@]}" run --network none)
at_exit "podman rm -af -t 0"

# -- run --rm -------------------------------------------------------------------
call "${RUN[@]}" --rm "$IMAGE" true
expect_exact "run --rm true" 0 ""

call "${RUN[@]}" --rm "$IMAGE" sh -c 'echo hello; uname -v; exit 3'
expect "run --rm: exit status 3 and output" 3 '^hello$'
expect_vm "run --rm: guest kernel"

call_in "from-stdin" "${RUN[@]}" --rm -i "$IMAGE" cat
expect_exact "run --rm -i: stdin reaches the container" 0 "from-stdin"

call "${RUN[@]}" --rm "$IMAGE" sh -c 'echo to-stderr >&2'
if [ "$rc" = 0 ] && grep -qx to-stderr <<<"$err"; then pass "run --rm: stderr stays stderr"; else
  fail "run --rm: stderr stays stderr" "rc $rc, stderr '$err', stdout '$out'"; fi

# -- run -it ----------------------------------------------------------------------
call_tty "${RUN[@]}" --rm -it "$IMAGE" sh -c 'tty; uname -v; exit 4'
expect "run -it: stdin is a terminal, output reaches the caller" 4 '^/dev/'
expect "run -it: the terminal is the container's pty (/dev/pts/N; hull names the init's /dev/console)" 4 '^/dev/(pts/[0-9]+|console)$'
expect_vm "run -it: guest kernel"

# -- a detached container: logs, exec, stop ----------------------------------------
call "${RUN[@]}" -d --name eng-stop "$IMAGE" \
  sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait'
expect "run -d" 0
running() { [ "$(podman inspect -f '{{.State.Status}}' "$1")" = "$2" ]; }
logs_have() { podman logs "$1" 2>&1 | grep -qx "$2"; }
if poll 60 logs_have eng-stop started; then pass "logs: output of a detached container"; else
  fail "logs: output of a detached container" "no 'started' in: $(podman logs eng-stop 2>&1 | tail -5)"; fi

call "${P[@]}" exec eng-stop echo exec-ok
expect_exact "exec: output" 0 "exec-ok"
call "${P[@]}" exec eng-stop uname -v
expect_vm "exec: the container runs in a guest kernel"
call "${P[@]}" exec eng-stop sh -c 'exit 5'
expect "exec: exit status 5" 5
call_in "exec-stdin" "${P[@]}" exec -i eng-stop cat
expect_exact "exec -i: stdin" 0 "exec-stdin"
call_tty "${P[@]}" exec -it eng-stop sh -c 'tty; exit 6'
expect "exec -it: stdin is a terminal" 6 '^/dev/'
expect "exec -it: the terminal is a /dev/pts/N, as with runc" 6 '^/dev/pts/[0-9]+$'
call "${P[@]}" exec eng-stop ps
expect "exec: ps sees the workload" 0 'sleep 1000'

call "${P[@]}" stop -t 60 eng-stop
expect "stop" 0
call podman inspect -f '{{.State.ExitCode}}' eng-stop
expect_exact "stop: SIGTERM ran the workload's trap (exit code 7)" 0 7
if logs_have eng-stop got-term; then pass "logs: output after stop"; else
  fail "logs: output after stop" "no 'got-term' in: $(podman logs eng-stop 2>&1 | tail -5)"; fi
call podman rm eng-stop
expect "rm after stop" 0

# -- kill -----------------------------------------------------------------------------
call "${RUN[@]}" -d --name eng-kill "$IMAGE" sleep 1000
expect "run -d sleep" 0
if poll 60 running eng-kill running; then pass "run -d: running"; else
  fail "run -d: running" "state $(podman inspect -f '{{.State.Status}}' eng-kill 2>&1)"; fi
call "${P[@]}" kill eng-kill
expect "kill (SIGKILL)" 0
if poll 60 running eng-kill exited; then
  call podman inspect -f '{{.State.ExitCode}}' eng-kill
  expect_exact "kill: exit code 137" 0 137
else
  fail "kill: the container exits" "state $(podman inspect -f '{{.State.Status}}' eng-kill 2>&1)"
fi
call podman rm eng-kill
expect "rm after kill" 0

# -- attached run without --rm, then logs ---------------------------------------------
call "${RUN[@]}" --name eng-logs "$IMAGE" sh -c 'echo line1; echo line2'
expect "run attached" 0 '^line2$'
call podman logs eng-logs
expect_exact "logs of an exited container" 0 "line1
line2"
call podman rm eng-logs
expect "rm" 0
