#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The dnsink benchmark, end to end in one command: every path dnsink has, against the peers
# that have it, in one table. It installs what it needs from Debian, generates a block list
# (synthetic names plus the domains of rules/) and the query files, starts knotd as the
# shared upstream (a wildcard under fwd.bench.test, so every forwarded name is new), then
# runs each server in turn on the same list and upstream: the echo floors (per datagram,
# and batched with recvmmsg/sendmmsg: echo-batch), dnsink (plain; alerting; with 60 Sigma
# rules; with 50 client groups; two workers on one core; one and two workers on both
# cores), unbound, dnsdist and dnsmasq, the caching peers on the cached path. Each server
# is pinned to CPU 0, dnsperf and knotd to CPU 1 (the *-2cpu rows: server and dnsperf on
# both). Per server and path it measures QPS, server CPU per answered query
# (utime+stime from /proc; for dnsink split into worker threads, main thread and the
# rest), the share of correct answers, p50/p99 latency and losses at a fixed rate (the
# spread over the runs), RSS after load and load time. Then it runs, with the same dnsink
# binary, tls.sh (DoT/DoH forward and listeners, against dnsdist's frontends), hunt.sh
# (hunt throughput) and, when they are there, alert.sh (the alerted path per thread) and
# load10m.sh (a 10M list), and folds their figures into the same results.jsonl and the
# same table, with the ratios of dnsink to every peer and to both floors. Every process
# it starts is stopped by PID on exit; every run is bounded.
# With --ab it compares two dnsink binaries instead: only those two, alternated over rounds.
#
# usage: tools/bench/run.sh [--quick] [--only echo,dnsink,...] [--paths blocked,...]
#                          [--dnsink PATH] [--out DIR] [--no-extras]
#                          [--duration S] [--list-size N] [--no-install] [--keep]
#                          [--ab PATH_A,PATH_B [--rounds N] [--b-yaml FILE]]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# The default run: every row, then the parts run by scripts of their own (tls.sh, hunt.sh,
# alert.sh, load10m.sh), each on the paths it has (default_paths below).
ALL_SERVERS="echo,echo-batch,dnsink,dnsink-nocache,dnsink-2w,dnsink-2cpu,dnsink-2w-2cpu,echo-batch-2cpu,dnsink-alert,dnsink-sigma,dnsink-groups,unbound,unbound-cache,dnsdist,dnsdist-cache,dnsmasq"
ALL_PARTS="tls,hunt,alert,load10m"
ONLY=$ALL_SERVERS,$ALL_PARTS
QUICK=0
PLAN=0
DURATION_ARG=""
SIZE_ARG=""
INSTALL=1
KEEP=0
DNSINK=""
AB=""                # --ab PATH_A,PATH_B: the two dnsink binaries to compare
SIGMA=""             # --sigma DIR: Sigma rules for dnsink-sigma and dnsink-B
ROUNDS=3             # --ab rounds; each round runs every path on A and on B
B_YAML=""            # --b-yaml FILE: appended to dnsink-B's config
OUT=""
DURATION=10          # seconds of each full-speed dnsperf run
LAT_DURATION=3       # seconds of each fixed-rate run
LAT_REPEAT=5         # fixed-rate runs of the rows with a p99 target (the floors and dnsink,
                     # blocked and cached, and dnsink-alert); the table shows the median run
                     # and the spread
LAT_MINOR=3          # fixed-rate runs of the other rows (the *-2w and *-2cpu rows: none)
RATE=10000           # queries per second of the fixed-rate run
SIZE=1000000         # synthetic list size
NQ=1000000           # lines per throughput query file
MISS_NQ=3000000      # lines of the forward and mix files: more than the fastest server answers
                     # in DURATION, so no name comes twice and a cache misses (see once())
HUNT_N=1000000       # hunt.sh: records of the smaller input (the larger has 4x)
CLIENTS=4            # dnsperf -c
OUTSTANDING=200      # dnsperf -q
SRV_CPU=0
GEN_CPU=1
KNOT_PORT=25301
SRV_PORT=25353
PATHS="blocked forward mix"   # with --paths (or --ab): every row runs these
PATHS_SET=0                   # without --paths: each row runs its own (default_paths)
ALL_PATHS="blocked forward mix cached"

usage() {
	sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF

  --quick         small list (100k), 3 s runs, fewer fixed-rate runs: a smoke test
  --only LIST     rows and parts to run, comma separated, from: $ALL_SERVERS,
                  and $ALL_PARTS (default: all)
  --paths LIST    query files to run on every row, comma separated, from:
                  ${ALL_PATHS// /,} (default: each row its own: blocked, forward, mix and
                  cached for the floors and dnsink, cached for the caching peers, ...);
                  cached is 1,000 names asked again and again, each asked once before
  --dnsink PATH   the dnsink binary (default: a release build of this tree in build-benchrun/)
  --out DIR       where logs, results.jsonl and table.md go (default: tools/bench/out/DATE)
  --duration S    seconds per full-speed run
  --list-size N   synthetic list size
  --no-install    do not apt-get install missing tools; skip servers that are missing
  --keep          keep the generated data and configs (printed at the end)
  --plan          print the rows, their paths and fixed-rate runs, the parts and the
                  expected duration, and exit
  --ab A,B        A/B two dnsink binaries (rows dnsink-A, dnsink-B): only those two run,
                  full-speed runs only, alternated over rounds; prints medians and B/A
  --rounds N      rounds of --ab (default $ROUNDS); order A,B then B,A (ABBA)
  --b-yaml FILE   with --ab: YAML appended to dnsink-B's config only, to compare two
                  configs with one binary (e.g. gen_groups.py's client groups)
  --sigma DIR     Sigma rules loaded beside the list by dnsink-sigma and, with --ab, by
                  dnsink-B (--ab X,X --sigma DIR: the cost of the rules, same binary);
                  "gen" (the default) writes the 60 of tools/bench/sigma_rules.py
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--only) ONLY=$2; shift ;;
	--paths) PATHS=${2//,/ }; PATHS_SET=1; shift ;;
	--dnsink) DNSINK=$2; shift ;;
	--ab) AB=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--b-yaml) B_YAML=$2; shift ;;
	--sigma) SIGMA=$2; shift ;;
	--out) OUT=$2; shift ;;
	--duration) DURATION_ARG=$2; shift ;;
	--list-size) SIZE_ARG=$2; shift ;;
	--no-install) INSTALL=0 ;;
	--keep) KEEP=1 ;;
	--plan) PLAN=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
if [ "$QUICK" = 1 ]; then
	SIZE=100000; NQ=200000; MISS_NQ=1200000; DURATION=3; LAT_DURATION=2
	LAT_REPEAT=3; LAT_MINOR=1; HUNT_N=100000
fi
# --duration and --list-size win over --quick's.
DURATION=${DURATION_ARG:-$DURATION}
SIZE=${SIZE_ARG:-$SIZE}
for p in $PATHS; do
	[[ " $ALL_PATHS " == *" $p "* ]] || { echo "run.sh: unknown path: $p (known: $ALL_PATHS)" >&2; exit 2; }
done
NPATHS=$(wc -w <<< "$PATHS")

# The paths of each row when --paths does not set them: the floors and dnsink every path;
# the second-worker rows the two that a worker answers alone (blocked, cached); the
# alerting row blocked (every query an alert; its forward path is dnsink's); the Sigma
# and groups rows blocked and forward; the peers without a cache the three that miss, the
# caching peers the hot path and the two that miss (what a miss costs with a cache to fill),
# dnsink without its cache those two as well (the like-for-like miss against the peers
# without one).
default_paths() {
	case "$1" in
	echo|echo-batch|dnsink) echo "blocked forward mix cached" ;;
	dnsink-nocache) echo "forward mix" ;;
	dnsink-2w|dnsink-2cpu|dnsink-2w-2cpu|echo-batch-2cpu) echo "blocked cached" ;;
	dnsink-alert) echo "blocked" ;;
	dnsink-sigma|dnsink-groups) echo "blocked forward" ;;
	unbound|dnsdist|dnsmasq) echo "blocked forward mix" ;;
	unbound-cache|dnsdist-cache) echo "cached forward mix" ;;
	*) echo "$PATHS" ;;
	esac
}
paths_of() {
	if [ "$PATHS_SET" = 1 ] || [ -n "$AB" ]; then echo "$PATHS"; else default_paths "$1"; fi
}
# Fixed-rate runs of row $1 on path $2: all of them where the issue sets a p99 target.
lat_repeat() {
	case "$1" in dnsink-2w|*-2cpu|dnsink-A|dnsink-B) echo 0; return ;; esac
	case "$1/$2" in
	echo/blocked|echo/cached|echo-batch/blocked|echo-batch/cached|dnsink/blocked|dnsink/cached|dnsink-alert/blocked)
		echo "$LAT_REPEAT" ;;
	*) echo "$LAT_MINOR" ;;
	esac
}
# Where the server and dnsperf run: the *-2cpu rows leave both unpinned (both CPUs), so
# that two workers can use two cores (issue 18, item 4); the others keep the server on
# CPU 0 and the generator on CPU 1.
srv_cpus() { case "$1" in *-2cpu) echo 0,1 ;; *) echo $SRV_CPU ;; esac; }
gen_cpus() { case "$1" in *-2cpu) echo 0,1 ;; *) echo $GEN_CPU ;; esac; }
# dnsperf's load: on both CPUs two threads and twice the clients, so the generator is not
# one thread's limit when the server has two cores.
load_opts() {
	case "$1" in
	*-2cpu) echo "-T 2 -c $(( CLIENTS * 2 )) -q $(( OUTSTANDING * 2 ))" ;;
	*) echo "-c $CLIENTS -q $OUTSTANDING" ;;
	esac
}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
TLS_DURATION=$DURATION
# What the selection should take, in seconds (printed at the start; LIMIT is half as much
# again): per row a start and per path a full-speed run and the fixed-rate runs.
estimate() {
	local s p t=30
	for s in ${ONLY//,/ }; do
		case "$s" in
		tls) t=$(( t + 20 + 11 * (TLS_DURATION + 1) )) ;;
		hunt) t=$(( t + 15 + HUNT_N / 10000 )) ;;
		alert) t=$(( t + (QUICK ? 90 : 180) )) ;;
		load10m) t=$(( t + (QUICK ? 60 : 240) )) ;;
		*)
			t=$(( t + 2 ))
			case "$s" in unbound*|dnsdist*) t=$(( t + 3 + SIZE / 80000 )) ;; esac
			for p in $(paths_of "$s"); do
				t=$(( t + DURATION + 1 + $(lat_repeat "$s" "$p") * (LAT_DURATION * 2 + 1) / 2 ))
				[ "$p" = cached ] && t=$(( t + 1 ))
			done ;;
		esac
	done
	echo "$t"
}
declare -A AB_BIN=()
if [ -n "$AB" ]; then
	AB_BIN[dnsink-A]=${AB%%,*}
	AB_BIN[dnsink-B]=${AB#*,}
	if [ "$AB" = "${AB_BIN[dnsink-A]}" ] || [ -z "${AB_BIN[dnsink-B]}" ]; then
		echo "run.sh: --ab wants PATH_A,PATH_B" >&2; exit 2
	fi
	for s in dnsink-A dnsink-B; do
		[ -x "${AB_BIN[$s]}" ] || { echo "run.sh: $s: not executable: ${AB_BIN[$s]}" >&2; exit 2; }
		AB_BIN[$s]=$(cd "$(dirname "${AB_BIN[$s]}")" && pwd)/$(basename "${AB_BIN[$s]}")
	done
	[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds wants a count" >&2; exit 2; }
	# A/B wants CPU per query and QPS, which the full-speed runs give; the fixed-rate
	# latency runs would triple the time of a round, so an A/B run has none.
	LAT_REPEAT=0; LAT_MINOR=0
	# Bounded as the default run: setup, then per round two loads and 2 x paths runs.
	EXPECT=$(( 200 + ROUNDS * (2 * 30 + 2 * NPATHS * (DURATION + 10)) ))
else
	EXPECT=$(estimate)
fi
LIMIT=$(( EXPECT * 3 / 2 + 120 ))   # the whole script, in seconds
if [ "$PLAN" = 1 ]; then
	for s in ${ONLY//,/ }; do
		case "$s" in
		tls|hunt|alert|load10m) echo "part $s: tools/bench/$s.sh$([ -f "$HERE/$s.sh" ] || echo ' (not in this tree: skipped)')" ;;
		*)
			printf 'row %-15s CPU %-3s paths:' "$s" "$(srv_cpus "$s")"
			for p in $(paths_of "$s"); do printf ' %s (%d fixed-rate)' "$p" "$(lat_repeat "$s" "$p")"; done
			echo ;;
		esac
	done
	echo "expected duration: about $(( (EXPECT + 59) / 60 )) min (time limit $(( LIMIT / 60 )) min; installs and the build not counted)"
	exit 0
fi
NLAT=$(( RATE * LAT_DURATION + RATE ))  # lines per fixed-rate file: one run's worth and some

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

OUT=${OUT:-$ROOT/tools/bench/out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/dnsink-bench.XXXXXX)
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

# ---- process bookkeeping: everything started is stopped by PID --------------------------
PIDS=()
WATCHDOG=""

. "$HERE/pids.sh"

cleanup() {
	local i
	set +e
	for (( i=${#PIDS[@]}-1; i>=0; i-- )); do stop_pid "${PIDS[$i]}"; done
	if [ -n "$WATCHDOG" ]; then
		# The watchdog is a subshell sleeping in a child; stop the child, then it.
		pkill -TERM -P "$WATCHDOG" 2>/dev/null
		kill -TERM "$WATCHDOG" 2>/dev/null
		wait "$WATCHDOG" 2>/dev/null
	fi
	if [ "$KEEP" = 1 ]; then log "kept data and configs in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "stopped (time limit or SIGTERM)"; exit 143' TERM

# The subshell's own stderr goes quiet so that stopping its sleep at exit prints nothing.
( exec 3>&2 2>/dev/null; sleep "$LIMIT" && { echo "[bench] time limit of $LIMIT s" >&3; kill -TERM $$; } ) &
WATCHDOG=$!

# ---- tools --------------------------------------------------------------------------------
# binary:package pairs; peers a run asks for but cannot find are installed (or skipped).
need_tools() {
	local missing=() pair bin pkg
	for pair in "$@"; do
		bin=${pair%%:*}; pkg=${pair#*:}
		command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$INSTALL" != 1 ]; then
		log "missing: ${missing[*]} (--no-install)"
		return 1
	fi
	log "installing from Debian: ${missing[*]}"
	# Debian starts a service right after installing its package (unbound, dnsdist would
	# grab port 53); a temporary policy-rc.d says no, and goes away when we are done.
	local policy=/usr/sbin/policy-rc.d ours=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; ours=1
	fi
	local rc=0
	timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" > "$OUT/apt.log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		timeout 120 apt-get update -q >> "$OUT/apt.log" 2>&1 || true
		rc=0
		timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" >> "$OUT/apt.log" 2>&1 || rc=$?
	fi
	[ $ours = 1 ] && rm -f "$policy"
	[ $rc -eq 0 ] || log "apt-get install failed (see $OUT/apt.log)"
	return $rc
}
PATH=$PATH:/usr/sbin:/sbin

need_tools dnsperf:dnsperf knotd:knot taskset:util-linux ss:iproute2 \
	|| die "dnsperf and knot are required"
command -v python3 >/dev/null || die "python3 is required"
command -v cc >/dev/null || die "a C compiler (cc) is required for the echo floor"

# Without --dnsink, build a release binary of this tree in a build directory of our own.
build_dnsink() {
	local dir=$ROOT/build-benchrun
	log "building dnsink (release) in $dir"
	if [ ! -f "$dir/build.ninja" ]; then
		timeout 300 meson setup "$dir" "$ROOT" --buildtype=release > "$OUT/build.log" 2>&1 \
			|| { log "meson setup failed (see $OUT/build.log)"; return 0; }
	fi
	timeout 600 ninja -C "$dir" src/dnsink >> "$OUT/build.log" 2>&1 \
		|| { log "build failed (see $OUT/build.log)"; return 0; }
	DNSINK=$dir/src/dnsink
}

SERVERS=()
[ -n "$AB" ] && ONLY=""   # --ab runs its two binaries, none of the list
for s in ${ONLY//,/ }; do
	case "$s" in
	echo|echo-batch|echo-batch-2cpu) SERVERS+=("$s") ;;
	dnsink|dnsink-2w|dnsink-2cpu|dnsink-2w-2cpu|dnsink-alert|dnsink-nocache|dnsink-sigma|dnsink-groups)
		[ "$s" != dnsink-sigma ] || [ -n "$SIGMA" ] || SIGMA=gen
		[ -n "$DNSINK" ] || build_dnsink
		if [ -n "$DNSINK" ] && [ -x "$DNSINK" ]; then SERVERS+=("$s")
		else log "skipping $s: no dnsink binary (build it, or pass --dnsink PATH)"; fi
		if [ "$s" = dnsink-alert ]; then
			need_tools rsyslogd:rsyslog || log "no rsyslogd: alert row uses the file sink only"
		fi ;;
	unbound|unbound-cache) need_tools unbound:unbound && SERVERS+=("$s") || log "skipping $s" ;;
	dnsdist|dnsdist-cache) need_tools dnsdist:dnsdist && SERVERS+=("$s") || log "skipping $s" ;;
	dnsmasq) need_tools dnsmasq:dnsmasq-base && SERVERS+=("$s") || log "skipping dnsmasq" ;;
	tls|hunt|alert|load10m) [ -n "$DNSINK" ] || build_dnsink ;;  # run after the rows
	*) die "unknown server: $s (known: $ALL_SERVERS,$ALL_PARTS)" ;;
	esac
done
[ -n "$AB" ] && SERVERS=(dnsink-A dnsink-B)
# The parts' scripts run from their own directories: give them an absolute path.
if [ -n "$DNSINK" ] && [ -x "$DNSINK" ]; then
	DNSINK=$(cd "$(dirname "$DNSINK")" && pwd)/$(basename "$DNSINK")
fi
[ ${#SERVERS[@]} -gt 0 ] || [ -z "$AB" ] || die "no server to run"
if want tls && ! need_tools h2load:nghttp2-client certtool:gnutls-bin dnsdist:dnsdist dig:bind9-dnsutils; then
	log "skipping tls: its tools are missing"
	ONLY=${ONLY//tls/}
fi
if want hunt && ! need_tools bc:bc /usr/bin/time:time; then
	log "skipping hunt: bc or time missing"
	ONLY=${ONLY//hunt/}
fi
log "expected duration: about $(( (EXPECT + 59) / 60 )) min (time limit $(( LIMIT / 60 )) min)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; server and generator share a core"

# Other programs on the box take ports too: pick two free ones (UDP and TCP) near the defaults.
port_free() { ! ss -Hlnut "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
	local p=$1 i
	for i in $(seq 200); do
		port_free "$p" && [ "$p" != "${2:-}" ] && { echo "$p"; return 0; }
		p=$(( 20000 + RANDOM % 30000 ))
	done
	return 1
}
KNOT_PORT=$(free_port $KNOT_PORT) || die "no free port"
SRV_PORT=$(free_port $SRV_PORT "$KNOT_PORT") || die "no free port"
# --ab runs both binaries at once, B on a port of its own.
SRV_PORT_B=""
if [ -n "$AB" ]; then
	SRV_PORT_B=$(free_port $(( SRV_PORT + 1 )) "$KNOT_PORT") || die "no free port"
	[ "$SRV_PORT_B" != "$SRV_PORT" ] || SRV_PORT_B=$(free_port $(( SRV_PORT + 2 )) "$KNOT_PORT")
fi
# dnsink's metrics endpoint (the one-at-a-time runs only): its cache counters give the hit
# rate of each run.
METRICS_PORT=""
if [ -z "$AB" ]; then
	METRICS_PORT=$(free_port 25380 "$KNOT_PORT") || die "no free port"
	[ "$METRICS_PORT" != "$SRV_PORT" ] || METRICS_PORT=$(free_port 25381 "$KNOT_PORT")
fi

# ---- data -----------------------------------------------------------------------------------
log "work dir $WORK, output $OUT"
log "generating data: $SIZE synthetic names, $NQ queries per file"
python3 "$HERE/gen.py" --out "$WORK" --size "$SIZE" --queries "$NQ" --miss-queries "$MISS_NQ" \
	--lat-queries "$NLAT" --lat-repeat "$LAT_REPEAT" --rules "$ROOT/rules"
LIST=$WORK/list.txt
SIGMA_DIR=""
if [ "$SIGMA" = gen ]; then
	SIGMA_DIR=$WORK/sigma
	python3 "$HERE/sigma_rules.py" --out "$SIGMA_DIR"
elif [ -n "$SIGMA" ]; then
	SIGMA_DIR=$(cd "$SIGMA" && pwd)
fi
if want dnsink-groups; then
	python3 "$HERE/gen_groups.py" --groups 50 --prefixes 1000 --rule Bench.BlockList \
		> "$WORK/groups.yml"
fi
LIST_N=$(wc -l < "$LIST")
# The last name loaded: when it answers NXDOMAIN the whole list is in.
PROBE_NAME=$(tail -n 1 "$LIST")

cc -O2 -Wall -Wextra -o "$WORK/echo-floor" "$HERE/echo.c"

# ---- upstream: knotd on CPU 1 ---------------------------------------------------------------
mkdir -p "$WORK/knot"
cat > "$WORK/knot/bench.test.zone" <<EOF
\$ORIGIN bench.test.
\$TTL 300
@	SOA	ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
@	NS	ns.bench.test.
ns	A	127.0.0.1
*.fwd	A	192.0.2.1
*.fwd	AAAA	2001:db8::1
EOF
cat > "$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$WORK/knot"
log:
  - target: stderr
    any: warning
zone:
  - domain: bench.test
    storage: "$WORK/knot"
    file: bench.test.zone
EOF
python3 "$HERE/probe.py" launch --port $KNOT_PORT --name probe.fwd.bench.test --expect NOERROR \
	--timeout 20 --pidfile "$WORK/knot.pid" --log "$OUT/knotd.log" \
	-- taskset -c $GEN_CPU knotd -c "$WORK/knot/knot.conf" > /dev/null \
	|| die "knotd did not start (see $OUT/knotd.log)"
KNOT_PID=$(cat "$WORK/knot.pid")
PIDS+=("$KNOT_PID")
log "knotd pid $KNOT_PID on 127.0.0.1:$KNOT_PORT"

# ---- servers --------------------------------------------------------------------------------
RSYSLOG_PID=""
SYSLOG_SOCK=$WORK/syslog.sock

start_rsyslog() {
	command -v rsyslogd >/dev/null || return 1
	cat > "$WORK/rsyslog.conf" <<EOF
global(workDirectory="$WORK")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$SYSLOG_SOCK" CreatePath="on")
*.* action(type="omfile" file="$WORK/syslog.out")
EOF
	taskset -c $GEN_CPU rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" \
		> "$OUT/rsyslogd.log" 2>&1 &
	RSYSLOG_PID=$!
	PIDS+=("$RSYSLOG_PID")
	local i
	for i in $(seq 100); do [ -S "$SYSLOG_SOCK" ] && return 0; sleep 0.05; done
	log "rsyslogd did not create $SYSLOG_SOCK"
	return 1
}

# Writes the config of server $1 (listening on port $2, default SRV_PORT) and sets CMD to
# the command that runs it in the foreground.
prepare() {
	local name=$1 dir=$WORK/$1 port=${2:-$SRV_PORT}
	mkdir -p "$dir"
	ANY_RCODE=0
	case "$name" in
	echo)
		ANY_RCODE=1
		CMD=("$WORK/echo-floor" 127.0.0.1 "$port") ;;
	echo-batch|echo-batch-2cpu)
		# The floor with recvmmsg/sendmmsg batches of up to 64, as dnsink's loop reads;
		# echo-batch-2cpu: the same with server and dnsperf on both CPUs, as the
		# *-2cpu rows of dnsink: what the generator and the kernel reach on this box
		# when a one-socket server costs next to nothing (read beside the two-worker rows).
		ANY_RCODE=1
		CMD=("$WORK/echo-floor" 127.0.0.1 "$port" --batch 64) ;;
	dnsink|dnsink-2w|dnsink-2cpu|dnsink-2w-2cpu|dnsink-alert|dnsink-nocache|dnsink-sigma|dnsink-groups|dnsink-A|dnsink-B)
		mkdir -p "$dir/rules"
		ln -sf "$LIST" "$dir/rules/list.txt"
		local alert=false alerts=""
		if [ "$name" = dnsink-alert ]; then
			alert=true
			# As the shipped rules: one alert per (rule, client, entry) per hour.
			if [ -S "$SYSLOG_SOCK" ] || start_rsyslog; then
				alerts="  syslog:
    ident: dnsink-bench
    facility: daemon
    server: unix://$SYSLOG_SOCK"
			fi
			alerts="alerts:
$alerts
  file: $dir/alerts.jsonl"
		fi
		cat > "$dir/rules/bench.yml" <<EOF
id: Bench.BlockList
name: Benchmark block list
description: The benchmark's list, loaded the way an operator loads an ad-block list.
severity: low
action: nxdomain
alert: $alert
dedup_minutes: 60
threshold: 1
domain_files:
  - list.txt
EOF
		local sigma_rules=""
		if [ -n "$SIGMA_DIR" ] && { [ "$name" = dnsink-sigma ] || [ "$name" = dnsink-B ]; }; then
			sigma_rules="  - $SIGMA_DIR/"
		fi
		# The cache is on by default (64 MiB); dnsink-nocache turns it off.
		local extra=""
		[ "$name" = dnsink-nocache ] && extra="cache:
  size_mb: 0"
		[ "$name" = dnsink-B ] && [ -n "$B_YAML" ] && extra="$extra
$(cat "$B_YAML")"
		# dnsink-groups: gen_groups.py's 50 groups over 1,000 prefixes, the client in
		# the last one (the slowest path a group gives a query).
		[ "$name" = dnsink-groups ] && extra="$extra
$(cat "$WORK/groups.yml")"
		[ -n "$METRICS_PORT" ] && [ -z "${AB_BIN[$name]:-}" ] && extra="$extra
metrics:
  listen: 127.0.0.1:$METRICS_PORT"
		cat > "$dir/dnsink.yml" <<EOF
listen:
  - 127.0.0.1:$port
upstreams:
  - 127.0.0.1:$KNOT_PORT
allow_clients:
  - 127.0.0.0/8
rules:
  - $dir/rules/
$sigma_rules
$alerts
$extra
EOF
		# dnsink-2w: two workers (two loops, two SO_REUSEPORT sockets) on the
		# same one core, to show what a second worker costs per query; dnsink-2cpu
		# and dnsink-2w-2cpu: one and two workers with both cores (srv_cpus).
		local workers=1
		case "$name" in dnsink-2w|dnsink-2w-2cpu) workers=2 ;; esac
		CMD=("${AB_BIN[$name]:-$DNSINK}" -c "$dir/dnsink.yml" --workers "$workers") ;;
	unbound|unbound-cache)
		{
			echo "server:"
			echo "  interface: 127.0.0.1@$port"
			echo "  port: $port"
			echo "  do-daemonize: no"
			echo "  username: \"\""
			echo "  chroot: \"\""
			echo "  directory: \"$dir\""
			echo "  pidfile: \"\""
			echo "  use-syslog: no"
			echo "  verbosity: 0"
			echo "  num-threads: 1"
			echo "  do-ip6: no"
			echo "  do-not-query-localhost: no"
			echo "  module-config: \"iterator\""
			echo "  num-queries-per-thread: 4096"
			# unbound: caches of 64 KiB, next to nothing (every name of the files but the
			# cached one's is new anyway); unbound-cache: the default sizes (4 MiB).
			if [ "$name" = unbound ]; then
				echo "  msg-cache-size: 64k"
				echo "  rrset-cache-size: 64k"
				echo "  key-cache-size: 64k"
				echo "  neg-cache-size: 64k"
			fi
			echo "  msg-cache-slabs: 1"
			echo "  rrset-cache-slabs: 1"
			echo "  infra-cache-slabs: 1"
			echo "  key-cache-slabs: 1"
			echo "  access-control: 127.0.0.0/8 allow"
			# test. is one of unbound's default local zones (RFC 6761); our upstream
			# serves bench.test, so switch that default off.
			echo "  local-zone: \"test.\" nodefault"
			sed 's/.*/  local-zone: "&." always_nxdomain/' "$LIST"
			echo "remote-control:"
			echo "  control-enable: no"
			echo "forward-zone:"
			echo "  name: \".\""
			echo "  forward-addr: 127.0.0.1@$KNOT_PORT"
		} > "$dir/unbound.conf"
		CMD=(unbound -d -c "$dir/unbound.conf") ;;
	dnsdist|dnsdist-cache)
		cat > "$dir/dnsdist.conf" <<EOF
setLocal("127.0.0.1:$port")
setACL({"127.0.0.0/8"})
setSecurityPollSuffix("")
setMaxUDPOutstanding(65535)
newServer{address="127.0.0.1:$KNOT_PORT", checkName="bench.test.", checkType="SOA"}
smn = newSuffixMatchNode()
for line in io.lines("$LIST") do smn:add(line) end
addAction(SuffixMatchNodeRule(smn, true), RCodeAction(DNSRCode.NXDOMAIN))
EOF
		# dnsdist-cache: the packet cache on the default pool (rules run before it).
		if [ "$name" = dnsdist-cache ]; then
			cat >> "$dir/dnsdist.conf" <<EOF
pc = newPacketCache(100000)
getPool(""):setCache(pc)
EOF
		fi
		CMD=(dnsdist --supervised --disable-syslog -C "$dir/dnsdist.conf") ;;
	dnsmasq)
		{
			echo "port=$port"
			echo "listen-address=127.0.0.1"
			echo "bind-interfaces"
			echo "no-resolv"
			echo "no-hosts"
			echo "no-poll"
			echo "user=root"
			echo "pid-file="
			echo "cache-size=0"
			echo "dns-forward-max=1000"
			echo "server=127.0.0.1#$KNOT_PORT"
			# address=/name/ with no address answers NXDOMAIN for name and below.
			sed 's|.*|address=/&/|' "$LIST"
		} > "$dir/dnsmasq.conf"
		CMD=(dnsmasq -k -C "$dir/dnsmasq.conf") ;;
	esac
}

ticks() {
	local s
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	# Fields 14 and 15 of stat (utime, stime) are 12 and 13 once pid and comm are cut.
	echo $(( ${12} + ${13} ))
}

# "busy total" ticks of the server's CPU from /proc/stat (busy: user, nice, system and steal;
# interrupt time is left out, as it is mostly our own loopback traffic); with the server's
# own ticks this tells how much of its core other programs took during a run (the noise on a
# shared box).
cpu_busy_total() {
	awk -v c="cpu${1:-$SRV_CPU}" '$1 == c { b = $2 + $3 + $4 + $9; print b, b + $5 + $6 + $7 + $8 }' \
		/proc/stat
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

CLK_TCK=$(getconf CLK_TCK)

# dnsperf starts over at the end of its file; on forward and mix that would ask names again,
# which a cache answers: there a run stops at the end of the file (-n 1), before DURATION
# if the server outpaces it. The others wrap (blocked names never reach the cache).
once() {
	case "$1" in forward|mix) echo "-n 1" ;; esac
}

# "HITS MISSES" of dnsink's cache, from its metrics endpoint (all workers); nothing when the
# endpoint does not answer.
cache_counts() {
	[ -n "$METRICS_PORT" ] || return 1
	python3 - "$METRICS_PORT" <<'PY' 2>/dev/null
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2).read().decode()
v = {"dnsink_cache_hits_total": 0, "dnsink_cache_misses_total": 0}
for line in text.splitlines():
    name = line.split("{", 1)[0].split(" ", 1)[0]
    if name in v:
        v[name] += int(float(line.rsplit(" ", 1)[1]))
print(v["dnsink_cache_hits_total"], v["dnsink_cache_misses_total"])
PY
}

# Before the cached path: every name of the hot set asked once (dnsperf -n 1), so that a
# server with a cache has it warm; the measured runs then ask only those names again.
warm() {
	local name=$1
	taskset -c $GEN_CPU timeout 60 dnsperf -s 127.0.0.1 -p $SRV_PORT -d "$WORK/w-cached.txt" \
		-n 1 -c 1 -q 100 -t 2 > "$OUT/$name-warm.perf" 2>&1 \
		|| log "$name: warm-up failed (see $OUT/$name-warm.perf)"
	log "$name: warmed with $(grep -o 'Queries completed:.*' "$OUT/$name-warm.perf" || echo '?')"
}

# Ticks of what we run on the generator's CPU besides dnsperf: knotd and rsyslogd.
gen_own_ticks() {
	local p t=0 v
	for p in "$KNOT_PID" "$RSYSLOG_PID"; do
		[ -n "$p" ] && v=$(ticks "$p" 2>/dev/null) && t=$(( t + v ))
	done
	echo "$t"
}

# "WORKERS MAIN REST" ticks of process $1's threads: the worker threads (named dnsink-wN),
# the main thread (the thread whose id is the process's) and the others (for dnsink: the
# alert sink's, feeds, dnstap). A thread that ends between two samples takes its ticks with
# it; dnsink's threads live as long as the process.
thread_ticks() {
	local pid=$1 t s comm v w=0 m=0 o=0
	for t in /proc/"$pid"/task/*; do
		s=$(cat "$t/stat" 2>/dev/null) || continue
		comm=${s#*(}; comm=${comm%)*}
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s
		v=$(( ${12} + ${13} ))
		case "$comm" in
		dnsink-w*) w=$(( w + v )) ;;
		*) if [ "${t##*/}" = "$pid" ]; then m=$(( m + v )); else o=$(( o + v )); fi ;;
		esac
	done
	echo "$w $m $o"
}

run_server() {
	local name=$1 load pid rss path t0 t1 perf lat k n lats b0 b1 c0 c1 s0 s1 any h0 h1 \
		cache th0 th1 split g0 g1 e0 e1 o0 o1 d0 d1
	prepare "$name"
	log "$name: starting (${CMD[0]##*/}, CPU $(srv_cpus "$name"))"
	if ! load=$(python3 "$HERE/probe.py" launch --port $SRV_PORT --name "$PROBE_NAME" \
		--expect NXDOMAIN --timeout 120 --pidfile "$WORK/$name.pid" --log "$OUT/$name.log" \
		-- taskset -c "$(srv_cpus "$name")" "${CMD[@]}"); then
		log "$name: did not load (see $OUT/$name.log)"
		[ -s "$WORK/$name.pid" ] && stop_pid "$(cat "$WORK/$name.pid")"
		return 1
	fi
	pid=$(cat "$WORK/$name.pid")
	PIDS+=("$pid")
	rss=$(rss_kib "$pid")
	log "$name: pid $pid loaded in $load s, RSS $(( rss / 1024 )) MiB"
	if [ "$ANY_RCODE" = 0 ] && ! python3 "$HERE/probe.py" query --port $SRV_PORT \
		--name "probe-$name.fwd.bench.test" --expect NOERROR --timeout 5; then
		log "$name: forwarding does not work; running anyway (answers will count wrong)"
	fi
	any=()
	[ "$ANY_RCODE" = 1 ] && any=(--any-rcode)
	for path in $(paths_of "$name"); do
		alive "$pid" || { log "$name: died"; break; }
		perf=$OUT/$name-$path.perf
		[ "$path" = cached ] && warm "$name"
		h0=""
		case "$name" in dnsink*) h0=$(cache_counts) || h0="" ;; esac
		split=()
		case "$name" in dnsink*) th0=$(thread_ticks "$pid") ;; esac
		t0=$(ticks "$pid")
		# shellcheck disable=SC2046
		taskset -c "$(gen_cpus "$name")" timeout $(( DURATION + 30 )) dnsperf -s 127.0.0.1 \
			-p $SRV_PORT -d "$WORK/q-$path.txt" $(once "$path") -l "$DURATION" \
			$(load_opts "$name") -t 2 > "$perf" 2>&1 || log "$name/$path: dnsperf failed (see $perf)"
		t1=$(ticks "$pid") || { log "$name: died during $path"; break; }
		case "$name" in
		dnsink*)
			th1=$(thread_ticks "$pid")
			read -r -a th0 <<< "$th0"; read -r -a th1 <<< "$th1"
			split=(--threads "$(( th1[0] - th0[0] )):$(( th1[1] - th0[1] )):$(( th1[2] - th0[2] ))") ;;
		esac
		cache=()
		if [ -n "$h0" ] && h1=$(cache_counts); then
			cache=(--cache-hits $(( ${h1% *} - ${h0% *} )) --cache-misses $(( ${h1#* } - ${h0#* } )))
		fi
		lats=()
		n=$(lat_repeat "$name" "$path")
		for (( k = 1; k <= n; k++ )); do
			lat=$OUT/$name-$path-$k.lat
			read -r b0 c0 < <(cpu_busy_total)
			read -r g0 e0 < <(cpu_all_busy_total $GEN_CPU)
			s0=$(ticks "$pid") || break
			o0=$(gen_own_ticks); d0=$(child_ticks)
			taskset -c $GEN_CPU timeout $(( LAT_DURATION + 30 )) dnsperf -s 127.0.0.1 \
				-p $SRV_PORT -d "$WORK/lat-$path-$k.txt" -l "$LAT_DURATION" -Q $RATE \
				-c $CLIENTS -q $OUTSTANDING -t 2 -v > "$lat" 2>&1 \
				|| log "$name/$path: dnsperf (fixed rate) failed (see $lat)"
			d1=$(child_ticks); o1=$(gen_own_ticks)
			read -r b1 c1 < <(cpu_busy_total)
			read -r g1 e1 < <(cpu_all_busy_total $GEN_CPU)
			s1=$(ticks "$pid") || break
			lats+=(--lat "$lat" "--others=$(( b1 - b0 - (s1 - s0) )):$(( c1 - c0 ))" \
				"--gen-others=$(( g1 - g0 - (o1 - o0) - (d1 - d0) )):$(( e1 - e0 ))")
		done
		python3 "$HERE/report.py" record --results "$RESULTS" --server "$name" \
			--path "$path" --perf "$perf" "${lats[@]}" --ticks0 "$t0" --ticks1 "$t1" \
			--clk-tck "$CLK_TCK" --rss-kib "$rss" --load-s "$load" "${any[@]}" "${cache[@]}" \
			"${split[@]}" --cpus "$(srv_cpus "$name")/$(gen_cpus "$name")"
		# The per-answer lines were needed once; keep the summaries only.
		for (( k = 1; k <= n; k++ )); do sed -i '/^> /d' "$OUT/$name-$path-$k.lat"; done
		log "$name/$path: $(python3 "$HERE/report.py" brief --results "$RESULTS")"
	done
	if [ "$name" = dnsink-alert ]; then
		log "$name: alerts written: file $(wc -l < "$WORK/$name/alerts.jsonl" 2>/dev/null || echo 0) lines, syslog $(wc -l < "$WORK/syslog.out" 2>/dev/null || echo 0) lines"
		rm -f "$WORK/$name/alerts.jsonl" "$WORK/syslog.out"
	fi
	stop_pid "$pid"
	forget_pid "$pid"
	case "$name" in
	dnsink*) grep -o 'stats: alerts.*' "$OUT/$name.log" | sed "s/^/[bench] $name: /" >&2 || true ;;
	esac
}

# ---- --ab: two dnsink binaries, alternated ----------------------------------------------------
# Both run at once (A on SRV_PORT, B on SRV_PORT_B, both pinned to CPU 0; the one not under
# load sits in epoll), so one path is measured on A and on B within seconds of each other
# and a burst of other work on the box lands on both alike. Each round starts both afresh
# (a new process: new address layout, a new load of the list) and alternates which goes
# first: A B, then B A (ABBA), so neither always runs second on a warm machine.
declare -A AB_PID=() AB_LOAD=() AB_RSS=() AB_PORT=([dnsink-A]=$SRV_PORT [dnsink-B]=$SRV_PORT_B)

ab_start() {
	local name=$1 round=$2 pid load
	prepare "$name" "${AB_PORT[$name]}"
	if ! load=$(python3 "$HERE/probe.py" launch --port "${AB_PORT[$name]}" \
		--name "$PROBE_NAME" --expect NXDOMAIN --timeout 120 --pidfile "$WORK/$name.pid" \
		--log "$OUT/$name.log" -- taskset -c $SRV_CPU "${CMD[@]}"); then
		log "$name: did not load (see $OUT/$name.log)"
		[ -s "$WORK/$name.pid" ] && stop_pid "$(cat "$WORK/$name.pid")"
		return 1
	fi
	pid=$(cat "$WORK/$name.pid")
	PIDS+=("$pid")
	AB_PID[$name]=$pid AB_LOAD[$name]=$load AB_RSS[$name]=$(rss_kib "$pid")
	log "$name round $round: pid $pid loaded in $load s, RSS $(( ${AB_RSS[$name]} / 1024 )) MiB"
	python3 "$HERE/probe.py" query --port "${AB_PORT[$name]}" \
		--name "probe-$name-$round.fwd.bench.test" --expect NOERROR --timeout 5 \
		|| log "$name: forwarding does not work; running anyway (answers will count wrong)"
}

ab_stop() {
	local name
	for name in "$@"; do
		[ -n "${AB_PID[$name]:-}" ] || continue
		stop_pid "${AB_PID[$name]}"
		forget_pid "${AB_PID[$name]}"
		AB_PID[$name]=""
	done
}

# As cpu_busy_total, for CPU $1, with interrupt time in: taken against the ticks of the
# processes we run there (dnsperf, knotd), which are charged the softirq work (loopback
# delivery) done in their context; left out, ours would exceed the CPU's busy time.
cpu_all_busy_total() {
	awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' \
		/proc/stat
}

# CPU ticks of the children this shell has waited for (cutime + cstime, fields 16 and 17):
# taken around one dnsperf run, the CPU that dnsperf used.
child_ticks() {
	local s
	s=$(cat "/proc/$$/stat") || return 1
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $(( ${14} + ${15} ))
}

# One full-speed run of server $1 on path $2 in round $3, recorded with the share of CPU 0
# (the server's) and of CPU 1 (dnsperf's and knotd's) that other programs took meanwhile:
# CPU per query barely moves when the box is busy, QPS does (on either CPU), so these tell
# a noisy run from a slow binary. On CPU 1 it counts interrupt time too (a tick-accounting
# kernel charges it to whichever task it lands on), so some of our own loopback work done
# from idle or ksoftirqd can show there, alike for A and B.
ab_measure() {
	local name=$1 path=$2 round=$3 pid=${AB_PID[$1]} perf t0 t1 b0 b1 c0 c1 g0 g1 h0 h1 \
		k0 k1 d0 d1
	alive "$pid" || { log "$name: died"; return 1; }
	perf=$OUT/$name-$path-r$round.perf
	read -r b0 c0 < <(cpu_busy_total)
	read -r g0 h0 < <(cpu_all_busy_total $GEN_CPU)
	t0=$(ticks "$pid")
	k0=$(ticks "$KNOT_PID")
	d0=$(child_ticks)
	taskset -c $GEN_CPU timeout $(( DURATION + 30 )) dnsperf -s 127.0.0.1 -p "${AB_PORT[$name]}" \
		-d "$WORK/q-$path.txt" $(once "$path") -l "$DURATION" -c $CLIENTS -q $OUTSTANDING -t 2 \
		> "$perf" 2>&1 || log "$name/$path: dnsperf failed (see $perf)"
	d1=$(child_ticks)
	t1=$(ticks "$pid") || { log "$name: died during $path"; return 1; }
	k1=$(ticks "$KNOT_PID")
	read -r b1 c1 < <(cpu_busy_total)
	read -r g1 h1 < <(cpu_all_busy_total $GEN_CPU)
	python3 "$HERE/report.py" record --results "$RESULTS" --server "$name" --path "$path" \
		--perf "$perf" --ticks0 "$t0" --ticks1 "$t1" --clk-tck "$CLK_TCK" \
		--rss-kib "${AB_RSS[$name]}" --load-s "${AB_LOAD[$name]}" --round "$round" \
		--binary "${AB_BIN[$name]}" "--others-run=$(( b1 - b0 - (t1 - t0) )):$(( c1 - c0 ))" \
		"--gen-others-run=$(( g1 - g0 - (k1 - k0) - (d1 - d0) )):$(( h1 - h0 ))"
	log "$name/$path round $round: $(python3 "$HERE/report.py" brief --results "$RESULTS")"
}

run_ab() {
	local round order name path
	for round in $(seq "$ROUNDS"); do
		if (( round % 2 )); then order=(dnsink-A dnsink-B); else order=(dnsink-B dnsink-A); fi
		for name in "${order[@]}"; do
			ab_start "$name" "$round" || { ab_stop "${order[@]}"; return 1; }
		done
		for path in $PATHS; do
			for name in "${order[@]}"; do
				ab_measure "$name" "$path" "$round" || { ab_stop "${order[@]}"; return 1; }
			done
		done
		ab_stop "${order[@]}"
	done
}

# The commit a binary was built from, when its build directory sits in a git tree.
commit_of() {
	git -C "$(dirname "$1")" rev-parse --short HEAD 2>/dev/null || echo unknown
}

# ---- the parts with scripts of their own ------------------------------------------------------
# tls.sh, hunt.sh, alert.sh and load10m.sh run after the rows (their own knotd and ports;
# the rows' servers are stopped by then, knotd idles), with the same dnsink binary; each
# writes JSON lines to DIR/results.jsonl, which go into the one results file marked with
# their source, so that the one table has them. Each is bounded by timeout(1), which stops
# the script's whole process group when its time is up; a script absent from this tree
# (alert.sh and load10m.sh come from other branches) is skipped with a note.
PART_NOTES=()
run_part() { # name script bound args...
	local name=$1 file=$2 script=$HERE/$2 bound=$3 rc=0 n
	shift 3
	if [ ! -f "$script" ]; then
		log "$name: tools/bench/$file is not in this tree: skipped"
		PART_NOTES+=("$name: tools/bench/$file not in this tree, not run")
		return 0
	fi
	if [ -z "$DNSINK" ] || [ ! -x "$DNSINK" ]; then
		log "$name: no dnsink binary: skipped"
		PART_NOTES+=("$name: no dnsink binary, not run")
		return 0
	fi
	mkdir -p "$OUT/$name"
	: > "$OUT/$name/results.jsonl"
	log "$name: $file $* (at most $bound s)"
	timeout -k 10 "$bound" bash "$script" "$@" > "$OUT/$name/run.log" 2>&1 || rc=$?
	[ $rc = 0 ] || { log "$name: $file exited with $rc (see $OUT/$name/run.log)"
		PART_NOTES+=("$name: tools/bench/$file exited with $rc (see $name/run.log)"); }
	if [ -s "$OUT/$name/results.jsonl" ]; then
		n=$(python3 "$HERE/report.py" merge --results "$RESULTS" --source "$name" \
			"$OUT/$name/results.jsonl")
		log "$name: $n records"
	else
		log "$name: no records"
	fi
}
# Options for a part's script, given only when the script mentions them (alert.sh and
# load10m.sh live on other branches, and their options may differ): prints OPT VALUE...
part_opt() { # script opt value...
	grep -q -- "$2" "$HERE/$1" 2>/dev/null && { shift; echo "$@"; }
	return 0
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
if [ -n "$AB" ]; then
	run_ab || log "A/B stopped early; the table has the rounds that completed"
else
	for s in "${SERVERS[@]}"; do
		run_server "$s" || true
	done
	# The rows are done: knotd is not needed any more, and the parts start their own.
	stop_pid "$KNOT_PID"
	forget_pid "$KNOT_PID"
	if want tls; then
		run_part tls tls.sh $(( 120 + 11 * (TLS_DURATION + 15) )) --dnsink "$DNSINK" \
			--duration "$TLS_DURATION" --out "$OUT/tls"
	fi
	if want hunt; then
		run_part hunt hunt.sh $(( QUICK ? 240 : 900 )) --dnsink "$DNSINK" \
			--records "$HUNT_N" --out "$OUT/hunt"
	fi
	if want alert; then
		# shellcheck disable=SC2046
		# The same list size as the rows; --quick: their duration too.
		run_part alert alert.sh $(( QUICK ? 300 : 600 )) --dnsink "$DNSINK" --out "$OUT/alert" \
			$(part_opt alert.sh --list-size "$SIZE") \
			$( [ "$QUICK" = 1 ] && part_opt alert.sh --duration "$DURATION")
	fi
	if want load10m; then
		# shellcheck disable=SC2046
		# --quick: a 1M list instead of 10M (the list is made once per size and kept
		# under /var/tmp/dnsink-bench by load10m.sh).
		run_part load10m load10m.sh $(( QUICK ? 300 : 900 )) --dnsink "$DNSINK" \
			--out "$OUT/load10m" $( [ "$QUICK" = 1 ] && part_opt load10m.sh --size 1000000)
	fi
fi
T_END=$(date +%s)

# ---- table ----------------------------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
{
	echo "dnsink benchmark, $(date -u +%Y-%m-%dT%H:%MZ)$([ "$QUICK" = 1 ] && echo ', --quick (a smoke run)')"
	echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "machine: $(nproc) CPUs ($CPU_MODEL), $MEM_GIB GiB, $(. /etc/os-release; echo "$PRETTY_NAME") ($(cat /etc/debian_version 2>/dev/null || echo '?')), kernel $(uname -r)"
	echo "load average before: $LOADAVG; after: $(cut -d' ' -f1-3 /proc/loadavg); took $(( (T_END - T_START) / 60 )) min $(( (T_END - T_START) % 60 )) s"
	if [ -n "$AB" ]; then
		echo "list: $LIST_N names; A/B: $ROUNDS rounds (ABBA order), per round and path one ${DURATION} s full-speed run (dnsperf -c $CLIENTS -q $OUTSTANDING) of each; server on CPU $SRV_CPU, dnsperf + knotd on CPU $GEN_CPU"
		echo "dnsink-A: ${AB_BIN[dnsink-A]} ($(commit_of "${AB_BIN[dnsink-A]}"))"
		echo "dnsink-B: ${AB_BIN[dnsink-B]} ($(commit_of "${AB_BIN[dnsink-B]}"))${B_YAML:+, config plus $B_YAML}"
		echo
		python3 "$HERE/report.py" ab --results "$RESULTS"
	else
		echo "list: $LIST_N names; per path: ${DURATION} s at full speed (dnsperf -c $CLIENTS -q $OUTSTANDING), then $LAT_REPEAT runs of ${LAT_DURATION} s at $RATE qps for the floors and dnsink on blocked and cached and for dnsink-alert, $LAT_MINOR for the other rows, none for dnsink-2w and the *-2cpu rows (median run shown, with the spread); server on CPU $SRV_CPU, dnsperf + knotd on CPU $GEN_CPU (the *-2cpu rows: server and dnsperf -T 2 -c $(( CLIENTS * 2 )) -q $(( OUTSTANDING * 2 )) on both)"
		[ -n "$DNSINK" ] && echo "dnsink: $DNSINK"
		for n in "${PART_NOTES[@]}"; do echo "note: $n"; done
		echo
		python3 "$HERE/report.py" table --results "$RESULTS" --rate "$(( RATE / 1000 ))k"
	fi
} | tee "$OUT/table.md"
log "results in $OUT"
