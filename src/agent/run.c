/*
 * run: `vigil-agent run`, the agent's foreground loop. A heartbeat every
 * poll interval (the center sets it) with +-10% jitter so that agents
 * started together do not stay in step; on failure it backs off from 5 s to
 * 5 min and keeps trying: a center that is down is waited for, never a
 * reason to exit. Certificates are renewed when the center asks or two
 * thirds of their lifetime have passed; a clone report makes this machine
 * enroll as a new agent. SIGTERM and SIGINT stop it between requests.
 *
 * Signals stay blocked except inside ppoll(), so a signal can never slip in
 * between the check of the stop flag and the sleep.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "work.h"
#include "log.h"

#define BACKOFF_MIN 5
#define BACKOFF_MAX 300

static const char run_usage[] =
    "usage: vigil-agent run [--data-dir DIR] [--once] "
    "[--update-interval SECS]\n"
    "                       [--supervised] [--upgrade-packaged]\n"
    "\n"
    "Runs the agent in the foreground: a heartbeat to the center every\n"
    "poll interval, certificate renewal, re-enrollment when the center\n"
    "reports a cloned identity. While an enrollment awaits approval it\n"
    "polls the request instead. Failures are logged and retried with\n"
    "backoff. SIGTERM or SIGINT stop it.\n"
    "\n"
    "  --data-dir DIR   default $VIGIL_AGENT_DATA_DIR or "
    "/var/lib/vigil-agent\n"
    "  --once           one heartbeat (or poll), then exit: 0 on success\n"
    "  --update-interval SECS\n"
    "                   how often signed updates are checked (default 300);\n"
    "                   with --once they are checked once\n"
    "  --supervised     a service manager restarts the agent when it\n"
    "                   exits (systemd Restart=always): after a failed\n"
    "                   upgrade the previous binary is restored and the\n"
    "                   service manager starts it\n"
    "  --upgrade-packaged\n"
    "                   upgrade a binary the vigil-agent package\n"
    "                   installed too (by default refused: upgrade the\n"
    "                   package)\n";

static long long update_interval = AGENT_UPDATE_INTERVAL;

static volatile sig_atomic_t stop_sig;
static sigset_t sleep_mask; /* the mask inside ppoll: stop signals open */

static void
on_signal(int sig)
{
	stop_sig = sig;
}

static int
signals_setup(void)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1) {
		log_warn("sigaction");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &sleep_mask) == -1) {
		log_warn("sigprocmask");
		return -1;
	}
	sigdelset(&sleep_mask, SIGTERM);
	sigdelset(&sleep_mask, SIGINT);
	return 0;
}

/* Sleeps secs seconds; returns early (1) when asked to stop. */
static int
nap(long long secs)
{
	struct timespec end, now, left;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	while (!stop_sig) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		if (left.tv_sec < 0)
			break;
		(void)ppoll(NULL, 0, &left, &sleep_mask);
	}
	return stop_sig != 0;
}

/* secs +-10%, so that agents started together drift apart. */
static long long
jitter(long long secs)
{
	long long span = secs / 5;

	if (span <= 0)
		return secs;
	return secs - secs / 10 +
	       (long long)arc4random_uniform(
	           (uint32_t)(span > UINT32_MAX - 1 ? UINT32_MAX - 1 : span) +
	           1);
}

static long long
next_backoff(long long *b)
{
	*b = *b == 0 ? BACKOFF_MIN : *b * 2;
	if (*b > BACKOFF_MAX)
		*b = BACKOFF_MAX;
	return jitter(*b);
}

static int
parse_args(int argc, char **argv, const char **dir, int *once)
{
	static const struct option opts[] = {
	    {"data-dir", required_argument, NULL, 'd'},
	    {"once", no_argument, NULL, '1'},
	    {"update-interval", required_argument, NULL, 'u'},
	    {"upgrade-packaged", no_argument, NULL, 'P'},
	    {"supervised", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*dir = agent_default_dir();
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			*dir = optarg;
			break;
		case '1':
			*once = 1;
			break;
		case 'u': {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 || v > 86400) {
				log_warnx("run: --update-interval: 1 to 86400 "
				          "seconds");
				return -1;
			}
			update_interval = v;
			break;
		}
		case 'P':
			agent_upgrade_packaged = 1;
			break;
		case 'S':
			agent_supervised = 1;
			break;
		case 'h':
			fputs(run_usage, stdout);
			exit(0);
		default:
			fputs(run_usage, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		log_warnx("run: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

/* One round while an enrollment is pending. Returns -1 to exit with rc. */
static int
pending_round(struct agent_state *st, int once, long long *backoff, int *rc)
{
	int r = agent_enroll_poll(st);

	if (r == ENROLL_DONE) {
		*backoff = 0;
		return 0; /* heartbeat at once with the new identity */
	}
	if (r == ENROLL_FINAL) {
		*rc = 1;
		return -1;
	}
	if (once) {
		if (r == ENROLL_PENDING)
			log_warnx("run: request %s still awaits approval by an "
			          "administrator",
			          st->request_id);
		*rc = 1;
		return -1;
	}
	nap(r == ENROLL_PENDING ? jitter(st->retry_after)
	                        : next_backoff(backoff));
	return 0;
}

static int
loop(struct agent_state *st, int once)
{
	struct center_reply rep;
	struct work *work = NULL;
	long long backoff = 0, t, w;
	int renew, failing = 0, rc = 0, r;

	memset(&rep, 0, sizeof(rep));
	while (!stop_sig) {
		center_reply_free(&rep);
		if (st->request_id != NULL) {
			if (pending_round(st, once, &backoff, &rc) == -1)
				break;
			continue;
		}
		/* Signed updates, checked from the pinned root before the
		 * heartbeat that reports them. */
		if (agent_updates_due(update_interval))
			(void)agent_updates_check(st);
		switch (agent_heartbeat(st, &renew, &t, &rep)) {
		case HB_OK:
			if (failing)
				log_info("run: heartbeats accepted again");
			failing = 0;
			backoff = 0;
			log_debug("run: heartbeat accepted");
			agent_upgrade_checked_in(st);
			if (json_is_object(
			        json_object_get(rep.json, "upgrade")) &&
			    !once &&
			    agent_upgrade_wanted(
			        st, json_object_get(rep.json, "upgrade"))) {
				/* Tasks stop first: the switch forks. */
				work_stop(work);
				work = NULL;
				agent_abort = 0; /* set to end the poll */
				(void)agent_upgrade(
				    st, json_object_get(rep.json, "upgrade"));
			}
			if (renew || agent_renew_due(st)) {
				log_info("run: renewing the certificate (%s)",
				         renew ? "the center asks for it"
				               : "two thirds of its lifetime "
				                 "have passed");
				if (agent_renew(st) == -1)
					rc = 1;
			}
			if (once)
				goto done;
			/* Tasks and events start once the center has
			 * accepted this identity. */
			if (work == NULL && (work = work_start(st)) == NULL)
				log_warnx("run: tasks and events disabled: the "
				          "spool cannot be opened");
			nap(jitter(st->poll_interval));
			break;
		case HB_CLONE:
			log_warnx(
			    "run: the center reports agent %s in use on "
			    "another machine as well (a copied data directory "
			    "or VM image): %s",
			    st->agent_id, rep.msg);
			log_warnx("run: enrolling this machine as a new agent");
			r = agent_enroll_send(st, NULL, 1);
			if (r == ENROLL_DONE || r == ENROLL_PENDING)
				break; /* heartbeat or poll next */
			if (once) {
				rc = 1;
				goto done;
			}
			nap(next_backoff(&backoff));
			break;
		default:
			log_warnx("run: %s", rep.msg);
			if (once) {
				rc = 1;
				goto done;
			}
			failing = 1;
			w = next_backoff(&backoff);
			log_info("run: next attempt in %lld s", w);
			nap(w);
			break;
		}
	}
done:
	work_stop(work);
	center_reply_free(&rep);
	if (stop_sig) {
		log_info("run: stopping (signal %d)", (int)stop_sig);
		rc = 0;
	}
	return rc;
}

int
cmd_run(int argc, char **argv)
{
	struct agent_state st;
	const char *dir;
	int once = 0, rc = 1;

	if (agent_state_init(&st, agent_default_dir()) == -1)
		return 1;
	if (parse_args(argc, argv, &dir, &once) == -1) {
		rc = 2;
		goto fail;
	}
	if (agent_state_init(&st, dir) == -1 || agent_lock(&st) == -1 ||
	    agent_state_load(&st) == -1)
		goto fail;
	if (st.request_id == NULL &&
	    (st.agent_id == NULL || !agent_file_exists(st.p_crt))) {
		log_warnx("run: %s holds no identity; run `vigil-agent enroll` "
		          "first",
		          st.dir);
		goto fail;
	}
	if (signals_setup() == -1)
		goto fail;
	if (st.request_id != NULL)
		log_info("run: enrollment request %s pending at %s",
		         st.request_id, st.server);
	else
		log_info("run: agent %s, center %s, heartbeat every %lld s",
		         st.agent_id, st.server, st.poll_interval);
	rc = loop(&st, once);
fail:
	agent_state_free(&st);
	return rc;
}
