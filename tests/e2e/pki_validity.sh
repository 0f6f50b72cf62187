#!/bin/bash
# `vigilctl pki init` makes a server certificate whose whole validity,
# backdate included, stays within the 825 days that Apple's clients and
# TLS scanners accept (notBefore through notAfter, both inclusive).
. "$(dirname "$0")/lib.sh"

make_pki "$T/pki"
secs() {
	date -u -d "$(openssl x509 -in "$T/pki/server.crt" -noout "-$1" |
		cut -d= -f2)" +%s
}
nb=$(secs startdate)
na=$(secs enddate)
now=$(date -u +%s)
total=$((na - nb + 1))
[ $((now - nb)) -ge 60 ] || fail "no backdate for clock skew: notBefore is $((now - nb)) s ago"
[ "$total" -le $((825 * 86400)) ] ||
	fail "server certificate valid $total s, more than 825 days ($((825 * 86400)) s)"
[ "$total" -gt $((824 * 86400)) ] || fail "server certificate valid only $total s"
pass "server certificate: $total s including the backdate, within 825 days"
