#!/bin/bash
# store_exec / store_query parameters are typed (issue 11): the right
# binders compile; each wrong one (an int as text, text as an int, a
# double, the old "s" type string) fails the build.
set -u
CC=${1:?usage: store_binders.sh CC SRCDIR}
SRC=${2:?usage: store_binders.sh CC SRCDIR}
compile() {
	"$CC" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only \
		-I"$SRC/src/common" "$@" "$SRC/tests/build/store_binders.c"
}
compile -DBAD=0 || { echo "FAIL: the right binders do not compile"; exit 1; }
echo "ok: the right binders compile"
for bad in 1 2 3 4; do
	if compile -DBAD=$bad 2>/dev/null; then
		echo "FAIL: wrong call $bad compiled"
		exit 1
	fi
	echo "ok: wrong call $bad refused by the compiler"
done
