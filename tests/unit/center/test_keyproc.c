/*
 * Unit tests of the center's key process (keyproc.c): it starts only with
 * a CA key that matches the CA certificate and that nobody else can read;
 * it signs well-formed P-256 CSRs for UUID names with the requested
 * lifetime; it refuses other keys, garbage, odd names and oversize
 * requests with a message while the channel stays usable; it fails
 * cleanly once stopped or dead; and the parent never has the key open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../../../src/center/keyproc.c"

#define AGENT_UUID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define LIFETIME   (30LL * 86400)

/* One PKI for the whole run: generating keys is the slow part. */
static struct {
	char dir[64];
	char ca_crt[PATH_MAX], ca_key[PATH_MAX];
	char other_key[PATH_MAX], loose_key[PATH_MAX];
	char ca_key_real[PATH_MAX];
	X509 *ca;
	EVP_PKEY *agentkey;
	char *csr;     /* PEM CSR of agentkey, CN "agent" */
	char *rsa_csr; /* PEM CSR of an RSA 2048 key */
} pk;

static void
write_pem(const char *path, const struct buf *pem, int mode)
{
	struct buf err;

	buf_init(&err, 4096);
	if (tls_write_file(path, pem->data, pem->len, mode, &err) == -1)
		fail_msg("tls_write_file %s: %s", path, buf_cstr(&err));
	buf_free(&err);
}

static void
write_key(const char *path, EVP_PKEY *k, int mode)
{
	struct buf pem;

	buf_init(&pem, 65536);
	assert_int_equal(tls_key_to_pem(k, &pem), 0);
	write_pem(path, &pem, mode);
	buf_free(&pem);
}

static char *
csr_pem(EVP_PKEY *k, const char *cn)
{
	X509_REQ *r = pki_make_csr(k, cn);
	struct buf pem;
	char *s;

	assert_non_null(r);
	buf_init(&pem, 65536);
	assert_int_equal(tls_csr_to_pem(r, &pem), 0);
	assert_non_null(s = buf_steal(&pem, NULL));
	X509_REQ_free(r);
	return s;
}

static int
setup(void **state)
{
	EVP_PKEY *cakey, *otherkey, *rsakey;
	struct buf pem;

	(void)state;
	snprintf(pk.dir, sizeof(pk.dir), "/tmp/vigil-keyproc-XXXXXX");
	assert_non_null(mkdtemp(pk.dir));
	snprintf(pk.ca_crt, sizeof(pk.ca_crt), "%s/ca.crt", pk.dir);
	snprintf(pk.ca_key, sizeof(pk.ca_key), "%s/ca.key", pk.dir);
	snprintf(pk.other_key, sizeof(pk.other_key), "%s/other.key", pk.dir);
	snprintf(pk.loose_key, sizeof(pk.loose_key), "%s/loose.key", pk.dir);

	assert_non_null(cakey = pki_genkey());
	assert_non_null(pk.ca = pki_make_ca(cakey, "Test CA", 3650));
	buf_init(&pem, 65536);
	assert_int_equal(tls_cert_to_pem(pk.ca, &pem), 0);
	write_pem(pk.ca_crt, &pem, 0644);
	buf_free(&pem);
	write_key(pk.ca_key, cakey, 0600);
	/* The right key, but readable by group and others. */
	write_key(pk.loose_key, cakey, 0644);
	/* A well-protected key of another CA. */
	assert_non_null(otherkey = pki_genkey());
	write_key(pk.other_key, otherkey, 0600);
	assert_non_null(realpath(pk.ca_key, pk.ca_key_real));

	assert_non_null(pk.agentkey = pki_genkey());
	pk.csr = csr_pem(pk.agentkey, "agent");
	assert_non_null(rsakey = EVP_RSA_gen(2048));
	pk.rsa_csr = csr_pem(rsakey, "agent");

	EVP_PKEY_free(rsakey);
	EVP_PKEY_free(otherkey);
	EVP_PKEY_free(cakey);
	return 0;
}

static int
teardown(void **state)
{
	DIR *d;
	struct dirent *de;

	(void)state;
	if ((d = opendir(pk.dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(pk.dir);
	X509_free(pk.ca);
	EVP_PKEY_free(pk.agentkey);
	free(pk.csr);
	free(pk.rsa_csr);
	return 0;
}

static void
center_init(struct center *c, const char *crt, const char *key)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->paths.ca_crt, sizeof(c->paths.ca_crt), "%s", crt);
	snprintf(c->paths.ca_key, sizeof(c->paths.ca_key), "%s", key);
	/* The key process's own policy: the configured lifetime is its cap,
	 * and it logs what it issued in the data directory. */
	c->conf.agent_cert_lifetime = LIFETIME;
	c->conf.data_dir = pk.dir;
	c->keyfd = -1;
	c->monfd = -1;
}

static void
start_ok(struct center *c)
{
	struct buf err;

	center_init(c, pk.ca_crt, pk.ca_key);
	buf_init(&err, 4096);
	if (keyproc_start(c, &err) == -1)
		fail_msg("keyproc_start: %s", buf_cstr(&err));
	assert_int_not_equal(c->keyfd, -1);
	assert_true(c->keypid > 0);
	buf_free(&err);
}

/* keyproc_start fails, leaves nothing running, and says want. */
static void
start_fails(const char *crt, const char *key, const char *want)
{
	struct center c;
	struct buf err;

	center_init(&c, crt, key);
	buf_init(&err, 4096);
	assert_int_equal(keyproc_start(&c, &err), -1);
	if (strstr(buf_cstr(&err), want) == NULL)
		fail_msg("want \"%s\" in: %s", want, buf_cstr(&err));
	assert_int_equal(c.keyfd, -1);
	assert_int_equal(c.keypid, 0);
	buf_free(&err);
}

/* A sign that must be refused with a message containing want (NULL: any
 * non-empty message); the channel stays up. */
static void
sign_refused(struct center *c, const char *csr, const char *cn,
             long long lifetime, const char *want)
{
	struct buf out, err;

	buf_init(&out, 65536);
	buf_init(&err, 4096);
	if (keyproc_sign(c, csr, cn, lifetime, "test", &out, &err) != -1)
		fail_msg("signed a bad request for \"%s\"", cn);
	assert_int_equal(out.len, 0);
	assert_true(err.len > 0);
	if (want != NULL && strstr(buf_cstr(&err), want) == NULL)
		fail_msg("want \"%s\" in: %s", want, buf_cstr(&err));
	assert_int_not_equal(c->keyfd, -1);
	buf_free(&out);
	buf_free(&err);
}

/* A sign that must succeed: a certificate for cn, issued by the CA, for
 * the agent's key, with the requested lifetime. */
static void
sign_ok(struct center *c, const char *cn, long long lifetime)
{
	struct buf out, err;
	X509 *x;
	char *s;
	long long left;

	buf_init(&out, 65536);
	buf_init(&err, 4096);
	if (keyproc_sign(c, pk.csr, cn, lifetime, "test", &out, &err) == -1)
		fail_msg("keyproc_sign: %s", buf_cstr(&err));
	assert_int_equal(err.len, 0);
	assert_non_null(strstr(buf_cstr(&out), "-----BEGIN CERTIFICATE-----"));
	assert_non_null(x = tls_cert_from_pem(buf_cstr(&out), out.len));
	/* The name is the one the center assigned, not the CSR's. */
	assert_non_null(s = tls_subject_cn(x));
	assert_string_equal(s, cn);
	free(s);
	assert_int_equal(pki_verify_signed_by(x, pk.ca), 0);
	assert_int_equal(pki_key_matches(x, pk.agentkey), 1);
	/* A day or more includes the backdate (pki.c new_cert()). */
	left = tls_not_after(x) - (long long)time(NULL);
	if (lifetime >= 86400)
		left += PKI_SKEW_SECS + 1;
	assert_true(left > lifetime - 60 && left <= lifetime + 1);
	X509_free(x);
	buf_free(&out);
	buf_free(&err);
}

static void
test_start_and_sign(void **state)
{
	struct center c;

	(void)state;
	start_ok(&c);
	sign_ok(&c, AGENT_UUID, LIFETIME);
	sign_ok(&c, "00000000-0000-0000-0000-000000000001", 3600);
	assert_int_equal(c.keyseq, 3); /* PING + two SIGNs */
	keyproc_stop(&c);
	assert_int_equal(c.keyfd, -1);
	assert_int_equal(c.keypid, 0);
}

static void
test_parent_never_opens_key(void **state)
{
	struct center c;
	struct dirent *de;
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	DIR *d;
	int seen = 0;

	(void)state;
	start_ok(&c);
	/* A signature proves the child loaded the key. */
	sign_ok(&c, AGENT_UUID, LIFETIME);
	assert_non_null(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) == -1)
			continue;
		target[n] = '\0';
		seen++;
		if (strcmp(target, pk.ca_key_real) == 0 ||
		    strstr(target, "ca.key") != NULL)
			fail_msg("parent holds %s open as fd %s", target,
			         de->d_name);
	}
	closedir(d);
	assert_true(seen >= 3); /* stdio at least: the scan did run */
	keyproc_stop(&c);
}

static void
test_rejects_bad_csrs(void **state)
{
	struct center c;
	char *tampered, *p;

	(void)state;
	start_ok(&c);
	sign_refused(&c, pk.rsa_csr, AGENT_UUID, LIFETIME, "CSR key is RSA");
	sign_ok(&c, AGENT_UUID, LIFETIME);
	sign_refused(&c, "this is not a certificate request", AGENT_UUID,
	             LIFETIME, "not a PEM certificate request");
	sign_ok(&c, AGENT_UUID, LIFETIME);
	sign_refused(&c, "", AGENT_UUID, LIFETIME,
	             "not a PEM certificate request");
	sign_refused(&c,
	             "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
	             "-----END CERTIFICATE REQUEST-----\n",
	             AGENT_UUID, LIFETIME, "not a PEM certificate request");
	/* One base64 character changed inside the signed part: the CSR
	 * no longer parses, or its signature no longer verifies. */
	assert_non_null(tampered = strdup(pk.csr));
	p = strchr(tampered, '\n') + 40;
	*p = *p == 'A' ? 'B' : 'A';
	sign_refused(&c, tampered, AGENT_UUID, LIFETIME, NULL);
	free(tampered);
	sign_ok(&c, AGENT_UUID, LIFETIME);
	keyproc_stop(&c);
}

static void
test_rejects_bad_names(void **state)
{
	static const char *const bad[] = {
	    "",
	    "agent",
	    "../../etc/passwd",
	    "3F2504E0-4F89-41D3-9A0C-0305E82C3301", /* not canonical */
	    "3f2504e0-4f89-41d3-9a0c-0305e82c3301,O=Evil",
	    "3f2504e0 4f89 41d3 9a0c 0305e82c3301",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c3301\n",
	    "CN=admin",
	    "x3f2504e0-4f89-41d3-9a0c-0305e82c330",
	    /* Too long for the request header: refused before sending. */
	    "3f2504e0-4f89-41d3-9a0c-0305e82c3301-0000",
	};
	struct center c;
	size_t i;

	(void)state;
	start_ok(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		sign_refused(&c, pk.csr, bad[i], LIFETIME, NULL);
	/* Lifetimes out of range. */
	sign_refused(&c, pk.csr, AGENT_UUID, 0, NULL);
	sign_refused(&c, pk.csr, AGENT_UUID, -LIFETIME, NULL);
	sign_refused(&c, pk.csr, AGENT_UUID, CENTER_MIN_CERT_LIFETIME - 1,
	             NULL);
	sign_refused(&c, pk.csr, AGENT_UUID, 1000LL * 365 * 86400,
	             "out of range");
	sign_ok(&c, AGENT_UUID, CENTER_MIN_CERT_LIFETIME);
	keyproc_stop(&c);
}

static void
test_rejects_oversize(void **state)
{
	struct center c;
	char *big;

	(void)state;
	start_ok(&c);
	assert_non_null(big = malloc(KP_MAX_CSR + 2));
	/* Largest allowed size: reaches the key process, fails to parse. */
	memset(big, 'A', KP_MAX_CSR);
	big[KP_MAX_CSR] = '\0';
	sign_refused(&c, big, AGENT_UUID, LIFETIME,
	             "not a PEM certificate request");
	/* One byte more: refused, and the channel survives. */
	big[KP_MAX_CSR] = 'A';
	big[KP_MAX_CSR + 1] = '\0';
	sign_refused(&c, big, AGENT_UUID, LIFETIME, NULL);
	free(big);
	assert_non_null(big = malloc(1024 * 1024));
	memset(big, 'A', 1024 * 1024 - 1);
	big[1024 * 1024 - 1] = '\0';
	sign_refused(&c, big, AGENT_UUID, LIFETIME, NULL);
	free(big);
	sign_ok(&c, AGENT_UUID, LIFETIME);
	keyproc_stop(&c);
}

static void
test_wrong_key(void **state)
{
	(void)state;
	start_fails(pk.ca_crt, pk.other_key, "does not belong to");
}

static void
test_loose_key_perms(void **state)
{
	struct stat st;

	(void)state;
	assert_int_equal(stat(pk.loose_key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	start_fails(pk.ca_crt, pk.loose_key, "chmod 600");
	start_fails(pk.ca_crt, pk.loose_key, "readable by group or others");
}

static void
test_missing_files(void **state)
{
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s/nonexistent", pk.dir);
	start_fails(pk.ca_crt, path, "nonexistent");
	start_fails(path, pk.ca_key, "nonexistent");
}

static void
test_after_stop(void **state)
{
	struct center c;
	struct buf out, err;

	(void)state;
	start_ok(&c);
	keyproc_stop(&c);
	keyproc_stop(&c); /* twice is harmless */
	buf_init(&out, 65536);
	buf_init(&err, 4096);
	assert_int_equal(
	    keyproc_sign(&c, pk.csr, AGENT_UUID, LIFETIME, "test", &out, &err),
	    -1);
	assert_non_null(strstr(buf_cstr(&err), "not running"));
	assert_int_equal(out.len, 0);
	buf_free(&out);
	buf_free(&err);
}

/* The key process: the key monitor's (c->keypid's) only child. */
static pid_t
key_child(pid_t monitor)
{
	char path[64];
	long pid = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
	         (long)monitor, (long)monitor);
	/* The monitor forks it right away, but not before we look. */
	for (i = 0; i < 100 && pid == 0; i++) {
		if ((f = fopen(path, "r")) != NULL) {
			if (fscanf(f, "%ld", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid == 0)
			usleep(10000);
	}
	return (pid_t)pid;
}

static void
test_child_dies(void **state)
{
	struct center c;
	struct buf out, err;
	pid_t k1, k2;

	(void)state;
	start_ok(&c);
	k1 = key_child(c.keypid);
	assert_true(k1 > 0);
	assert_int_equal(kill(k1, SIGKILL), 0);
	buf_init(&out, 65536);
	buf_init(&err, 4096);
	/* No SIGPIPE, no hang: the monitor starts a new key process at
	 * once, and the next request is signed through it. */
	if (keyproc_sign(&c, pk.csr, AGENT_UUID, LIFETIME, "test", &out,
	                 &err) == -1)
		fail_msg("sign after the key process died: %s", buf_cstr(&err));
	assert_non_null(strstr(buf_cstr(&out), "BEGIN CERTIFICATE"));
	k2 = key_child(c.keypid);
	assert_true(k2 > 0);
	assert_int_not_equal(k1, k2);
	/* It dies again within a minute: the monitor waits 5 s before the
	 * next one, and a request meanwhile fails at once, cleanly. */
	assert_int_equal(kill(k2, SIGKILL), 0);
	buf_reset(&out);
	assert_int_equal(
	    keyproc_sign(&c, pk.csr, AGENT_UUID, LIFETIME, "test", &out, &err),
	    -1);
	assert_non_null(strstr(buf_cstr(&err), "not running"));
	assert_int_equal(c.keyfd, -1);
	keyproc_stop(&c); /* the monitor goes, and reaps its child */
	assert_int_equal(c.keypid, 0);
	assert_int_equal(kill(k2, 0), -1);
	buf_free(&out);
	buf_free(&err);
}

/* The key process enforces its own policy whatever the parent asks: a
 * canonical UUID as the name (hex digits and dashes in any other layout are
 * refused), no lifetime beyond the configured one (36,500 days was
 * signed), and every certificate it issued is in its append-only log. */
static void
test_policy(void **state)
{
	static const char *const bad[] = {
	    "abcdef",
	    "------------------------------------",
	    "3f2504e04f8941d39a0c0305e82c3301",
	    "3f2504e0-4f89-41d3-9a0c0305e82c-3301",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c33010",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c33g1",
	};
	char path[PATH_MAX], line[4096];
	struct center c;
	FILE *f;
	size_t i;
	int n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/issued-certs.log", pk.dir);
	unlink(path);
	start_ok(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		sign_refused(&c, pk.csr, bad[i], LIFETIME, NULL);
	sign_refused(&c, pk.csr, AGENT_UUID, LIFETIME + 1, NULL);
	sign_refused(&c, pk.csr, AGENT_UUID, 36500LL * 86400, NULL);
	sign_ok(&c, AGENT_UUID, LIFETIME);
	sign_ok(&c, "00000000-0000-0000-0000-000000000001", 3600);
	keyproc_stop(&c);
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("%s: no log of issued certificates", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		assert_non_null(
		    json_string_value(json_object_get(j, "serial")));
		/* RFC 2253 order: CN first, then the O the key process adds. */
		assert_non_null(strstr(
		    json_string_value(json_object_get(j, "subject")),
		    n == 0 ? "CN=" AGENT_UUID ","
		           : "CN=00000000-0000-0000-0000-000000000001,"));
		/* Backdate included for a day or more (pki.c); the two ends
		 * are read from the clock one after the other. */
		assert_in_range(
		    json_integer_value(json_object_get(j, "not_after")) -
		        json_integer_value(json_object_get(j, "not_before")),
		    n == 0 ? LIFETIME - 1 : 3600 + 300,
		    n == 0 ? LIFETIME : 3600 + 301);
		assert_non_null(
		    json_string_value(json_object_get(j, "requester")));
		json_decref(j);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2); /* refused requests are not issued */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_and_sign),
	    cmocka_unit_test(test_parent_never_opens_key),
	    cmocka_unit_test(test_rejects_bad_csrs),
	    cmocka_unit_test(test_rejects_bad_names),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_rejects_oversize),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_loose_key_perms),
	    cmocka_unit_test(test_missing_files),
	    cmocka_unit_test(test_after_stop),
	    cmocka_unit_test(test_child_dies),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
