#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Throughput and memory of `dnsink hunt` (BENCHMARKS.md, "Hunting"): Route 53
# JSON lines and dnstap, one thread (-j 1: records per second per core), the
# 1M-entry list of gen.py loaded as a rule (plus the shipped rules), over N
# and 4N records, so that a memory that grows with the input shows.
#
#   tools/bench/hunt.sh [BUILD_DIR] [N]      (default build, 1000000)
#   tools/bench/hunt.sh [--dnsink BIN] [--records N] [--out DIR]
#
# With --out DIR each run is also one JSON line in DIR/results.jsonl ({"server": "dnsink",
# "path": "hunt-route53" or "hunt-dnstap", "records", "mb", "secs", "records_per_s",
# "matches", "rss_mib"}), which run.sh folds into its table.
set -euo pipefail

build=build
n=1000000
out=""
dnsink=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	build=$1
	n=${2:-$n}
else
	while [ $# -gt 0 ]; do
		case "$1" in
		--dnsink) dnsink=$2; shift 2 ;;
		--records) n=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		*) echo "hunt.sh: unknown argument $1" >&2; exit 2 ;;
		esac
	done
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
dnsink=${dnsink:-$build/src/dnsink}
[ -x "$dnsink" ] || { echo "hunt.sh: no dnsink at $dnsink" >&2; exit 1; }
if [ -n "$out" ]; then
	mkdir -p "$out"
	: >"$out/results.jsonl"
fi
work=$(mktemp -d /tmp/dk-hunt-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

python3 "$root/tools/bench/gen.py" --out "$work" --size 1000000 --queries 10 --lat-queries 10 \
	--lat-repeat 1 --rules "$root/rules" >/dev/null
mkdir -p "$work/rules"
cat >"$work/rules/bench-list.yml" <<YML
id: Bench.List
name: the benchmark's 1M-entry list
severity: medium
action: nxdomain
domain_files:
  - ../list.txt
YML
cat >"$work/hunt.yml" <<YML
rules:
  - $root/rules/
  - $work/rules/
YML
for size in "$n" $((n * 4)); do
	python3 "$root/tools/bench/hunt_gen.py" --list "$work/list.txt" --records "$size" \
		--route53 "$work/r53-$size.json" --dnstap "$work/tap-$size.dnstap"
done
for fmt in r53 tap; do
	for size in "$n" $((n * 4)); do
		f="$work/$fmt-$size"
		[ "$fmt" = r53 ] && f="$f.json" || f="$f.dnstap"
		mb=$(( $(stat -c %s "$f") / 1000000 ))
		# The summary line says records and seconds; time(1) the peak RSS.
		/usr/bin/time -f "%M" -o "$work/rss" "$dnsink" hunt -c "$work/hunt.yml" -j 1 --no-dedup \
			"$f" >"$work/out" 2>"$work/err"
		line=$(grep '^hunt:' "$work/err")
		recs=$(sed -E 's/.* ([0-9]+) records.*/\1/' <<<"$line")
		secs=$(sed -E 's/.* ([0-9.]+) s$/\1/' <<<"$line")
		rate=$(echo "$recs / $secs" | bc -l)
		rss=$(echo "$(cat "$work/rss") / 1024" | bc -l)
		matches=$(wc -l <"$work/out")
		printf '%-6s %9s records %6s MB  %7.3f s  %10.0f records/s  %4d matches  RSS %6.1f MiB\n' \
			"$fmt" "$recs" "$mb" "$secs" "$rate" "$matches" "$rss"
		if [ -n "$out" ]; then
			printf '{"server": "dnsink", "path": "hunt-%s", "records": %s, "mb": %s, "secs": %s, "records_per_s": %.0f, "matches": %s, "rss_mib": %.1f}\n' \
				"$([ "$fmt" = r53 ] && echo route53 || echo dnstap)" "$recs" "$mb" "$secs" \
				"$rate" "$matches" "$rss" >>"$out/results.jsonl"
		fi
		rm -f "$work/out"
	done
done
