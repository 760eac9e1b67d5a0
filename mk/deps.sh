#!/usr/bin/env bash
# Install every Debian package vbroker needs; a no-op when all are present.
# Called by `make deps`. Must run as root on Debian 12 (or find everything installed).
set -euo pipefail

# libclang-rt-14-dev: clang's libFuzzer and sanitizer runtimes (make fuzz);
# clang only recommends it, and recommends are not installed below.
PACKAGES=(
  build-essential pkg-config clang libclang-rt-14-dev
  libmsgpack-dev libsqlite3-dev sqlite3 libcmocka-dev
  libsasl2-dev sasl2-bin libsasl2-modules libsasl2-modules-gssapi-mit
  krb5-kdc krb5-admin-server krb5-user
  libssh2-1-dev openssh-server openssh-client
  libcurl4-openssl-dev libxml2-dev libssl-dev
  python3 procps openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run 'make deps' as root" >&2
  exit 1
fi

# Package scripts must not start a system sshd on :22 or a KDC with the stock config.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi

export DEBIAN_FRONTEND=noninteractive
# krb5-config would otherwise ask for a default realm.
echo "krb5-config krb5-config/default_realm string LAB.TEST" | debconf-set-selections
echo "krb5-config krb5-config/add_servers_realm string LAB.TEST" | debconf-set-selections
echo "krb5-config krb5-config/kerberos_servers string 127.0.0.1" | debconf-set-selections
echo "krb5-config krb5-config/admin_server string 127.0.0.1" | debconf-set-selections
echo "deps: installing ${missing[*]}"
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
