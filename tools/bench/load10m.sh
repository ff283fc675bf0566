#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Ten million names (issue 18): how much memory a big list costs dnsink, how soon
# it answers after start, and what a reload (SIGHUP) of it costs.
#
# The list comes from gen.py --size N (random labels, realistic TLD spread) and is
# cached under --cache (default /var/tmp/dnsink-bench), so it is made once per size.
# dnsink is started on a loopback port with a one-rule config whose domain_files is
# that list; probe.py times from just before the process is created to the first
# NXDOMAIN for the LAST name of the list (so the whole list has been read). Then:
#
#   rss_mib          VmRSS of the daemon once ready
#   bytes_per_entry  (VmRSS with the list - VmRSS with a one-line list) / names
#   set_bytes_per_entry  dk_suffixset_bytes() / names, from the daemon's log
#   reload_s         SIGHUP to the "reloaded" log line (the new set is in force)
#   reload_peak_mib  VmHWM after the reload (the peak of the whole run: start and reload)
#   load_peak_mib    VmHWM before the reload (the peak of start-up alone)
#
# One JSON line per run goes to --out DIR/results.jsonl (the interface run.sh's
# table reads); a human summary goes to stdout. Needs only python3 and the binary;
# root only for writing the cache under /var/tmp when it is not writable otherwise.
# Every process started is stopped by its PID; every wait is bounded.
#
# usage: tools/bench/load10m.sh [--dnsink BIN] [--size N] [--out DIR] [--cache DIR]
#                               [--rounds R] [--timeout S]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DNSINK=$ROOT/build/src/dnsink
SIZE=10000000
OUT=""
CACHE=/var/tmp/dnsink-bench
ROUNDS=1
TIMEOUT=120

while [ $# -gt 0 ]; do
	case "$1" in
	--dnsink) DNSINK=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--cache) CACHE=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	-h|--help) sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "load10m.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -x "$DNSINK" ] || { echo "load10m.sh: no dnsink binary at $DNSINK (--dnsink)" >&2; exit 2; }
[ -z "$OUT" ] && OUT=$HERE/out/load10m-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" "$CACHE"

LIST=$CACHE/list-$SIZE.txt
if [ ! -s "$LIST" ]; then
	echo "generating $SIZE names into $LIST (once; about 9 s per million)" >&2
	tmp=$(mktemp -d "$CACHE/gen-XXXXXX")
	python3 "$HERE/gen.py" --out "$tmp" --size "$SIZE" --queries 1 --lat-queries 1 \
		--lat-repeat 1 --rules "$ROOT/rules" >&2
	mv "$tmp/list.txt" "$LIST"
	rm -rf "$tmp"
fi
NAMES=$(wc -l <"$LIST")
LAST=$(tail -n 1 "$LIST")

W=$(mktemp -d /tmp/dnsink-load10m-XXXXXX)
PID=""
stop() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$PID" 2>/dev/null && kill -KILL "$PID"
	fi
	PID=""
}
trap 'stop; rm -rf "$W"' EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# config DIR LISTFILE: a one-rule config (silent NXDOMAIN, as an ad-block list), no cache
# so that nothing but the list differs between the big and the tiny run.
config() {
	mkdir -p "$1/rules"
	ln -sf "$2" "$1/rules/list.txt"
	cat >"$1/rules/bench.yml" <<EOF
id: Bench.BlockList
name: Benchmark block list
severity: low
action: nxdomain
alert: false
domain_files:
  - list.txt
EOF
	cat >"$1/dnsink.yml" <<EOF
listen:
  - 127.0.0.1:$3
upstreams:
  - 127.0.0.1:9
allow_clients:
  - 127.0.0.0/8
rules:
  - $1/rules/
cache:
  size_mb: 0
EOF
}

status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# start DIR NAME PORT: starts dnsink (PID in $PID), waits for NXDOMAIN for NAME; the
# ready time goes to $READY.
start() {
	python3 "$HERE/probe.py" launch --port "$3" --name "$2" --expect NXDOMAIN \
		--timeout "$TIMEOUT" --pidfile "$1/pid" --log "$1/dnsink.log" -- \
		"$DNSINK" -c "$1/dnsink.yml" --workers 1 >"$1/ready" || {
		cat "$1/dnsink.log" >&2
		exit 1
	}
	PID=$(cat "$1/pid")
	READY=$(cat "$1/ready")
}

# The baseline: the same daemon with a one-line list.
mkdir -p "$W/tiny"
echo "$LAST" >"$W/tiny/list.txt"
port=$(free_port)
config "$W/tiny" "$W/tiny/list.txt" "$port"
start "$W/tiny" "$LAST" "$port"
sleep 0.5
RSS_TINY=$(status_kib "$PID" VmRSS)
stop

for round in $(seq "$ROUNDS"); do
	d=$W/big-$round
	port=$(free_port)
	config "$d" "$LIST" "$port"
	start "$d" "$LAST" "$port"
	ready=$READY
	sleep 0.5
	rss=$(status_kib "$PID" VmRSS)
	hwm_load=$(status_kib "$PID" VmHWM)
	set_bytes=$(sed -n 's/.*names, \([0-9]*\) set bytes.*/\1/p' "$d/dnsink.log" | tail -n 1)

	# Reload: SIGHUP, then wait (bounded) for the log line that says the new set is in force.
	before=$(grep -c "reloaded" "$d/dnsink.log" || true)
	t0=$(date +%s.%N)
	kill -HUP "$PID"
	reload=""
	for _ in $(seq $((TIMEOUT * 50))); do
		now=$(grep -c "reloaded" "$d/dnsink.log" || true)
		if [ "$now" -gt "$before" ]; then
			reload=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
			break
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.02
	done
	python3 "$HERE/probe.py" query --port "$port" --name "$LAST" --expect NXDOMAIN --timeout 10
	hwm=$(status_kib "$PID" VmHWM)
	rss_after=$(status_kib "$PID" VmRSS)
	stop

	python3 - "$OUT/results.jsonl" <<PY
import json, sys
names = $NAMES
rec = {
    "server": "dnsink", "path": "load-10m", "names": names, "round": $round,
    "ready_s": float("$ready"),
    "rss_mib": round($rss / 1024, 1),
    "bytes_per_entry": round(($rss - $RSS_TINY) * 1024 / names, 1),
    "set_bytes_per_entry": round(int("${set_bytes:-0}") / names, 1) if "$set_bytes" else None,
    "reload_s": round(float("$reload"), 3) if "$reload" else None,
    "reload_peak_mib": round($hwm / 1024, 1),
    "load_peak_mib": round($hwm_load / 1024, 1),
    "rss_after_reload_mib": round($rss_after / 1024, 1),
    "rss_tiny_mib": round($RSS_TINY / 1024, 1),
}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(rec) + "\n")
print(json.dumps(rec))
PY
done
echo "results: $OUT/results.jsonl" >&2
