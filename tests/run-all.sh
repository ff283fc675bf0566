#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The test command of dnsink: builds and runs every test, in seven stages:
#   1. format      clang-format --dry-run --Werror (the checked-in
#                  .clang-format) over every *.c and *.h in src/, include/,
#                  tests/ and tools/; one test
#   2. build-ci    -Dwerror=true, debugoptimized: unit + integration tests
#   3. build-asan  address + undefined sanitizers: the whole suite again
#   4. build-tsan  ThreadSanitizer: the integration tests of suite 'threads'
#                  (several dnsink threads on shared state); any report fails
#   5. valgrind    the unit tests of build-ci under memcheck
#   6. fuzz        (when tests/fuzz/meson.build exists and clang is present)
#                  a clang -Dfuzzing=true build, each target run briefly over
#                  its corpus; a crash fails
#   7. package     (as root) tests/package/test_deb.sh: the Debian package built
#                  with dpkg-buildpackage, lintian, installed with dpkg -i,
#                  its daemon run as the unit would, purged; and
#                  tests/package/test_quickstart.sh: README's quick start as
#                  root and as a sudo user; each check counts
# Every stage runs even when an earlier one failed. The last line printed is
# "N passed, N failed", summed over all stages (meson's test counts from each
# run's testlog JSON; a build that fails counts as one failed test; each timed
# fuzz run counts as one test; the format check counts as one test). Exit
# status 1 when anything failed.
#
# Environment: FUZZ_SECONDS (default 25) per fuzz target (ten targets: the stage
# stays near five minutes); JOBS for ninja/meson.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-25}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

total_pass=0
total_fail=0
stage_notes=()

header() {
	echo
	echo "======================================================================"
	echo "== $*"
	echo "======================================================================"
}

# Adds the counts of a meson testlog JSON file to the totals.
count_log() {
	local log=$1 stage=$2 counts p f
	if [ ! -f "$log" ]; then
		echo "run-all: no test log $log" >&2
		total_fail=$((total_fail + 1))
		stage_notes+=("$stage: no test log (build or meson failed, see above)")
		return
	fi
	counts=$(python3 - "$log" <<'PY'
import json, sys
ok = bad = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r != "SKIP":
            bad += 1
print(ok, bad)
PY
)
	p=${counts% *}
	f=${counts#* }
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	stage_notes+=("$stage: $p passed, $f failed")
}

build_failed() {
	total_fail=$((total_fail + 1))
	stage_notes+=("$1: BUILD FAILED")
}

# meson setup, reusing an existing build directory.
setup() {
	local dir=$1
	shift
	if [ -d "$dir/meson-private" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

# Runs `meson test` with the given arguments; its testlog is counted. The
# exit status is ignored here because the counts carry the verdict.
run_meson_test() {
	local dir=$1 stage=$2 log=$3
	shift 3
	rm -f "$dir/meson-logs/$log"
	meson test -C "$dir" --print-errorlogs --num-processes "$JOBS" "$@" || true
	count_log "$dir/meson-logs/$log" "$stage"
}

# --- 1. formatting ------------------------------------------------------------
header "1/7 format: clang-format --dry-run --Werror over src/ include/ tests/ tools/"
# Debian 12 ships clang-format 14 (package clang-format); other versions lay
# some constructs out differently, so the versioned binary is preferred.
CLANG_FORMAT=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$CLANG_FORMAT" ]; then
	echo "run-all: clang-format not found (tools/install-deps.sh installs it)"
	total_fail=$((total_fail + 1))
	stage_notes+=("format: FAILED (no clang-format)")
else
	"$CLANG_FORMAT" --version
	mapfile -t fmt_files < <(find src include tests tools -type f \( -name '*.c' -o -name '*.h' \) |
		LC_ALL=C sort)
	fmt_off=()
	for f in "${fmt_files[@]}"; do
		if ! "$CLANG_FORMAT" --dry-run --Werror --style=file "$f" 2>/dev/null; then
			fmt_off+=("$f")
		fi
	done
	if [ "${#fmt_off[@]}" -eq 0 ]; then
		echo "run-all: ${#fmt_files[@]} files formatted as .clang-format asks"
		total_pass=$((total_pass + 1))
		stage_notes+=("format: 1 passed, 0 failed (${#fmt_files[@]} files)")
	else
		# The first few differences in full, then the list of files. No pipe
		# into head: under pipefail its SIGPIPE would end this script.
		fmt_diff=$("$CLANG_FORMAT" --dry-run --style=file "${fmt_off[@]}" 2>&1 || true)
		sed -n 1,60p <<<"$fmt_diff"
		echo "run-all: ${#fmt_off[@]} of ${#fmt_files[@]} files need clang-format:"
		printf '  %s\n' "${fmt_off[@]}"
		total_fail=$((total_fail + 1))
		stage_notes+=("format: 0 passed, 1 failed (${#fmt_off[@]} files off)")
	fi
fi

# --- 2. the regular build --------------------------------------------------
header "2/7 build-ci: -Dwerror=true --buildtype=debugoptimized, unit + integration"
if setup build-ci -Dwerror=true --buildtype=debugoptimized &&
	ninja -C build-ci -j "$JOBS"; then
	run_meson_test build-ci "build-ci" testlog.json
	ci_ok=1
else
	build_failed "build-ci"
	ci_ok=0
fi

# --- 3. address and undefined-behaviour sanitizers ----------------------------
header "3/7 build-asan: -Db_sanitize=address,undefined, unit + integration"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	--buildtype=debugoptimized && ninja -C build-asan -j "$JOBS"; then
	run_meson_test build-asan "build-asan" testlog.json
else
	build_failed "build-asan"
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

# --- 4. thread sanitizer --------------------------------------------------------
header "4/7 build-tsan: -Db_sanitize=thread, integration suite 'threads'"
# halt_on_error: dnsink exits with status 66 at its first report, which the
# harness names when it stops dnsink; it also fails a test on any
# "WARNING: ThreadSanitizer" in dnsink's log. tests/tsan.supp, when present,
# holds suppressions for code that is not ours (libuv, glibc), each with a
# comment saying why.
TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1
if [ -f tests/tsan.supp ]; then
	TSAN_OPTIONS=$TSAN_OPTIONS:suppressions=$ROOT/tests/tsan.supp
fi
export TSAN_OPTIONS
if setup build-tsan -Db_sanitize=thread -Db_lundef=false \
	--buildtype=debugoptimized && ninja -C build-tsan -j "$JOBS"; then
	run_meson_test build-tsan "build-tsan" testlog.json --suite threads
else
	build_failed "build-tsan"
fi
unset TSAN_OPTIONS

# --- 5. valgrind ----------------------------------------------------------------
header "5/7 valgrind: unit tests of build-ci under memcheck"
if [ "$ci_ok" -eq 1 ]; then
	run_meson_test build-ci "valgrind" testlog-valgrind.json --setup valgrind --suite unit
else
	build_failed "valgrind (no build-ci)"
fi

# --- 6. fuzzing smoke test -------------------------------------------------------
header "6/7 fuzz: libFuzzer targets, ${FUZZ_SECONDS}s each over their corpus"
if [ ! -f tests/fuzz/meson.build ]; then
	echo "run-all: no tests/fuzz/meson.build, skipping"
	stage_notes+=("fuzz: skipped (no targets)")
elif ! command -v clang >/dev/null 2>&1; then
	echo "run-all: clang not found, skipping"
	stage_notes+=("fuzz: skipped (no clang)")
elif CC=clang setup build-fuzz -Dfuzzing=true -Dtests=disabled --buildtype=debugoptimized &&
	ninja -C build-fuzz -j "$JOBS"; then
	# The seed replay that meson knows about, then a short timed run each.
	run_meson_test build-fuzz "fuzz corpus" testlog.json --suite fuzz
	fp=0
	ff=0
	mkdir -p build-fuzz/fuzz-work
	for exe in build-fuzz/tests/fuzz/fuzz_*; do
		[ -x "$exe" ] && [ -f "$exe" ] || continue
		name=$(basename "$exe")
		name=${name#fuzz_}
		corpus="$ROOT/tests/fuzz/corpus/$name"
		work="build-fuzz/fuzz-work/$name"
		rm -rf "$work"
		mkdir -p "$work"
		# New inputs go to a scratch copy, never into the checked-in corpus.
		if [ -d "$corpus" ]; then
			cp -r "$corpus/." "$work/"
		fi
		echo "-- fuzz_$name: ${FUZZ_SECONDS}s"
		if (cd build-fuzz/fuzz-work && timeout $((FUZZ_SECONDS + 60)) \
			"$ROOT/$exe" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 "$name" >"$name.log" 2>&1); then
			# Coverage at the start (corpus loaded) and the end, then the totals.
			grep -E "INITED|DONE" "build-fuzz/fuzz-work/$name.log" | tail -n 2 || true
			tail -n 5 "build-fuzz/fuzz-work/$name.log"
			fp=$((fp + 1))
		else
			echo "run-all: fuzz_$name FAILED; log:"
			tail -n 60 "build-fuzz/fuzz-work/$name.log"
			ls build-fuzz/fuzz-work/crash-* build-fuzz/fuzz-work/leak-* \
				build-fuzz/fuzz-work/timeout-* 2>/dev/null || true
			ff=$((ff + 1))
		fi
	done
	total_pass=$((total_pass + fp))
	total_fail=$((total_fail + ff))
	stage_notes+=("fuzz runs: $fp passed, $ff failed")
else
	build_failed "build-fuzz"
fi

# --- 7. the Debian package and the quick start ----------------------------------
header "7/7 package: tests/package/test_deb.sh and test_quickstart.sh"
if [ "$(id -u)" -ne 0 ]; then
	echo "run-all: not root, skipping (dpkg -i and the sudo user need root)"
	stage_notes+=("package: skipped (not root)")
else
	for script in test_deb test_quickstart; do
		pkg_out=$(bash "tests/package/$script.sh" 2>&1) || true
		echo "$pkg_out"
		pkg_last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$pkg_out" | tail -n 1)
		if [ -n "$pkg_last" ]; then
			pp=${pkg_last%% passed*}
			pf=${pkg_last#*passed, }
			pf=${pf%% failed*}
			total_pass=$((total_pass + pp))
			total_fail=$((total_fail + pf))
			stage_notes+=("package $script: $pp passed, $pf failed")
		else
			total_fail=$((total_fail + 1))
			stage_notes+=("package $script: FAILED (no summary line)")
		fi
	done
fi

header "summary"
for n in "${stage_notes[@]}"; do
	echo "  $n"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
