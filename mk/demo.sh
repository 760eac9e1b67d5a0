#!/usr/bin/env bash
# make demo: the whole chain on loopback, then cleaned up.
#   vbctl → libvbroker → vbrokerd → vbhostd (SASL, tokens) → test driver
#                                          └──────────────→ xenapi driver → XenAPI simulator
# Everything runs from a temp dir; every process started here is stopped by pid.
set -euo pipefail
BUILD=${BUILD:-build}
B=$(cd "$BUILD" && pwd)
SRC=$(pwd)
D=$(mktemp -d /tmp/vbroker-demo.XXXXXX)
chmod 700 "$D"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT

wait_socket() { # path, seconds, log: until something accepts on the unix socket
  local deadline=$((SECONDS + $2))
  until python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "demo: $1 never came up; its log:" >&2; cat "$3" >&2; exit 1; }
  done
}
wait_tcp() { # port, seconds, log
  local deadline=$((SECONDS + $2))
  until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "demo: port $1 never came up; its log:" >&2; cat "$3" >&2; exit 1; }
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# bold headings only on a terminal; commands printed quoted, so a pasted
# line means what it ran (a URI's '&' would otherwise end the command)
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
step() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

step "a SASL user 'demo' (password 'demo-pw') in a private sasldb, a XenAPI user 'root' (password 'xen-pw')"
install -d -m 0700 "$D/sasl" "$D/state"
cat > "$D/sasl/vbhostd.conf" <<CONF
mech_list: digest-md5 scram-sha-256
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $D/sasl/sasldb
CONF
echo demo-pw | SASL_CONF_PATH="$D/sasl" saslpasswd2 -p -f "$D/sasl/sasldb" -a vbhostd -u DEMO -c demo
chmod 600 "$D/sasl/sasldb"
echo "root:xen-pw" > "$D/xen-users"

XPORT=$(free_port)
step "a XenAPI host: the simulator on 127.0.0.1:$XPORT (tests/peers/xenapi_sim.py)"
python3 -I -S "$SRC/tests/peers/xenapi_sim.py" --listen "127.0.0.1:$XPORT" --users "$D/xen-users" \
  > "$D/xen.log" 2>&1 &
PIDS+=($!)
wait_tcp "$XPORT" 10 "$D/xen.log"

step "vbhostd: its unix socket accepts tokens and SASL"
cat > "$D/vbhostd.conf" <<CONF
listen_unix = "$D/vbhostd.sock"
auth_unix = ["token", "sasl"]
sasl_conf_dir = "$D/sasl"
sasl_realm = "DEMO"
state_dir = "$D/state"
allowed_xenapi_hosts = ["127.0.0.1:$XPORT"]
CONF
"$B/vbhostd" -f "$D/vbhostd.conf" --foreground 2>"$D/vbhostd.log" &
PIDS+=($!)
wait_socket "$D/vbhostd.sock" 10 "$D/vbhostd.log"

step "vbrokerd, the per-user broker (no idle host connection kept, so each step logs in anew)"
export VBROKER_SOCKET="$D/run/sock" VBROKER_NO_AUTOSTART=1
"$B/vbrokerd" --socket "$VBROKER_SOCKET" --state-dir "$D/broker-state" --upstream-idle 0 \
  2>"$D/vbrokerd.log" &
PIDS+=($!)
wait_socket "$VBROKER_SOCKET" 10 "$D/vbrokerd.log"

URI="test+unix:///default?socket=$D/vbhostd.sock&auth=sasl.SCRAM-SHA-256"
HOST="test+unix:///default?socket=$D/vbhostd.sock"
step "a first command asks for the login (answers on stdin: demo / demo-pw)"
printf 'demo\ndemo-pw\n' | run "$B/vbctl" -c "$URI" list

step "log in once: a token is kept in the broker's cache"
printf 'demo\ndemo-pw\n' | run "$B/vbctl" login "$HOST"

step "scripts reuse the login: no terminal, no prompt, no password"
for i in 1 2 3; do run "$B/vbctl" -c "$HOST" --non-interactive hostname; done

step "the nested login: vbhostd logs in to the XenAPI host; the question travels up to vbctl (root / xen-pw)"
XEN="xenapi+unix:///?socket=$D/vbhostd.sock&name=xenapi%3A%2F%2Froot%40127.0.0.1%3A$XPORT%2F%3Ftransport%3Dhttp"
printf 'root\nxen-pw\n' | run "$B/vbctl" -c "$XEN" list

step "the second run in the same session asks nothing"
run "$B/vbctl" -c "$XEN" --non-interactive list

step "vbctl status: what the broker holds (never a secret)"
run "$B/vbctl" status

step "log out: revoked on the host, erased here; a script then gets exit 77, no hang"
run "$B/vbctl" logout --all
set +e
"$B/vbctl" -c "$HOST" --non-interactive hostname
echo "exit status: $?"
set -e

step "the example app: one callback fills every item of the form at once"
VB_EXAMPLE_USER=demo VB_EXAMPLE_PASSWORD=demo-pw run "$B/examples/form_example" "$URI"

cat <<MSG

Done. Not in this demo: the SSH transport (it needs an sshd and a test user;
tests/integ/test_ssh.c runs it against a real one) and GSSAPI (a KDC: test_vbhostd.c).
MSG
