#!/usr/bin/env bash
# Podman pods on the runtime under test: `podman pod create` (its infra
# container, Podman's own catatonit pause image), then `podman run --pod`
# twice. Podman names no pod in annotations: the app containers get the
# infra container's ipc and uts namespaces by /proc/<pid>/ns path and its
# network namespace, and hull makes them members of the infra's VM. One VM
# for the pod; the second container reaches the first on localhost.
ENGINE=podman-pod
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

podman_image
CLI=(podman --runtime "$RUNTIME")
at_exit "podman pod rm -f -t 0 hullpod"

vmms_before="$(pgrep -x hull-vmm | sort || true)"
call "${CLI[@]}" pod create --name hullpod
expect "pod create" 0
call "${CLI[@]}" run -d --pod hullpod --name hullpod-web "$IMAGE" \
  sh -c 'echo pod-local > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'
expect "run -d --pod: the infra container and the first app start" 0
if [ "$rc" != 0 ]; then
  # What the infra container asked for.
  infra="$(podman pod inspect hullpod --format '{{.InfraContainerID}}' 2>/dev/null || true)"
  cfg="$(find "$TMPD/podman" -path "*$infra*/userdata/config.json" 2>/dev/null | head -1)"
  [ -z "$cfg" ] || python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("  infra namespaces:", c["linux"].get("namespaces")); print("  infra process:", c["process"].get("args"), c["process"].get("user"))' "$cfg"
fi
call "${CLI[@]}" run --rm --pod hullpod "$IMAGE" sh -c \
  'uname -v; for i in $(seq 60); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 1; done; exit 1'
expect "run --rm --pod: the second app reaches the first on 127.0.0.1" 0 '^pod-local$'
expect_vm "run --rm --pod: guest kernel"
new="$(comm -13 <(echo "$vmms_before") <(pgrep -x hull-vmm | sort) | grep -c . || true)"
if [ "$new" = 1 ]; then pass "the pod is one VM"; else
  fail "the pod is one VM" "$new new hull-vmm processes"; fi
call "${CLI[@]}" pod rm -f -t 0 hullpod
expect "pod rm -f" 0
call bash -c "comm -13 <(echo '$vmms_before') <(pgrep -x hull-vmm | sort) | grep -c ."
expect_exact "no hull-vmm of the pod left" 1 "0"
