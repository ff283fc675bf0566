#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The encrypted-transport benchmark (issue 12): server CPU per answered query and QPS of
#   dnsink-udp-fwd     dnsperf UDP -> dnsink (cache off) -> knotd over UDP     (cleartext forward)
#   dnsink-dot-fwd     dnsperf UDP -> dnsink (cache off) -> DoT upstream -> knotd
#                      (the DoT upstream: a second dnsink's listen_tls, on CPU 1: dnsdist
#                      1.7's DoT frontend answers a pipelined connection at ~10k qps, which
#                      would measure dnsdist rather than dnsink's DoT client)
#   dnsink-dot-in-fwd  dnsperf DoT -> dnsink listen_tls (cache off) -> knotd over UDP
#   dnsdist-dot-in-fwd dnsperf DoT -> dnsdist DoT frontend -> knotd over UDP
#   dnsink-dot-block   dnsperf DoT -> dnsink listen_tls, blocked names (sinkhole)
#   dnsdist-dot-block  dnsperf DoT -> dnsdist DoT frontend, the same names blocked by a rule
#   dnsink-fwd-udp-loc dnsperf UDP -> dnsink (cache off) -> UDP -> a 2nd dnsink answering locally
#   dnsink-fwd-dot-loc dnsperf UDP -> dnsink (cache off) -> DoT -> the same 2nd dnsink
#                      (the pair compares dnsink's DoT client with its UDP one against an
#                      upstream that costs little either way: a sinkhole rule for every name)
#   dnsink-doh-fwd     dnsperf UDP -> dnsink (cache off) -> DoH upstream -> knotd
#   dnsink-doh-block   h2load (POST, 4 connections x 25 streams) -> dnsink listen_https, blocked
#   dnsdist-doh-block  h2load, the same -> dnsdist DoH frontend, the same name blocked
# (h2load, not dnsperf, for DoH: dnsperf 2.10's DoH stalls after a few answers from dnsdist
# 1.7.3; h2load repeats one query, which a blocked path answers the same way each time.)
# The measured server is pinned to CPU 0; dnsperf, knotd and the DoT upstream (a dnsdist
# DoT frontend in front of knotd, used by dnsink-dot-fwd only) to CPU 1. CPU per query is
# utime+stime of the measured process from /proc over the run, divided by the queries
# dnsperf saw answered. Certificates are made with certtool under a throw-away CA. Every
# process started is stopped by PID on exit; every run is bounded.
#
# With --rate N every dnsperf run is held at N queries per second (dnsperf -Q), so rows
# whose peers cannot keep up with full speed compare at the same load: CPU per query of an
# event loop falls as the load rises (more queries per wake-up), so rows measured at very
# different rates are not comparable.
#
# Besides the Markdown table (DIR/table.md) every row is one JSON line in DIR/results.jsonl
# ({"server", "path", "row", "desc", "qps", "cpu_us_per_q", "completed", "answered"}: server
# and path are the row's name split at its first "-"), which run.sh folds into its table.
#
# usage: tools/bench/tls.sh [--dnsink PATH] [--duration S] [--rate N] [--only ROW,ROW]
#                           [--out DIR]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DNSINK="$ROOT/build/src/dnsink"
DURATION=10
RATE=()
CLIENTS=4
OUTSTANDING=100
ONLY="dnsink-udp-fwd,dnsink-dot-fwd,dnsink-fwd-udp-loc,dnsink-fwd-dot-loc,dnsink-doh-fwd,dnsink-dot-in-fwd,dnsdist-dot-in-fwd,dnsink-dot-block,dnsdist-dot-block,dnsink-doh-block,dnsdist-doh-block"
OUT=""
KNOT_PORT=26301
UP_DOT_PORT=26853
UP_DOH_PORT=26844
SRV_PORT=26353
SRV_TLS_PORT=26854
SRV_DOH_PORT=26443

while [ $# -gt 0 ]; do
	case "$1" in
	--dnsink) DNSINK=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--rate) RATE=(-Q "$2"); shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "tls.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
for t in dnsperf h2load knotd dnsdist certtool taskset; do
	command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "tls.sh: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done
[ -x "$DNSINK" ] || { echo "tls.sh: no dnsink at $DNSINK (--dnsink)" >&2; exit 1; }
OUT=${OUT:-$HERE/out/tls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/dnsink-tlsbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
# On SIGTERM (run.sh's timeout) or ^C: exit, which runs cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
: >"$OUT/results.jsonl"
# One row's figures as a JSON line: row desc qps us completed answered
json_row() {
	printf '{"server": "%s", "path": "%s", "row": "%s", "desc": "%s", "qps": %s, "cpu_us_per_q": %s, "completed": %s, "answered": "%s"}\n' \
		"${1%%-*}" "${1#*-}" "$1" "$2" "${3:-0}" "$([ "$4" = - ] && echo null || echo "$4")" \
		"${5:-0}" "$6" >>"$OUT/results.jsonl"
}

# --- certificates, zone, query files -----------------------------------------------------
certtool --generate-privkey --key-type ecdsa --outfile "$W/ca.key" 2>/dev/null
printf 'cn = "bench CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$W/ca.tmpl"
certtool --generate-self-signed --load-privkey "$W/ca.key" --template "$W/ca.tmpl" \
	--outfile "$W/ca.pem" 2>/dev/null
certtool --generate-privkey --key-type ecdsa --outfile "$W/srv.key" 2>/dev/null
printf 'cn = "bench.test"\ndns_name = "bench.test"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' >"$W/srv.tmpl"
certtool --generate-certificate --load-privkey "$W/srv.key" --load-ca-certificate "$W/ca.pem" \
	--load-ca-privkey "$W/ca.key" --template "$W/srv.tmpl" --outfile "$W/srv.pem" 2>/dev/null

mkdir -p "$W/knot"
cat >"$W/knot/fwd.bench.test.zone" <<'EOF'
$ORIGIN fwd.bench.test.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.1
* A 192.0.2.1
EOF
cat >"$W/knot/knot.conf" <<EOF
server:
    rundir: "$W/knot"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$W/knot/db"
template:
  - id: default
    storage: "$W/knot"
    file: "%s.zone"
zone:
  - domain: fwd.bench.test
EOF
python3 - "$W" <<'EOF'
import sys
w = sys.argv[1]
with open(w + "/fwd.txt", "w") as f:
    for i in range(2000000):
        f.write("q%d.fwd.bench.test A\n" % i)
with open(w + "/block.txt", "w") as f:
    for i in range(200000):
        f.write("x%d.blocked.bench.test A\n" % i)
EOF
printf '\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x07blocked\x05bench\x04test\x00\x00\x01\x00\x01' >"$W/qb.bin"
mkdir -p "$W/rules"
cat >"$W/rules/bench.yml" <<'EOF'
id: Bench.Blocked
name: bench block list
severity: low
action: sinkhole
alert: false
domains:
  - blocked.bench.test
EOF

# Starts a process pinned to a CPU, its output in $OUT/NAME.log; its PID in LAST (not a
# command substitution: the PID must reach the cleanup list of this shell).
LAST=
start() { # name cpu argv...
	local name=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$OUT/$name.log" 2>&1 &
	LAST=$!
	PIDS+=("$LAST")
}
wait_port() { # port proto
	for _ in $(seq 100); do
		if [ "$2" = udp ]; then
			dig +time=1 +tries=1 -p "$1" @127.0.0.1 ns.fwd.bench.test >/dev/null 2>&1 && return 0
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		fi
		sleep 0.1
	done
	echo "tls.sh: nothing on port $1" >&2
	return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start knotd 1 knotd -c "$W/knot/knot.conf"; KNOT_PID=$LAST
wait_port $KNOT_PORT udp
sleep 0.5

# The DoT upstream of dnsink-dot-fwd: dnsdist's DoT frontend in front of knotd (CPU 1).
cat >"$W/up-dnsdist.conf" <<EOF
setSecurityPollSuffix("")
addTLSLocal("127.0.0.1:$UP_DOT_PORT", "$W/srv.pem", "$W/srv.key", {maxInFlight=100})
addDOHLocal("127.0.0.1:$UP_DOH_PORT", "$W/srv.pem", "$W/srv.key", "/dns-query")
newServer({address="127.0.0.1:$KNOT_PORT", healthCheckMode="up"})
EOF

dnsink_conf() { # file listen-kind upstream
	cat >"$1" <<EOF
listen: [127.0.0.1:$SRV_PORT]
listen_tls: [127.0.0.1:$SRV_TLS_PORT]
listen_https: [127.0.0.1:$SRV_DOH_PORT]
upstreams: [$2]
tls:
  ca_file: $W/ca.pem
  cert_file: $W/srv.pem
  key_file: $W/srv.key
workers: 1
cache: {size_mb: 0}
allow_clients: [127.0.0.0/8]
rules: [$W/rules/]
alerts:
  file: $W/alerts.jsonl
EOF
}
dnsdist_conf() { # file
	cat >"$1" <<EOF
setSecurityPollSuffix("")
setLocal("127.0.0.1:$SRV_PORT")
addTLSLocal("127.0.0.1:$SRV_TLS_PORT", "$W/srv.pem", "$W/srv.key", {maxInFlight=100})
addDOHLocal("127.0.0.1:$SRV_DOH_PORT", "$W/srv.pem", "$W/srv.key", "/dns-query")
newServer({address="127.0.0.1:$KNOT_PORT", healthCheckMode="up"})
smn = newSuffixMatchNode()
smn:add(newDNSName("blocked.bench.test."))
addAction(SuffixMatchNodeRule(smn), SpoofAction("0.0.0.0"))
setMaxTCPClientThreads(1)
EOF
}

printf '| row | client -> server -> upstream | QPS | CPU us/query | answered |\n| --- | --- | ---: | ---: | ---: |\n' >"$OUT/table.md"
run_row() { # row desc server-pid mode port file
	local row=$1 desc=$2 pid=$3 mode=$4 port=$5 file=$6
	local t0 t1 out q qps
	t0=$(ticks "$pid")
	out=$(taskset -c 1 dnsperf -m "$mode" -s 127.0.0.1 -p "$port" -d "$file" -l "$DURATION" \
		-c $CLIENTS -q $OUTSTANDING -t 5 "${RATE[@]}" 2>&1) || true
	t1=$(ticks "$pid")
	echo "$out" >"$OUT/$row.dnsperf"
	q=$(echo "$out" | awk '/Queries completed:/ { print $3 }')
	qps=$(echo "$out" | awk '/Queries per second:/ { print $4 }')
	local hz
	hz=$(getconf CLK_TCK)
	local us="-"
	if [ -n "$q" ] && [ "$q" -gt 0 ]; then
		us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v q="$q" 'BEGIN { printf "%.2f", d * 1e6 / hz / q }')
	fi
	local pct
	pct=$(echo "$out" | awk '/Queries completed:/ { print $4 }' | tr -d '()')
	printf '| %s | %s | %s | %s | %s |\n' "$row" "$desc" "${qps:-0}" "$us" "${pct:-?}" | tee -a "$OUT/table.md"
	json_row "$row" "$desc" "${qps:-0}" "$us" "${q:-0}" "${pct:-?}"
}
run_h2() { # row desc server-pid port
	local row=$1 desc=$2 pid=$3 port=$4 t0 t1 out n s
	t0=$(ticks "$pid")
	out=$(taskset -c 1 h2load -D "$DURATION" -c $CLIENTS -m 25 -d "$W/qb.bin" \
		-H 'content-type: application/dns-message' "https://127.0.0.1:$port/dns-query" 2>&1) || true
	t1=$(ticks "$pid")
	echo "$out" >"$OUT/$row.h2load"
	n=$(echo "$out" | awk '/^requests:/ { print $8 }')
	s=$(echo "$out" | awk '/^status codes:/ { print $3 }')
	local qps us="-" hz
	hz=$(getconf CLK_TCK)
	qps=$(awk -v n="${s:-0}" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')
	if [ -n "$s" ] && [ "$s" -gt 0 ]; then
		us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v q="$s" 'BEGIN { printf "%.2f", d * 1e6 / hz / q }')
	fi
	printf '| %s | %s | %s | %s | %s of %s 2xx |\n' "$row" "$desc" "$qps" "$us" "${s:-0}" "${n:-?}" | tee -a "$OUT/table.md"
	json_row "$row" "$desc" "$qps" "$us" "${s:-0}" "${s:-0} of ${n:-?} 2xx"
}
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

if want dnsink-udp-fwd; then
	dnsink_conf "$W/dk.yml" "127.0.0.1:$KNOT_PORT"
	start dnsink-udp-fwd 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_PORT udp
	run_row dnsink-udp-fwd "UDP -> dnsink -> UDP knotd" "$P" udp $SRV_PORT "$W/fwd.txt"
	stop "$P"
fi
if want dnsink-dot-fwd; then
	cat >"$W/up-dk.yml" <<EOF
listen: [127.0.0.1:$((SRV_PORT + 1))]
listen_tls: [127.0.0.1:$UP_DOT_PORT]
upstreams: [127.0.0.1:$KNOT_PORT]
tls: {cert_file: $W/srv.pem, key_file: $W/srv.key}
workers: 1
cache: {size_mb: 0}
rules: []
EOF
	start up-dnsink 1 "$DNSINK" -c "$W/up-dk.yml"; UP=$LAST
	wait_port $UP_DOT_PORT tcp
	dnsink_conf "$W/dk.yml" "tls://127.0.0.1:$UP_DOT_PORT#bench.test"
	start dnsink-dot-fwd 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_PORT tcp
	sleep 0.5
	run_row dnsink-dot-fwd "UDP -> dnsink -> DoT (dnsink) -> knotd" "$P" udp $SRV_PORT "$W/fwd.txt"
	stop "$P"
	stop "$UP"
fi
local_upstream() { # starts the 2nd dnsink (CPU 1): every fwd.bench.test name sinkholed
	mkdir -p "$W/loc-rules"
	printf 'id: Bench.Local\nname: answers locally\nseverity: low\naction: sinkhole\nalert: false\ndomains: [fwd.bench.test]\n' >"$W/loc-rules/loc.yml"
	cat >"$W/loc-dk.yml" <<EOF
listen: [127.0.0.1:$((SRV_PORT + 2))]
listen_tls: [127.0.0.1:$((UP_DOT_PORT + 1))]
upstreams: [127.0.0.1:$KNOT_PORT]
tls: {cert_file: $W/srv.pem, key_file: $W/srv.key}
workers: 1
cache: {size_mb: 0}
rules: [$W/loc-rules/]
EOF
	start loc-dnsink 1 "$DNSINK" -c "$W/loc-dk.yml"; UP=$LAST
	wait_port $((UP_DOT_PORT + 1)) tcp
}
if want dnsink-fwd-udp-loc; then
	local_upstream
	dnsink_conf "$W/dk.yml" "127.0.0.1:$((SRV_PORT + 2))"
	start dnsink-fwd-udp-loc 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_PORT tcp
	run_row dnsink-fwd-udp-loc "UDP -> dnsink -> UDP (local dnsink)" "$P" udp $SRV_PORT "$W/fwd.txt"
	stop "$P"
	stop "$UP"
fi
if want dnsink-fwd-dot-loc; then
	local_upstream
	dnsink_conf "$W/dk.yml" "tls://127.0.0.1:$((UP_DOT_PORT + 1))#bench.test"
	start dnsink-fwd-dot-loc 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_PORT tcp
	sleep 0.5
	run_row dnsink-fwd-dot-loc "UDP -> dnsink -> DoT (local dnsink)" "$P" udp $SRV_PORT "$W/fwd.txt"
	stop "$P"
	stop "$UP"
fi
if want dnsink-doh-fwd; then
	start up-dnsdist 1 dnsdist --supervised --disable-syslog -C "$W/up-dnsdist.conf"; UP=$LAST
	wait_port $UP_DOH_PORT tcp
	dnsink_conf "$W/dk.yml" "https://127.0.0.1:$UP_DOH_PORT/dns-query#bench.test"
	start dnsink-doh-fwd 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_PORT tcp
	sleep 0.5
	run_row dnsink-doh-fwd "UDP -> dnsink -> DoH (dnsdist) -> knotd" "$P" udp $SRV_PORT "$W/fwd.txt"
	stop "$P"
	stop "$UP"
fi
if want dnsink-dot-in-fwd; then
	dnsink_conf "$W/dk.yml" "127.0.0.1:$KNOT_PORT"
	start dnsink-dot-in-fwd 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_TLS_PORT tcp
	run_row dnsink-dot-in-fwd "DoT -> dnsink -> UDP knotd" "$P" dot $SRV_TLS_PORT "$W/fwd.txt"
	stop "$P"
fi
if want dnsdist-dot-in-fwd; then
	dnsdist_conf "$W/dd.conf"
	start dnsdist-dot-in-fwd 0 dnsdist --supervised --disable-syslog -C "$W/dd.conf"; P=$LAST
	wait_port $SRV_TLS_PORT tcp
	run_row dnsdist-dot-in-fwd "DoT -> dnsdist -> UDP knotd" "$P" dot $SRV_TLS_PORT "$W/fwd.txt"
	stop "$P"
fi
if want dnsink-dot-block; then
	dnsink_conf "$W/dk.yml" "127.0.0.1:$KNOT_PORT"
	start dnsink-dot-block 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_TLS_PORT tcp
	run_row dnsink-dot-block "DoT -> dnsink, blocked" "$P" dot $SRV_TLS_PORT "$W/block.txt"
	stop "$P"
fi
if want dnsdist-dot-block; then
	dnsdist_conf "$W/dd.conf"
	start dnsdist-dot-block 0 dnsdist --supervised --disable-syslog -C "$W/dd.conf"; P=$LAST
	wait_port $SRV_TLS_PORT tcp
	run_row dnsdist-dot-block "DoT -> dnsdist, blocked" "$P" dot $SRV_TLS_PORT "$W/block.txt"
	stop "$P"
fi
if want dnsink-doh-block; then
	dnsink_conf "$W/dk.yml" "127.0.0.1:$KNOT_PORT"
	start dnsink-doh-block 0 "$DNSINK" -c "$W/dk.yml"; P=$LAST; wait_port $SRV_DOH_PORT tcp
	run_h2 dnsink-doh-block "DoH (h2load) -> dnsink, blocked" "$P" $SRV_DOH_PORT
	stop "$P"
fi
if want dnsdist-doh-block; then
	dnsdist_conf "$W/dd.conf"
	start dnsdist-doh-block 0 dnsdist --supervised --disable-syslog -C "$W/dd.conf"; P=$LAST
	wait_port $SRV_DOH_PORT tcp
	run_h2 dnsdist-doh-block "DoH (h2load) -> dnsdist, blocked" "$P" $SRV_DOH_PORT
	stop "$P"
fi
stop "$KNOT_PID"
echo "tls.sh: table in $OUT/table.md" >&2
