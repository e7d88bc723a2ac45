#!/usr/bin/env bash
# containerd's CRI plugin with hull as its runtime, as a Kubernetes node runs
# it: a runtime of type io.containerd.runc.v2 with BinaryName = the runtime
# under test (the default runtime), a CNI bridge network from
# containernetworking-plugins, images imported into the k8s.io namespace. The
# CRI client (target/release/hull-cri-test, tests/cri) drives one pod through
# its life: RunPodSandbox, two app containers, ExecSync, logs, updates, stats,
# StopContainer, RemovePodSandbox; then its faults: two pods racing, a grace
# period ending in SIGKILL, a pod's sandbox process SIGKILLed. Then nothing
# of any pod may be left.
ENGINE=cri
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
client="$root/target/release/hull-cri-test"
[ -x "$client" ] || { fail "CRI client" "$client is missing (make engines builds it)"; exit 1; }

start_cri_containerd
hull_root="$CRI_HULL_ROOT"
d="$TMPD/containerd"

cgroups_before="$TMPD/cgroups.before"
find /sys/fs/cgroup -mindepth 1 -type d | sort > "$cgroups_before"
call "$client" "$CONTAINERD_SOCK" "$IMAGE" "$d/logs" "$TMPD/uname" "$hull_root"
while read -r line; do
  case "$line" in
    PASS*|FAIL*) _record "$line" ;;
  esac
done <<<"$out"
if [ "$rc" != 0 ]; then
  echo "$err" | tail -n 20
  daemon_log containerd 40
  for f in $(find "$hull_root" -name console.log 2>/dev/null); do
    echo "  $f:"; tail -n 15 "$f" | sed 's/^/    /'
  done
fi
out="$(cat "$TMPD/uname" 2>/dev/null || true)"
expect_vm "an app container of the pod"

# Nothing of the pod is left: no hull state, VMM, mount or tap.
call find "$hull_root" -name state.json
expect_exact "no hull state left" 0 ""
call pgrep -x hull-vmm
expect_exact "no hull-vmm left" 1 ""
call sh -c "grep -c '$hull_root' /proc/self/mountinfo"
expect_exact "no mount of hull's left" 1 "0"
call sh -c "ip -o link show | grep -c hulltap"
expect_exact "no tap left" 1 "0"
# A pod's or container's cgroup is named by its 64-hex id.
call sh -c "find /sys/fs/cgroup -mindepth 1 -type d | sort | comm -13 '$cgroups_before' - | grep -cE '[0-9a-f]{64}'"
expect_exact "no cgroup of a pod or container left" 1 "0"
