#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The Debian package, end to end, as root on this machine (tests/run-all.sh
# stage "package"): builds it from a copy of the tree with
# dpkg-buildpackage -b -us -uc, runs lintian on it and on the source package
# (no error, no warning: an override, in debian/dnsink.lintian-overrides or
# debian/source/lintian-overrides, says why), installs it with dpkg -i,
# checks what it installed (binary, conffiles, rules, unit, user, log
# directory, logrotate, man pages), runs "dnsink check" on the installed
# config, starts the installed binary as the unit would (ExecStartPre, then
# ExecStart as root, which drops to the dnsink user; the unit's runtime
# directory made as systemd would), asks it a blocked name and reads the alert
# in /var/log/dnsink, rotates that file as logrotate would (USR1 reopen),
# talks to it with "dnsink ctl", stops it, purges the package and checks that
# nothing it installed or made is left behind.
#
# There is no systemd on the CI machine, so the unit's sandbox itself is not
# exercised here; "systemd-analyze verify" and "systemd-analyze security
# --offline" check the unit file when systemd-analyze is present.
#
# Each check prints "ok" or "FAIL"; the last line is "N passed, N failed";
# exit 1 when any failed. Needs: tools/install-deps.sh (debhelper, lintian,
# scdoc, dpkg-dev, logrotate, bind9-dnsutils). Environment: KEEP=1 keeps the
# work directory.
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/dnsink-deb.XXXXXX)
pass=0
fail=0
DK_PID=

ok() {
	pass=$((pass + 1))
	echo "ok:   $*"
}
bad() {
	fail=$((fail + 1))
	echo "FAIL: $*"
}
# check DESCRIPTION COMMAND...: runs the command, counts its result.
check() {
	local what=$1
	shift
	if "$@" >"$WORK/last.log" 2>&1; then
		ok "$what"
	else
		bad "$what"
		sed -n 1,40p "$WORK/last.log"
	fi
}

cleanup() {
	if [ -n "$DK_PID" ] && kill -0 "$DK_PID" 2>/dev/null; then
		kill -TERM "$DK_PID" 2>/dev/null
		sleep 1
		kill -KILL "$DK_PID" 2>/dev/null
	fi
	if dpkg-query -W -f='${Status}' dnsink 2>/dev/null | grep -q "installed"; then
		dpkg --purge dnsink >/dev/null 2>&1
	fi
	if [ -z "${KEEP:-}" ]; then
		rm -rf "$WORK"
	else
		echo "kept $WORK"
	fi
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "test_deb: needs root (dpkg -i, the dnsink user)"
	echo "0 passed, 1 failed"
	exit 1
fi

# A package left by an earlier run that died would hide what this one installs.
if dpkg-query -W -f='${Status}' dnsink 2>/dev/null | grep -q "installed"; then
	echo "test_deb: purging a dnsink package left installed"
	dpkg --purge dnsink >/dev/null
fi

# --- build --------------------------------------------------------------------
# From a copy, so that the build leaves nothing in the tree and the .deb lands in
# the work directory (dpkg-buildpackage writes to the parent of the source).
mkdir -p "$WORK/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	# What is committed or staged, and the working copy of those files.
	git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK/src")
else
	tar -C "$ROOT" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$WORK/src" -xf -
fi
version=$(sed -n '1s/^dnsink (\([^)]*\)).*/\1/p' debian/changelog)
meson_version=$(sed -n "s/^  version : '\([^']*\)',/\1/p" meson.build)
check "debian/changelog version $version is meson's $meson_version" test "$version" = "$meson_version"
# The source package too, from the clean copy before the build, so that lintian
# sees debian/ as the archive would.
if (cd "$WORK" && dpkg-source -b src) >"$WORK/source.log" 2>&1; then
	ok "dpkg-source -b (native source package)"
else
	bad "dpkg-source -b"
	tail -n 20 "$WORK/source.log"
fi
dsc="$WORK/dnsink_${version}.dsc"
echo "-- dpkg-buildpackage -b -us -uc (log: $WORK/build.log)"
if (cd "$WORK/src" && dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1; then
	ok "dpkg-buildpackage -b -us -uc"
else
	bad "dpkg-buildpackage -b -us -uc"
	tail -n 60 "$WORK/build.log"
	echo "$pass passed, $fail failed"
	exit 1
fi
arch=$(dpkg --print-architecture)
deb="$WORK/dnsink_${version}_${arch}.deb"
changes="$WORK/dnsink_${version}_${arch}.changes"
check "built $(basename "$deb")" test -f "$deb"


# --- lintian ------------------------------------------------------------------
echo "-- lintian --display-level \">=pedantic\" on the .changes and the .dsc (overrides: debian/dnsink.lintian-overrides; the source package has none)"
lintian --info --display-level ">=pedantic" --show-overrides "$changes" $( [ -f "$dsc" ] && echo "$dsc") \
	>"$WORK/lintian.log" 2>&1
lintian_rc=$?
cat "$WORK/lintian.log"
if [ "$lintian_rc" -eq 0 ] && ! grep -qE '^[EW]: ' "$WORK/lintian.log"; then
	ok "lintian: no error, no warning"
else
	bad "lintian: errors or warnings (exit $lintian_rc)"
fi

# --- install ------------------------------------------------------------------
check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
check "/usr/sbin/dnsink runs" /usr/sbin/dnsink --version
check "dnsink --version is $version" sh -c "/usr/sbin/dnsink --version | grep -qx 'dnsink $version'"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' dnsink)
for f in /etc/dnsink/dnsink.yml /etc/dnsink/rules/mining-pools.yml \
	/etc/dnsink/rules/dynamic-dns.yml /etc/logrotate.d/dnsink; do
	check "conffile $f" grep -q " $f " <<<"$conffiles"
done
check "the dnsink system user" sh -c 'id -u dnsink >/dev/null && [ "$(id -u dnsink)" -lt 1000 ]'
check "the dnsink group" getent group dnsink
check "/var/log/dnsink is root:dnsink 2770" \
	sh -c '[ "$(stat -c %U:%G:%a /var/log/dnsink)" = root:dnsink:2770 ]'
check "/var/log/dnsink/alerts.jsonl is root:dnsink 0660" \
	sh -c '[ "$(stat -c %U:%G:%a /var/log/dnsink/alerts.jsonl)" = root:dnsink:660 ]'
unit=/lib/systemd/system/dnsink.service
check "the unit $unit" test -f "$unit"
check "the unit is conf/dnsink.service with /usr/sbin paths" \
	diff <(grep -v '^#' "$ROOT/conf/dnsink.service" | sed 's|/usr/local/bin/|/usr/sbin/|g') \
	<(grep -v '^#' "$unit")
check "the unit is enabled at boot (wants link)" \
	test -L /etc/systemd/system/multi-user.target.wants/dnsink.service
if command -v systemd-analyze >/dev/null 2>&1; then
	check "systemd-analyze verify" systemd-analyze verify "$unit"
	systemd-analyze security --offline=true "$unit" >"$WORK/security.log" 2>&1
	exposure=$(sed -n 's/.*Overall exposure level for dnsink.service: \([0-9.]*\).*/\1/p' \
		"$WORK/security.log")
	echo "   systemd-analyze security --offline: exposure ${exposure:-?} (0 = most sandboxed, 10 = none)"
	check "sandboxed: exposure ${exposure:-?} below 3.0" \
		awk -v e="${exposure:-10}" 'BEGIN { exit !(e < 3.0) }'
fi
for page in dnsink.8 dnsink.yml.5 dnsink-rules.5; do
	check "man page $page" test -f "/usr/share/man/man${page##*.}/$page.gz"
done
check "man -w dnsink.yml" sh -c 'man -w 5 dnsink.yml | grep -q dnsink.yml.5'
check "logrotate accepts /etc/logrotate.d/dnsink" logrotate -d /etc/logrotate.d/dnsink

# --- check and run as the unit would ------------------------------------------
check "dnsink check -c /etc/dnsink/dnsink.yml" /usr/sbin/dnsink check -c /etc/dnsink/dnsink.yml
exec_start_pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
check "ExecStartPre: $exec_start_pre" $exec_start_pre
# The packaged config listens on port 53 of the loopback addresses, which another
# resolver on a CI machine may hold, and forwards to the nameservers of
# /etc/resolv.conf, which are not on this machine: the smoke run moves the
# listener to a free port (--listen) and the upstream to a loopback port where
# nothing answers (--upstream), so that no query leaves the machine; everything
# else (user, rules, alert file, control socket) comes from the installed config.
# As systemd would run it: User=root, the unit's RuntimeDirectory, UMask 0027, from /.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
dead=$(free_port)
start_daemon() {
	(cd / && umask 0027 && exec $exec_start --listen "127.0.0.1:$port" \
		--upstream "127.0.0.1:$dead") >>"$WORK/daemon.log" 2>&1 </dev/null &
	DK_PID=$!
	up=0
	for _ in $(seq 1 100); do
		if /usr/sbin/dnsink ctl status >/dev/null 2>&1; then
			up=1
			break
		fi
		kill -0 "$DK_PID" 2>/dev/null || break
		sleep 0.1
	done
}
install -d -m 0755 /run/dnsink
start_daemon
check "the installed daemon answers on 127.0.0.1:$port" test "$up" -eq 1
check "it runs as the dnsink user" \
	sh -c "[ \"\$(ps -o user= -p $DK_PID)\" = dnsink ]"
answer=$(dig @127.0.0.1 -p "$port" +time=2 +tries=1 +short x.moneropool.ru A)
check "x.moneropool.ru is sinkholed (got '$answer')" test "$answer" = "0.0.0.0"
sleep 0.3
check "its alert record is in /var/log/dnsink/alerts.jsonl" \
	grep -q '"dns_query":"x.moneropool.ru"' /var/log/dnsink/alerts.jsonl
check "the control socket is root:dnsink 0660" \
	sh -c '[ "$(stat -c %U:%G:%a /run/dnsink/control.sock)" = root:dnsink:660 ]'
check "dnsink ctl status" sh -c '/usr/sbin/dnsink ctl status | grep -q "^rules 2,"'
check "dnsink ctl top counts the match" \
	sh -c '/usr/sbin/dnsink ctl top | grep -qE "^ +1 +x\.moneropool\.ru$"'
# Rotation as logrotate does it: move, create 0660 root:dnsink, USR1. The daemon,
# now the dnsink user, reopens the new file.
mv /var/log/dnsink/alerts.jsonl /var/log/dnsink/alerts.jsonl.1
install -o root -g dnsink -m 0660 /dev/null /var/log/dnsink/alerts.jsonl
kill -USR1 "$DK_PID"
sleep 0.3
# Another entry of the rule: a second name under moneropool.ru would be folded by dedup.
dig @127.0.0.1 -p "$port" +time=2 +tries=1 +short x.asiapool.io A >/dev/null
sleep 0.3
check "after USR1 the record goes to the new file" \
	grep -q '"dns_query":"x.asiapool.io"' /var/log/dnsink/alerts.jsonl
check "and not to the rotated one" \
	sh -c '! grep -q x.asiapool.io /var/log/dnsink/alerts.jsonl.1'
check "dnsink ctl reload" /usr/sbin/dnsink ctl reload
kill -TERM "$DK_PID"
rc=0
wait "$DK_PID" || rc=$?
DK_PID=
check "SIGTERM: exit 0" test "$rc" -eq 0
check "no error in the daemon's log" sh -c "! grep -q ' error: ' '$WORK/daemon.log'"
# Switched to dnsink, the daemon cannot remove its socket from root's /run/dnsink;
# systemd removes the runtime directory at stop. A stale socket left there (a
# daemon killed, a directory kept) is replaced by the next start.
check "a socket file is left for the runtime directory's removal" test -S /run/dnsink/control.sock
start_daemon
check "a second start replaces the stale socket" test "$up" -eq 1
kill -TERM "$DK_PID"
rc=0
wait "$DK_PID" || rc=$?
DK_PID=
check "second stop: exit 0" test "$rc" -eq 0
rm -rf /run/dnsink # as systemd does at stop (RuntimeDirectory=)
echo "   daemon log:"
sed 's/^/   | /' "$WORK/daemon.log" | head -n 20

# --- purge --------------------------------------------------------------------
dpkg-query -L dnsink >"$WORK/files.txt"
check "dpkg --purge dnsink" dpkg --purge dnsink
left=()
while read -r f; do
	# Directories other packages share (/usr, /usr/share/man/man8...) stay.
	if [ -e "$f" ] && ! [ -d "$f" ]; then
		left+=("$f")
	elif [ -d "$f" ] && [[ "$f" == *dnsink* ]]; then
		left+=("$f")
	fi
done <"$WORK/files.txt"
for f in /etc/dnsink /var/log/dnsink /run/dnsink /etc/logrotate.d/dnsink \
	/etc/systemd/system/multi-user.target.wants/dnsink.service \
	/var/lib/systemd/deb-systemd-helper-enabled/dnsink.service; do
	[ -e "$f" ] || [ -L "$f" ] && left+=("$f")
done
if [ "${#left[@]}" -eq 0 ]; then
	ok "nothing left behind by the purge"
else
	bad "left behind by the purge: ${left[*]}"
fi
check "the package is gone" sh -c '! dpkg-query -W -f="\${Status}" dnsink 2>/dev/null | grep -q installed'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
