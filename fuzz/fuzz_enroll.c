/*
 * Fuzz target for src/proto/enroll.c, the parser of the unauthenticated
 * enroll body and of heartbeats. Besides crashes and leaks it checks the
 * promises made to callers: on success every string is within its limit
 * and free of control characters; on failure there is a one-line message
 * and nothing left allocated in the output.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "enroll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t max, int allow_nl)
{
	size_t i, len;

	if (s == NULL)
		return;
	len = strlen(s);
	if (len > max)
		abort();
	for (i = 0; i < len; i++) {
		if (allow_nl && (s[i] == '\n' || s[i] == '\r'))
			continue;
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
	}
}

static void
check_facts(const struct host_facts *f)
{
	size_t i;

	if (f->hostname == NULL || f->machine_id == NULL ||
	    f->nips > FACT_MAX_ADDRS || f->nmacs > FACT_MAX_ADDRS)
		abort();
	check_str(f->hostname, FACT_MAX_STR, 0);
	check_str(f->fqdn, FACT_MAX_STR, 0);
	check_str(f->os, FACT_MAX_STR, 0);
	check_str(f->kernel, FACT_MAX_STR, 0);
	check_str(f->arch, FACT_MAX_STR, 0);
	check_str(f->machine_id, 64, 0);
	check_str(f->agent_version, FACT_MAX_STR, 0);
	for (i = 0; i < f->nips; i++)
		check_str(f->ips[i], FACT_MAX_STR, 0);
	for (i = 0; i < f->nmacs; i++)
		if (f->macs[i] == NULL || strlen(f->macs[i]) != 17)
			abort();
}

static void
check_error(const struct buf *err)
{
	if (err->len == 0 || memchr(err->data, '\n', err->len) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct enroll_req r;
	struct host_facts f;
	struct buf err;

	buf_init(&err, 4096);
	if (enroll_parse(data, size, &r, &err) == 0) {
		if (r.csr == NULL)
			abort();
		check_str(r.token, ENROLL_MAX_TOKEN, 0);
		check_str(r.csr, ENROLL_MAX_CSR, 1);
		check_facts(&r.facts);
		enroll_req_free(&r);
	} else {
		check_error(&err);
		if (r.csr != NULL || r.token != NULL ||
		    r.facts.hostname != NULL || r.facts.nips != 0)
			abort();
	}

	buf_reset(&err);
	if (heartbeat_parse(data, size, &f, &err) == 0) {
		check_facts(&f);
		host_facts_free(&f);
	} else
		check_error(&err);
	buf_free(&err);
	return 0;
}
