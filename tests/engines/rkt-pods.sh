# shellcheck shell=bash
# tests/engines/rkt-pods.sh: the rest of rkt.sh (sourced by it): a two-app
# pod on the default network, a mutable pod, a SIGKILLed run, bad input.

# run_bg: `rkt run` in the background (its pid in RUN_PID, output in
# $TMPD/run.out and run.err).
run_bg() {
  "$stage0" run "$POD" "$@" >"$TMPD/run.out" 2>"$TMPD/run.err" </dev/null &
  RUN_PID=$!
}
# The pod's sandbox is up: the pid file is there and names a live process.
pod_up() { [ -s "$POD/pid" ] && kill -0 "$(cat "$POD/pid")" 2>/dev/null; }
# The pod's sandbox and first apps run: rkt/supervisor-status -> ready.
pod_ready() { [ "$(readlink "$POD/stage1/rootfs/rkt/supervisor-status" 2>/dev/null)" = ready ]; }
wait_run() {
  local rc=0
  timeout -k 5 "$ENGINES_TIMEOUT" tail --pid="$RUN_PID" -f /dev/null || true
  wait "$RUN_PID" || rc=$?
  out="$(cat "$TMPD/run.out")" err="$(cat "$TMPD/run.err")"
  return "$rc"
}

# ---- two apps sharing localhost, default network, enter, stop, gc ------------
web="$(app_aci web '{"exec": ["/bin/sh", "-c", "echo pod-local > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"], "user": "0", "group": "0"}')"
client="$(app_aci client '{"exec": ["/bin/sh", "-c", "for i in $(seq 60); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 1; done; exit 1"], "user": "0", "group": "0", "isolators": [{"name": "resource/memory", "value": {"limit": "64Mi"}}]}')"
new_pod "[$(ra web null), $(ra client null)]" "[]" false "web=$web" "client=$client"
vmms_before="$(vmm_count)"
run_bg --hostname=rktpod
if poll "$ENGINES_TIMEOUT" test -s "$POD/stage1/rootfs/rkt/status/client"; then
  call cat "$POD/stage1/rootfs/rkt/status/client"
  expect_exact "two apps: the client reached the server on 127.0.0.1" 0 "0"
  call grep -c '^pod-local$' "$TMPD/run.out"
  expect_exact "two apps: the page is in the pod's output" 0 "1"
  call sh -c "kill -0 \$(cat '$POD/pid')"
  expect "two apps: pid file names the live sandbox" 0
  call sh -c "echo \$(( \$(pgrep -x hull-vmm | grep -c .) - $vmms_before ))"
  expect_exact "two apps: the pod is one VM" 0 "1"
  call ls /run/netns
  expect "two apps: the pod's network namespace (default network)" 0 "^hull-rkt-$(basename "$POD")\$"
  call "$stage0" enter "$POD" web sh -c 'cat /tmp/index.html; hostname; uname -v'
  expect "two apps: enter runs in the app" 0 '^pod-local$'
  expect_vm "two apps: enter reaches the VM"
  grep -qx rktpod <<<"$out" && pass "two apps: the app has the pod's hostname" ||
    fail "two apps: the app has the pod's hostname" "$(_context)"
  call "$stage0" enter "$POD" web sh -c 'exit 7'
  expect "two apps: enter exits with the command's status" 7
  call "$stage0" stop "$POD"
  expect "two apps: stop" 0
  rc=0; wait_run || rc=$?
  if kill -0 "$RUN_PID" 2>/dev/null; then fail "two apps: run ends after stop" "still running"; else
    pass "two apps: run ends after stop (status $rc)"; fi
  call cat "$POD/stage1/rootfs/rkt/status/web"
  expect "two apps: the server's status is written" 0 '^[0-9]+$'
else
  fail "two apps: the client's status" "no status file; run: $(tail -c 600 "$TMPD/run.err")"
  kill -9 "$RUN_PID" 2>/dev/null || true
fi
expect_clean "two apps"

# ---- mutable pod: an app added, started, stopped and removed -----------------
sleeper="$(app_aci sleeper '{"exec": ["/bin/sleep", "100000"], "user": "0", "group": "0"}')"
late="$(app_aci late '{"exec": ["/bin/sh", "-c", "echo late-app-ran; exit 5"], "user": "0", "group": "0"}')"
new_pod "[$(ra sleeper null)]" "[]" true "sleeper=$sleeper"
run_bg --net=none --mutable
if poll "$ENGINES_TIMEOUT" pod_ready; then
  call "$stage0" app-add "$POD" late "$late"
  expect "mutable: app add" 0
  call "$stage0" app-start "$POD" late
  expect "mutable: app start" 0
  poll 120 test -s "$POD/stage1/rootfs/rkt/status/late" || true
  call cat "$POD/stage1/rootfs/rkt/status/late"
  expect_exact "mutable: the added app's status" 0 "5"
  call grep -c late-app-ran "$TMPD/run.out"
  expect_exact "mutable: the added app's output is the pod's" 0 "1"
  call "$stage0" app-rm "$POD" late
  expect "mutable: app rm" 0
  call "$stage0" app-stop "$POD" sleeper
  expect "mutable: app stop" 0
  call sh -c "kill -0 \$(cat '$POD/pid')"
  expect "mutable: the pod outlives its apps" 0
  call "$stage0" stop "$POD" --force
  expect "mutable: stop --force" 0
  wait_run || true
  if kill -0 "$RUN_PID" 2>/dev/null; then fail "mutable: run ends after stop --force" "still running"; else
    pass "mutable: run ends after stop --force"; fi
else
  fail "mutable: the pod starts" "$(tail -c 600 "$TMPD/run.err")"
  kill -9 "$RUN_PID" 2>/dev/null || true
fi
expect_clean "mutable"

# ---- a run killed by SIGKILL: gc removes what it left -------------------------
new_pod "[$(ra sleeper null)]" "[]" false "sleeper=$sleeper"
run_bg
if poll "$ENGINES_TIMEOUT" pod_ready; then
  kill -9 "$RUN_PID"
  wait "$RUN_PID" 2>/dev/null || true
  call sh -c "'$RUNTIME' --root /run/hull-rkt list -q | grep -c 'rkt-$(basename "$POD")'"
  expect_exact "SIGKILLed run: its containers are still there" 0 "2"
else
  fail "SIGKILLed run: the pod starts" "$(tail -c 600 "$TMPD/run.err")"
fi
expect_clean "SIGKILLed run"

# ---- bad input -----------------------------------------------------------------
new_pod "[$(ra sleeper null)]" "[]" false "sleeper=$sleeper"
echo '{"acKind": "PodManifest", "apps": [' >"$POD/pod"
call "$stage0" run "$POD" --net=none
expect "bad input: malformed pod manifest fails" 1
grep -q 'malformed pod manifest' <<<"$err" && pass "bad input: malformed pod manifest is named" ||
  fail "bad input: malformed pod manifest is named" "$(_context)"
new_pod "[$(ra sleeper null)]" "[]" false "sleeper=$sleeper"
rm -rf "$POD/stage1/rootfs/opt/stage2/sleeper/rootfs"
call "$stage0" run "$POD" --net=none
expect "bad input: missing app rootfs fails" 1
grep -q 'rootfs .* is missing' <<<"$err" && pass "bad input: missing rootfs is named" ||
  fail "bad input: missing rootfs is named" "$(_context)"
new_pod "[$(ra sleeper null)]" "[]" false "sleeper=$sleeper"
call "$stage0" run "$POD" --net=none --no-such-flag
expect "bad input: unknown flag exits 2" 2
grep -q 'unknown flag --no-such-flag' <<<"$err" && pass "bad input: unknown flag is named" ||
  fail "bad input: unknown flag is named" "$(_context)"
call "$stage0" run "$POD" --net=host
expect "bad input: --net=host fails" 1
grep -q 'net=host is not possible' <<<"$err" && pass "bad input: --net=host is explained" ||
  fail "bad input: --net=host is explained" "$(_context)"
expect_clean "bad input"
