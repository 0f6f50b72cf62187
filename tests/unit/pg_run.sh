#!/bin/bash
# pg_run.sh PROGRAM: runs a unit test program against a throwaway
# PostgreSQL 15 (tests/e2e/pg.inc), its URL in VIGIL_TEST_PG_URL: CTest's
# unit-pg/ names. The cluster is stopped and removed when the test ends.
set -euo pipefail
SRC=${VIGIL_SRC:?VIGIL_SRC must point at the source tree}
PROG=${1:?usage: pg_run.sh PROGRAM}
AT_EXIT=()
at_exit() { AT_EXIT+=("$1"); }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() {
	echo "skip: $*"
	exit 77
}
# shellcheck source=../e2e/pg.inc
. "$SRC/tests/e2e/pg.inc"
trap 'pg_stop' EXIT
pg_start
VIGIL_TEST_PG_URL=$PG_URL "$PROG"
