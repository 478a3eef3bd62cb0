#!/usr/bin/env bash
# Installs what obsync needs to build and test on Debian 12, and nothing that
# is already there. Run as root. Idempotent.
set -euo pipefail
PKGS=(build-essential cmake pkg-config python3 clang clang-format clang-tidy
      libclang-rt-14-dev libzmq3-dev libczmq-dev libprotobuf-c-dev
      protobuf-c-compiler liblmdb-dev lmdb-utils libcmocka-dev
      libmicrohttpd-dev iso-codes faketime
      python3-zmq python3-protobuf protobuf-compiler systemd)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
