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
# Podman 4.3 with its cgroupfs manager (the test host has no systemd) gives
# the pod's cgroup v2 directory a device program that denies everything,
# attached with BPF_F_ALLOW_MULTI, so it applies below whatever a child
# attaches: every runtime's container of the pod fails (crun: "mknod
# /dev/null: Operation not permitted"). With the systemd manager the pod is
# a slice without one. Take Podman's program off, as on such a host.
if [ "$(podman info --format '{{.Host.CgroupManager}}')" = cgroupfs ]; then
  pod_cg="/sys/fs/cgroup$(podman pod inspect hullpod --format '{{.CgroupPath}}')"
  for prog in $(bpftool cgroup show "$pod_cg" 2>/dev/null | awk '$2 == "cgroup_device" {print $1}'); do
    bpftool cgroup detach "$pod_cg" device id "$prog"
  done
  call sh -c "bpftool cgroup show '$pod_cg' 2>/dev/null | grep -c cgroup_device"
  expect_exact "Podman's pod-wide deny-all device program is off (cgroupfs manager)" 1 "0"
fi
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
