/*
 * Tests of httpc against real servers on 127.0.0.1: `openssl s_server` with
 * certificates made by the openssl CLI (the right CA, a "proxy" CA that
 * re-signs like a TLS-inspecting proxy, a certificate for another name, a
 * server that wants a client certificate), and real squids set up by
 * tests/e2e/squid.sh (Basic auth, NTLM only). What matters is the sentence
 * an operator gets, so the tests check the messages, not only the codes.
 *
 * Every server runs under a watchdog child that kills it when the pipe from
 * this process closes, so nothing outlives the test even if it crashes
 * (PR_SET_PDEATHSIG alone would not do: squid changes its uid, which clears
 * it). httpc.c is included to reach its static helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "httpc.c"

/* A server under its watchdog: closing `ctl` stops it. */
struct proc {
	pid_t watchdog;
	int ctl;
	int port;
};

static char tmpdir[] = "/tmp/vigil-httpc-XXXXXX";
static char squid_sh[4096];
static struct proc srv_good, srv_mitm, srv_mitm_chain, srv_name, srv_mtls;
static struct proc squid_basic, squid_ntlm;
static int have_squid, have_tmpdir;

static void
path(char *out, size_t len, const char *name)
{
	int n = snprintf(out, len, "%s/%s", tmpdir, name);

	if (n < 0 || (size_t)n >= len)
		fail_msg("path too long: %s", name);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Runs a shell command in tmpdir; 0 when it exits 0. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	return st == 0 ? 0 : -1;
}

/*
 * Starts argv[] with stdout+stderr to outfile, under a watchdog child. The
 * watchdog holds the read end of a pipe; when it reads EOF (we closed the
 * write end, or died) it stops the server and exits.
 */
static int
spawn(struct proc *p, char *const argv[], const char *outfile)
{
	int pfd[2], fd, st;
	pid_t w, s;
	char c;

	p->watchdog = -1;
	p->ctl = -1;
	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	if ((w = fork()) == -1) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (w == 0) {
		/* Keep only the read end: another watchdog holding our write
		 * end would keep us alive after the test is gone. */
		if (dup2(pfd[0], 3) == -1)
			_exit(127);
		closefrom(4);
		if ((s = fork()) == -1)
			_exit(127);
		if (s == 0) {
			close(3);
			fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
				_exit(127);
			close(fd);
			fd = open("/dev/null", O_RDONLY);
			if (fd != -1 && fd != 0) {
				dup2(fd, 0);
				close(fd);
			}
			setpgid(0, 0);
			execvp(argv[0], argv);
			_exit(127);
		}
		while (read(3, &c, 1) == -1 && errno == EINTR)
			;
		kill(s, SIGTERM);
		for (int i = 0; i < 50; i++) {
			if (waitpid(s, &st, WNOHANG) == s)
				_exit(0);
			sleep_ms(100);
		}
		kill(s, SIGKILL);
		kill(-s, SIGKILL); /* its helpers, if any */
		waitpid(s, &st, 0);
		_exit(0);
	}
	close(pfd[0]);
	p->watchdog = w;
	p->ctl = pfd[1];
	return 0;
}

static void
stop(struct proc *p)
{
	int st;

	if (p->watchdog <= 0)
		return; /* never started */
	close(p->ctl);
	waitpid(p->watchdog, &st, 0);
	p->ctl = -1;
	p->watchdog = -1;
	p->port = 0;
}

static int
watchdog_alive(const struct proc *p)
{
	int st;

	return waitpid(p->watchdog, &st, WNOHANG) == 0;
}

/* A port that was free a moment ago. */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int
port_open(int port)
{
	struct sockaddr_in sa;
	int fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* s_server prints "ACCEPT 127.0.0.1:<port>" once it listens. */
static int
start_s_server(struct proc *p, const char *name, const char *cert,
               char *const extra[])
{
	char out[4096], crt[4096], key[4096], line[256];
	char *argv[24];
	int i, n = 0;
	long long v;
	FILE *f;
	char *c;

	snprintf(line, sizeof(line), "%s.out", name);
	path(out, sizeof(out), line);
	snprintf(line, sizeof(line), "%s.crt", cert);
	path(crt, sizeof(crt), line);
	path(key, sizeof(key), "srv.key");
	argv[n++] = "openssl";
	argv[n++] = "s_server";
	argv[n++] = "-accept";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "-cert";
	argv[n++] = crt;
	argv[n++] = "-key";
	argv[n++] = key;
	argv[n++] = "-www";
	for (i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (spawn(p, argv, out) == -1)
		return -1;
	for (i = 0; i < 200; i++) {
		if ((f = fopen(out, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL) {
				c = strrchr(line, ':');
				if (strncmp(line, "ACCEPT ", 7) != 0 ||
				    c == NULL)
					continue;
				c[strcspn(c, "\r\n")] = '\0';
				if (str_to_ll(c + 1, 1, 65535, &v) == 0) {
					p->port = (int)v;
					fclose(f);
					return 0;
				}
			}
			fclose(f);
		}
		if (!watchdog_alive(p))
			break;
		sleep_ms(50);
	}
	stop(p);
	sh("cat '%s' >&2", out);
	return -1;
}

static int
start_squid(struct proc *p, const char *name, const char *mode)
{
	char dir[4096], conf[4096], out[4096], rel[256];
	char *argv[] = {"/usr/sbin/squid", "-N", "-f", conf, NULL};
	int port, try, i;

	path(dir, sizeof(dir), name);
	snprintf(rel, sizeof(rel), "%s/squid.conf", name);
	path(conf, sizeof(conf), rel);
	snprintf(rel, sizeof(rel), "%s.out", name);
	path(out, sizeof(out), rel);
	for (try = 0; try < 3; try++) {
		if ((port = free_port()) == -1)
			return -1;
		if (sh("bash '%s' conf '%s' %s %d alice 'op3n sesame'",
		       squid_sh, dir, mode, port) == -1)
			return -1;
		if (spawn(p, argv, out) == -1)
			return -1;
		for (i = 0; i < 200; i++) {
			if (port_open(port)) {
				p->port = port;
				return 0;
			}
			if (!watchdog_alive(p))
				break;
			sleep_ms(50);
		}
		stop(p);
	}
	sh("cat '%s' '%s/cache.log' >&2", out, dir);
	return -1;
}

static int
make_pki(void)
{
	/* Two CAs: the deployment's and a "Corp Proxy CA" that re-signs
	 * like a TLS-inspecting proxy. One server key, four certificates. */
	return sh(
	    "cd '%s' && exec >pki.log 2>&1 && set -e && "
	    "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
	    "caext='-addext basicConstraints=critical,CA:TRUE "
	    "-addext keyUsage=critical,keyCertSign,cRLSign' && "
	    "openssl req -x509 $ec $caext -keyout ca.key -out ca.pem "
	    "-days 2 -subj '/O=Vigil/CN=Vigil Test CA' && "
	    "openssl req -x509 $ec $caext -keyout pca.key -out pca.pem "
	    "-days 2 -subj '/O=Corp/CN=Corp Proxy CA' && "
	    "openssl req $ec -keyout srv.key -out srv.csr "
	    "-subj '/CN=center' && "
	    "openssl req $ec -keyout cli.key -out cli.csr "
	    "-subj '/CN=agent' && "
	    "echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' >good.ext && "
	    "echo 'subjectAltName=DNS:center.example.org' >name.ext && "
	    "echo 'extendedKeyUsage=clientAuth' >cli.ext && "
	    "sign() { openssl x509 -req -in $1.csr -CA $2.pem "
	    "-CAkey $2.key -CAcreateserial -days 2 -extfile $3 "
	    "-out $4.crt; } && "
	    "sign srv ca good.ext good && sign srv pca good.ext mitm && "
	    "sign srv ca name.ext name && sign cli ca cli.ext cli && "
	    "cat mitm.crt pca.pem >mitmchain.crt && "
	    "chmod 600 cli.key && cp cli.key open.key && "
	    "chmod 644 open.key",
	    tmpdir);
}

static char ca_pem[4096], cli_crt[4096], cli_key[4096];

static int
setup_servers(void)
{
	const char *data = getenv("VIGIL_TEST_DATA");
	const char *slash = strrchr(__FILE__, '/');
	char *mtls[] = {"-Verify", "1", "-CAfile", ca_pem, NULL};

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	have_tmpdir = 1;
	/* squid, once it drops root, must get through to its own dir. */
	chmod(tmpdir, 0711);
	/* tests/data may not exist, so no "data/.." path: cut the name. */
	if (data != NULL && strrchr(data, '/') != NULL)
		snprintf(squid_sh, sizeof(squid_sh), "%.*s/e2e/squid.sh",
		         (int)(strrchr(data, '/') - data), data);
	else if (slash != NULL)
		snprintf(squid_sh, sizeof(squid_sh), "%.*s/../../e2e/squid.sh",
		         (int)(slash - __FILE__), __FILE__);
	else
		snprintf(squid_sh, sizeof(squid_sh), "tests/e2e/squid.sh");
	path(ca_pem, sizeof(ca_pem), "ca.pem");
	path(cli_crt, sizeof(cli_crt), "cli.crt");
	path(cli_key, sizeof(cli_key), "cli.key");
	if (make_pki() == -1) {
		sh("cat '%s/pki.log' >&2", tmpdir);
		return -1;
	}
	if (httpc_global_init() == -1)
		return -1;
	if (start_s_server(&srv_good, "good", "good", NULL) == -1 ||
	    start_s_server(&srv_mitm, "mitm", "mitm", NULL) == -1 ||
	    start_s_server(&srv_mitm_chain, "mitmchain", "mitmchain", NULL) ==
	        -1 ||
	    start_s_server(&srv_name, "name", "name", NULL) == -1 ||
	    start_s_server(&srv_mtls, "mtls", "good", mtls) == -1)
		return -1;
	/* Without squid the proxy tests are skipped; a missing script is a
	 * broken tree and fails. */
	have_squid = access("/usr/sbin/squid", X_OK) == 0;
	if (have_squid && access(squid_sh, R_OK) == -1) {
		fprintf(stderr, "%s: %s\n", squid_sh, strerror(errno));
		return -1;
	}
	if (have_squid &&
	    (start_squid(&squid_basic, "squid-basic", "basic") == -1 ||
	     start_squid(&squid_ntlm, "squid-ntlm", "ntlm") == -1))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	static int done;

	(void)state;
	if (done++)
		return 0;
	stop(&srv_good);
	stop(&srv_mitm);
	stop(&srv_mitm_chain);
	stop(&srv_name);
	stop(&srv_mtls);
	stop(&squid_basic);
	stop(&squid_ntlm);
	httpc_global_cleanup();
	if (have_tmpdir)
		sh("rm -rf '%s'", tmpdir);
	return 0;
}

/* Whatever started before a failure is stopped and removed here, not
 * left to cmocka. */
static int
setup(void **state)
{
	if (setup_servers() == 0)
		return 0;
	teardown(state);
	return -1;
}

static void
url_of(char *out, size_t len, int port)
{
	snprintf(out, len, "https://127.0.0.1:%d/", port);
}

/* One GET; returns httpc_request's result, resp filled. */
static int
get(const struct httpc_opts *o, int port, struct httpc_resp *r)
{
	char url[128];

	url_of(url, sizeof(url), port);
	return httpc_request(o, "GET", url, NULL, NULL, 0, r);
}

/* The messages are the product: show them in the test log. */
#define show(r) print_message("    errmsg: %s\n", (r)->errmsg)

#define assert_has(hay, needle)                                                \
	do {                                                                   \
		if (strstr((hay), (needle)) == NULL)                           \
			fail_msg("'%s' not in: %s", (needle), (hay));          \
	} while (0)

static void
test_verified(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), 0);
	assert_int_equal(r.err, HTTPC_OK);
	assert_int_equal(r.status, 200);
	assert_has(buf_cstr(&r.body), "s_server");
	httpc_resp_free(&r);
}

/* Environment proxies must not apply: this one does not even exist. */
static void
test_env_proxy_ignored(void **state)
{
	static const char *vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
	                             "ALL_PROXY", "all_proxy"};
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		setenv(vars[i], "http://127.0.0.1:1", 1);
	httpc_resp_init(&r);
	rc = get(&o, srv_good.port, &r);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	if (rc != 0)
		fail_msg("%s", r.errmsg);
	assert_int_equal(r.status, 200);
	httpc_resp_free(&r);
}

static void
expect_interception(int port, const char *proxy, const char *proxy_user)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	struct buf err;
	X509 *ca;
	char fp[65];

	o.proxy = proxy;
	o.proxy_user = proxy_user;
	buf_init(&err, 0);
	ca = tls_load_cert(ca_pem, &err);
	assert_non_null(ca);
	tls_fingerprint(ca, fp);
	X509_free(ca);
	buf_free(&err);

	httpc_resp_init(&r);
	assert_int_equal(get(&o, port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_TLS_VERIFY);
	assert_has(r.errmsg, "https://127.0.0.1:");
	assert_has(r.errmsg, "issued by 'CN=Corp Proxy CA,O=Corp'");
	assert_has(r.errmsg, "trusts only 'CN=Vigil Test CA,O=Vigil'");
	assert_has(r.errmsg, ca_pem);
	assert_has(r.errmsg, fp);
	assert_has(r.errmsg, "intercepting TLS");
	assert_has(r.errmsg, "TLS interception is not supported");
	assert_int_equal(r.body.len, 0);
	httpc_resp_free(&r);
}

static void
test_interception_leaf_only(void **state)
{
	(void)state;
	expect_interception(srv_mitm.port, NULL, NULL);
}

/* The proxy also sends its CA: the failure is then "self-signed in chain"
 * and must read the same. */
static void
test_interception_with_chain(void **state)
{
	(void)state;
	expect_interception(srv_mitm_chain.port, NULL, NULL);
}

/* insecure is only for fetching a CA to check by fingerprint. */
static void
test_insecure(void **state)
{
	struct httpc_opts o = {.insecure = 1};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_mitm.port, &r), 0);
	assert_int_equal(r.status, 200);
	httpc_resp_free(&r);
}

static void
test_hostname_mismatch(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_name.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_TLS_VERIFY);
	assert_has(r.errmsg, "not valid for '127.0.0.1'");
	assert_has(r.errmsg, "center.example.org");
	httpc_resp_free(&r);
}

static void
test_refused(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	int port = free_port();

	(void)state;
	assert_true(port > 0);
	httpc_resp_init(&r);
	assert_int_equal(get(&o, port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_CONNECT);
	assert_has(r.errmsg, "cannot connect");
	assert_int_equal(r.status, 0);
	httpc_resp_free(&r);
}

/* A server that accepts the connection and never says a word. */
static void
test_timeout(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem, .timeout_secs = 1};
	struct httpc_resp r;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	httpc_resp_init(&r);
	assert_int_equal(get(&o, ntohs(sa.sin_port), &r), -1);
	close(fd);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_TIMEOUT);
	assert_has(r.errmsg, "within 1 s");
	httpc_resp_free(&r);
}

static void
test_client_cert(void **state)
{
	struct httpc_opts o = {
	    .ca_file = ca_pem, .cert_file = cli_crt, .key_file = cli_key};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	if (get(&o, srv_mtls.port, &r) != 0)
		fail_msg("%s", r.errmsg);
	assert_int_equal(r.status, 200);
	httpc_resp_free(&r);
}

static void
test_client_cert_missing(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_mtls.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_TLS);
	assert_has(r.errmsg, "requires a client certificate");
	httpc_resp_free(&r);
}

static void
test_key_readable_by_others(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem, .cert_file = cli_crt};
	struct httpc_resp r;
	char key[4096];

	(void)state;
	path(key, sizeof(key), "open.key");
	o.key_file = key;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_mtls.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_TLS);
	assert_has(r.errmsg, "open.key");
	httpc_resp_free(&r);
}

static void
test_not_https(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;

	(void)state;
	httpc_resp_init(&r);
	assert_int_equal(
	    httpc_request(&o, "GET", "http://127.0.0.1:1/", NULL, NULL, 0, &r),
	    -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_OTHER);
	assert_has(r.errmsg, "not an https:// URL");
	httpc_resp_free(&r);
}

static void
squid_url(char *out, size_t len, const struct proc *p)
{
	snprintf(out, len, "http://127.0.0.1:%d", p->port);
}

static void
test_proxy_basic_ok(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	char px[64];

	(void)state;
	if (!have_squid)
		skip();
	squid_url(px, sizeof(px), &squid_basic);
	o.proxy = px;
	o.proxy_user = "alice:op3n sesame";
	httpc_resp_init(&r);
	if (get(&o, srv_good.port, &r) != 0)
		fail_msg("%s", r.errmsg);
	assert_int_equal(r.status, 200);
	assert_has(buf_cstr(&r.body), "s_server");
	httpc_resp_free(&r);
}

/* Through a proxy that tunnels, interception is still told as such. */
static void
test_proxy_then_interception(void **state)
{
	char px[64];

	(void)state;
	if (!have_squid)
		skip();
	squid_url(px, sizeof(px), &squid_basic);
	expect_interception(srv_mitm.port, px, "alice:op3n sesame");
}

static void
test_proxy_basic_wrong(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	char px[64], want[128];

	(void)state;
	if (!have_squid)
		skip();
	squid_url(px, sizeof(px), &squid_basic);
	o.proxy = px;
	o.proxy_user = "alice:wrong";
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_PROXY);
	snprintf(want, sizeof(want),
	         "proxy %s refused the credentials (HTTP 407)", px);
	assert_has(r.errmsg, want);
	assert_null(strstr(r.errmsg, "wrong"));
	httpc_resp_free(&r);
}

static void
test_proxy_basic_missing(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;

	(void)state;
	if (!have_squid)
		skip();
	char px[64];
	squid_url(px, sizeof(px), &squid_basic);
	o.proxy = px;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_PROXY);
	assert_has(r.errmsg, "asks for Basic authentication but no proxy "
	                     "credentials are configured");
	httpc_resp_free(&r);
}

static void
test_proxy_ntlm(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	char px[64], want[256];

	(void)state;
	if (!have_squid)
		skip();
	squid_url(px, sizeof(px), &squid_ntlm);
	o.proxy = px;
	o.proxy_user = "alice:op3n sesame";
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_PROXY);
	snprintf(
	    want, sizeof(want),
	    "proxy %s: it asks for NTLM authentication; Vigil agents support "
	    "only Basic proxy authentication or none. Configure the proxy to "
	    "allow Basic for the agents, or exempt the center.",
	    px);
	assert_string_equal(r.errmsg, want);
	httpc_resp_free(&r);
}

static void
test_proxy_refused(void **state)
{
	struct httpc_opts o = {.ca_file = ca_pem};
	struct httpc_resp r;
	char px[64];

	(void)state;
	snprintf(px, sizeof(px), "http://127.0.0.1:%d", free_port());
	o.proxy = px;
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), -1);
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_CONNECT);
	assert_has(r.errmsg, "proxy http://127.0.0.1:");
	httpc_resp_free(&r);
	/* Credentials in the URL are refused before connecting, unechoed. */
	snprintf(px, sizeof(px), "http://u:secret@127.0.0.1:%d", free_port());
	httpc_resp_init(&r);
	assert_int_equal(get(&o, srv_good.port, &r), -1);
	assert_int_equal(r.err, HTTPC_ERR_PROXY);
	assert_has(r.errmsg, "credentials in the proxy URL");
	assert_null(strstr(r.errmsg, "secret"));
	httpc_resp_free(&r);
}

static void
test_proxy_display(void **state)
{
	char out[128];

	(void)state;
	httpc_proxy_display("http://u:p@a@proxy.corp:3128/x", out, sizeof(out));
	assert_string_equal(out, "http://proxy.corp:3128");
	httpc_proxy_display("proxy.corp:8080", out, sizeof(out));
	assert_string_equal(out, "http://proxy.corp:8080");
	httpc_proxy_display("http://[::1]:3128", out, sizeof(out));
	assert_string_equal(out, "http://[::1]:3128");
}

static void
feed(struct httpc_call *c, const char *line)
{
	char copy[256];

	/* libcurl's header lines are not NUL-terminated. */
	memset(copy, 'X', sizeof(copy));
	memcpy(copy, line, strlen(line));
	assert_int_equal(httpc_header_cb(copy, 1, strlen(line), c),
	                 strlen(line));
}

static void
test_proxy_auth_headers(void **state)
{
	struct httpc_opts o = {.proxy = "http://p:1"};
	struct httpc_resp r;
	struct httpc_call c;

	(void)state;
	httpc_resp_init(&r);
	memset(&c, 0, sizeof(c));
	c.resp = &r;
	feed(&c, "HTTP/1.1 407 Proxy Authentication Required\r\n");
	feed(&c, "proxy-authenticate: Negotiate\r\n");
	feed(&c, "Proxy-Authenticate:   NTLM\r\n");
	feed(&c, "Via: 1.1 proxy\r\n");
	feed(&c, "\r\n");
	assert_true(c.auth_ntlm && c.auth_negotiate && !c.auth_basic);
	proxy_message(&o, &c, 407, "https://c:443");
	show(&r);
	assert_int_equal(r.err, HTTPC_ERR_PROXY);
	assert_has(r.errmsg, "it asks for NTLM or Negotiate authentication");
	/* A later 407 starts over. */
	feed(&c, "HTTP/1.1 407 again\r\n");
	feed(&c, "Proxy-Authenticate: Basic realm=\"x\"\r\n");
	assert_true(c.auth_basic && !c.auth_ntlm && !c.auth_negotiate);
	/* Proxy-Authenticate outside a 407 is not the proxy's demand. */
	feed(&c, "HTTP/1.1 200 OK\r\n");
	feed(&c, "Proxy-Authenticate: NTLM\r\n");
	assert_false(c.auth_ntlm);
	httpc_resp_free(&r);
}

static void
test_body_cap(void **state)
{
	struct httpc_resp r;
	struct httpc_call c;
	char chunk[64];

	(void)state;
	httpc_resp_init(&r);
	buf_init(&r.body, 100);
	memset(&c, 0, sizeof(c));
	c.resp = &r;
	memset(chunk, 'a', sizeof(chunk));
	assert_int_equal(httpc_write_cb(chunk, 1, sizeof(chunk), &c),
	                 sizeof(chunk));
	assert_int_equal(httpc_write_cb(chunk, 1, sizeof(chunk), &c), 0);
	assert_true(c.too_big);
	assert_int_equal(r.body.len, sizeof(chunk));
	httpc_resp_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verified),
	    cmocka_unit_test(test_env_proxy_ignored),
	    cmocka_unit_test(test_interception_leaf_only),
	    cmocka_unit_test(test_interception_with_chain),
	    cmocka_unit_test(test_insecure),
	    cmocka_unit_test(test_hostname_mismatch),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_client_cert),
	    cmocka_unit_test(test_client_cert_missing),
	    cmocka_unit_test(test_key_readable_by_others),
	    cmocka_unit_test(test_not_https),
	    cmocka_unit_test(test_proxy_basic_ok),
	    cmocka_unit_test(test_proxy_then_interception),
	    cmocka_unit_test(test_proxy_basic_wrong),
	    cmocka_unit_test(test_proxy_basic_missing),
	    cmocka_unit_test(test_proxy_ntlm),
	    cmocka_unit_test(test_proxy_refused),
	    cmocka_unit_test(test_proxy_display),
	    cmocka_unit_test(test_proxy_auth_headers),
	    cmocka_unit_test(test_body_cap),
	};

	int rc;

	rc = cmocka_run_group_tests(tests, setup, teardown);
	/* 77 is CTest's SKIP_RETURN_CODE: five proxy tests did not run, so the
	 * whole program is reported as skipped, not as passed. */
	if (rc == 0 && !have_squid) {
		fprintf(stderr, "skip: /usr/sbin/squid is not installed "
		                "(scripts/install-deps installs it); the proxy "
		                "tests did not run\n");
		return 77;
	}
	return rc;
}
