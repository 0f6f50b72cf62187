/*
 * Compiled by tests/build/store_binders.sh, never linked: store_exec's
 * binders must accept the right C types and refuse the wrong ones when
 * compiling. BAD selects one wrong call; without it everything is right.
 */
#include <stddef.h>

#include "store.h"

void binders(struct store *s, const char *name, char *buf, int n,
             unsigned long long big, size_t len);

void
binders(struct store *s, const char *name, char *buf, int n,
        unsigned long long big, size_t len)
{
	(void)store_exec(s, "DELETE FROM t");
	(void)store_exec(s, "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
	                 S_TEXT(name), S_TEXT(buf), S_INT(n), S_INT(big),
	                 S_INT(len), S_NULL);
	store_done(store_query(s, "SELECT ? FROM t", S_TEXT("literal")));
#if BAD == 1
	(void)store_exec(s, "UPDATE t SET a = ?", S_TEXT(n)); /* int as text */
#elif BAD == 2
	(void)store_exec(s, "UPDATE t SET a = ?",
	                 S_INT(name)); /* text as int */
#elif BAD == 3
	(void)store_exec(s, "UPDATE t SET a = ?", S_INT(1.5)); /* a double */
#elif BAD == 4
	(void)store_exec(s, "UPDATE t SET a = ?", "s", name); /* old style */
#endif
}
