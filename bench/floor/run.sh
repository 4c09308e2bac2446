#!/bin/bash
# Server CPU per request, split into user and kernel mode, for the floor's
# connection models beside Redis and Sluice: each server runs alone on CPU 1,
# redis-benchmark on CPU 0, and the rounds alternate between the servers.
#
#   bash bench/floor/run.sh [rounds] [pipeline]        (from the repository)
#
# Needs redis-server, redis-benchmark, taskset and bc. N sets the requests
# per run (default 500000).
set -euo pipefail
rounds=${1:-3}
pipe=${2:-1}
N=${N:-500000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here" && go build -o "$tmp/floor" .)
(cd "$here/../.." && go build -o "$tmp/sluice" ./cmd/sluice)

# run LABEL PORT "COMMAND" SERVER...
run() {
	local label=$1 port=$2 cmd=$3
	shift 3
	taskset -c 1 "$@" >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 100); do
		(echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
		sleep 0.05
	done
	# shellcheck disable=SC2086
	taskset -c 0 redis-benchmark -p "$port" -c 50 -P "$pipe" -n 20000 -r 100000 -q $cmd >/dev/null 2>&1
	local u0 s0 u1 s1 out
	read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
	# shellcheck disable=SC2086
	out=$(taskset -c 0 redis-benchmark -p "$port" -c 50 -P "$pipe" -n "$N" -r 100000 -q $cmd 2>/dev/null |
		tr '\r' '\n' | grep 'requests per second' | tail -1 | sed 's/.*: *\([0-9.]*\) requests.*/\1/')
	read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	# /proc/PID/stat counts in ticks of 10 ms = 10000 µs.
	printf '%-12s %10s req/s  user %5.2f µs  kernel %5.2f µs  total %5.2f µs\n' "$label" "$out" \
		"$(echo "($u1-$u0)*10000/$N" | bc -l)" "$(echo "($s1-$s0)*10000/$N" | bc -l)" \
		"$(echo "($u1-$u0+$s1-$s0)*10000/$N" | bc -l)"
}

for r in $(seq "$rounds"); do
	echo "# round $r, $N requests, 50 connections, pipeline $pipe"
	run redis-set 7379 "SET key:__rand_int__ 1" redis-server --bind 127.0.0.1 --port 7379 --save '' --appendonly no
	run redis-ping 7379 "PING" redis-server --bind 127.0.0.1 --port 7379 --save '' --appendonly no
	for m in net ready epoll gnet; do
		run "floor-$m" 7400 "SET key:__rand_int__ 1" "$tmp/floor" --mode "$m" --addr 127.0.0.1:7400
	done
	run sluice 7390 "THROTTLE key:__rand_int__ 15 30 60 1" "$tmp/sluice" --bind 127.0.0.1 --port 7390
done
