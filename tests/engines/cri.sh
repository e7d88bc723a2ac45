#!/usr/bin/env bash
# containerd's CRI plugin with hull as its runtime, as a Kubernetes node runs
# it: a runtime of type io.containerd.runc.v2 with BinaryName = the runtime
# under test (the default runtime), a CNI bridge network from
# containernetworking-plugins, images imported into the k8s.io namespace. The
# CRI client (target/release/hull-cri-test, tests/cri) drives one pod through
# its life: RunPodSandbox, two app containers, ExecSync, logs, updates, stats,
# StopContainer, RemovePodSandbox; then nothing of the pod may be left.
ENGINE=cri
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
client="$root/target/release/hull-cri-test"
[ -x "$client" ] || { fail "CRI client" "$client is missing (make engines builds it)"; exit 1; }

if [ ! -s "$IMAGE_ARCHIVE" ]; then podman_config; image_archive; fi
# The sandbox ("pause") image: busybox sleeping (containerd kills it with
# SIGKILL when the pod stops).
PAUSE=localhost/hull-pause:1
PAUSE_ARCHIVE="$ENGINES_SHARED/hull-pause-docker.tar"
if [ ! -s "$PAUSE_ARCHIVE" ]; then
  podman_config
  busybox_rootfs_tar "$TMPD/pause-rootfs.tar"
  podman import -q --change 'CMD ["/bin/sleep", "2147483647"]' "$TMPD/pause-rootfs.tar" "$PAUSE" >/dev/null
  podman save -q --format docker-archive -o "$PAUSE_ARCHIVE" "$PAUSE"
fi

d="$TMPD/containerd"
hull_root="$d/hull-root"
mkdir -p "$d/cni" "$d/logs" "$hull_root"
cat >"$d/cni/10-hull-cri.conflist" <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "hull-cri",
  "plugins": [
    {"type": "bridge", "bridge": "hullcri0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
START_CONTAINERD_CRI="$(cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "hull"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull.options]
        BinaryName = "$RUNTIME"
        Root = "$hull_root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
EOF
)"
start_containerd
at_exit "ip link del hullcri0"
C=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
call "${C[@]}" images import "$IMAGE_ARCHIVE"
expect "images import (busybox)" 0
call "${C[@]}" images import "$PAUSE_ARCHIVE"
expect "images import (pause)" 0

call "$client" "$CONTAINERD_SOCK" "$IMAGE" "$d/logs" "$TMPD/uname"
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
