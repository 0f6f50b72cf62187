#!/bin/bash
# center.sh: starts and stops the vigild of the fleet benchmark. Used by
# run.sh and, for the restart scenario, by the load generator itself
# (--restart-cmd), so that the center comes back with the same config,
# ports and file descriptor limit.
#
#   center.sh start VIGILD CONF DATA_DIR LOG   starts vigild -d in the
#       background, waits until it listens (DATA_DIR/vigild.ports), prints
#       its pid
#   center.sh stop DATA_DIR                    SIGTERM, waits up to 120 s
set -euo pipefail

case "${1:-}" in
start)
	vigild=$2 conf=$3 data=$4 log=$5
	rm -f "$data/vigild.ports"
	# setsid: the center must not get the terminal's signals, nor die
	# with the shell that started it.
	setsid "$vigild" -d -c "$conf" </dev/null >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		if [ -s "$data/vigild.ports" ]; then
			echo "$pid"
			exit 0
		fi
		kill -0 "$pid" 2>/dev/null || {
			echo "center.sh: vigild exited at start:" >&2
			tail -n 20 "$log" >&2
			exit 1
		}
		sleep 0.05
	done
	echo "center.sh: vigild did not start within 30 s" >&2
	exit 1
	;;
stop)
	data=$2
	[ -s "$data/vigild.ports" ] || exit 0
	pid=$(sed -nE 's/.*"pid": ([0-9]+).*/\1/p' "$data/vigild.ports")
	[ -n "$pid" ] || exit 0
	kill -TERM "$pid" 2>/dev/null || exit 0
	for _ in $(seq 1 1200); do
		kill -0 "$pid" 2>/dev/null || exit 0
		sleep 0.1
	done
	echo "center.sh: vigild $pid did not stop within 120 s; SIGKILL" >&2
	kill -KILL "$pid" 2>/dev/null || true
	exit 1
	;;
*)
	echo "usage: center.sh start VIGILD CONF DATA_DIR LOG | stop DATA_DIR" >&2
	exit 2
	;;
esac
