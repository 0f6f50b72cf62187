/*
 * schema.h: the shape of an admin API request body, checked before a
 * handler reads it (schema.c). Unknown members, missing required ones and
 * wrong JSON types get 400 with {"error": {"code": "bad_request",
 * "message", "field"}} naming the member; the handler then checks values
 * (ranges, names, references) itself.
 */
#ifndef VIGIL_SCHEMA_H
#define VIGIL_SCHEMA_H

#include <jansson.h>

#include "buf.h"
#include "http.h"

enum schema_type {
	SCH_STRING = 1,
	SCH_INT,
	SCH_BOOL,
	SCH_OBJECT,
	SCH_ARRAY,
	SCH_DURATION, /* seconds (integer) or a duration string: "30m" */
	SCH_SCALAR,   /* string, integer or boolean */
};

#define SCH_NULL 0x100 /* or'd into a type: null is accepted too */

struct schema_field {
	const char *name;
	int type; /* enum schema_type, maybe | SCH_NULL */
	int required;
};

/* Pure check (unit tested): 0, or -1 with the member in *field (points
 * into body's key or fields' name; valid while both live) and the
 * reason in msg. fields ends with a NULL name. */
int schema_validate(json_t *body, const struct schema_field *fields,
                    const char **field, struct buf *msg);
/* The body of r as a JSON object checked against fields, or NULL after
 * replying 400 (bad JSON, not an object, or a schema error). */
json_t *schema_body(struct http_req *r, const struct schema_field *fields);
/* For routes that take no body: an empty body or {} passes; anything
 * else gets 400 and -1. */
int schema_no_body(struct http_req *r);

#endif
