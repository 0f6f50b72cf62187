/*
 * state: the agent's data directory (layout in agent.h). Everything the
 * agent knows across restarts lives there: its key and certificate, the
 * pinned CA and state.json. Files are replaced atomically (tls_write_file,
 * rename), and a certificate change is two renames whose interruption the
 * next start finishes (see agent_state_load), so a crash never leaves a key
 * next to a certificate it does not belong to.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent.h"
#include "buf.h"
#include "enroll.h"
#include "log.h"
#include "pki.h"
#include "tls.h"

#define STATE_MAX  (64 * 1024)
#define SECRET_MAX 4096

const char *
agent_default_dir(void)
{
	const char *d = getenv(AGENT_DATA_DIR_ENV);

	return d != NULL && d[0] != '\0' ? d : AGENT_DEFAULT_DATA_DIR;
}

static int
join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

int
agent_state_init(struct agent_state *st, const char *dir)
{
	char cwd[PATH_MAX];
	size_t len;

	memset(st, 0, sizeof(*st));
	st->lock_fd = -1;
	st->poll_interval = AGENT_DEFAULT_POLL;
	st->retry_after = 10;
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(st->dir) - 16) {
		log_warnx("data directory name '%s' is empty or too long", dir);
		return -1;
	}
	/* Absolute, so that paths stored in state.json (the proxy
	 * credentials file) stay right whatever the next cwd is. */
	if (dir[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    strlen(cwd) + 1 + len >= sizeof(st->dir) - 16) {
			log_warn("data directory %s", dir);
			return -1;
		}
		/* Lengths were checked above; built by parts so the
		 * compiler need not prove the snprintf fits. */
		size_t cl = strlen(cwd);

		memcpy(st->dir, cwd, cl);
		st->dir[cl] = '/';
		memcpy(st->dir + cl + 1, dir, len);
		st->dir[cl + 1 + len] = '\0';
	} else {
		memcpy(st->dir, dir, len);
		st->dir[len] = '\0';
	}
	if (join(st->p_state, st->dir, "state.json") ||
	    join(st->p_key, st->dir, "agent.key") ||
	    join(st->p_crt, st->dir, "agent.crt") ||
	    join(st->p_ca, st->dir, "ca.pem") ||
	    join(st->p_pkey, st->dir, "pending.key") ||
	    join(st->p_pcrt, st->dir, "pending.crt") ||
	    join(st->p_lock, st->dir, "lock") ||
	    join(st->p_proxy_user, st->dir, "proxy-user")) {
		log_warnx("data directory name '%s' is too long", dir);
		return -1;
	}
	return 0;
}

static void
free_secret(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
agent_state_free(struct agent_state *st)
{
	free(st->server);
	free(st->preferred);
	free(st->agent_id);
	free(st->proxy);
	free(st->proxy_user_file);
	free(st->request_id);
	free_secret(&st->proxy_user);
	st->server = st->agent_id = st->proxy = st->preferred = NULL;
	st->proxy_user_file = st->request_id = NULL;
	if (st->lock_fd != -1)
		close(st->lock_fd); /* releases the flock */
	st->lock_fd = -1;
}

int
agent_set_str(char **dst, const char *src)
{
	char *c = NULL;

	if (src != NULL && (c = strdup(src)) == NULL) {
		log_warn("strdup");
		return -1;
	}
	free(*dst);
	*dst = c;
	return 0;
}

int
agent_file_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* mkdir -p; the last component 0700, the parents 0755. */
int
agent_dir_create(struct agent_state *st)
{
	char tmp[PATH_MAX];
	struct stat sb;
	size_t i;

	memcpy(tmp, st->dir, sizeof(tmp));
	for (i = 1; tmp[i] != '\0'; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST) {
			log_warn("data directory: mkdir %s", tmp);
			return -1;
		}
		tmp[i] = '/';
	}
	if (mkdir(st->dir, 0700) == -1 && errno != EEXIST) {
		log_warn("data directory: mkdir %s", st->dir);
		return -1;
	}
	if (lstat(st->dir, &sb) == -1) {
		log_warn("data directory: %s", st->dir);
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		log_warnx("data directory: %s is not a directory", st->dir);
		return -1;
	}
	/* It holds the private key: nobody else gets in. */
	if ((sb.st_mode & 077) != 0 && sb.st_uid == geteuid() &&
	    chmod(st->dir, 0700) == -1) {
		log_warn("data directory: chmod 700 %s", st->dir);
		return -1;
	}
	return 0;
}

int
agent_lock(struct agent_state *st)
{
	st->lock_fd = open(st->p_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd == -1) {
		log_warn("%s", st->p_lock);
		return -1;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			log_warnx("another vigil-agent is using %s (enroll or "
			          "run); stop it first",
			          st->dir);
		else
			log_warn("flock %s", st->p_lock);
		close(st->lock_fd);
		st->lock_fd = -1;
		return -1;
	}
	return 0;
}

int
agent_state_exists(const struct agent_state *st)
{
	return agent_file_exists(st->p_state);
}

static int
get_str(json_t *o, const char *name, char **dst)
{
	json_t *v = json_object_get(o, name);

	if (v == NULL || json_is_null(v))
		return agent_set_str(dst, NULL);
	if (!json_is_string(v))
		return -1;
	return agent_set_str(dst, json_string_value(v));
}

static long long
clamp_poll(long long v)
{
	if (v < AGENT_MIN_POLL)
		return AGENT_MIN_POLL;
	if (v > AGENT_MAX_POLL)
		return AGENT_MAX_POLL;
	return v;
}

static int
sync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* The agent id is the certificate's subject CN, never a field a peer sent
 * beside it. */
static char *
cert_agent_id(const char *path)
{
	struct buf err;
	X509 *x;
	char *cn = NULL;

	buf_init(&err, 1024);
	if ((x = tls_load_cert(path, &err)) != NULL) {
		cn = tls_subject_cn(x);
		X509_free(x);
	} else {
		log_warnx("%s", buf_cstr(&err));
	}
	buf_free(&err);
	return cn;
}

/*
 * Finishes a certificate install that a crash interrupted: pending.crt
 * exists only between the two renames of agent_install_identity.
 */
static int
recover(struct agent_state *st)
{
	char *cn;

	if (!agent_file_exists(st->p_pcrt))
		return 0;
	log_info("state: finishing an interrupted certificate install in %s",
	         st->dir);
	if (agent_file_exists(st->p_pkey) && rename(st->p_pkey, st->p_key)) {
		log_warn("rename %s", st->p_pkey);
		return -1;
	}
	if (rename(st->p_pcrt, st->p_crt) == -1) {
		log_warn("rename %s", st->p_pcrt);
		return -1;
	}
	(void)sync_dir(st->dir);
	if ((cn = cert_agent_id(st->p_crt)) == NULL)
		return -1;
	free(st->agent_id);
	st->agent_id = cn;
	free(st->request_id);
	st->request_id = NULL;
	return agent_state_save(st);
}

int
agent_state_load(struct agent_state *st)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	struct buf raw, err;
	int ret = -1;

	buf_init(&raw, STATE_MAX);
	buf_init(&err, 1024);
	if (!agent_state_exists(st)) {
		log_warnx("%s: not enrolled (no %s); run `vigil-agent enroll` "
		          "first",
		          st->dir, st->p_state);
		goto fail;
	}
	if (tls_read_file(st->p_state, STATE_MAX, &raw, &err) == -1) {
		log_warnx("%s", buf_cstr(&err));
		goto fail;
	}
	root = json_loadb((const char *)raw.data, raw.len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		log_warnx("%s: not a JSON object (%s); enroll again with "
		          "--force",
		          st->p_state, root == NULL ? jerr.text : "wrong type");
		goto fail;
	}
	if (get_str(root, "server", &st->server) ||
	    get_str(root, "preferred_server", &st->preferred) ||
	    get_str(root, "agent_id", &st->agent_id) ||
	    get_str(root, "proxy", &st->proxy) ||
	    get_str(root, "proxy_user_file", &st->proxy_user_file) ||
	    get_str(root, "request_id", &st->request_id)) {
		log_warnx("%s: a field has the wrong type", st->p_state);
		goto fail;
	}
	if (st->server == NULL) {
		log_warnx("%s: no server URL", st->p_state);
		goto fail;
	}
	if ((v = json_object_get(root, "poll_interval")) != NULL &&
	    json_is_integer(v))
		st->poll_interval = clamp_poll(json_integer_value(v));
	if ((v = json_object_get(root, "retry_after")) != NULL &&
	    json_is_integer(v))
		st->retry_after = clamp_poll(json_integer_value(v));
	if (recover(st) == -1)
		goto fail;
	ret = 0;
fail:
	json_decref(root);
	buf_free(&raw);
	buf_free(&err);
	return ret;
}

int
agent_state_save(const struct agent_state *st)
{
	struct buf err;
	json_t *root;
	char *text = NULL;
	int ret = -1;

	buf_init(&err, 1024);
	root = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:s*}",
	                 "server", st->server, "agent_id", st->agent_id,
	                 "proxy", st->proxy, "proxy_user_file",
	                 st->proxy_user_file, "request_id", st->request_id,
	                 "poll_interval", (json_int_t)st->poll_interval,
	                 "retry_after", (json_int_t)st->retry_after,
	                 "preferred_server", st->preferred);
	if (root == NULL ||
	    (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) ==
	        NULL) {
		log_warnx("state: cannot encode %s", st->p_state);
		goto fail;
	}
	if (tls_write_file(st->p_state, text, strlen(text), 0600, &err)) {
		log_warnx("state: %s", buf_cstr(&err));
		goto fail;
	}
	ret = 0;
fail:
	free(text);
	json_decref(root);
	buf_free(&err);
	return ret;
}

/* Reads "user:password" from the file state.json names; the file must be
 * private like a key. */
int
agent_load_proxy_user(struct agent_state *st)
{
	struct buf raw, err;
	struct strv v;
	int ret = -1;

	if (st->proxy_user != NULL || st->proxy_user_file == NULL)
		return 0;
	buf_init(&raw, SECRET_MAX);
	buf_init(&err, 1024);
	if (tls_check_key_perms(st->proxy_user_file, &err) == -1 ||
	    tls_read_file(st->proxy_user_file, SECRET_MAX, &raw, &err) == -1) {
		log_warnx("proxy credentials: %s", buf_cstr(&err));
		goto fail;
	}
	v = strv_trim(strv_make((const char *)raw.data, raw.len));
	if (v.len == 0 || memchr(v.p, ':', v.len) == NULL ||
	    memchr(v.p, '\n', v.len) != NULL) {
		log_warnx("proxy credentials: %s must hold one line "
		          "user:password",
		          st->proxy_user_file);
		goto fail;
	}
	if ((st->proxy_user = strv_dup(v)) == NULL) {
		log_warn("strdup");
		goto fail;
	}
	ret = 0;
fail:
	if (raw.data != NULL)
		explicit_bzero(raw.data, raw.cap);
	buf_free(&raw);
	buf_free(&err);
	return ret;
}

/* Set when the agent stops: requests in flight (a long poll) end now. */
volatile int agent_abort;

void
agent_httpc_opts(const struct agent_state *st, int with_cert,
                 struct httpc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ca_file = st->p_ca;
	if (with_cert) {
		o->cert_file = st->p_crt;
		o->key_file = st->p_key;
	}
	o->proxy = st->proxy;
	o->proxy_user = st->proxy_user;
	o->timeout_secs = AGENT_TIMEOUT;
	o->abort_flag = &agent_abort;
	/* The center's certificate, not another component's from the same
	 * CA (docs/pki.md): a scand or inteld host must not pass for it. */
	o->server_roles =
	    PKI_ROLE_BIT(PKI_ROLE_CENTER) | PKI_ROLE_BIT(PKI_ROLE_NONE);
	o->server_what = "the agent, connecting to its center,";
}

/*
 * A PEM buffer for key material: sized up front so that it never grows,
 * because realloc would leave copies of the key in freed memory.
 */
static void
key_buf_init(struct buf *b)
{
	static const char pad[4096];

	buf_init(b, sizeof(pad));
	(void)buf_append(b, pad, sizeof(pad) - 1);
	buf_reset(b);
}

static void
key_buf_free(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

/*
 * Makes a new EC P-256 key, stores it as pending.key (0600) and returns a
 * CSR for it in *csr_pem (malloc'd). The key never leaves this host.
 */
int
agent_new_pending_key(struct agent_state *st, char **csr_pem)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	struct buf kpem, cpem, err;
	int ret = -1;

	*csr_pem = NULL;
	key_buf_init(&kpem);
	buf_init(&cpem, ENROLL_MAX_CSR);
	buf_init(&err, 1024);
	if ((key = pki_genkey()) == NULL) {
		log_warnx("cannot make a key");
		goto fail;
	}
	/* The CSR subject is ignored by the center; the current id (or a
	 * placeholder) keeps it readable for people. */
	req = pki_make_csr(key,
	                   st->agent_id != NULL ? st->agent_id : "vigil-agent");
	if (req == NULL || tls_csr_to_pem(req, &cpem) == -1) {
		log_warnx("cannot make a certificate request");
		goto fail;
	}
	if (tls_key_to_pem(key, &kpem) == -1 ||
	    tls_write_file(st->p_pkey, kpem.data, kpem.len, 0600, &err)) {
		log_warnx("cannot store the new key: %s", buf_cstr(&err));
		goto fail;
	}
	if ((*csr_pem = buf_steal(&cpem, NULL)) == NULL) {
		log_warn("malloc");
		goto fail;
	}
	ret = 0;
fail:
	if (ret == -1)
		(void)unlink(st->p_pkey);
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	key_buf_free(&kpem);
	buf_free(&cpem);
	buf_free(&err);
	return ret;
}

void
agent_drop_pending_key(struct agent_state *st)
{
	if (unlink(st->p_pkey) == -1 && errno != ENOENT)
		log_warn("unlink %s", st->p_pkey);
}

/*
 * Installs the certificate of a 201 enroll or 200 renew reply for the key
 * in pending.key: checks that it belongs to that key and was signed by the
 * pinned CA, then moves key and certificate into place. expect_id, when
 * set, is the agent id the certificate must carry (renewal).
 */
int
agent_install_identity(struct agent_state *st, json_t *reply,
                       const char *expect_id)
{
	const char *pem, *rid, *capem;
	struct buf err, out;
	X509 *cert = NULL, *ca = NULL, *rca = NULL;
	EVP_PKEY *key = NULL;
	char *cn = NULL;
	char fp1[65], fp2[65];
	json_t *v;
	int ret = -1;

	buf_init(&err, 2048);
	buf_init(&out, 64 * 1024);
	pem = json_string_value(json_object_get(reply, "certificate"));
	if (pem == NULL ||
	    (cert = tls_cert_from_pem(pem, strlen(pem))) == NULL) {
		log_warnx("install: the center's reply has no valid "
		          "\"certificate\"");
		goto fail;
	}
	if ((key = tls_load_key(st->p_pkey, &err)) == NULL ||
	    (ca = tls_load_cert(st->p_ca, &err)) == NULL) {
		log_warnx("install: %s", buf_cstr(&err));
		goto fail;
	}
	if (!pki_key_matches(cert, key)) {
		log_warnx("install: the certificate from the center is not for "
		          "this agent's new key; refused");
		goto fail;
	}
	if (pki_verify_signed_by(cert, ca) != 0) {
		log_warnx("install: the certificate from the center is not "
		          "signed by the pinned CA (%s); refused",
		          st->p_ca);
		goto fail;
	}
	if ((cn = tls_subject_cn(cert)) == NULL || cn[0] == '\0') {
		log_warnx("install: the certificate has no agent id (CN)");
		goto fail;
	}
	if (expect_id != NULL && strcmp(cn, expect_id) != 0) {
		log_warnx("install: the renewed certificate is for agent %s, "
		          "not %s; refused",
		          cn, expect_id);
		goto fail;
	}
	rid = json_string_value(json_object_get(reply, "agent_id"));
	if (rid != NULL && strcmp(rid, cn) != 0)
		log_warnx("install: reply says agent %s but the certificate "
		          "names %s; the certificate wins",
		          rid, cn);
	/* The pinned CA stays the trust anchor; a different one offered by
	 * the center is only reported. */
	capem = json_string_value(json_object_get(reply, "ca"));
	if (capem != NULL &&
	    (rca = tls_cert_from_pem(capem, strlen(capem))) != NULL) {
		tls_fingerprint(ca, fp1);
		tls_fingerprint(rca, fp2);
		if (strcmp(fp1, fp2) != 0)
			log_warnx("install: the center names a CA (SHA-256 %s) "
			          "other than the pinned one (%s); keeping the "
			          "pinned CA",
			          fp2, fp1);
	}

	if (tls_cert_to_pem(cert, &out) == -1 ||
	    tls_write_file(st->p_pcrt, out.data, out.len, 0644, &err) == -1) {
		log_warnx("install: %s", buf_cstr(&err));
		goto fail;
	}
	/* Key first, then certificate: recover() finishes the second rename
	 * if we die in between. */
	if (rename(st->p_pkey, st->p_key) == -1) {
		log_warn("install: rename %s", st->p_pkey);
		(void)unlink(st->p_pcrt);
		goto fail;
	}
	if (rename(st->p_pcrt, st->p_crt) == -1) {
		log_warn("install: rename %s", st->p_pcrt);
		goto fail;
	}
	(void)sync_dir(st->dir);

	free(st->agent_id);
	st->agent_id = cn;
	cn = NULL;
	free(st->request_id);
	st->request_id = NULL;
	if ((v = json_object_get(reply, "poll_interval")) != NULL &&
	    json_is_integer(v))
		st->poll_interval = clamp_poll(json_integer_value(v));
	/* Enrollment: the node of the center's database assigned to this
	 * agent, if any (docs/scale-out.md, "Preferred nodes"). */
	if (expect_id == NULL)
		agent_take_preferred(st, json_string_value(json_object_get(
		                             reply, "preferred_server")));
	if (agent_state_save(st) == -1)
		goto fail;
	/* Enrollment (not renewal): pin the update root handed out. */
	if (expect_id == NULL)
		(void)agent_updates_pin(st, json_string_value(json_object_get(
		                                reply, "update_root")));
	ret = 0;
fail:
	X509_free(cert);
	X509_free(ca);
	X509_free(rca);
	EVP_PKEY_free(key);
	free(cn);
	buf_free(&err);
	buf_free(&out);
	return ret;
}

int
agent_cert_times(const struct agent_state *st, long long *not_before,
                 long long *not_after)
{
	struct buf err;
	X509 *x;
	int ret = -1;

	buf_init(&err, 1024);
	if ((x = tls_load_cert(st->p_crt, &err)) == NULL) {
		log_warnx("%s", buf_cstr(&err));
		goto fail;
	}
	*not_before = tls_not_before(x);
	*not_after = tls_not_after(x);
	if (*not_before < 0 || *not_after <= *not_before) {
		log_warnx("%s: unreadable validity dates", st->p_crt);
		goto fail;
	}
	ret = 0;
fail:
	X509_free(x);
	buf_free(&err);
	return ret;
}

void
agent_take_preferred(struct agent_state *st, const char *url)
{
	char *u = NULL;

	free(st->preferred);
	st->preferred = NULL;
	if (url == NULL || url[0] == '\0')
		return;
	if (agent_check_server_url(url, &u) == -1) {
		log_warnx("enroll: the center assigned the node %.200s, which "
		          "is not a usable URL; keeping %s only",
		          url, st->server);
		return;
	}
	if (strcmp(u, st->server) == 0) {
		free(u);
		return;
	}
	st->preferred = u;
	log_info("enroll: assigned to the node %s (%s when it fails)",
	         st->preferred, st->server);
}

/*
 * Checks a --server URL: https:// with a host, at most a '/' after it.
 * *out gets a copy without the trailing '/'.
 */
int
agent_check_server_url(const char *url, char **out)
{
	size_t len;
	const char *host;

	*out = NULL;
	if (strncmp(url, "https://", 8) != 0) {
		log_warnx("--server %s: must start with https:// (every "
		          "channel to the center is TLS)",
		          url);
		return -1;
	}
	host = url + 8;
	len = strlen(url);
	while (len > 8 && url[len - 1] == '/')
		len--;
	if (host[0] == '\0' || host[0] == '/' ||
	    memchr(host, '/', len - 8) != NULL || strpbrk(url, "?#@ ") ||
	    len > 512) {
		log_warnx("--server %s: give the center as https://HOST[:PORT]",
		          url);
		return -1;
	}
	if ((*out = strndup(url, len)) == NULL) {
		log_warn("strndup");
		return -1;
	}
	return 0;
}
