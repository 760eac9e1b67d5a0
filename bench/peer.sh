#!/usr/bin/env bash
# make bench-peer: libvirt 9.0 (Debian) and vbroker side by side on 127.0.0.1.
#
# Starts two libvirtd as the unprivileged user vbbench (created once with
# useradd -r; never removed), each with its own config, SASL config
# (SASL_CONF_PATH), sasldb and an empty LIBVIRT_DRIVER_DIR (the test driver is
# built in; nothing else loads):
#   libvirtd #1  TCP and unix, auth "sasl" (DIGEST-MD5: libvirt needs SSF >= 56
#                on plain TCP, so SCRAM is out)
#   libvirtd #2  TCP and unix, auth "none"; also the idle-client figure (its
#                pid goes to bench_e2e, which reads its RSS)
#   libvirtd #3  TLS (x509 from a throwaway CA made here, client certificate
#                sent and verified) and unix, auth_tls "sasl" with SCRAM-SHA-256:
#                the TLS rows (issue 16)
# then runs bench_e2e with BENCH_PEER=bench_libvirt, which alternates libvirt
# and vbroker rounds and prints the ratio vbroker/libvirt. Every process
# started here is stopped by pid; the temp dir is removed.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
B=$(cd "$BUILD" && pwd)
mkdir -p bench/results
PEER=${BENCH_PEER:-$B/bench/peer/bench_libvirt}
BUSER=vbbench
LIBVIRTD=/usr/sbin/libvirtd
PW=bench-Pw-7
IDLE=${BENCH_IDLE_CLIENTS:-1000}
# libvirtd's defaults are max_clients 5000 and max_anonymous_clients 20 (not
# yet authenticated at once): the idle figure holds IDLE + 1 clients on #2,
# and 256 concurrent SASL logins are all anonymous at once on #1
MAXCLIENTS=$(( IDLE + 100 > 5000 ? IDLE + 100 : 5000 ))

[ -x "$LIBVIRTD" ] || { echo "bench-peer: $LIBVIRTD missing (mk/bench-deps.sh installs it)" >&2; exit 1; }
[ -x "$PEER" ] || { echo "bench-peer: $PEER not built" >&2; exit 1; }
[ -x "$B/bench/bench_e2e" ] || { echo "bench-peer: $B/bench/bench_e2e not built" >&2; exit 1; }
if ! id "$BUSER" >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "bench-peer: need root to create user $BUSER" >&2; exit 1; }
  useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$BUSER"
fi

D=$(mktemp -d /tmp/vbbench-peer.XXXXXX)
chmod 755 "$D"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "bench-peer: kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { # port seconds log
  local deadline=$((SECONDS + $2))
  until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "bench-peer: libvirtd on :$1 never came up; its log:" >&2; cat "$3" >&2; exit 1; fi
    sleep 0.05
  done
}

wait_sock() { # path seconds log
  local deadline=$((SECONDS + $2))
  until [ -S "$1" ]; do
    if [ $SECONDS -ge $deadline ]; then echo "bench-peer: $1 never appeared; libvirtd's log:" >&2; cat "$3" >&2; exit 1; fi
    sleep 0.05
  done
}

mkdir -p "$D/sasl" "$D/sasl-scram" "$D/empty-drivers" "$D/home"
cat > "$D/sasl/libvirt.conf" <<CONF
mech_list: digest-md5
sasldb_path: $D/sasl/sasldb
CONF
cat > "$D/sasl-scram/libvirt.conf" <<CONF
mech_list: scram-sha-256
sasldb_path: $D/sasl/sasldb
CONF

# make_pki DIR: a throwaway CA, a server certificate for 127.0.0.1 and
# localhost, a client certificate (libvirt's file names: cacert.pem,
# servercert.pem, serverkey.pem, clientcert.pem, clientkey.pem). ECDSA P-256
# for both daemons, so the handshakes cost the same kind of signatures.
make_pki() {
  local d=$1 who ext
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/O=vbroker bench/CN=bench CA" -keyout "$d/cakey.pem" -out "$d/cacert.pem" 2>/dev/null
  for who in server client; do
    if [ "$who" = server ]; then
      ext=$'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
    else
      ext='extendedKeyUsage=clientAuth'
    fi
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=vbroker bench/CN=bench $who" \
      -keyout "$d/${who}key.pem" -out "$d/$who.csr" 2>/dev/null
    printf '%s\n' "$ext" > "$d/$who.ext"
    openssl x509 -req -in "$d/$who.csr" -CA "$d/cacert.pem" -CAkey "$d/cakey.pem" -CAcreateserial \
      -days 2 -extfile "$d/$who.ext" -out "$d/${who}cert.pem" 2>/dev/null
  done
  chmod 600 "$d"/*key.pem
}
make_pki "$D/pki"
# realm: saslpasswd2's default (this host's name) is what libvirtd's
# sasl_server_new(user_realm NULL) uses too
echo "$PW" | saslpasswd2 -p -f "$D/sasl/sasldb" -a libvirt -c alice
chmod 600 "$D/sasl/sasldb"

start_libvirtd() { # name auth port [tls]
  local n=$1 auth=$2 port=$3 tls=${4:-} sasl="$D/sasl"
  mkdir -p "$D/$n/run" "$D/$n/xdg" "$D/$n/config" "$D/$n/cache"
  if [ -n "$tls" ]; then
    sasl="$D/sasl-scram"
    cat > "$D/$n/listen.conf" <<CONF
listen_tls = 1
listen_tcp = 0
tls_port = "$port"
auth_tls = "$auth"
key_file = "$D/pki/serverkey.pem"
cert_file = "$D/pki/servercert.pem"
ca_file = "$D/pki/cacert.pem"
CONF
  else
    cat > "$D/$n/listen.conf" <<CONF
listen_tls = 0
listen_tcp = 1
tcp_port = "$port"
auth_tcp = "$auth"
CONF
  fi
  cat "$D/$n/listen.conf" - > "$D/$n/libvirtd.conf" <<CONF
listen_addr = "127.0.0.1"
auth_unix_rw = "$auth"
unix_sock_dir = "$D/$n/run"
max_anonymous_clients = 300
max_clients = $MAXCLIENTS
max_workers = 20
log_level = 3
log_outputs = "3:stderr"
CONF
  chmod 700 "$D/$n/xdg"
  chown -R "$BUSER:" "$D/$n" "$D/sasl" "$D/sasl-scram" "$D/pki" "$D/home"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$D/home" XDG_RUNTIME_DIR="$D/$n/xdg" \
    XDG_CONFIG_HOME="$D/$n/config" XDG_CACHE_HOME="$D/$n/cache" \
    SASL_CONF_PATH="$sasl" LIBVIRT_DRIVER_DIR="$D/empty-drivers" \
    setpriv --reuid="$BUSER" --regid="$BUSER" --clear-groups \
    "$LIBVIRTD" -l -f "$D/$n/libvirtd.conf" -p "$D/$n/pid" >"$D/$n.log" 2>&1 &
  PIDS+=($!)
  wait_tcp "$port" 20 "$D/$n.log"
  wait_sock "$D/$n/run/libvirt-sock" 20 "$D/$n.log"
}

# 1000 idle clients need more descriptors than a default 1024 (the limit is
# inherited through setpriv)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

P1=$(free_port)
start_libvirtd sasl sasl "$P1"
P2=$(free_port)
start_libvirtd none none "$P2"
NONE_PID=${PIDS[1]} # env and setpriv exec: the pid of `&` is libvirtd's
P3=$(free_port)
start_libvirtd tls sasl "$P3" tls
TLS_URI="test+tls://127.0.0.1:$P3/default?pkipath=$D/pki"
# BENCH_ONLY=tls: only the TLS rows, into bench/results/tls.json
OUT=latest
[ "${BENCH_ONLY:-}" = tls ] && OUT=tls

echo "== libvirt $($LIBVIRTD --version | awk '{print $NF}') (pids ${PIDS[*]}, user $BUSER) vs vbroker =="
echo "libvirt URIs: test+tcp://127.0.0.1:$P1/default (DIGEST-MD5), test+tcp://127.0.0.1:$P2/default (no auth), and their unix sockets; $TLS_URI (TLS, SCRAM-SHA-256)"
BENCH_TLS_PKI="$D/pki" BENCH_PEER_URI_TLS="$TLS_URI" \
BENCH_PEER="$PEER" BENCH_PEER_URI="test+tcp://127.0.0.1:$P1/default" \
BENCH_PEER_URI_NONE="test+tcp://127.0.0.1:$P2/default" \
BENCH_PEER_URI_UNIX="test+unix:///default?socket=$D/sasl/run/libvirt-sock" \
BENCH_PEER_URI_NONE_UNIX="test+unix:///default?socket=$D/none/run/libvirt-sock" \
BENCH_PEER_IDLE_PID="$NONE_PID" \
BENCH_PEER_USER=alice BENCH_PEER_PASSWORD="$PW" \
  "$B/bench/bench_e2e" --json "bench/results/$OUT.json" --svg "bench/results/$OUT.svg"
[ "$OUT" = tls ] && exit 0

# Scripts against libvirtd #1 (issue 19): SCRIPT_RUNS runs of `list` through
# the broker's libvirt driver (vbctl --non-interactive on the live shared
# connection, after one login) against as many `virsh -c URI list` runs that
# log in from a libvirt auth.conf each time; total wall time, and virsh's own
# start-up (test:///default: no network, no login) for scale.
RUNS=${SCRIPT_RUNS:-100}
URI="test+tcp://127.0.0.1:$P1/default"
mkdir -p -m 700 "$D/vb-run" "$D/vb-state" "$D/vconf/libvirt"
printf '[credentials-a]\nauthname=alice\npassword=%s\n\n[auth-libvirt-127.0.0.1]\ncredentials=a\n' "$PW" \
  > "$D/vconf/libvirt/auth.conf"
chmod 600 "$D/vconf/libvirt/auth.conf"
"$B/vbrokerd" --socket "$D/vb-run/sock" --state-dir "$D/vb-state" >"$D/vbrokerd.log" 2>&1 &
PIDS+=($!)
wait_sock "$D/vb-run/sock" 20 "$D/vbrokerd.log"
export VBROKER_SOCKET="$D/vb-run/sock" VBROKER_NO_AUTOSTART=1
printf 'alice\n%s\n' "$PW" | "$B/vbctl" -c "libvirt:$URI" list >/dev/null 2>&1
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t=$(date +%s%N)
for _ in $(seq "$RUNS"); do "$B/vbctl" --non-interactive -c "libvirt:$URI" list >/dev/null; done
VB_MS=$(ms "$t")
t=$(date +%s%N)
for _ in $(seq "$RUNS"); do XDG_CONFIG_HOME="$D/vconf" virsh -c "$URI" list >/dev/null; done
VIRSH_MS=$(ms "$t")
t=$(date +%s%N)
for _ in $(seq "$RUNS"); do virsh -c test:///default list >/dev/null; done
START_MS=$(ms "$t")
echo "== $RUNS script runs of list against libvirtd (DIGEST-MD5) =="
echo "vbctl --non-interactive -c libvirt:URI list (broker, shared connection): $VB_MS ms"
echo "virsh -c URI list (auth.conf, a login each run):                        $VIRSH_MS ms"
echo "virsh -c test:///default list (virsh start-up alone, for scale):         $START_MS ms"
