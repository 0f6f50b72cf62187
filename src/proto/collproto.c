/*
 * collproto.c: parser of the collector feed's messages and the case key of
 * a finding (see collproto.h). No I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include <openssl/evp.h>

#include "collproto.h"

void
collproto_free(struct coll_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->data);
	m->data = NULL;
	free(m->bin);
	m->bin = NULL;
}

/* 64 lowercase hex digits into out; -1 with the message. */
static int
sha_field(json_t *o, char out[65], struct buf *err)
{
	const char *s = json_string_value(json_object_get(o, "sha256"));
	size_t i;

	if (s == NULL || strlen(s) != 64)
		goto bad;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			goto bad;
	memcpy(out, s, 65);
	return 0;
bad:
	buf_puts(err, "sha256: 64 lowercase hex digits");
	return -1;
}

/* Standard base64 with padding, at most COLL_CHUNK_MAX bytes decoded. */
static int
b64_field(json_t *o, struct coll_msg *m, struct buf *err)
{
	const char *s = json_string_value(json_object_get(o, "data"));
	size_t n = s ? strlen(s) : 0, pad = 0;
	int got;

	if (s == NULL || n % 4 != 0 || n / 4 * 3 > COLL_CHUNK_MAX)
		goto bad;
	if (n > 0 && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	if ((m->bin = malloc(n / 4 * 3 + 1)) == NULL)
		goto bad;
	if (n == 0) {
		m->binlen = 0;
		return 0;
	}
	got = EVP_DecodeBlock(m->bin, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got < pad || memchr(s, '=', n - pad) != NULL)
		goto bad;
	m->binlen = (size_t)got - pad;
	return 0;
bad:
	buf_printf(err, "data: base64, at most %d bytes decoded",
	           COLL_CHUNK_MAX);
	return -1;
}

/* Copies the string member k of o into out (size n); absent or null gives
 * "" unless required. -1 with the message in err. */
static int
str_field(json_t *o, const char *k, char *out, size_t n, int required,
          struct buf *err)
{
	json_t *v = json_object_get(o, k);
	size_t len;

	out[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		buf_printf(err, "%s: required", k);
		return -1;
	}
	if (!json_is_string(v)) {
		buf_printf(err, "%s: must be a string", k);
		return -1;
	}
	len = json_string_length(v);
	if (len >= n || memchr(json_string_value(v), '\0', len) != NULL ||
	    (required && len == 0)) {
		buf_printf(err, "%s: 1 to %zu bytes, no NUL", k, n - 1);
		return -1;
	}
	memcpy(out, json_string_value(v), len + 1);
	return 0;
}

static int
int_field(json_t *o, const char *k, long long min, long long *out,
          struct buf *err)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < min) {
		buf_printf(err, "%s: must be an integer >= %lld", k, min);
		return -1;
	}
	*out = (long long)json_integer_value(v);
	return 0;
}

long
collproto_frame(const uint8_t *p, size_t len, size_t *need, const uint8_t **msg,
                size_t *msglen)
{
	size_t i, n = 0;

	*need = 0;
	for (i = 0; i < len && i < 7; i++) {
		if (p[i] == ' ')
			break;
		if (p[i] < '0' || p[i] > '9' || (i == 0 && p[i] == '0'))
			return -1;
		n = n * 10 + (size_t)(p[i] - '0');
	}
	if (i == len)
		return -2;
	if (i == 0 || p[i] != ' ' || n > COLL_MAX_FRAME)
		return -1;
	*need = i + 1 + n;
	if (len < *need)
		return -2;
	*msg = p + i + 1;
	*msglen = n;
	return (long)*need;
}

int
collproto_parse(const uint8_t *p, size_t n, struct coll_msg *m, struct buf *err)
{
	json_t *o = NULL, *d;
	json_error_t je;
	const char *kind;

	memset(m, 0, sizeof(*m));
	if (n == 0 || n > COLL_MAX_FRAME) {
		buf_printf(err, "message: 1 to %d bytes", COLL_MAX_FRAME);
		return -1;
	}
	if ((o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		buf_printf(err, "message: not JSON: %s", je.text);
		return -1;
	}
	if (!json_is_object(o)) {
		buf_puts(err, "message: must be a JSON object");
		goto fail;
	}
	kind = json_string_value(json_object_get(o, "kind"));
	if (kind == NULL) {
		buf_puts(err, "kind: required (event, agent or commit)");
		goto fail;
	}
	if (strcmp(kind, "commit") == 0) {
		m->kind = COLL_COMMIT;
		if (int_field(o, "upto", 0, &m->id, err) == -1)
			goto fail;
	} else if (strcmp(kind, "agent") == 0) {
		m->kind = COLL_AGENT;
		d = json_object_get(o, "agent");
		if (!json_is_object(d)) {
			buf_puts(err, "agent: must be an object");
			goto fail;
		}
		if (str_field(d, "id", m->agent_id, sizeof(m->agent_id), 1,
		              err) == -1 ||
		    str_field(d, "hostname", m->hostname, sizeof(m->hostname),
		              0, err) == -1)
			goto fail;
		m->data = json_incref(d);
	} else if (strcmp(kind, "event") == 0) {
		m->kind = COLL_EVENT;
		if (int_field(o, "id", 1, &m->id, err) == -1 ||
		    int_field(o, "seq", 0, &m->seq, err) == -1 ||
		    int_field(o, "time", 0, &m->time, err) == -1 ||
		    str_field(o, "agent_id", m->agent_id, sizeof(m->agent_id),
		              1, err) == -1 ||
		    str_field(o, "type", m->type, sizeof(m->type), 1, err) ==
		        -1 ||
		    str_field(o, "level", m->level, sizeof(m->level), 0, err) ==
		        -1 ||
		    str_field(o, "task_id", m->task_id, sizeof(m->task_id), 0,
		              err) == -1 ||
		    str_field(o, "hostname", m->hostname, sizeof(m->hostname),
		              0, err) == -1)
			goto fail;
		d = json_object_get(o, "data");
		if (d == NULL || json_is_null(d))
			d = json_object();
		else if (!json_is_object(d)) {
			buf_puts(err, "data: must be an object");
			goto fail;
		} else
			json_incref(d);
		m->data = d;
	} else if (strcmp(kind, "sample") == 0) {
		m->kind = COLL_SAMPLE;
		if (sha_field(o, m->sha256, err) == -1 ||
		    int_field(o, "size", 0, &m->size, err) == -1 ||
		    int_field(o, "received_at", 0, &m->time, err) == -1 ||
		    str_field(o, "agent_id", m->agent_id, sizeof(m->agent_id),
		              0, err) == -1 ||
		    str_field(o, "task_id", m->task_id, sizeof(m->task_id), 0,
		              err) == -1)
			goto fail;
		d = json_object_get(o, "path");
		if (d != NULL && !json_is_null(d) &&
		    (!json_is_string(d) || json_string_length(d) > 4096)) {
			buf_puts(err, "path: a string of at most 4096 bytes");
			goto fail;
		}
		m->data = json_incref(o);
	} else if (strcmp(kind, "chunk") == 0) {
		m->kind = COLL_CHUNK;
		d = json_object_get(o, "end");
		if (sha_field(o, m->sha256, err) == -1 ||
		    int_field(o, "offset", 0, &m->id, err) == -1 ||
		    b64_field(o, m, err) == -1)
			goto fail;
		if (!json_is_boolean(d)) {
			buf_puts(err, "end: true or false");
			goto fail;
		}
		m->end = json_is_true(d);
	} else {
		buf_puts(err, "kind: event, agent, commit, sample or chunk");
		goto fail;
	}
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	collproto_free(m);
	return -1;
}

void
collproto_norm_path(const char *path, char *out, size_t n)
{
	static const char *const homes[] = {"/home/", "/users/"};
	size_t i, k = 0, h;
	int skip = 0;

	if (n == 0)
		return;
	for (i = 0; path[i] != '\0' && k + 1 < n; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch == '\\')
			ch = '/';
		ch = (unsigned char)tolower(ch);
		if (skip) { /* inside the user's folder name */
			if (ch != '/')
				continue;
			skip = 0;
		}
		if (isdigit(ch)) {
			if (k > 0 && out[k - 1] == '#')
				continue;
			ch = '#';
		}
		out[k++] = (char)ch;
		out[k] = '\0';
		for (h = 0; h < sizeof(homes) / sizeof(homes[0]); h++) {
			size_t hl = strlen(homes[h]);

			if (k >= hl && strcmp(out + k - hl, homes[h]) == 0 &&
			    k + 1 < n) {
				out[k++] = '*';
				skip = 1;
				break;
			}
		}
	}
	out[k] = '\0';
}

static void
copy_str(const json_t *v, char *out, size_t n)
{
	const char *s = json_string_value(v);

	snprintf(out, n, "%s", s != NULL ? s : "");
}

int
collproto_case_key(const json_t *data, char key[COLL_MAX_KEY + 1],
                   char rule[COLL_MAX_RULE + 1], char path[COLL_MAX_PATH + 1],
                   char sha256[65])
{
	json_t *subj, *reasons, *v;
	char norm[COLL_MAX_PATH + 1];
	size_t i;

	key[0] = rule[0] = path[0] = sha256[0] = '\0';
	if (!json_is_object(data))
		return -1;
	subj = json_object_get(data, "subject");
	copy_str(json_object_get(data, "rule"), rule, COLL_MAX_RULE + 1);
	if (rule[0] == '\0') {
		reasons = json_object_get(data, "reasons");
		v = json_array_get(reasons, 0);
		copy_str(json_object_get(json_object_get(v, "signature"),
		                         "rule_name"),
		         rule, COLL_MAX_RULE + 1);
	}
	copy_str(json_object_get(data, "path"), path, COLL_MAX_PATH + 1);
	if (path[0] == '\0')
		copy_str(json_object_get(subj, "path"), path,
		         COLL_MAX_PATH + 1);
	copy_str(json_object_get(data, "sha256"), sha256, 65);
	if (sha256[0] == '\0')
		copy_str(
		    json_object_get(json_object_get(subj, "hashes"), "sha256"),
		    sha256, 65);
	for (i = 0; sha256[i] != '\0'; i++)
		sha256[i] = (char)tolower((unsigned char)sha256[i]);
	collproto_norm_path(path, norm, sizeof(norm));
	if (rule[0] == '\0' && sha256[0] != '\0')
		snprintf(key, COLL_MAX_KEY + 1, "sha256:%s", sha256);
	else
		snprintf(key, COLL_MAX_KEY + 1, "rule:%s|path:%s", rule, norm);
	return 0;
}
