#!/bin/bash
# LDAP identity source against a real slapd (Debian's), started here on
# 127.0.0.1 with a throwaway mdb database and LDAPS certificates from the
# test PKI: users not known locally log in by binding as themselves; their
# groups map to the highest role configured; no mapped group, no login;
# group changes apply at the next login; an admin can disable a directory
# user; a directory that is down or shows an untrusted certificate gives a
# clear 503 and the center stays up; local users keep working.
. "$(dirname "$0")/lib.sh"

command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || fail "slapd not installed (scripts/install-deps)"
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
SUFFIX=dc=vigil,dc=test

# start_slapd: on two free ports, LDAP and LDAPS; sets LPORT, SPORT.
start_slapd() {
	local i
	mkdir -p "$T/ldap/db"
	cat >"$T/ldap/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $T/ldap/slapd.pid
TLSCACertificateFile $PKI/ca.crt
TLSCertificateFile $PKI/server.crt
TLSCertificateKeyFile $PKI/server.key
database mdb
suffix "$SUFFIX"
rootdn "cn=admin,$SUFFIX"
rootpw secret
directory $T/ldap/db
CONF
	for i in $(seq 1 20); do
		LPORT=$((20000 + RANDOM % 40000))
		SPORT=$((LPORT + 1))
		"$SLAPD" -d 0 -f "$T/ldap/slapd.conf" \
			-h "ldap://127.0.0.1:$LPORT/ ldaps://127.0.0.1:$SPORT/" \
			>>"$T/slapd.log" 2>&1 &
		SLAPD_PID=$!
		PIDS+=("$SLAPD_PID")
		for _ in $(seq 1 50); do
			ldapsearch -x -H "ldap://127.0.0.1:$LPORT" -b "" -s base \
				>/dev/null 2>&1 && return 0
			kill -0 "$SLAPD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$SLAPD_PID" 2>/dev/null || true
		wait "$SLAPD_PID" 2>/dev/null || true
	done
	fail "slapd did not start: $(tail -5 "$T/slapd.log")"
}
start_slapd
ldapmod() {
	ldapmodify -x -H "ldap://127.0.0.1:$LPORT" -D "cn=admin,$SUFFIX" \
		-w secret "$@" >>"$T/ldapadd.log" 2>&1 ||
		fail "ldapmodify: $(tail -5 "$T/ldapadd.log")"
}
person() {
	printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n' \
		"$1" "$SUFFIX" "$1" "$1" "$1" "$2"
}
group() {
	local g=$1 m
	shift
	printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n' "$g" "$SUFFIX" "$g"
	for m in "$@"; do printf 'member: uid=%s,ou=people,%s\n' "$m" "$SUFFIX"; done
	echo
}
{
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: vigil\no: Vigil test\n\n' "$SUFFIX"
	printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SUFFIX"
	printf 'dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n' "$SUFFIX"
	person carol 'carol ldap pass'
	person dave 'dave ldap pass'
	person erin 'erin ldap pass'
	group vigil-ops carol dave
	group vigil-admins dave
	group vigil-ro dave
	group other erin
} >"$T/ldap/base.ldif"
ldapmod -a -f "$T/ldap/base.ldif"
pass "slapd on 127.0.0.1:$LPORT/$SPORT with users and groups"

write_conf "$T/vigild.conf" "$PKI" "$DATA" "[admin]" "login_rate = 1000" "[ldap]" \
	"uri = ldaps://127.0.0.1:$SPORT" "ca_file = $PKI/ca.crt" \
	"user_dn = uid=%s,ou=people,$SUFFIX" "group_base = ou=groups,$SUFFIX" \
	"admin_groups = vigil-admins" "operator_groups = other-ops; Vigil-Ops" \
	"readonly_groups = cn=nothing,$SUFFIX; cn=vigil-ro,ou=groups,$SUFFIX"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.log" 2>&1 || fail "vigild -n: $(cat "$T/check.log")"
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM

login() {
	curl -sS -D "$T/h" -o "$T/b" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' \
		-d "{\"username\": \"$1\", \"password\": \"$2\"}" "$URL/api/v1/login"
}

[ "$(login carol 'carol ldap pass')" = 200 ] || fail "carol: $(cat "$T/b")"
grep -q '"role": *"operator"' "$T/b" || fail "carol's role: $(cat "$T/b")"
pass "directory user logs in over LDAPS; group (CN, any case) maps to operator"

[ "$(login dave 'dave ldap pass')" = 200 ] || fail "dave: $(cat "$T/b")"
grep -q '"role": *"admin"' "$T/b" || fail "dave's role: $(cat "$T/b")"
pass "the highest of several mapped groups wins"

[ "$(login carol 'wrong')" = 401 ] || fail "wrong LDAP password"
wrong=$(cat "$T/b")
[ "$(login nobody 'whatever pass')" = 401 ] || fail "unknown LDAP user"
[ "$wrong" = "$(cat "$T/b")" ] || fail "answers differ"
[ "$(login carol '')" = 401 ] || fail "empty password (anonymous bind) accepted"
pass "wrong password, unknown user and empty password refused alike"

[ "$(login erin 'erin ldap pass')" = 401 ] || fail "erin (no mapped group) logged in"
grep -q "erin authenticated, but none of its groups maps to a role" "$T/vigild.log" ||
	fail "no-role not logged"
pass "no mapped group: refused"

"$CTL" user list | grep -E "^carol +operator +ldap " >/dev/null ||
	fail "ldap user not listed: $("$CTL" user list)"
"$CTL" user list | grep -q "^erin " && fail "refused user recorded"
pass "directory users are recorded at first login"

# Group change applies at the next login.
printf 'dn: cn=vigil-ops,ou=groups,%s\nchangetype: modify\ndelete: member\nmember: uid=carol,ou=people,%s\n\ndn: cn=vigil-ro,ou=groups,%s\nchangetype: modify\nadd: member\nmember: uid=carol,ou=people,%s\n' \
	"$SUFFIX" "$SUFFIX" "$SUFFIX" "$SUFFIX" >"$T/ldap/mod.ldif"
ldapmod -f "$T/ldap/mod.ldif"
[ "$(login carol 'carol ldap pass')" = 200 ] || fail "carol after move"
grep -q '"role": *"readonly"' "$T/b" || fail "role not refreshed: $(cat "$T/b")"
pass "group changes apply at the next login (DN in the mapping)"

"$CTL" user set carol --disable >/dev/null || fail "disable carol"
[ "$(login carol 'carol ldap pass')" = 401 ] || fail "disabled directory user logged in"
"$CTL" user set carol --enable >/dev/null
[ "$(login carol 'carol ldap pass')" = 200 ] || fail "re-enabled: $(cat "$T/b")"
pass "an admin can disable a directory user"

# Local users are not looked up in the directory.
echo 'local pass 123' | "$CTL" user add loc --role analyst --password-stdin >/dev/null
[ "$(login loc 'local pass 123')" = 200 ] || fail "local user with LDAP on"
pass "local users keep working"

# The user's DN found by a search (anonymous bind) instead of a template.
stop_center
sed -i -e "s#^user_dn = .*#search_base = ou=people,$SUFFIX\nsearch_filter = (\&(objectClass=inetOrgPerson)(uid=%s))#" "$T/vigild.conf"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.log" 2>&1 || fail "vigild -n (search): $(cat "$T/check.log")"
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM
[ "$(login dave 'dave ldap pass')" = 200 ] || fail "search mode: $(cat "$T/b")"
[ "$(login dave 'carol ldap pass')" = 401 ] || fail "search mode, wrong password"
[ "$(login ghost 'dave ldap pass')" = 401 ] || fail "search mode, no entry"
pass "user DN found by search"

# An untrusted directory certificate: 503, logged, center up.
stop_center
make_pki "$T/other"
sed -i "s#^ca_file = .*#ca_file = $T/other/ca.crt#" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM
[ "$(login carol 'carol ldap pass')" = 503 ] || fail "untrusted LDAPS cert: $(cat "$T/b")"
grep -q "auth: ldap:" "$T/vigild.log" || fail "TLS failure not logged"
pass "LDAPS with an untrusted certificate refused (503, logged)"

# StartTLS on the plain port works; a directory that is down: 503.
stop_center
sed -i -e "s#^ca_file = .*#ca_file = $PKI/ca.crt#" \
	-e "s#^uri = .*#uri = ldap://127.0.0.1:$LPORT\nstarttls = yes#" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM
[ "$(login dave 'dave ldap pass')" = 200 ] || fail "StartTLS: $(cat "$T/b")"
kill "$SLAPD_PID"
wait "$SLAPD_PID" 2>/dev/null || true
[ "$(login dave 'dave ldap pass')" = 503 ] || fail "directory down: $(cat "$T/b")"
[ "$(login loc 'local pass 123')" = 200 ] || fail "local user with directory down"
kill -0 "$CENTER_PID" || fail "center died"
pass "StartTLS works; directory down: 503, local users unaffected"

# Plain ldap:// without StartTLS is refused by the checks.
sed -i -e "/^starttls = yes/d" "$T/vigild.conf"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.log" 2>&1 && fail "plain ldap:// accepted"
grep -q "passwords in clear" "$T/check.log" || fail "check: $(cat "$T/check.log")"
pass "plain LDAP without StartTLS refused by vigild -n"
