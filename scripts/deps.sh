#!/usr/bin/env bash
# Installs the Debian packages wisp needs to build and to run its unit,
# direct-KVM and fuzz tests. Idempotent: apt is touched only when a
# package is missing. The nested rig installs its own (tests/rig/setup.sh).
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config python3 libcmocka-dev
      libmicrohttpd-dev libjansson-dev zlib1g-dev
      clang clang-format libclang-rt-14-dev acpica-tools liburing-dev
      libseccomp-dev)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	sudo_cmd=()
	[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
		"${missing[@]}"
fi
