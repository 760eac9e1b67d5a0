#!/usr/bin/env bash
# Install the Debian packages vbroker needs; a no-op when all are present.
#   mk/deps.sh build   what `make` needs (compilers, -dev libraries, cmocka;
#                      libassuan-dev: vbrokerd speaks to a pinentry through it)
#   mk/deps.sh test    what `make check` / `make demo` add: the real peers the
#                      tests start on 127.0.0.1 (sasldb tools, an MIT KDC,
#                      sshd, python3 for the XenAPI simulator and the scripted
#                      pinentry, a private system bus and polkitd, Debian's
#                      pinentry-tty/-curses driven in tmux, pinentry-gtk2
#                      under Xvfb), clang and its sanitizer/fuzzer runtimes
# Must run as root on Debian 12 (or find everything installed).
set -euo pipefail
MODE=${1:-build}

BUILD_PACKAGES=(
  build-essential pkg-config
  libmsgpack-dev libsqlite3-dev libcmocka-dev libsasl2-dev
  libssh2-1-dev libcurl4-openssl-dev libxml2-dev libssl-dev
  libsystemd-dev libassuan-dev libvirt-dev
)
# libsystemd-dev: sd-bus, vbhostd's D-Bus client for polkit (auth_unix = polkit).
# libvirt-dev: the libvirt driver (hvdrivers/vb_libvirt.c) is built on
# libvirt's own client library (virConnectOpenAuth), never a re-implementation.
# libclang-rt-14-dev: clang's libFuzzer and sanitizer runtimes (make fuzz);
# clang only recommends it, and recommends are not installed below.
# libvirt-daemon: /usr/sbin/libvirtd, which tests/integ/test_libvirt.c starts
# unprivileged with the built-in test driver only (no qemu, no libvirt-daemon-system).
# xvfb xauth pinentry-gtk2 xdotool imagemagick: tests/integ/test_pinentry_gtk.c
# runs the broker's pinentry-gtk2 dialog on an Xvfb with its own cookie (xauth),
# types into it with xdotool and takes the screenshot with ImageMagick's
# `import`; no window manager, no fonts beyond what GTK pulls in. Note that
# pinentry-gtk2 becomes the system's `pinentry` alternative (it outranks
# -curses); without a DISPLAY it falls back to curses by itself.
TEST_PACKAGES=(
  clang libclang-rt-14-dev sqlite3
  sasl2-bin libsasl2-modules libsasl2-modules-gssapi-mit
  krb5-kdc krb5-admin-server krb5-user
  openssh-server openssh-client
  python3 procps openssl
  dbus-daemon polkitd
  pinentry-tty pinentry-curses tmux
  xvfb xauth pinentry-gtk2 xdotool imagemagick
  libvirt-daemon
)

case "$MODE" in
  build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  test)  PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
POLICY=/usr/sbin/policy-rc.d
# an earlier deps.sh left this exact guard behind: it is ours to remove
LEFTOVER=0
if [ -f "$POLICY" ] && [ "$(cat "$POLICY")" = "$(printf '#!/bin/sh\nexit 101')" ]; then
  LEFTOVER=1
fi
if [ ${#missing[@]} -eq 0 ]; then
  [ "$LEFTOVER" = 1 ] && [ "$(id -u)" -eq 0 ] && rm -f "$POLICY"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run 'make deps' (or 'make check') as root" >&2
  exit 1
fi

# Package scripts must not start a system sshd on :22 or a KDC with the stock
# config while we install; the tests start their own on 127.0.0.1. The guard
# is ours only for the length of the install: it is removed afterwards, so
# later package installs start their services as usual.
OUR_POLICY=$LEFTOVER
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# vbroker mk/deps.sh: no service starts during its install\nexit 101\n' > "$POLICY"
  chmod 755 "$POLICY"
  OUR_POLICY=1
fi
remove_policy() { [ "$OUR_POLICY" = 1 ] && rm -f "$POLICY"; true; }
trap remove_policy EXIT

export DEBIAN_FRONTEND=noninteractive
# krb5-config (pulled in by the KDC and kinit the tests use) asks for a
# default realm; with the noninteractive frontend it asks nothing and keeps
# Debian's own guess. We preseed no realm: the system's Kerberos default is
# not ours to set, and the tests never read /etc/krb5.conf (every Kerberos
# tool and library they run gets the KRB5_CONFIG tests/support writes).
echo "deps: installing ${missing[*]}"
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
