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
