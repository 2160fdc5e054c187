#!/usr/bin/env bash
# Install the Debian packages sluice builds and tests with, if any is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang liblmdb-dev lmdb-utils libevent-dev libprotobuf-c-dev
      protobuf-c-compiler libsodium-dev libcriterion-dev libinih-dev libjansson-dev libhttp-parser-dev curl python3
      libsystemd-dev prometheus nodejs chromium libwslay-dev libssl-dev python3-websockets openssl
      libnss3-tools)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
