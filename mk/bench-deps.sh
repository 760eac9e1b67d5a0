#!/usr/bin/env bash
# Debian packages for `make bench-peer` only (libvirt as the comparison peer).
# Idempotent: installs nothing when everything is present. Needs root.
# `make deps` now installs libvirt-dev (the libvirt driver) and `make deps-test`
# libvirt-daemon; this list stays for a bench-peer run on its own.
set -euo pipefail
PKGS=(libvirt-daemon libvirt-clients libvirt-dev sasl2-bin libsasl2-modules libsasl2-dev pkg-config)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-deps: missing ${missing[*]}; run as root (apt-get install)" >&2
  exit 1
fi
# keep package scripts from starting system daemons (libvirtd, virtlogd, ...)
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
echo "bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
