#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The alerting benchmark (issue 18): what an alerted query costs, split by thread. dnsink
# (release, --workers 1, on CPU 0) answers blocked names from a list of --list-size
# synthetic names (tools/bench/gen.py), each query a list entry of its own, so with
# dedup on (dedup_minutes 60, threshold 1, as the shipped rules) every query is a new dedup
# key and a record of its own: the worst case. Rows:
#   dnsink        the rule with alert: false (the silent path)
#   dnsink-alert  alert: true, records to a JSON-lines file and to an rsyslogd of our own
#                 (RFC 5424 over a unix datagram socket, or UDP on loopback with an 8 MiB
#                 receive buffer: --collector)
# each at full speed (dnsperf reads the query file once, at most --duration s) and at a
# fixed --rate (default 60000 qps). Every run gets a fresh dnsink, so the dedup table
# starts empty. Per run it reports
#   cpu_us_q         whole-process CPU (utime+stime, /proc/PID/stat) per answered query
#   worker_cpu_us_q  the worker thread's CPU (comm dnsink-w0; /proc/PID/task/TID/schedstat,
#                    ns) per answered query
#   main_cpu_us_rec  the main (alerter) thread's CPU per record emitted, measured until the
#                    alerter is drained (for the silent path: per query, all but idle)
#   records_expected dnsink's events (dnsink_alert_events_total + lost_ring) minus those
#                    dedup folded (state="deduplicated")
#   records_file, records_collector  lines in the file sink, lines rsyslogd wrote
#   lost             records_expected minus the smaller of the two
# plus dnsink's own loss counters (lost_ring, lost_sink). rsyslogd and dnsperf run on
# CPU 1. With --ab A,B two binaries are measured, alternated over --rounds (ABBA), rows
# dnsink-A/dnsink-B and dnsink-A-alert/dnsink-B-alert. Loopback only; as root; every run
# bounded; what it starts it stops by PID.
#
# usage: tools/bench/alert.sh [--dnsink PATH | --ab PATH_A,PATH_B [--rounds N]]
#                             [--list-size N] [--duration S] [--rate QPS]
#                             [--collector unix|udp] [--only full,fixed] [--out DIR]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DNSINK=""
AB=""
ROUNDS=2
SIZE=1000000
DURATION=5
RATE=60000
COLLECTOR=unix
MODES="full fixed"
OUT=""
LIMIT=900
SRV_CPU=0
GEN_CPU=1
CLIENTS=4
OUTSTANDING=200

usage() { sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case "$1" in
	--dnsink) DNSINK=$2; shift ;;
	--ab) AB=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--list-size) SIZE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--collector) COLLECTOR=$2; shift ;;
	--only) MODES=${2//,/ }; shift ;;
	--out) OUT=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "alert.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
case "$COLLECTOR" in unix|udp) ;; *) echo "alert.sh: --collector unix or udp" >&2; exit 2 ;; esac
for m in $MODES; do
	case "$m" in full|fixed) ;; *) echo "alert.sh: --only full,fixed" >&2; exit 2 ;; esac
done

log() { printf '[alert-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (rsyslogd, taskset, ports)"
PATH=$PATH:/usr/sbin:/sbin
for t in dnsperf rsyslogd taskset python3 ss; do
	command -v "$t" >/dev/null || die "$t is required (apt-get install dnsperf rsyslog util-linux iproute2)"
done

# Binaries: rows and the binary each runs.
declare -A BIN=()
ROWS=()
if [ -n "$AB" ]; then
	BIN[dnsink-A]=${AB%%,*}
	BIN[dnsink-B]=${AB#*,}
	ROWS=(dnsink-A dnsink-B)
else
	if [ -z "$DNSINK" ]; then
		dir=$ROOT/build-benchrun
		log "building dnsink (release) in $dir"
		[ -f "$dir/build.ninja" ] || timeout 300 meson setup "$dir" "$ROOT" --buildtype=release >/dev/null
		timeout 600 ninja -C "$dir" src/dnsink >/dev/null
		DNSINK=$dir/src/dnsink
	fi
	BIN[dnsink]=$DNSINK
	ROWS=(dnsink)
	ROUNDS=1
fi
for r in "${ROWS[@]}"; do
	[ -x "${BIN[$r]}" ] || die "$r: not executable: ${BIN[$r]}"
	BIN[$r]=$(cd "$(dirname "${BIN[$r]}")" && pwd)/$(basename "${BIN[$r]}")
done

OUT=${OUT:-$ROOT/tools/bench/out/alert-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
WORK=$(mktemp -d /tmp/dnsink-alert-bench.XXXXXX)

# ---- process bookkeeping ----------------------------------------------------------------------
PIDS=()
WATCHDOG=""
. "$HERE/pids.sh"
cleanup() {
	local i
	set +e
	for (( i=${#PIDS[@]}-1; i>=0; i-- )); do stop_pid "${PIDS[$i]}"; done
	if [ -n "$WATCHDOG" ]; then
		pkill -TERM -P "$WATCHDOG" 2>/dev/null
		kill -TERM "$WATCHDOG" 2>/dev/null
		wait "$WATCHDOG" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "stopped (time limit or SIGTERM)"; exit 143' TERM
NRUNS=$(( ROUNDS * ${#ROWS[@]} * 2 * $(wc -w <<< "$MODES") ))
LIMIT=$(( 120 + NRUNS * (DURATION + 25) ))
( exec 3>&2 2>/dev/null; sleep "$LIMIT" && { echo "[alert-bench] time limit of $LIMIT s" >&3; kill -TERM $$; } ) &
WATCHDOG=$!

port_free() { ! ss -Hlnut "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
	local p=$1 i
	for i in $(seq 200); do
		port_free "$p" && [ "$p" != "${2:-}" ] && [ "$p" != "${3:-}" ] && { echo "$p"; return 0; }
		p=$(( 20000 + RANDOM % 30000 ))
	done
	return 1
}
SRV_PORT=$(free_port 25453) || die "no free port"
METRICS_PORT=$(free_port 25480 "$SRV_PORT") || die "no free port"
SYSLOG_PORT=$(free_port 25514 "$SRV_PORT" "$METRICS_PORT") || die "no free port"

# ---- data: gen.py's list and its blocked file, every line a list entry of its own ---------------
log "work dir $WORK, output $OUT; generating $SIZE names"
# --queries SIZE: the blocked file samples that many distinct list names (half of them with a
# fresh label in front: the suffix walk), so no two lines share a matched entry.
python3 "$HERE/gen.py" --out "$WORK" --size "$SIZE" --queries "$SIZE" --miss-queries 1 \
	--lat-queries 1 --lat-repeat 0 --hot 1 --rules "$ROOT/rules"
LIST=$WORK/list.txt
QFILE=$WORK/q-blocked.txt
PROBE_NAME=$(tail -n 1 "$LIST")
NQ=$(wc -l < "$QFILE")
(( RATE * DURATION <= NQ )) || log "warning: $RATE qps x $DURATION s is more than the $NQ lines: the fixed-rate run ends early"

# ---- the collector: an rsyslogd of our own on CPU 1 -----------------------------------------------
SYSLOG_SOCK=$WORK/syslog.sock
SYSLOG_OUT=$WORK/syslog.out
if [ "$COLLECTOR" = unix ]; then
	input="module(load=\"imuxsock\" SysSock.Use=\"off\")
input(type=\"imuxsock\" Socket=\"$SYSLOG_SOCK\" CreatePath=\"on\")"
	SERVER_URL=unix://$SYSLOG_SOCK
else
	input="module(load=\"imudp\")
input(type=\"imudp\" address=\"127.0.0.1\" port=\"$SYSLOG_PORT\" rcvbufSize=\"8m\")"
	SERVER_URL=udp://127.0.0.1:$SYSLOG_PORT
	# A collector taking bursts needs the room: at the default receive buffer (about
	# 200 KiB, some 170 records) rsyslogd drops what comes while it writes, and UDP
	# tells the sender nothing.
fi
cat > "$WORK/rsyslog.conf" <<EOF
global(workDirectory="$WORK")
$input
*.* action(type="omfile" file="$SYSLOG_OUT")
EOF
taskset -c $GEN_CPU rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" \
	> "$OUT/rsyslogd.log" 2>&1 &
RSYSLOG_PID=$!
PIDS+=("$RSYSLOG_PID")
for i in $(seq 100); do
	if [ "$COLLECTOR" = unix ]; then [ -S "$SYSLOG_SOCK" ] && break
	else ss -Hlnu "sport = :$SYSLOG_PORT" | grep -q . && break; fi
	sleep 0.05
done
alive "$RSYSLOG_PID" || die "rsyslogd did not start (see $OUT/rsyslogd.log)"
log "rsyslogd pid $RSYSLOG_PID on $SERVER_URL"

# ---- one run -----------------------------------------------------------------------------------
# CPU of task $2 of process $1 in ns (schedstat: time on the CPU), or of the whole process in
# ns from utime+stime when $2 is empty.
CLK_TCK=$(getconf CLK_TCK)
task_ns() { awk '{ print $1 }' "/proc/$1/task/$2/schedstat"; }
proc_ns() {
	local s
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $(( (${12} + ${13}) * 1000000000 / CLK_TCK ))
}
# The TID of the thread of process $1 named $2.
tid_named() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && { basename "$t"; return 0; }
	done
	return 1
}
# "events deduplicated lost_ring lost_sink emitted" from the metrics endpoint.
alert_counts() {
	python3 - "$METRICS_PORT" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2).read().decode()
v = {}
for line in text.splitlines():
    if line.startswith("dnsink_alert"):
        k, val = line.rsplit(" ", 1)
        v[k] = int(float(val))
g = lambda k: v.get(k, 0)
print(g("dnsink_alert_events_total"), g('dnsink_alerts_total{state="deduplicated"}'),
      g('dnsink_alerts_total{state="lost_ring"}'), g('dnsink_alerts_total{state="lost_sink"}'),
      g('dnsink_alerts_total{state="emitted"}'))
PY
}
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# run ROW ALERT(true|false) MODE(full|fixed) ROUND
run_one() {
	local row=$1 alert=$2 mode=$3 round=$4 dir name pid wtid load perf rate_arg rate_json
	name=$row; [ "$alert" = true ] && name=$row-alert
	dir=$WORK/$name-$mode-$round
	mkdir -p "$dir/rules"
	ln -sf "$LIST" "$dir/rules/list.txt"
	cat > "$dir/rules/bench.yml" <<EOF
id: Bench.BlockList
name: Benchmark block list
severity: low
action: nxdomain
alert: $alert
dedup_minutes: 60
threshold: 1
domain_files:
  - list.txt
EOF
	# dedup_max is the default (65,536 keys): past that each new key evicts the oldest, as it
	# would for an operator's dnsink under a flood of new names.
	cat > "$dir/dnsink.yml" <<EOF
listen:
  - 127.0.0.1:$SRV_PORT
upstreams:
  - 127.0.0.1:9
allow_clients:
  - 127.0.0.0/8
rules:
  - $dir/rules/
alerts:
  syslog:
    ident: dnsink-bench
    facility: daemon
    server: $SERVER_URL
  file: $dir/alerts.jsonl
metrics:
  listen: 127.0.0.1:$METRICS_PORT
EOF
	if ! load=$(python3 "$HERE/probe.py" launch --port "$SRV_PORT" --name "$PROBE_NAME" \
		--expect NXDOMAIN --timeout 120 --pidfile "$dir/pid" --log "$OUT/$name-$mode-$round.log" \
		-- taskset -c $SRV_CPU "${BIN[$row]}" -c "$dir/dnsink.yml" --workers 1); then
		[ -s "$dir/pid" ] && stop_pid "$(cat "$dir/pid")"
		die "$name did not start (see $OUT/$name-$mode-$round.log)"
	fi
	pid=$(cat "$dir/pid")
	PIDS+=("$pid")
	wtid=$(tid_named "$pid" dnsink-w0) || die "$name: no thread named dnsink-w0"
	# Let the probe's record go out before the counters are taken.
	sleep 0.3
	local c0 s0 w0 m0 p0 c1 w1 p1 p1m m1 f0 i
	read -r -a c0 < <(alert_counts)
	s0=$(lines "$SYSLOG_OUT"); f0=$(lines "$dir/alerts.jsonl")
	w0=$(task_ns "$pid" "$wtid"); m0=$(task_ns "$pid" "$pid"); p0=$(proc_ns "$pid")
	perf=$OUT/$name-$mode-$round.perf
	if [ "$mode" = full ]; then rate_arg=(); rate_json='"full"'
	else rate_arg=(-Q "$RATE"); rate_json=$RATE; fi
	taskset -c $GEN_CPU timeout $(( DURATION + 20 )) dnsperf -s 127.0.0.1 -p "$SRV_PORT" \
		-d "$QFILE" -n 1 -l "$DURATION" -c $CLIENTS -q $OUTSTANDING -t 2 "${rate_arg[@]}" \
		> "$perf" 2>&1 || log "$name/$mode: dnsperf failed (see $perf)"
	w1=$(task_ns "$pid" "$wtid"); p1=$(proc_ns "$pid")
	# The alerter drains in batches and the collector lags: wait (bounded) until the
	# counters and both outputs stop moving.
	local prev="" cur
	for i in $(seq 50); do
		sleep 0.2
		cur="$(alert_counts) $(lines "$dir/alerts.jsonl") $(lines "$SYSLOG_OUT")"
		[ "$cur" = "$prev" ] && break
		prev=$cur
	done
	m1=$(task_ns "$pid" "$pid"); p1m=$(proc_ns "$pid")
	read -r -a c1 < <(alert_counts)
	local rf rc
	rf=$(( $(lines "$dir/alerts.jsonl") - f0 ))
	rc=$(( $(lines "$SYSLOG_OUT") - s0 ))
	stop_pid "$pid"
	forget_pid "$pid"
	python3 - "$RESULTS" "$perf" "$name" "$rate_json" "$round" "${BIN[$row]}" "$alert" \
		"$(( p1 - p0 ))" "$(( p1m - p0 ))" "$(( w1 - w0 ))" "$(( m1 - m0 ))" "$rf" "$rc" \
		"${c0[*]}" "${c1[*]}" "$load" "$COLLECTOR" <<'PY'
import json, re, sys
(res, perf, name, rate, rnd, binary, alert, p_ns, pm_ns, w_ns, m_ns, rf, rc, c0, c1, load,
 coll) = sys.argv[1:]
text = open(perf, errors="replace").read()
def num(pat, default=0.0):
    m = re.search(pat, text)
    return float(m.group(1)) if m else default
completed = int(num(r"Queries completed:\s+(\d+)"))
lost_q = int(num(r"Queries lost:\s+(\d+)"))
qps = num(r"Queries per second:\s+([\d.]+)")
c0 = [int(x) for x in c0.split()]; c1 = [int(x) for x in c1.split()]
d = [b - a for a, b in zip(c0, c1)]
events, dedup, lost_ring, lost_sink, emitted = d
alerted = alert == "true"
expected = events + lost_ring - dedup if alerted else 0
rf, rc = int(rf), int(rc)
per_q = lambda ns: round(int(ns) / 1000 / completed, 3) if completed else None
rec = {
    "server": "dnsink-alert" if alerted else "dnsink",
    "row": name, "path": "alerted", "rate": json.loads(rate), "round": int(rnd),
    "binary": binary, "collector": coll, "qps": qps, "completed": completed,
    "queries_lost": lost_q,
    "cpu_us_q": per_q(p_ns), "cpu_us_q_drained": per_q(pm_ns),
    "worker_cpu_us_q": per_q(w_ns),
    "main_cpu_us_rec": (round(int(m_ns) / 1000 / emitted, 3) if alerted and emitted
                        else None),
    "main_cpu_us_q": per_q(m_ns),
    "records_expected": expected, "records_emitted": emitted,
    "records_file": rf if alerted else 0, "records_collector": rc if alerted else 0,
    "lost": max(0, expected - min(rf, rc)) if alerted else 0,
    "lost_ring": lost_ring, "lost_sink": lost_sink, "deduplicated": dedup,
    "load_s": float(load),
}
with open(res, "a") as f:
    f.write(json.dumps(rec) + "\n")
print(f"{name} {rate}: {qps:.0f} qps, worker {rec['worker_cpu_us_q']} us/q, "
      f"process {rec['cpu_us_q']} us/q, main {rec['main_cpu_us_rec']} us/rec, "
      f"records {expected} expected, file {rf}, collector {rc}, lost {rec['lost']}",
      file=sys.stderr)
PY
}

for round in $(seq "$ROUNDS"); do
	order=("${ROWS[@]}")
	if (( round % 2 == 0 )) && [ ${#ROWS[@]} = 2 ]; then order=("${ROWS[1]}" "${ROWS[0]}"); fi
	for mode in $MODES; do
		for alert in false true; do
			for row in "${order[@]}"; do
				run_one "$row" "$alert" "$mode" "$round"
			done
		done
	done
done

# ---- table ---------------------------------------------------------------------------------------
{
	echo "dnsink alerting benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
	echo "list: $(wc -l < "$LIST") names, $NQ queries (each a new dedup key); dnsink --workers 1 on CPU $SRV_CPU, dnsperf -c $CLIENTS -q $OUTSTANDING and rsyslogd ($COLLECTOR) on CPU $GEN_CPU; full speed: the file once or $DURATION s; fixed: $RATE qps for $DURATION s"
	for r in "${ROWS[@]}"; do echo "$r: ${BIN[$r]}"; done
	echo
	python3 - "$RESULTS" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in recs:
    groups.setdefault((r["row"], str(r["rate"])), []).append(r)
def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None
def f(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"
print("| row | rate | runs | QPS | worker us/q | process us/q | main us/record | records expected | file | collector | lost | lost_ring | lost_sink |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (row, rate), rs in sorted(groups.items(), key=lambda kv: (kv[0][1] != "full", kv[0][0])):
    print(f"| {row} | {rate} | {len(rs)} | {f(med(rs, 'qps'), 0)} | {f(med(rs, 'worker_cpu_us_q'))} "
          f"| {f(med(rs, 'cpu_us_q'))} | {f(med(rs, 'main_cpu_us_rec'))} "
          f"| {sum(r['records_expected'] for r in rs)} | {sum(r['records_file'] for r in rs)} "
          f"| {sum(r['records_collector'] for r in rs)} | {sum(r['lost'] for r in rs)} "
          f"| {sum(r['lost_ring'] for r in rs)} | {sum(r['lost_sink'] for r in rs)} |")
# The alerting cost over the silent path, per binary and rate (medians).
print()
for (row, rate), rs in sorted(groups.items()):
    if row.endswith("-alert"):
        base = groups.get((row[: -len("-alert")], rate))
        if base:
            dw = med(rs, "worker_cpu_us_q") - med(base, "worker_cpu_us_q")
            dp = med(rs, "cpu_us_q_drained") - med(base, "cpu_us_q_drained")
            print(f"- {row} at {rate}: worker +{dw:.2f} us/q over the silent path, "
                  f"whole process (drained) +{dp:.2f} us/q")
PY
} | tee "$OUT/table.md"
log "results in $OUT"
