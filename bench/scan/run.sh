#!/bin/sh
# Scan engine benchmark: the engine (bench/scan/scanbench.c, one thread)
# against the yara tool on the same files and rules. Not part of the tests.
#
# usage: bench/scan/run.sh BUILD_DIR [WORK_DIR]
#   BUILD_DIR  a configured and built tree (libvigilscan.a, libvigilcommon.a)
#   WORK_DIR   where the corpus goes (default /tmp/vigil-scanbench, ~620 MB)
#
# Corpus: 2000 files of 4 KB, 200 of 1 MB, 6 of 50 MB, cut from random
# base64 text, every 50th with a marker string; rules: 150 generated rules
# (text, hex and regex strings, a few string-less conditions) that compile
# without warnings. The page cache is warmed first and each figure is the
# best of RUNS (default 5). The project's target: the engine reaches at
# least 90 % of yara's single-threaded throughput on the 1 MB samples.
set -eu

build=$(cd "${1:?usage: run.sh BUILD_DIR [WORK_DIR]}" && pwd)
work=${2:-/tmp/vigil-scanbench}
runs=${RUNS:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)

for t in yara gcc pkg-config; do
	command -v "$t" >/dev/null || { echo "run.sh: $t not found" >&2; exit 1; }
done
for l in libvigilscan.a libvigilcommon.a; do
	[ -f "$build/$l" ] || { echo "run.sh: $build/$l missing: build first" >&2; exit 1; }
done
mkdir -p "$work"

echo "== building scanbench"
# shellcheck disable=SC2046
gcc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra \
	-I"$src/src/scan" -I"$src/src/common" -I"$src/src/proto" \
	-o "$work/scanbench" "$src/bench/scan/scanbench.c" \
	"$build/libvigilscan.a" "$build/libvigilcommon.a" \
	$(pkg-config --libs yara openssl jansson libevent libevent_openssl \
		libcurl sqlite3 inih uuid) -lpthread

if [ ! -f "$work/.corpus-done" ]; then
	echo "== generating the corpus in $work"
	rm -rf "$work/small" "$work/medium" "$work/large"
	mkdir -p "$work/small" "$work/medium" "$work/large"
	# 64 MB of base64 text: printable, so text atoms hit now and then
	head -c 48000000 /dev/urandom | base64 -w 76 > "$work/seed.txt"
	seedsize=$(stat -c %s "$work/seed.txt")
	gen() { # dir count size
		i=0
		while [ "$i" -lt "$2" ]; do
			off=$(( (i * 7919 * 4096) % (seedsize - $3) ))
			f=$(printf '%s/f%05d.bin' "$1" "$i")
			dd if="$work/seed.txt" of="$f" bs=1M skip="$off" \
				count="$3" iflag=skip_bytes,count_bytes status=none
			# every 50th file carries a marker the rules look for
			# (far more often than real hits; each hit costs the
			# engine three digests, the report names files by them)
			if [ $((i % 50)) -eq 0 ]; then
				printf 'VIGILBENCH-MARK-%04d' "$((i % 50))" |
					dd of="$f" bs=1 seek=$(( $3 / 2 )) \
					conv=notrunc status=none
			fi
			i=$((i + 1))
		done
	}
	gen "$work/small" 2000 4096
	gen "$work/medium" 200 1048576
	gen "$work/large" 6 52428800
	touch "$work/.corpus-done"
fi

echo "== generating rules"
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
	for (r = 0; r < 5; r++)
		printf "rule bench_cond_%d\n{\n\tcondition:\n\t\tuint32(0) == 0x%08x and filesize < %dKB\n}\n\n", r, int(rand() * 2147483647), 100 + r;
}' > "$work/rules.yar"
# IOCs: 10000 random hashes of each type plus the real digests of five
# corpus files, so hash lookups hit too.
{
	echo "# generated benchmark IOCs"
	head -c 960000 /dev/urandom | od -An -v -tx1 | tr -d ' \n' |
		fold -w 192 | head -n 10000 |
		awk '{ printf "md5;%s;50;random\nsha1;%s;50;random\nsha256;%s;50;random\n", substr($0,1,32), substr($0,33,40), substr($0,73,64) }'
	for f in "$work"/medium/f0000[1-5].bin; do
		echo "sha256;$(sha256sum "$f" | cut -c1-64);70;corpus file"
	done
	echo 'filename;/f0001[0-9]\.bin$;40;name pattern'
} > "$work/iocs.ioc"

# the rules must be clean for both: yara fails on warnings here as well
yara --fail-on-warnings "$work/rules.yar" /dev/null

warm() { cat "$1"/* > /dev/null; }

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
min() { if [ -z "$1" ] || [ "$(calc "$2 < $1")" != 0.000000 ]; then echo "$2"; else echo "$1"; fi; }

wall() { # command...: wall time of one run, in seconds
	t0=$(now)
	"$@" > /dev/null
	calc "$(now) - $t0"
}

engine() { # dir rulefiles...: scanning time of one walk (scanbench's own)
	"$work/scanbench" -n 1 "$@" | sed 's/.*seconds=\([0-9.]*\).*/\1/'
}

line() { # label files bytes seconds
	printf '%-40s %8.1f MB/s %9.0f files/s  (%.3f s)\n' "$1" \
		"$(calc "$3 / 1000000 / $4")" "$(calc "$2 / $4")" "$4"
}

# yara's own start-up and rule compilation, taken off its figures so both
# sides are measured on scanning alone (scanbench times only its walks)
mkdir -p "$work/empty"
yara_base=""
for i in 1 2 3; do
	yara_base=$(min "$yara_base" "$(wall yara -r "$work/rules.yar" "$work/empty")")
done

echo "== $(nproc) CPUs, yara $(yara --version), best of $runs interleaved" \
	"runs; yara start-up + compile (${yara_base}s) subtracted"
for set in small medium large; do
	d="$work/$set"
	warm "$d"
	files=$(find "$d" -type f | wc -l)
	bytes=$(find "$d" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
	echo "-- $set: $files files, $bytes bytes"
	e1="" e2="" y1="" y2=""
	i=0
	# single-threaded candidates interleaved, so drift on a shared
	# machine hits them alike; the multi-threaded run comes after, as it
	# disturbs whatever runs next on a small VM
	while [ "$i" -lt "$runs" ]; do
		e1=$(min "$e1" "$(engine "$d" "$work/rules.yar")")
		e2=$(min "$e2" "$(engine "$d" "$work/rules.yar" "$work/iocs.ioc")")
		y1=$(min "$y1" "$(calc "$(wall yara -r -p 1 "$work/rules.yar" "$d") - $yara_base")")
		i=$((i + 1))
	done
	i=0
	while [ "$i" -lt "$runs" ]; do
		y2=$(min "$y2" "$(calc "$(wall yara -r "$work/rules.yar" "$d") - $yara_base")")
		i=$((i + 1))
	done
	line "engine, YARA only" "$files" "$bytes" "$e1"
	line "engine, YARA + IOCs (3 digests/file)" "$files" "$bytes" "$e2"
	line "yara -r -p 1" "$files" "$bytes" "$y1"
	line "yara -r (default threads, $(nproc) CPUs)" "$files" "$bytes" "$y2"
	echo "   engine / yara -p 1: $(calc "100 * $y1 / $e1" | cut -d. -f1) %"
done
