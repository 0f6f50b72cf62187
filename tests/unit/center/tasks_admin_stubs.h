/*
 * What the admin handlers of tasks*.c use from elsewhere, stubbed for the
 * unit tests that include tasks.c (they call no admin handler).
 */
int
admin_authorize(struct http_req *r)
{
	(void)r;
	return -1;
}

void
audit_before_row(struct http_req *r, const char *sql, const char *id)
{
	(void)r;
	(void)sql;
	(void)id;
}

void
query_reply(struct http_req *r, struct store *s, const struct query_spec *spec,
            query_item_fn fn, void *arg)
{
	(void)r;
	(void)s;
	(void)spec;
	(void)fn;
	(void)arg;
}

json_t *
schema_body(struct http_req *r, const struct schema_field *fields)
{
	(void)r;
	(void)fields;
	return NULL;
}

int
schema_no_body(struct http_req *r)
{
	(void)r;
	return -1;
}
