/*
 * cursor.c: encoding and checked decoding of list page cursors (see
 * cursor.h). Hex rather than base64 keeps the cursor URL-safe without
 * escaping; the size limit keeps a hostile one cheap to refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

static int
cursor_value_ok(json_t *v)
{
	return json_is_integer(v) ||
	       (json_is_string(v) && json_string_length(v) <= CURSOR_MAX_VALUE);
}

char *
cursor_encode(const char *sort, json_t *v, json_t *k)
{
	json_t *o;
	char *text = NULL, *hex = NULL;
	size_t n;

	if (strlen(sort) > CURSOR_MAX_SORT || !cursor_value_ok(v) ||
	    !cursor_value_ok(k))
		return NULL;
	o = json_pack("{s:s, s:O, s:O}", "s", sort, "v", v, "k", k);
	if (o != NULL)
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (text == NULL)
		return NULL;
	n = strlen(text);
	if (2 * n <= CURSOR_MAX_HEX && (hex = malloc(2 * n + 1)) != NULL)
		hex_encode((const uint8_t *)text, n, hex);
	free(text);
	return hex;
}

int
cursor_decode(const uint8_t *p, size_t n, struct cursor *c, struct buf *err)
{
	uint8_t raw[CURSOR_MAX_HEX / 2];
	json_t *o = NULL, *s;
	size_t i;
	int hi, lo;

	memset(c, 0, sizeof(*c));
	if (n == 0 || n % 2 != 0 || n > CURSOR_MAX_HEX) {
		buf_printf(err, "cursor: not a cursor this endpoint returned "
		                "(length)");
		return -1;
	}
	for (i = 0; i < n / 2; i++) {
		if ((hi = hex_value(p[2 * i])) < 0 ||
		    (lo = hex_value(p[2 * i + 1])) < 0) {
			buf_printf(err, "cursor: not a cursor this endpoint "
			                "returned (not hex)");
			return -1;
		}
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	o = json_loadb((const char *)raw, n / 2, JSON_REJECT_DUPLICATES, NULL);
	s = json_object_get(o, "s");
	if (!json_is_object(o) || json_object_size(o) != 3 ||
	    !json_is_string(s) || json_string_length(s) > CURSOR_MAX_SORT ||
	    strlen(json_string_value(s)) != json_string_length(s) ||
	    !cursor_value_ok(json_object_get(o, "v")) ||
	    !cursor_value_ok(json_object_get(o, "k"))) {
		buf_printf(err, "cursor: not a cursor this endpoint returned");
		json_decref(o);
		return -1;
	}
	memcpy(c->sort, json_string_value(s), json_string_length(s) + 1);
	c->v = json_incref(json_object_get(o, "v"));
	c->k = json_incref(json_object_get(o, "k"));
	json_decref(o);
	return 0;
}

void
cursor_free(struct cursor *c)
{
	json_decref(c->v);
	json_decref(c->k);
	c->v = c->k = NULL;
}
