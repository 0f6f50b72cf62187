/*
 * query.h: list endpoints of the admin API share one way to page, filter
 * and sort (query.c): `limit` (default QUERY_DEFAULT_LIMIT, at most
 * QUERY_MAX_LIMIT), an opaque `cursor` from the previous page's
 * `next_cursor`, `sort` (a field, "-field" for descending), equality
 * filters `<field>=v`, ranges `<field>_from=` (inclusive) and `<field>_to=`
 * (exclusive), and `q` (substring search). Replies are
 * {"items": [...], "next_cursor": "..." | null}. Anything malformed gets
 * 400 naming the parameter. The route's spec (struct query_spec) and the
 * parser of the query string into a plan are in src/proto/qplan.h; query.c
 * turns the plan into SQL, runs it and renders the page.
 */
#ifndef VIGIL_QUERY_H
#define VIGIL_QUERY_H

#include <jansson.h>

#include "http.h"
#include "qplan.h"
#include "store.h"

/* Builds one row's item; NULL skips the row (a filter the SQL cannot
 * express): such a page may hold fewer than limit items. */
typedef json_t *(*query_item_fn)(struct store_rows *q, void *arg);

/* Runs the list query and replies. */
void query_reply(struct http_req *r, struct store *s,
                 const struct query_spec *spec, query_item_fn fn, void *arg);

/*
 * Offset pages, for the lists that are not keyset-paged (the collector's
 * and the master's, whose rows come from several centers or computed
 * columns): the same parameters and reply members as above, `limit`
 * (1..max, default QUERY_DEFAULT_LIMIT) and an opaque `cursor` from
 * the previous page's `next_cursor`; a row added meanwhile can shift a
 * page by one. Reads both (-1 after replying 400).
 */
int query_page_args(struct http_req *r, long long max, long long *limit,
                    long long *offset);
/* arr was read with limit + 1 rows from offset: cuts it to limit and
 * returns next_cursor (a string, or JSON null on the last page). */
json_t *query_page_next(json_t *arr, long long limit, long long offset);

#endif
