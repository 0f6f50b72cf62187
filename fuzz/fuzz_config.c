/*
 * Fuzz target for src/common/config.c: arbitrary bytes as a config file
 * against a table holding a key of every type, with and without bounds,
 * required keys and keys outside any section. Besides crashes and leaks it
 * checks that a successful load left every value within its bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "config.h"

struct fcfg {
	char *name;
	long long port;
	long long any;
	int flag;
	long long timeout;
	long long size;
	int mode;
	char *path;
};

#define OFF(m) offsetof(struct fcfg, m)

static const struct cfg_key table[] = {
    {"", "name", CFG_STR, "vigil", 0, 0, OFF(name), 0, NULL, "name"},
    {"net", "port", CFG_INT, "8443", 0, 65535, OFF(port), 0, NULL, "port"},
    {"net", "any", CFG_INT, NULL, 0, 0, OFF(any), 0, NULL, "unbounded"},
    {"net", "flag", CFG_BOOL, "no", 0, 0, OFF(flag), 0, NULL, "a bool"},
    {"net", "timeout", CFG_DURATION, "30s", 1, 86400, OFF(timeout), 0, NULL,
     "a duration"},
    {"store", "size", CFG_SIZE, "1M", 0, 1LL << 30, OFF(size), 0, NULL,
     "a size"},
    {"store", "mode", CFG_ENUM, "a", 0, 0, OFF(mode), 0, "a|bb|ccc", "an enum"},
    {"store", "path", CFG_STR, NULL, 0, 0, OFF(path), 1, NULL, "required"},
    {0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcfg c;
	struct buf err;

	buf_init(&err, 64 * 1024);
	if (cfg_load_mem(table, &c, "fuzz.conf", (const char *)data, size,
	                 &err) == 0) {
		if (c.port < 0 || c.port > 65535 || c.timeout < 1 ||
		    c.timeout > 86400 || c.size < 0 || c.size > (1LL << 30) ||
		    c.mode < 0 || c.mode > 2 || (c.flag != 0 && c.flag != 1) ||
		    c.path == NULL || c.name == NULL)
			abort();
	} else if (err.len == 0)
		abort(); /* a failure must say why */
	cfg_free(table, &c);
	buf_free(&err);
	return 0;
}
