# shellcheck shell=bash
# tests/engines/net-checks.sh: networking checks, sourced after lib.sh.
#
# One busybox httpd container per engine ("eng-web", serving a page that names
# it) is reused for several checks: the test host is 10-30x slower than metal.
# The podman and docker scripts set, before calling the net_* functions:
#   CLI      the engine's command (with the runtime, for podman)
#   NET_RUN  its `run` with the runtime and no --network
# What the container must provide (hull's guest included): an interface named
# eth0 carrying the engine's address, a default route via the bridge gateway,
# and busybox's ip, wget, httpd, nslookup in the image.
#
# Fault checks (nonexistent network namespace) only make sense with hull: they
# run with ENGINES_EXPECT_VM=1, or with ENGINES_NET_FAULTS=1 to check the checks
# on another runtime.

NET_HOST_PORT=18090 # the test host's own httpd, reached from containers

net_faults_wanted() { [ "$ENGINES_EXPECT_VM" = 1 ] || [ "${ENGINES_NET_FAULTS:-0}" = 1 ]; }

# The page container NAME serves, and the command that serves it on port 80.
net_page() { echo "hull-net-page-$1"; }
net_web_cmd() { echo "mkdir -p /www && echo $(net_page "$1") >/www/index.html && exec httpd -f -p 80 -h /www"; }

# http_get URL: fetch URL from the test host (busybox wget: no proxy variables).
# Not wget -T: Debian's busybox 1.35 wget crashes with it.
http_get() { env -u http_proxy -u HTTP_PROXY timeout 15 /bin/busybox wget -q -O- "$1"; }
page_is() { [ "$(http_get "$1" 2>/dev/null)" = "$2" ]; }

# expect_page NAME URL WANT: PASS if the test host gets WANT at URL within 90 s.
expect_page() {
  local name="$1" url="$2" want="$3"
  if poll 90 page_is "$url" "$want"; then pass "$name"; else
    fail "$name" "GET $url from the test host: '$(http_get "$url" 2>&1 | tail -c 300 | tr '\n' ' ')', wanted '$want'"
  fi
}

# ipv4_of TEXT: the address of the first `ip -4 -o addr` line in TEXT.
ipv4_of() { awk '$3 == "inet" {sub("/.*", "", $4); print $4; exit}' <<<"$1"; }
# gateway_of TEXT: the next hop of the `ip -4 route` default route in TEXT.
gateway_of() { awk '$1 == "default" && $2 == "via" {print $3; exit}' <<<"$1"; }
host_has_addr() { ip -4 -o addr show | awk '{sub("/.*", "", $4); print $4}' | grep -qxF "$1"; }

# net_inside EXEC...: with EXEC the engine's exec into a running container,
# sets NET_INSIDE_IP (eth0's IPv4 address) and NET_GW (the default route's
# gateway), seen from inside; records a PASS/FAIL for each.
net_inside() {
  call "$@" ip -4 -o addr show dev eth0
  NET_INSIDE_IP="$(ipv4_of "$out")"
  if [ "$rc" = 0 ] && [ -n "$NET_INSIDE_IP" ]; then pass "net: eth0 has an IPv4 address inside ($NET_INSIDE_IP)"; else
    fail "net: eth0 has an IPv4 address inside" "rc $rc$(_context)"; fi
  call "$@" ip -4 route show
  NET_GW="$(gateway_of "$out")"
  if [ -n "$NET_GW" ] && host_has_addr "$NET_GW"; then pass "net: the default route is via a test-host address ($NET_GW)"; else
    fail "net: the default route is via a test-host address" "gateway '$NET_GW'; routes: $(tr '\n' ';' <<<"$out"); host: $(ip -4 -o addr show | awk '{print $4}' | tr '\n' ' ')"
  fi
}

# net_container_to_host EXEC...: a listener on the test host, bound to the
# bridge gateway NET_GW, reached from the container by TCP.
net_container_to_host() {
  mkdir -p "$TMPD/hostwww"
  echo hull-net-host-page >"$TMPD/hostwww/index.html"
  start_daemon host-httpd /bin/busybox httpd -f -p "$NET_GW:$NET_HOST_PORT" -h "$TMPD/hostwww"
  poll 30 page_is "http://$NET_GW:$NET_HOST_PORT/" hull-net-host-page || true
  call "$@" timeout 30 wget -q -O- "http://$NET_GW:$NET_HOST_PORT/"
  expect_exact "net: container -> test host by TCP (httpd on the gateway $NET_GW)" 0 hull-net-host-page
}

# net_check_bridge HOSTPORT: on the engine's default bridge network, eng-web
# published as HOSTPORT:80. Leaves eng-web running; sets NET_WEB_IP.
net_check_bridge() {
  local hostport="$1" page
  page="$(net_page eng-web)"
  call "${NET_RUN[@]}" -d --name eng-web -p "$hostport:80" "$IMAGE" sh -c "$(net_web_cmd eng-web)"
  expect "net: run -d httpd on the default bridge, -p $hostport:80" 0
  call "${CLI[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' eng-web
  NET_WEB_IP="$out"
  expect "net: inspect reports an IPv4 address ($NET_WEB_IP)" 0 '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'
  call "${CLI[@]}" exec eng-web uname -v
  expect_vm "net: the bridged container runs in a guest kernel"
  net_inside "${CLI[@]}" exec eng-web
  if [ -n "$NET_WEB_IP" ] && [ "$NET_INSIDE_IP" = "$NET_WEB_IP" ]; then pass "net: the address inspect reports is eth0's inside"; else
    fail "net: the address inspect reports is eth0's inside" "inspect '$NET_WEB_IP', eth0 '$NET_INSIDE_IP'"; fi
  expect_page "net: test host -> container IP:80 by TCP" "http://$NET_WEB_IP/" "$page"
  expect_page "net: -p $hostport:80 reached at 127.0.0.1:$hostport" "http://127.0.0.1:$hostport/" "$page"
  if [ -n "$NET_GW" ]; then
    expect_page "net: -p $hostport:80 reached at the test host's address $NET_GW:$hostport" "http://$NET_GW:$hostport/" "$page"
    net_container_to_host "${CLI[@]}" exec eng-web
  fi
  # A second container on the same bridge reaches eng-web by its address.
  call "${NET_RUN[@]}" --rm "$IMAGE" timeout 30 wget -q -O- "http://$NET_WEB_IP/"
  expect_exact "net: container -> container on the default bridge" 0 "$page"
}

# net_check_none: --network none leaves the container only its loopback (an
# IPv4 address on lo, no route; a kernel's fallback tunnels such as sit0 may
# exist, down and without addresses, in any namespace).
net_check_none() {
  call "${NET_RUN[@]}" --rm --network none "$IMAGE" \
    sh -c 'ip -4 -o addr show | awk "{print \$2, \$4}"; ip -4 route show'
  expect_exact "net: --network none has only lo" 0 "lo 127.0.0.1/8"
}

# nsfs_mounts: the network namespaces bind-mounted on the test host (podman's
# /run/netns, dockerd's exec-root/netns, anything hull would keep).
nsfs_mounts() { awk '$3 == "nsfs" {print $2}' /proc/mounts | sort; }

# net_expect_no_leftovers BEFORE: after the containers are gone, no hull tap
# device and no namespace mount beyond those listed in BEFORE (within 60 s: the
# kernel frees a dead namespace's devices in the background).
hull_taps() { ip -o link show | awk -F': ' '{print $2}' | grep hulltap || true; }
extra_nsfs() { comm -13 <(printf '%s\n' "$1") <(nsfs_mounts) | grep . || true; }
net_expect_no_leftovers() {
  local before="$1"
  if poll 60 eval '[ -z "$(hull_taps)" ]'; then pass "net: no tap device left"; else
    fail "net: no tap device left" "$(hull_taps | tr '\n' ' ')"; fi
  if poll 60 eval '[ -z "$(extra_nsfs "$before")" ]'; then pass "net: no network namespace left mounted"; else
    fail "net: no network namespace left mounted" "$(extra_nsfs "$before" | tr '\n' ' ')"; fi
}

# net_expect_clean_failure NAME [PATH]: the last call failed, naming PATH
# (default /nonexistent). The error's line is shown: it tells whether the
# engine or the runtime refused.
net_expect_clean_failure() {
  local path="${2:-/nonexistent}"
  if [ "$rc" != 0 ] && grep -qF -- "$path" <<<"$err$out"; then
    pass "$1 ($(grep -m1 -F -- "$path" <<<"$err$out" | cut -c1-200))"
  else
    fail "$1" "wanted a failure naming $path; rc $rc$(_context)"; fi
}
