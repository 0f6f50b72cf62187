#!/bin/sh
# vigil-scand benchmark: samples/s and MB/s of the service (uploads over
# loopback HTTP with curl, parsed, written to disk, scanned, answered)
# against the yara tool scanning the same files with the same rules, in
# the same run. Not part of the tests.
#
# usage: [RUNS=5] [SETS="small medium large"] bench/scand/run.sh BUILD_DIR [WORK_DIR]
#   BUILD_DIR  a built tree (vigil-scand)
#   WORK_DIR   corpus and service data (default /tmp/vigil-scandbench,
#              about 460 MB)
#
# Corpus: 1000 files of 4 KB, 100 of 1 MB, 6 of 50 MB cut from random
# base64 text, every 50th with a marker; 150 generated rules (as in
# bench/scan). vigil-scand runs with one thread per CPU and the result
# cache off (every upload is scanned); curl sends the uploads as
# synchronous checks, twice as many at a time as there are CPUs (as a fleet
# of collectors would: uploads overlap scans). yara runs
# with the same number of threads on the files already on disk (page cache
# warm), so yara has no upload, no disk write and no HTTP on its side.
# Each figure is the best of RUNS (default 5), the two sides interleaved.
# On a machine shared with other work the wall-clock figures swing a lot,
# so CPU time is reported too (summed over all runs, from /proc): the
# service's own (its scan worker processes included), curl's, and yara's;
# its ratio is the steadier comparison.
set -eu

build=$(cd "${1:?usage: run.sh BUILD_DIR [WORK_DIR]}" && pwd)
work=${2:-/tmp/vigil-scandbench}
runs=${RUNS:-5}
ncpu=$(nproc)

for t in yara curl awk; do
	command -v "$t" >/dev/null || { echo "run.sh: $t not found" >&2; exit 1; }
done
[ -x "$build/vigil-scand" ] || { echo "run.sh: $build/vigil-scand missing: build first" >&2; exit 1; }
mkdir -p "$work"

if [ ! -f "$work/.corpus-done" ]; then
	echo "== generating the corpus in $work"
	rm -rf "$work/small" "$work/medium" "$work/large"
	mkdir -p "$work/small" "$work/medium" "$work/large"
	head -c 48000000 /dev/urandom | base64 -w 76 > "$work/seed.txt"
	seedsize=$(stat -c %s "$work/seed.txt")
	gen() { # dir count size
		i=0
		while [ "$i" -lt "$2" ]; do
			off=$(( (i * 7919 * 4096) % (seedsize - $3) ))
			f=$(printf '%s/f%05d.bin' "$1" "$i")
			dd if="$work/seed.txt" of="$f" bs=1M skip="$off" \
				count="$3" iflag=skip_bytes,count_bytes status=none
			if [ $((i % 50)) -eq 0 ]; then
				printf 'VIGILBENCH-MARK-%04d' "$((i % 50))" |
					dd of="$f" bs=1 seek=$(( $3 / 2 )) \
					conv=notrunc status=none
			fi
			i=$((i + 1))
		done
	}
	gen "$work/small" 1000 4096
	gen "$work/medium" 100 1048576
	gen "$work/large" 6 52428800
	touch "$work/.corpus-done"
fi

awk 'BEGIN {
	srand(42);
	chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (r = 0; r < 150; r++) {
		printf "rule bench_%03d\n{\n\tmeta:\n\t\tscore = %d\n", r, 40 + r % 60;
		printf "\tstrings:\n";
		for (s = 0; s < 3; s++) {
			w = "";
			n = 8 + int(rand() * 8);
			for (k = 0; k < n; k++)
				w = w substr(chars, 1 + int(rand() * 62), 1);
			printf "\t\t$t%d = \"%s\"%s\n", s, w, (s == 2 ? " nocase" : "");
		}
		printf "\t\t$h = {";
		for (k = 0; k < 8; k++)
			printf " %02x", int(rand() * 256);
		printf " }\n";
		if (r % 10 == 0)
			printf "\t\t$r = /VIGILBENCH-MARK-%02d[0-9]{2}/\n", r % 50;
		printf "\tcondition:\n\t\tany of them\n}\n\n";
	}
}' > "$work/rules.yar"
yara --fail-on-warnings "$work/rules.yar" /dev/null

# The service: loopback, any free port, one thread per CPU, no cache.
rm -rf "$work/data"
cat > "$work/scand.conf" <<EOC
[scand]
data_dir = $work/data
rules = $work/rules.yar
threads = $ncpu
cache_size = 0
max_upload = 64M
log_level = warn
[http]
listen = 127.0.0.1
port = 0
EOC
"$build/vigil-scand" -d -c "$work/scand.conf" 2> "$work/scand.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$work/data/vigil-scand.ports" ] && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
port=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$work/data/vigil-scand.ports")
url="http://127.0.0.1:$port/api/v1/check?source=bench"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
min() { if [ -z "$1" ] || [ "$(calc "$2 < $1")" != 0.000000 ]; then echo "$2"; else echo "$1"; fi; }
wall() { t0=$(now); "$@" > /dev/null; calc "$(now) - $t0"; }

# One curl for all files of a set: a config with one request per file,
# sent $ncpu at a time over keep-alive connections.
curlcfg() { # dir
	first=1
	for f in "$1"/*; do
		[ "$first" = 1 ] || echo next
		first=0
		printf 'url = "%s"\nform = "file=@%s"\noutput = "/dev/null"\nfail\n' "$url" "$f"
	done > "$work/curl.cfg"
}
upload() {
	curl --no-progress-meter --parallel --parallel-max $((2 * ncpu)) \
		-K "$work/curl.cfg" 2>> "$work/curl.log"
}


line() { # label files bytes seconds
	printf '%-36s %8.1f MB/s %9.0f samples/s  (%.3f s)\n' "$1" \
		"$(calc "$3 / 1000000 / $4")" "$(calc "$2 / $4")" "$4"
}

# CPU ticks: of the service (its own, its scan worker processes' and
# those of the workers it has reaped), and of this shell's reaped children
# (curl, yara)
svc_ticks() {
	{
		awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat"
		for c in $(pgrep -P "$pid"); do
			awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true
		done
	} | awk '{ s += $1 } END { print s }'
}
kid_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
hz=$(getconf CLK_TCK)

# yara's start-up and rule compilation, taken off its figures (wall and
# CPU) so both sides are measured on scanning alone
mkdir -p "$work/empty"
ybase=""
b=$(kid_ticks)
for i in 1 2 3 4 5; do
	ybase=$(min "$ybase" "$(wall yara -r "$work/rules.yar" "$work/empty")")
done
ycpu0=$(calc "($(kid_ticks) - $b) / 5")

echo "== $ncpu CPUs, yara $(yara --version), curl $(curl --version | head -1 | cut -d' ' -f2), best of $runs"
printf '%-8s %-36s %13s %17s\n' set who throughput rate
for set in ${SETS:-small medium large}; do
	d="$work/$set"
	cat "$d"/* > /dev/null
	files=$(find "$d" -type f | wc -l)
	bytes=$(find "$d" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
	curlcfg "$d"
	s1="" y1=""
	cs=0 cc=0 cy=0
	i=0
	while [ "$i" -lt "$runs" ]; do
		a=$(svc_ticks) b=$(kid_ticks)
		s1=$(min "$s1" "$(wall upload)")
		cs=$((cs + $(svc_ticks) - a)) cc=$((cc + $(kid_ticks) - b))
		b=$(kid_ticks)
		y1=$(min "$y1" "$(calc "$(wall yara -r -p "$ncpu" "$work/rules.yar" "$d") - $ybase")")
		cy=$(calc "$cy + $(kid_ticks) - $b - $ycpu0")
		i=$((i + 1))
	done
	echo "-- $set: $files files, $bytes bytes"
	line "vigil-scand (curl, $((2 * ncpu)) parallel)" "$files" "$bytes" "$s1"
	line "yara -r -p $ncpu" "$files" "$bytes" "$y1"
	echo "   vigil-scand / yara (wall): $(calc "100 * $y1 / $s1" | cut -d. -f1) %"
	n=$((files * runs))
	printf '   CPU per sample: service %.2f ms, curl %.2f ms, yara %.2f ms\n' \
		"$(calc "1000 * $cs / $hz / $n")" "$(calc "1000 * $cc / $hz / $n")" \
		"$(calc "1000 * $cy / $hz / $n")"
	echo "   vigil-scand / yara (CPU, service only): $(calc "100 * $cy / ($cs + 0.0001)" | cut -d. -f1) %"
done
scanned=$(curl -sS "http://127.0.0.1:$port/api/v1/status")
echo "== service status: $scanned"
