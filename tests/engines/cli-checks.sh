# Checks shared by the engines whose CLI is Docker's (podman, docker), sourced
# after lib.sh. The caller sets CLI (the engine's command, e.g. `podman
# --runtime R`) and RUN (its `run` with the runtime and `--network none`).

# (grep reads everything: with -q it may quit first and fail the pipe.)
logs_have() { "${CLI[@]}" logs "$1" 2>&1 | grep -x "$2" >/dev/null; }
state_is() { [ "$("${CLI[@]}" inspect -f '{{.State.Status}}' "$1")" = "$2" ]; }

# run --rm: output, exit status, stdin, stderr kept apart; run -it.
check_run() {
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

  call_tty "${RUN[@]}" --rm -it "$IMAGE" sh -c 'tty; uname -v; exit 4'
  expect "run -it: stdin is a terminal, output reaches the caller" 4 '^/dev/'
  expect "run -it: the terminal is the container's /dev/pts/N, as with runc" 4 '^/dev/pts/[0-9]+$'
  expect_vm "run -it: guest kernel"
}

# A detached container eng-stop (left running): logs, then exec with output,
# exit status, -i and -it.
check_detached_exec() {
  call "${RUN[@]}" -d --name eng-stop "$IMAGE" \
    sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait'
  expect "run -d" 0
  if poll 60 logs_have eng-stop started; then pass "logs: output of a detached container"; else
    fail "logs: output of a detached container" "no 'started' in: $("${CLI[@]}" logs eng-stop 2>&1 | tail -5)"; fi

  call "${CLI[@]}" exec eng-stop echo exec-ok
  expect_exact "exec: output" 0 "exec-ok"
  call "${CLI[@]}" exec eng-stop uname -v
  expect_vm "exec: the container runs in a guest kernel"
  call "${CLI[@]}" exec eng-stop sh -c 'exit 5'
  expect "exec: exit status 5" 5
  call_in "exec-stdin" "${CLI[@]}" exec -i eng-stop cat
  expect_exact "exec -i: stdin" 0 "exec-stdin"
  call_tty "${CLI[@]}" exec -it eng-stop sh -c 'tty; exit 6'
  expect "exec -it: stdin is a terminal" 6 '^/dev/'
  expect "exec -it: the terminal is a /dev/pts/N, as with runc" 6 '^/dev/pts/[0-9]+$'
}

# stop of eng-stop (SIGTERM runs its trap), then rm.
check_stop() {
  call "${CLI[@]}" stop -t 60 eng-stop
  expect "stop" 0
  call "${CLI[@]}" inspect -f '{{.State.ExitCode}}' eng-stop
  expect_exact "stop: SIGTERM ran the workload's trap (exit code 7)" 0 7
  if logs_have eng-stop got-term; then pass "logs: output after stop"; else
    fail "logs: output after stop" "no 'got-term' in: $("${CLI[@]}" logs eng-stop 2>&1 | tail -5)"; fi
  call "${CLI[@]}" rm eng-stop
  expect "rm after stop" 0
}

# kill (SIGKILL) of a detached container: exit code 137, then rm.
check_kill() {
  call "${RUN[@]}" -d --name eng-kill "$IMAGE" sleep 1000
  expect "run -d sleep" 0
  if poll 60 state_is eng-kill running; then pass "run -d: running"; else
    fail "run -d: running" "state $("${CLI[@]}" inspect -f '{{.State.Status}}' eng-kill 2>&1)"; fi
  call "${CLI[@]}" kill eng-kill
  expect "kill (SIGKILL)" 0
  if poll 60 state_is eng-kill exited; then
    call "${CLI[@]}" inspect -f '{{.State.ExitCode}}' eng-kill
    expect_exact "kill: exit code 137" 0 137
  else
    fail "kill: the container exits" "state $("${CLI[@]}" inspect -f '{{.State.Status}}' eng-kill 2>&1)"
  fi
  call "${CLI[@]}" rm eng-kill
  expect "rm after kill" 0
}

# seccomp: a profile of the user's own denying mkdir with EPERM works
# (Docker's default profile is checked in docker.sh: Podman's allows the
# call used there).
check_seccomp() {
  printf '%s\n' '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' >"$TMPD/deny-mkdir.json"
  call "${RUN[@]}" --rm --security-opt "seccomp=$TMPD/deny-mkdir.json" "$IMAGE" \
    sh -c 'mkdir /made 2>&1; echo rc=$?; touch /touched && echo touched'
  expect "a profile denying mkdir: mkdir fails with EPERM" 0 'Operation not permitted'
  expect "a profile denying mkdir: other calls work" 0 '^touched$'
}
