#!/usr/bin/env bash
# hull run --image, no engine in front: OCI image layouts written by
# `podman save --format oci-dir` and by `skopeo copy … oci:DIR:TAG`, run with
# their own entrypoint and with podman-run options; the second run reuses the
# unpacked layers; a corrupt layout is refused and leaves nothing. Podman is
# only the tool that writes the layouts.
ENGINE=image-run
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

podman_config
busybox_rootfs_tar "$TMPD/rootfs.tar"
# An image with an entrypoint and a command of its own.
podman import -q --change 'ENTRYPOINT ["/bin/sh", "-c"]' --change 'CMD ["echo from-the-image; uname -v"]' \
  --change "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV=MODE=image" "$TMPD/rootfs.tar" localhost/hull-ep:1 >/dev/null
export HULL_IMAGE_STORE="$TMPD/store"
# The number of run directories in the store.
runs_left="find '$HULL_IMAGE_STORE/runs' -mindepth 1 -maxdepth 1 2>/dev/null | wc -l"
# errors: CMD... with its stderr on stdout (for expect's pattern).
errors() { call sh -c "$(printf '%q ' "$@") 2>&1"; }

layout="$TMPD/podman-oci"
call podman save -q --format oci-dir -o "$layout" localhost/hull-ep:1
expect "podman save --format oci-dir" 0
call "$RUNTIME" run --image "$layout"
expect "run --image: the image's entrypoint and command" 0 '^from-the-image$'
expect_vm "run --image: guest kernel"
call "$RUNTIME" run --image "$layout" -- 'echo $MODE'
expect "run --image -- CMD: the image's Env" 0 '^image$'

mkdir -p "$TMPD/vol" && echo from-the-host >"$TMPD/vol/f"
call "$RUNTIME" run --image "$layout" --name ir-opts -e MODE=option -w /tmp -u 65534:65534 \
  --hostname hbox --memory 192m --cpus 1.5 -v "$TMPD/vol:/vol:ro" -- \
  'echo "$MODE $(pwd) $(id -u):$(id -g) $(hostname)"; cat /vol/f; touch /vol/x 2>/dev/null || echo ro; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max'
expect "run --image with -e -w -u --hostname -v :ro" 0 '^option /tmp 65534:65534 hbox$'
expect "  the volume is the host's, read-only" 0 '^from-the-host$'
expect "  --memory is the container's limit" 0 "^$((192 << 20))$"
expect "  --cpus is its CPU quota" 0 '^150000 100000$'
call sh -c "echo hi | '$RUNTIME' run --image '$layout' -i -- 'read x; echo got \$x'"
expect "run --image -i: stdin reaches the process" 0 '^got hi$'
call sh -c "echo hi | '$RUNTIME' run --image '$layout' -- 'read x || echo no-stdin'"
expect "run --image without -i: stdin is /dev/null" 0 '^no-stdin$'
call_tty "$RUNTIME" run --image "$layout" -t -- 'test -t 0 && echo a-tty'
expect "run --image -t: a terminal" 0 'a-tty'
call "$RUNTIME" run --image "$layout" --name ir-detached -d -- 'sleep 600'
expect "run --image -d prints the id" 0 '^ir-detached$'
call "$RUNTIME" delete --force ir-detached
expect "delete --force of the detached run" 0
call sh -c "$runs_left"
expect_exact "no run directory left" 0 "0"

# --network default: hull's CNI bridge (containernetworking-plugins), NAT,
# -p through the portmap plugin; undone by delete.
call "$RUNTIME" run --image "$layout" --network default -- 'ip -4 -o addr show eth0; cat /etc/hosts'
expect "run --image --network default: eth0 has an address of hull's network" 0 ' inet 10\.89\.0\.[0-9]+/24 '
call "$RUNTIME" run --image "$layout" --name ir-web -d --network default -p 18080:8080 -- \
  'echo served >/tmp/index.html; exec httpd -f -p 8080 -h /tmp'
expect "run --image -d --network default -p 18080:8080" 0 '^ir-web$'
web_ip="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["result"]; print(r["ips"][0]["address"].split("/")[0])' \
  "$HULL_IMAGE_STORE/runs/ir-web/network.json" 2>/dev/null || true)"
poll 60 busybox wget -qO- "http://$web_ip:8080/" || true
call busybox wget -qO- "http://$web_ip:8080/"
expect "  the container's port is reached at its address ($web_ip)" 0 '^served$'
call busybox wget -qO- "http://127.0.0.1:18080/"
expect "  and at the published port 127.0.0.1:18080" 0 '^served$'
call "$RUNTIME" delete --force ir-web
expect "delete --force of the published run" 0
call sh -c "ls /run/netns | grep -c hull-; iptables -t nat -S | grep -c -e 18080 -e 'name: .hull.'; ls /var/lib/cni/networks/hull | grep -c '^10\\.'"
expect_exact "  no namespace, NAT rule or address of either run left" 1 "$(printf '0\n0\n0')"

# skopeo's layout of the same image, under a tag.
if command -v skopeo >/dev/null; then
  podman save -q --format docker-archive -o "$TMPD/ep.tar" localhost/hull-ep:1
  call skopeo copy -q "docker-archive:$TMPD/ep.tar" "oci:$TMPD/skopeo-oci:v1"
  expect "skopeo copy … oci:DIR:v1" 0
  call "$RUNTIME" run --image "$TMPD/skopeo-oci:v1" --rm
  expect "run --image DIR:TAG (skopeo's layout)" 0 '^from-the-image$'
  errors "$RUNTIME" run --image "$TMPD/skopeo-oci:v2"
  expect "an unknown tag is refused, naming the tags" 1 'v1'
else
  fail "skopeo" "not installed (tests/engines/deps installs it)"
fi

# A corrupt layer: refused before anything runs; nothing kept.
broken="$TMPD/broken"
cp -r "$layout" "$broken"
rm -rf "$HULL_IMAGE_STORE/layers"
big="$(find "$broken/blobs" -type f -size +100k | head -1)"
printf 'x' | dd of="$big" bs=1 seek=1000 conv=notrunc status=none
errors "$RUNTIME" run --image "$broken" -- true
expect "a layer that does not match its digest is refused" 1 'digest|size'
call sh -c "$runs_left"
expect_exact "  and leaves no run directory" 0 "0"
call sh -c "ls '$HULL_IMAGE_STORE/layers/tmp' 2>/dev/null | wc -l"
expect_exact "  and no half-unpacked layer" 0 "0"
errors "$RUNTIME" run --image "$TMPD/no-such-layout" -- true
expect "a missing layout is refused" 1 'no-such-layout'
call sh -c "grep -c ' $HULL_IMAGE_STORE' /proc/self/mountinfo"
expect_exact "no overlay of a run left mounted" 1 "0"
