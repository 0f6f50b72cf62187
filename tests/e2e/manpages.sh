#!/bin/bash
# The man pages in docs/man match the programs: every option (and every
# VIGIL_* environment variable) that a program's or subcommand's --help
# shows is documented in that program's page, every key of vigild.conf is
# in vigild.conf(5), and every page is well-formed mdoc. No center is
# started; help is asked for in a sandbox where no API call or agent action
# could reach anything real.
. "$(dirname "$0")/lib.sh"

MAN=$SRC/docs/man
export VIGIL_SERVER=https://127.0.0.1:9 VIGIL_CA=$T/none.crt
export VIGIL_API_KEY=vgk_manpage_test VIGIL_AGENT_DATA_DIR=$T/agent
export VIGIL_MACHINE_ID_FILE=$T/machine-id HOME=$T

# help_text PROG ARGS...: the help text (stdout and stderr) of one call.
help_text() {
	timeout 20 "$@" </dev/null 2>&1 || true
}

# check_help PAGE TEXT WHAT: every option and VIGIL_* variable in TEXT is
# documented in PAGE as "Fl name" (mdoc) or "Ev NAME".
check_help() {
	local page=$1 text=$2 what=$3 o tok n=0
	[ -n "$text" ] || fail "$what: empty help"
	# Long options: --name.
	for o in $(grep -oE -- '--[A-Za-z][A-Za-z0-9-]*' <<<"$text" | sort -u); do
		grep -qE "Fl \\\\?-${o#--}([^A-Za-z0-9-]|\$)" "$page" ||
			fail "$what: $o is in --help but not in $(basename "$page")"
		n=$((n + 1))
	done
	# Short options: -x, or clusters such as [-dnv], after a blank, '[',
	# '(', '|' or ','.
	for tok in $(grep -oE -- '(^|[][[:space:](|,])-[A-Za-z]+' <<<"$text" |
		sed -E 's/^[^-]*-//' | sort -u); do
		for o in $(grep -o . <<<"$tok"); do
			grep -qE "Fl $o([^A-Za-z0-9-]|\$)" "$page" ||
				fail "$what: -$o is in --help but not in $(basename "$page")"
			n=$((n + 1))
		done
	done
	for o in $(grep -oE 'VIGIL_[A-Z0-9_]+' <<<"$text" | sort -u); do
		grep -qE "Ev $o([^A-Z0-9_]|\$)" "$page" ||
			fail "$what: $o is in --help but not in $(basename "$page")"
		n=$((n + 1))
	done
	pass "$what: $n options and variables documented"
}

# commands TEXT: the names listed under "commands:" in a help text.
commands() {
	awk '/^commands:/ { f = 1; next } f && /^$/ { f = 0 }
	     f && /^  [a-z]/ { print $1 }' <<<"$1"
}

# usage_subs PROG CMD TEXT: subcommands of CMD whose usage line in TEXT
# shows options ("PROG CMD SUB ... --opt"); those have a --help of their own.
usage_subs() {
	grep -oE -- "$1 $2 [a-z][a-z-]*[^A-Z]*--[a-z]" <<<"$3" |
		awk '{ print $3 }' | sort -u
}

SCAND=$BIN/vigil-scand
INTELD=$BIN/vigil-inteld
for b in "$VIGILD" "$AGENT" "$CTL" "$SCAND" "$INTELD"; do
	[ -x "$b" ] || fail "$b: no such program (build first)"
done

# 1. Every page is well-formed.
for page in vigild.8 vigild.conf.5 vigilctl.8 vigil-agent.8 vigil-scand.8 \
	vigil-scand.conf.5 vigil-inteld.8 vigil-inteld.conf.5; do
	[ -f "$MAN/$page" ] || fail "$MAN/$page is missing"
	if command -v mandoc >/dev/null 2>&1; then
		if ! out=$(mandoc -T lint -W warning "$MAN/$page" 2>&1) ||
			[ -n "$out" ]; then
			fail "mandoc -T lint -W warning $page: $out"
		fi
		pass "$page: mandoc -T lint clean"
	else
		out=$(groff -mandoc -Tutf8 -ww -z "$MAN/$page" 2>&1) ||
			fail "groff $page: $out"
		[ -z "$out" ] || fail "groff -ww $page: $out"
		pass "$page: groff -ww clean (mandoc not installed)"
	fi
	name=${page%.*}
	grep -qxF ".Dt ${name^^} ${page##*.}" "$MAN/$page" ||
		fail "$page: .Dt does not name ${name^^} ${page##*.}"
done

# 2. vigild, vigil-scand and vigil-inteld: one level of options.
for prog in vigild vigil-scand vigil-inteld; do
	top=$(help_text "$BIN/$prog" -h)
	grep -qi usage <<<"$top" || fail "$prog -h: no usage: $top"
	"$BIN/$prog" -h >/dev/null || fail "$prog -h exits non-zero"
	check_help "$MAN/$prog.8" "$top" "$prog -h"
done

# 3. vigilctl and vigil-agent: the program, each command, and each
# subcommand that has options of its own.
for prog in vigilctl vigil-agent; do
	page=$MAN/$prog.8
	top=$(help_text "$BIN/$prog" --help)
	grep -qi usage <<<"$top" || fail "$prog --help: no usage: $top"
	"$BIN/$prog" --help >/dev/null || fail "$prog --help exits non-zero"
	check_help "$page" "$top" "$prog --help"
	cmds=$(commands "$top")
	[ -n "$cmds" ] || fail "$prog --help lists no commands"
	for c in $cmds; do
		grep -qE "(Cm|Ic) $c( |\$)" "$page" ||
			fail "$prog: command '$c' is not in $(basename "$page")"
		sub=$(help_text "$BIN/$prog" "$c" --help)
		grep -qi usage <<<"$sub" || fail "$prog $c --help: no usage: $sub"
		check_help "$page" "$sub" "$prog $c --help"
		for s in $(usage_subs "$prog" "$c" "$sub"); do
			subsub=$(help_text "$BIN/$prog" "$c" "$s" --help)
			grep -qi usage <<<"$subsub" ||
				fail "$prog $c $s --help: no usage: $subsub"
			check_help "$page" "$subsub" "$prog $c $s --help"
		done
	done
done

# 4. Every key of vigild.conf is in vigild.conf(5), and every key of
# vigil-scand.conf in vigil-scand.conf(5), under its section.
check_keys() {
	local conf=$1 page=$2 keys n=0
	local ik offs
	keys=$(sed -nE 's/^[[:space:]]*\{"([a-z_]+)", "([a-z_]+)",.*/\1 \2/p' "$conf")
	[ -n "$keys" ] || fail "no keys found in $conf"
	# One OFF(member) per table entry, plus its #define: every entry was
	# read.
	offs=$(($(grep -c 'OFF(' "$conf") - 1))
	if grep -q 'INTELC_CFG_KEYS(OFF(' "$conf"; then
		# the [intel] keys shared by vigild and vigil-scand
		ik=$(sed -nE 's/^[[:space:]]*INTELC_CFG_STR_\(BASE, ([a-z_]+),.*/intel \1/p
			s/^[[:space:]]*"intel", "([a-z_]+)",.*/intel \1/p' \
			"$SRC/src/common/intelc.h")
		[ "$(wc -l <<<"$ik")" -eq 6 ] ||
			fail "src/common/intelc.h: could not read the [intel] keys: $ik"
		keys+=$'\n'$ik
		offs=$((offs + 5))
	fi
	[ "$(wc -l <<<"$keys")" -eq "$offs" ] ||
		fail "$conf: could not read every key of its table"
	while read -r section key; do
		# The key's entry must come after its section's .Ss and
		# before the next.
		awk -v s="$section" -v k="$key" '
			/^\.Ss / { in_s = ($0 == ".Ss [" s "]") }
			in_s && $0 ~ "^\\.It Cm " k "( |$)" { found = 1 }
			END { exit !found }' "$MAN/$page" ||
			fail "$page: [$section] $key is not documented"
		n=$((n + 1))
	done <<<"$keys"
	pass "$page: all $n keys documented"
}
check_keys "$SRC/src/center/conf.c" vigild.conf.5
check_keys "$SRC/src/scand/conf.c" vigil-scand.conf.5
check_keys "$SRC/src/inteld/conf.c" vigil-inteld.conf.5
