# SPDX-License-Identifier: MIT
#
# Stopping what a benchmark script started, by PID: sourced by run.sh and alert.sh, which
# keep the PIDs they start in the array PIDS and define log().

# True while process $1 exists and is not a zombie.
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

stop_pid() {
	local pid=$1 i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		alive "$pid" || return 0
		sleep 0.1
	done
	log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
