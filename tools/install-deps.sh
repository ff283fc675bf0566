#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Installs everything dnsink needs to build, run and test on a fresh Debian 12
# (bookworm): compilers and meson, the libraries, the test tools (cmocka,
# valgrind, clang for fuzzing and sanitizers, clang-format for the format
# check) and the real servers the integration tests drive (knotd, rsyslogd)
# plus kdig/dig/ldns tools, and for DNS over TLS and HTTPS GnuTLS, nghttp2,
# certtool, unbound, dnsdist and h2load; scdoc for the man pages, chromium for
# the dashboard test, debhelper and lintian for the Debian package.
# Idempotent; run as root (or with sudo available). System services that the
# packages may start are stopped again, so nothing stays bound to ports 53 or
# 514 (the tests use their own high loopback ports anyway).
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config
	libuv1-dev libldns-dev libyaml-dev libcmocka-dev libgnutls28-dev libnghttp2-dev
	libidn2-dev libcurl4-openssl-dev
	libvectorscan-dev libpcre2-dev libpsl-dev
	clang clang-format valgrind
	knot knot-dnsutils ldnsutils bind9-dnsutils gnutls-bin unbound nghttp2-client dnsdist
	rsyslog curl python3 python3-yaml iproute2 procps
	# dnsink hunt: compressed logs, Pi-hole's SQLite, dnstap (Frame Streams +
	# protobuf-c); and the servers and tools its tests write and read logs with
	zlib1g-dev libzstd-dev zstd libsqlite3-dev libfstrm-dev libprotobuf-c-dev
	protobuf-c-compiler fstrm-bin dnstap-ldns bind9 knot-module-dnstap
	scdoc man-db chromium
	debhelper dpkg-dev lintian adduser logrotate sudo
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: not root and no sudo: run it as root" >&2
		exit 1
	fi
	SUDO=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages already installed"
else
	echo "install-deps: installing ${missing[*]}"
	# policy-rc.d exit 101 tells invoke-rc.d not to start services while we
	# install; it is removed again afterwards unless it existed before.
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
		"${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" </dev/null
	if [ "$created_policy" -eq 1 ]; then
		"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
	fi
fi

# Should a package have started its daemon anyway (a machine with a running
# init), stop it: the tests start their own knotd, rsyslogd, named, unbound and dnsdist.
for svc in knot rsyslog named unbound dnsdist; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		"${SUDO[@]}" systemctl stop "$svc" || true
	elif command -v service >/dev/null 2>&1; then
		"${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
	fi
done

for tool in meson ninja pkg-config knotd kdig rsyslogd valgrind clang clang-format python3 \
	named protoc-c zstd dnstap-ldns unbound dnsdist certtool h2load \
	scdoc chromium dpkg-buildpackage lintian logrotate; do
	if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
		echo "install-deps: $tool still missing" >&2
		exit 1
	fi
done
echo "install-deps: done"
