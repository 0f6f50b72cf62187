/*
 * schema.c: checks request bodies of the admin API against a flat table
 * of members (schema.h). Kept to one level on purpose: nested documents
 * (a task's params, a target) have their own checkers that know what the
 * values mean, and name nested fields as "params.paths".
 */
#include <string.h>

#include "center.h"
#include "schema.h"

static const char *
schema_type_name(int t)
{
	switch (t & ~SCH_NULL) {
	case SCH_STRING:
		return "a string";
	case SCH_INT:
		return "an integer";
	case SCH_BOOL:
		return "true or false";
	case SCH_OBJECT:
		return "an object";
	case SCH_ARRAY:
		return "an array";
	case SCH_DURATION:
		return "seconds or a duration such as \"30m\"";
	default:
		return "a string, number or boolean";
	}
}

static int
schema_type_ok(json_t *v, int t)
{
	if ((t & SCH_NULL) && json_is_null(v))
		return 1;
	switch (t & ~SCH_NULL) {
	case SCH_STRING:
		return json_is_string(v);
	case SCH_INT:
		return json_is_integer(v);
	case SCH_BOOL:
		return json_is_boolean(v);
	case SCH_OBJECT:
		return json_is_object(v);
	case SCH_ARRAY:
		return json_is_array(v);
	case SCH_DURATION:
		return json_is_integer(v) || json_is_string(v);
	default:
		return json_is_string(v) || json_is_integer(v) ||
		       json_is_boolean(v);
	}
}

int
schema_validate(json_t *body, const struct schema_field *fields,
                const char **field, struct buf *msg)
{
	const struct schema_field *f;
	const char *k;
	json_t *v;

	if (!json_is_object(body)) {
		*field = "";
		buf_puts(msg, "the request body must be a JSON object");
		return -1;
	}
	json_object_foreach(body, k, v)
	{
		for (f = fields; f->name != NULL; f++)
			if (strcmp(f->name, k) == 0)
				break;
		if (f->name == NULL) {
			*field = k;
			buf_printf(msg, "%.64s: unknown field (known:", k);
			for (f = fields; f->name != NULL; f++)
				buf_printf(msg, "%s %s", f == fields ? "" : ",",
				           f->name);
			buf_puts(msg, f == fields ? " none)" : ")");
			return -1;
		}
		if (!schema_type_ok(v, f->type)) {
			*field = f->name;
			buf_printf(msg, "%s: must be %s", f->name,
			           schema_type_name(f->type));
			return -1;
		}
	}
	for (f = fields; f->name != NULL; f++) {
		if (f->required && json_object_get(body, f->name) == NULL) {
			*field = f->name;
			buf_printf(msg, "%s: required", f->name);
			return -1;
		}
	}
	return 0;
}

json_t *
schema_body(struct http_req *r, const struct schema_field *fields)
{
	const char *field = NULL;
	struct buf msg;
	json_t *j;

	if ((j = http_req_json(r)) == NULL)
		return NULL;
	buf_init(&msg, 4096);
	if (schema_validate(j, fields, &field, &msg) == -1) {
		/* field may point into j: reply before freeing it */
		http_reply_error_field(r, 400, "bad_request", field, "%s",
		                       buf_cstr(&msg));
		json_decref(j);
		j = NULL;
	}
	buf_free(&msg);
	return j;
}

int
schema_no_body(struct http_req *r)
{
	static const struct schema_field none[] = {{NULL, 0, 0}};
	json_t *j;
	size_t len;

	(void)http_req_body(r, &len);
	if (len == 0)
		return 0;
	if ((j = schema_body(r, none)) == NULL)
		return -1;
	json_decref(j);
	return 0;
}
