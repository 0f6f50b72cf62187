/*
 * Fuzz target: the list query string parser (src/proto/qplan.c). Besides
 * crashes it checks the promises: an accepted plan has a sort field of the
 * spec, a limit within bounds, at most QPLAN_MAX_FILTERS filters whose
 * values hold no NUL byte and fit QUERY_MAX_VALUE, and a cursor made for
 * the plan's sort; a refusal always says why.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qplan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct query_field fields[] = {
    {"id", "id", QF_TEXT, QF_SORT | QF_EQ},
    {"name", "name", QF_TEXT, QF_SORT | QF_EQ | QF_NULL},
    {"size", "size", QF_INT, QF_SORT | QF_EQ},
    {"label", "labels", QF_TEXT, QF_LABEL},
    {"os", "facts", QF_TEXT, QF_MEMBER},
    {"time", "time", QF_INT, QF_SORT | QF_RANGE},
    {"since", "time", QF_INT, QF_GE},
    {"until", "time", QF_INT, QF_LE},
    {"agent", "id IN (SELECT x FROM y WHERE a = ?)", QF_TEXT, QF_EXPR},
    {NULL, NULL, 0, 0},
};

static const char *const extra[] = {"state", NULL};

static const struct query_spec spec = {
    .table = "t",
    .columns = "id, name",
    .fields = fields,
    .key = "id",
    .key_type = QF_TEXT,
    .default_sort = "-time",
    .search = "name",
    .extra = extra,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qplan plan;
	struct qplan_error err;
	const struct qplan_filter *f;
	size_t i;
	int rc;

	buf_init(&err.msg, 65536);
	rc = qplan_parse(data, size, &spec, &plan, &err);
	if (rc == 0) {
		if (plan.sort == NULL || !(plan.sort->flags & QF_SORT) ||
		    plan.limit < 1 || plan.limit > QUERY_MAX_LIMIT ||
		    plan.nfilters > QPLAN_MAX_FILTERS)
			abort();
		for (i = 0; i < plan.nfilters; i++) {
			f = &plan.filters[i];
			if (f->text == NULL ||
			    strlen(f->text) > QUERY_MAX_VALUE ||
			    (f->op == QP_LABEL && f->label == NULL) ||
			    (f->op != QP_SEARCH && f->field == NULL))
				abort();
		}
		if (plan.has_cursor &&
		    (strcmp(plan.cursor.sort, plan.sort_text) != 0 ||
		     plan.cursor.v == NULL || plan.cursor.k == NULL))
			abort();
		qplan_free(&plan);
	} else if ((rc != -1 && rc != -ENOMEM) || err.msg.len == 0)
		abort();
	buf_free(&err.msg);
	return 0;
}
