#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# RPZ load cost (issue 15): the same 1M random names as a plain list and as an
# RPZ zone of QNAME triggers ("name CNAME ."), loaded by `dnsink check` (CPU
# time user+sys and peak RSS, median of RUNS), and the same zone loaded by
# unbound's rpz: module (time until a trigger answers NXDOMAIN, peak RSS).
# Everything on loopback, in a temporary folder; unbound is stopped by PID.
#
# usage: tools/bench/rpz_load.sh [BUILD_DIR] [RUNS]     (default build, 7)
set -euo pipefail

BUILD=${1:-build}
RUNS=${2:-7}
DNSINK=$BUILD/src/dnsink
W=$(mktemp -d /tmp/dnsink-rpzbench-XXXXXX)
trap 'rm -rf "$W"' EXIT

python3 - "$W" <<'PY'
import random, sys
w = sys.argv[1]
random.seed(7)
names = set()
while len(names) < 1000000:
    names.add("%s%d.%s" % ("".join(random.choice("abcdefghijklmnopqrstuvwxyz")
                                   for _ in range(random.randint(5, 12))),
                           random.randint(0, 999),
                           random.choice(["com", "net", "org", "ru", "xyz", "info"])))
names = sorted(names)
with open(w + "/plain.txt", "w") as f:
    f.writelines(n + "\n" for n in names)
with open(w + "/big.rpz", "w") as f:
    f.write("$TTL 300\n@ SOA ns.big.rpz. h.big.rpz. 1 3600 600 86400 60\n@ NS ns.big.rpz.\n"
            "ns A 127.0.0.1\n")
    f.writelines("%s CNAME .\n" % n for n in names)
open(w + "/probe", "w").write(names[4] + "\n")
open(w + "/plain.yml", "w").write("id: B.Plain\nname: plain\nseverity: low\naction: nxdomain\n"
                                  "domain_files: [plain.txt]\n")
open(w + "/rpz.yml", "w").write("id: B.Rpz\nname: rpz\nseverity: low\n"
                                "rpz: { file: big.rpz, zone: big.rpz }\n")
for k in ("plain", "rpz"):
    open("%s/%s-conf.yml" % (w, k), "w").write(
        "listen: [127.0.0.1:5591]\nupstreams: [127.0.0.1:5592]\nrules: [%s/%s.yml]\n" % (w, k))
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for k in plain rpz; do
	cpu=$(for _ in $(seq "$RUNS"); do
		/usr/bin/time -f "%U %S" "$DNSINK" check -c "$W/$k-conf.yml" 2>&1 >/dev/null |
			tail -1 | awk '{print $1 + $2}'
	done | median)
	rss=$(/usr/bin/time -f "%M" "$DNSINK" check -c "$W/$k-conf.yml" 2>&1 >/dev/null | tail -1)
	echo "dnsink $k: cpu ${cpu} s (median of $RUNS), max RSS ${rss} KiB"
done

if command -v unbound >/dev/null; then
	cat >"$W/unbound.conf" <<EOC
server:
    interface: 127.0.0.1@5593
    port: 5593
    do-daemonize: no
    use-syslog: no
    username: ""
    chroot: ""
    directory: "$W"
    pidfile: ""
    module-config: "respip iterator"
    do-ip6: no
rpz:
    name: big.rpz
    zonefile: $W/big.rpz
EOC
	probe=$(cat "$W/probe")
	start=$(date +%s.%N)
	unbound -d -c "$W/unbound.conf" >"$W/unbound.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 1200); do
		kdig @127.0.0.1 -p 5593 +time=1 +retry=0 "$probe" 2>/dev/null | grep -q NXDOMAIN && break
		sleep 0.05
	done
	end=$(date +%s.%N)
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	echo "unbound rpz: ready after $(echo "$end - $start" | bc) s, max RSS ${rss} KiB"
fi
