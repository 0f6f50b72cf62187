/*
 * space.c: free space in the data directory. Below [center]
 * min_free_space the center stops taking new data before SQLite fails
 * half-way ("disk I/O error", rollbacks of transactions that never began):
 * admin changes get 507, agents are told to send again later (503 and
 * Retry-After, their spool keeps the data), reads go on. The state is
 * measured every few seconds, shown as metrics and logged once when it
 * changes, never once per refused request.
 */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include <event2/event.h>

#include "center.h"
#include "log.h"
#include "metrics.h"

#define SPACE_INTERVAL 5 /* seconds between measurements */

static struct event *space_ev;
static int space_low;

void
space_declare_metrics(void)
{
	metrics_declare("vigil_store_free_bytes", METRIC_GAUGE,
	                "free bytes in the data directory's file system");
	metrics_declare("vigil_store_low_space", METRIC_GAUGE,
	                "1 while free space is below [center] min_free_space "
	                "and new data is refused");
}

int
space_free(const char *dir, long long *out)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) == -1)
		return -1;
	*out = (long long)sv.f_bavail * (long long)sv.f_frsize;
	return 0;
}

int
space_check_start(struct center *c, struct buf *err)
{
	long long avail;

	if (space_free(c->conf.data_dir, &avail) == -1) {
		buf_printf(err, "%s: cannot measure free space: %s",
		           c->conf.data_dir, strerror(errno));
		return -1;
	}
	if (avail < c->conf.min_free_space) {
		buf_printf(err,
		           "%s: %lld bytes (%lld MiB) free, below [center] "
		           "min_free_space (%lld MiB): not starting; free some "
		           "space on this file system",
		           c->conf.data_dir, avail, avail >> 20,
		           c->conf.min_free_space >> 20);
		return -1;
	}
	return 0;
}

static void
space_measure(struct center *c)
{
	long long avail;
	int low;

	if (space_free(c->conf.data_dir, &avail) == -1) {
		log_warn("space: %s", c->conf.data_dir);
		return;
	}
	low = avail < c->conf.min_free_space;
	metrics_set("vigil_store_free_bytes", NULL, (double)avail);
	metrics_set("vigil_store_low_space", NULL, low);
	if (low && !space_low)
		log_warnx("space: %s: %lld MiB free, below min_free_space "
		          "(%lld MiB): refusing new data until space is freed",
		          c->conf.data_dir, avail >> 20,
		          c->conf.min_free_space >> 20);
	else if (!low && space_low)
		log_info("space: %s: %lld MiB free again: accepting new data",
		         c->conf.data_dir, avail >> 20);
	space_low = low;
}

static void
space_tick(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {SPACE_INTERVAL, 0};

	(void)fd;
	(void)what;
	space_measure(arg);
	evtimer_add(space_ev, &tv);
}

int
space_init(struct center *c)
{
	struct timeval tv = {SPACE_INTERVAL, 0};

	if ((space_ev = evtimer_new(c->base, space_tick, c)) == NULL)
		return -1;
	space_measure(c);
	evtimer_add(space_ev, &tv);
	return 0;
}

void
space_shutdown(void)
{
	if (space_ev != NULL)
		event_free(space_ev);
	space_ev = NULL;
}

int
space_is_low(void)
{
	return space_low;
}

int
space_refuse(struct http_req *r, int agent)
{
	struct center *c = r->arg;

	if (!space_low)
		return 0;
	if (agent) {
		http_set_header(r, "Retry-After", "60");
		http_reply_error(r, 503, "low_space",
		                 "the center's disk is nearly full; send again "
		                 "later");
	} else
		http_reply_error(
		    r, 507, "insufficient_storage",
		    "the center's data directory %s is nearly full "
		    "(below min_free_space); free space there, then "
		    "retry",
		    c->conf.data_dir);
	return -1;
}
