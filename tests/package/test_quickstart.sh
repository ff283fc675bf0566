#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# README's quick start, run as written: its two command lines are read out of
# README.md (the first two ```sh blocks of "## Quick start") and run in a copy
# of the tree, first as root, then as a throw-away user who has sudo (made
# here, removed at the end): the first line installs the packages, builds and
# starts dnsink in the foreground; once it listens, the second line, from the
# same directory, must print the sinkhole address and the alert record of the
# blocked name. The query is answered locally, so nothing leaves the machine
# (the default config would forward other names to /etc/resolv.conf's
# nameservers; none is asked). tests/run-all.sh runs it in its "package" stage.
#
# Each check prints "ok" or "FAIL"; the last line is "N passed, N failed".
# Needs root, and the sudo package (tools/install-deps.sh installs it).
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/dnsink-quickstart.XXXXXX)
chmod 755 "$WORK"
QS_USER=dnsink-qs
pass=0
fail=0
PGID=

ok() {
	pass=$((pass + 1))
	echo "ok:   $*"
}
bad() {
	fail=$((fail + 1))
	echo "FAIL: $*"
}

stop_daemon() {
	if [ -n "$PGID" ]; then
		kill -TERM -- "-$PGID" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 -- "-$PGID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$PGID" 2>/dev/null
		PGID=
	fi
}
cleanup() {
	stop_daemon
	rm -f /etc/sudoers.d/dnsink-qs
	if id "$QS_USER" >/dev/null 2>&1; then
		userdel -r "$QS_USER" >/dev/null 2>&1
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "test_quickstart: needs root (it makes a sudo user)"
	echo "0 passed, 1 failed"
	exit 1
fi

# The two command lines, exactly as README shows them.
mapfile -t cmds < <(python3 - "$ROOT/README.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
sec = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", sec, re.S)
for b in blocks[:2]:
    print(" ".join(ln.strip() for ln in b.strip().splitlines()))
PY
)
if [ "${#cmds[@]}" -ne 2 ]; then
	bad "README's quick start has two command blocks"
	echo "$pass passed, $fail failed"
	exit 1
fi
start_cmd=${cmds[0]}
look_cmd=${cmds[1]}
echo "   command 1: $start_cmd"
echo "   command 2: $look_cmd"
case "$start_cmd" in
sudo\ *) bad "command 1 does not start with sudo (root has none on a fresh Debian)" ;;
*) ok "command 1 does not start with sudo" ;;
esac
if ss -Hlnu 'sport = :5353' 2>/dev/null | grep -q . || ss -Hlnt 'sport = :5353' 2>/dev/null | grep -q .; then
	bad "port 5353 is free for the quick start's default config"
	ss -lnup 'sport = :5353' 2>/dev/null
	echo "$pass passed, $fail failed"
	exit 1
fi

# run_as WHO: the quick start in a fresh copy, as root or as the sudo user.
run_as() {
	local who=$1 dir="$WORK/$1" log="$WORK/$1.log"
	mkdir -p "$dir"
	git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$dir")
	local runner=(bash -c)
	if [ "$who" != root ]; then
		chown -R "$QS_USER:$QS_USER" "$dir"
		runner=(runuser -u "$QS_USER" -- bash -c)
	fi
	echo "-- as $who, in $dir (log: $log)"
	# A process group of its own, so that the build and the daemon stop together.
	setsid "${runner[@]}" "cd '$dir' && $start_cmd" >"$log" 2>&1 </dev/null &
	PGID=$!
	local up=0
	for _ in $(seq 1 3000); do # the build: up to 10 minutes on a busy machine
		if grep -q "listening (udp+tcp)" "$log" 2>/dev/null; then
			up=1
			break
		fi
		kill -0 "$PGID" 2>/dev/null || break
		sleep 0.2
	done
	if [ "$up" -eq 1 ]; then
		ok "as $who: command 1 installs, builds and starts dnsink"
	else
		bad "as $who: command 1 installs, builds and starts dnsink"
		tail -n 30 "$log"
		stop_daemon
		return
	fi
	local out
	out=$("${runner[@]}" "cd '$dir' && $look_cmd" 2>&1)
	echo "$out" | sed 's/^/   | /'
	if grep -qx "0.0.0.0" <<<"$out"; then
		ok "as $who: command 2 shows the sinkhole answer"
	else
		bad "as $who: command 2 shows the sinkhole answer"
	fi
	if grep -q '"rule_id":"DNS.Crypto.MiningPool".*"action":"sinkhole".*"dns_query":"moneropool.ru"' <<<"$out"; then
		ok "as $who: command 2 shows the alert record"
	else
		bad "as $who: command 2 shows the alert record"
	fi
	if grep -q '"rule_id"' "$log"; then
		bad "as $who: alerts stay out of the operational log"
	else
		ok "as $who: alerts stay out of the operational log"
	fi
	stop_daemon
}

run_as root

# A user with sudo, as on a desktop: install-deps.sh goes through sudo itself.
useradd --create-home --shell /bin/bash "$QS_USER"
echo "$QS_USER ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/dnsink-qs
chmod 0440 /etc/sudoers.d/dnsink-qs
if runuser -u "$QS_USER" -- sudo -n true 2>/dev/null; then
	ok "the sudo user may use sudo"
	run_as "$QS_USER"
else
	bad "the sudo user may use sudo (is the sudo package installed?)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
