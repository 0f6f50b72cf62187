#!/bin/bash
# squid.sh: runs a real squid on 127.0.0.1 as the HTTP CONNECT proxy that
# the agent's proxy support is tested against (Basic auth, NTLM-only auth, or
# no auth). One squid per directory; everything it writes stays there.
#
# As a library (e2e scenarios):
#   . "$VIGIL_SRC/tests/e2e/squid.sh"
#   squid_start DIR basic USER PASS   # sets SQUID_PORT and SQUID_PID
#   squid_start DIR ntlm              # only NTLM offered (ntlm_fake_auth)
#   squid_start DIR negotiate         # only Negotiate (Kerberos) offered
#   squid_start DIR none              # no authentication
#   squid_stop DIR                    # also safe when it never started
# Squid forwards only CONNECT to 127.0.0.1 / ::1, any port.
#
# As a command:
#   bash squid.sh conf DIR MODE PORT [USER PASS]
#       only writes DIR/squid.conf (and DIR/htpasswd) for a caller that runs
#       `squid -N -f DIR/squid.conf` itself (tests/unit/common/test_httpc.c,
#       which ties squid's life to its own with PR_SET_PDEATHSIG).
#   bash squid.sh
#       self-test: starts each kind of squid and checks what it answers.
#       CTest runs it as e2e/squid.
#
# Root: squid refuses to keep root and switches to cache_effective_user
# (Debian's "proxy", else "nobody"); DIR is handed to that user, and its
# parent directories must let that user through (chmod o+x).

SQUID_BIN=${SQUID_BIN:-/usr/sbin/squid}
SQUID_HELPERS=${SQUID_HELPERS:-/usr/lib/squid}

# The unprivileged user squid runs as when started by root.
squid_run_user() {
	if id proxy >/dev/null 2>&1; then
		echo proxy
	else
		echo nobody
	fi
}

# squid_write_conf DIR MODE PORT [USER PASS]
squid_write_conf() {
	local dir=$1 mode=$2 port=$3 user=${4:-} pass=${5:-} suser=""
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd) || return 1
	{
		echo "# written by tests/e2e/squid.sh ($mode)"
		echo "http_port 127.0.0.1:$port"
		echo "visible_hostname vigil-test-proxy"
		echo "pid_filename none"
		echo "cache_log $dir/cache.log"
		echo "access_log stdio:$dir/access.log"
		echo "netdb_filename none"
		echo "coredump_dir $dir"
		echo "cache deny all"
		echo "cache_mem 8 MB"
		echo "shutdown_lifetime 0 seconds"
		echo "acl local_dst dst 127.0.0.1/32 ::1"
		echo "acl CONNECT method CONNECT"
		echo "http_access deny !CONNECT"
		echo "http_access deny !local_dst"
	} >"$dir/squid.conf" || return 1
	case $mode in
	basic)
		if [ -z "$user" ] || [ -z "$pass" ]; then
			echo "squid.sh: basic needs USER and PASS" >&2
			return 1
		fi
		printf '%s:%s\n' "$user" "$(openssl passwd -apr1 "$pass")" \
			>"$dir/htpasswd" || return 1
		cat >>"$dir/squid.conf" <<-EOF
			auth_param basic program $SQUID_HELPERS/basic_ncsa_auth $dir/htpasswd
			auth_param basic children 2 startup=1
			auth_param basic realm vigil-test
			acl authed proxy_auth REQUIRED
			http_access allow authed
			http_access deny all
		EOF
		;;
	ntlm)
		cat >>"$dir/squid.conf" <<-EOF
			auth_param ntlm program $SQUID_HELPERS/ntlm_fake_auth
			auth_param ntlm children 2 startup=1
			acl authed proxy_auth REQUIRED
			http_access allow authed
			http_access deny all
		EOF
		;;
	negotiate)
		# Only the challenge matters: the Kerberos helper starts when a
		# client answers it, which a Vigil agent never does.
		cat >>"$dir/squid.conf" <<-EOF
			auth_param negotiate program $SQUID_HELPERS/negotiate_kerberos_auth
			auth_param negotiate children 2 startup=0
			acl authed proxy_auth REQUIRED
			http_access allow authed
			http_access deny all
		EOF
		;;
	none)
		echo "http_access allow local_dst" >>"$dir/squid.conf"
		echo "http_access deny all" >>"$dir/squid.conf"
		;;
	*)
		echo "squid.sh: unknown mode '$mode' (basic, ntlm, negotiate, none)" >&2
		return 1
		;;
	esac
	if [ "$(id -u)" = 0 ]; then
		suser=$(squid_run_user)
		echo "cache_effective_user $suser" >>"$dir/squid.conf"
		chown -R "$suser" "$dir" || return 1
		if ! runuser -u "$suser" -- test -w "$dir"; then
			echo "squid.sh: $dir is not writable by '$suser'," \
				"the user squid switches to: make its parent" \
				"directories searchable (chmod o+x)" >&2
			return 1
		fi
	fi
}

# A port that nothing listens on now (squid_start retries if it is taken
# before squid binds it).
squid_pick_port() {
	local p _
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# squid_wait_port PORT PID: 0 once PORT accepts, 1 if PID died or 15 s pass.
squid_wait_port() {
	local port=$1 pid=$2 _
	for _ in $(seq 1 150); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# squid_start DIR MODE [USER PASS]: sets SQUID_PORT and SQUID_PID.
squid_start() {
	local dir=$1 mode=$2 user=${3:-} pass=${4:-} port _
	SQUID_PORT="" SQUID_PID=""
	for _ in 1 2 3 4 5; do
		port=$(squid_pick_port) || return 1
		squid_write_conf "$dir" "$mode" "$port" "$user" "$pass" ||
			return 1
		"$SQUID_BIN" -N -f "$dir/squid.conf" >"$dir/squid.out" 2>&1 &
		SQUID_PID=$!
		echo "$SQUID_PID" >"$dir/squid.pid.test"
		if squid_wait_port "$port" "$SQUID_PID"; then
			SQUID_PORT=$port
			return 0
		fi
		squid_stop "$dir"
	done
	echo "squid.sh: squid ($mode) did not start; its output:" >&2
	cat "$dir/squid.out" "$dir/cache.log" >&2 2>/dev/null
	return 1
}

# squid_stop DIR: stops the squid squid_start started in DIR.
squid_stop() {
	local dir=$1 pid _
	[ -f "$dir/squid.pid.test" ] || return 0
	pid=$(cat "$dir/squid.pid.test")
	rm -f "$dir/squid.pid.test"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# The self-test: each mode answers a CONNECT the way the agent's tests rely
# on (curl stands in for the agent).
squid_selftest() {
	local tmp rc=0 code hdrs
	tmp=$(mktemp -d /tmp/vigil-squid.XXXXXX) || return 1
	chmod 711 "$tmp"
	SQUID_SELFTEST_DIR=$tmp # global: the EXIT trap runs after we return
	trap 'squid_stop "$SQUID_SELFTEST_DIR/basic";
		squid_stop "$SQUID_SELFTEST_DIR/ntlm";
		squid_stop "$SQUID_SELFTEST_DIR/negotiate";
		squid_stop "$SQUID_SELFTEST_DIR/none";
		rm -rf "$SQUID_SELFTEST_DIR"' EXIT

	check() { # name expected actual
		if [ "$2" = "$3" ]; then
			echo "ok   $1"
		else
			echo "FAIL $1: expected '$2', got '$3'"
			rc=1
		fi
	}
	# A CONNECT to a closed port: past authentication squid answers 503
	# (it cannot reach the target), before it 407.
	connect_code() { # port [user:pass]
		curl -s -o /dev/null -w '%{http_connect}' --noproxy '' \
			-x "http://127.0.0.1:$1" ${2:+-U "$2"} \
			--proxy-basic https://127.0.0.1:9/ 2>/dev/null
	}

	squid_start "$tmp/basic" basic alice 's3cret pass' || return 1
	check "basic: good credentials get through" 503 \
		"$(connect_code "$SQUID_PORT" 'alice:s3cret pass')"
	check "basic: wrong password" 407 \
		"$(connect_code "$SQUID_PORT" 'alice:wrong')"
	hdrs=$(curl -s -o /dev/null -D - -x "http://127.0.0.1:$SQUID_PORT" \
		--noproxy '' https://127.0.0.1:9/ 2>/dev/null)
	code=$(echo "$hdrs" | grep -ci '^Proxy-Authenticate: Basic')
	check "basic: offers Basic" 1 "$code"
	squid_stop "$tmp/basic"

	squid_start "$tmp/ntlm" ntlm || return 1
	hdrs=$(curl -s -o /dev/null -D - -x "http://127.0.0.1:$SQUID_PORT" \
		--noproxy '' https://127.0.0.1:9/ 2>/dev/null)
	check "ntlm: offers NTLM" 1 \
		"$(echo "$hdrs" | grep -ci '^Proxy-Authenticate: NTLM')"
	check "ntlm: offers nothing else" 1 \
		"$(echo "$hdrs" | grep -ci '^Proxy-Authenticate:')"
	squid_stop "$tmp/ntlm"

	squid_start "$tmp/negotiate" negotiate || return 1
	hdrs=$(curl -s -o /dev/null -D - -x "http://127.0.0.1:$SQUID_PORT" \
		--noproxy '' https://127.0.0.1:9/ 2>/dev/null)
	check "negotiate: offers Negotiate" 1 \
		"$(echo "$hdrs" | grep -ci '^Proxy-Authenticate: Negotiate')"
	check "negotiate: offers nothing else" 1 \
		"$(echo "$hdrs" | grep -ci '^Proxy-Authenticate:')"
	squid_stop "$tmp/negotiate"

	squid_start "$tmp/none" none || return 1
	check "none: no authentication" 503 "$(connect_code "$SQUID_PORT")"
	squid_stop "$tmp/none"
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-selftest} in
	conf)
		shift
		if [ $# -lt 3 ]; then
			echo "usage: squid.sh conf DIR MODE PORT [USER PASS]" >&2
			exit 2
		fi
		squid_write_conf "$@"
		exit $?
		;;
	selftest)
		squid_selftest
		exit $?
		;;
	*)
		echo "usage: squid.sh [selftest | conf DIR MODE PORT [USER PASS]]" >&2
		exit 2
		;;
	esac
fi
