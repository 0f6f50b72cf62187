/*
 * proc: privilege separation by fork + socketpair, after OpenBSD's proc.c.
 *
 * The parent (which binds ports and parses network input) and a child that
 * holds something precious (the CA key) talk over one AF_UNIX stream. Each
 * message is a fixed header {type, len, id} followed by len bytes of
 * payload. Both sides check len against a limit before reading the
 * payload, so a compromised peer can neither make the other allocate
 * without bound nor desynchronise the stream into reading a payload as a
 * header: anything malformed ends the channel (-1), it is never skipped.
 *
 * The calls block; they are meant for a dedicated child, or for a parent
 * that treats a round trip to the child as a short local operation.
 *
 * A child is either forked (proc_fork: it runs a function of this
 * program; only safe while the process has a single thread, as vigild's
 * key process is started) or spawned (proc_spawn: a fresh program image,
 * for a process that already has threads, where a forked child could
 * inherit a lock another thread held, malloc's or a sanitizer's, and hang).
 *
 * Users: vigild's key process (src/center/keyproc.c) and vigil-scand's
 * sandboxed scan workers (src/scand/sandbox.c, spawned), which are handed
 * each sample as an open descriptor (proc_send_fd, SCM_RIGHTS) so they
 * need no file system access at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"
#include "proc.h"

#define PROC_CHUNK 16384

/*
 * In the child: close every descriptor but 0-2 and keep. A descriptor the
 * child never needed (a listening socket, the parent's database, a key
 * file) is one an exploit in the child could use; close_range does it in
 * one call, the /proc walk is the fallback for kernels before 5.9.
 */
static void
proc_close_fds(int keep)
{
	DIR *d;
	struct dirent *de;
	long long n;
	int fd, dfd;
	long max;

	if (keep < 3) {
		if (close_range(3, ~0u, 0) == 0)
			return;
	} else if ((keep == 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
	           close_range((unsigned)keep + 1, ~0u, 0) == 0)
		return;

	if ((d = opendir("/proc/self/fd")) != NULL) {
		dfd = dirfd(d);
		while ((de = readdir(d)) != NULL) {
			if (str_to_ll(de->d_name, 0, 1LL << 30, &n) == -1)
				continue;
			fd = (int)n;
			if (fd > 2 && fd != keep && fd != dfd)
				close(fd);
		}
		closedir(d);
		return;
	}
	/* No /proc (a chroot): close the whole possible range. */
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 1048576)
		max = 1048576;
	for (fd = 3; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/*
 * In the child: handlers the parent installed (libevent's signal pipe, for
 * one) point at state the child no longer has; put them back to the
 * defaults and unblock everything so SIGTERM ends the child as expected.
 * Ignored signals (SIGPIPE) stay ignored.
 */
static void
proc_reset_signals(void)
{
	struct sigaction sa;
	sigset_t all;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sigaction(sig, NULL, &sa) == -1)
			continue;
		if (sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL)
			continue;
		signal(sig, SIG_DFL);
	}
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

pid_t
proc_fork(int *fd, int (*child_main)(int fd, void *arg), void *arg)
{
	int sp[2] = {-1, -1};
	pid_t pid;

	/* CLOEXEC: neither end may leak into a program either side execs. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("proc_fork: socketpair");
		goto fail;
	}
	/* Unflushed stdio would otherwise be written twice. */
	fflush(NULL);
	if ((pid = fork()) == -1) {
		log_warn("proc_fork: fork");
		goto fail;
	}
	if (pid == 0) {
		close(sp[0]);
		proc_close_fds(sp[1]);
		proc_reset_signals();
		/* _exit: the parent's atexit handlers and stdio buffers are
		 * not the child's to run. */
		_exit(child_main(sp[1], arg));
	}
	close(sp[1]);
	*fd = sp[0];
	return pid;
fail:
	if (sp[0] != -1)
		close(sp[0]);
	if (sp[1] != -1)
		close(sp[1]);
	return -1;
}

pid_t
proc_spawn(int *fd, const char *path, char *const argv[], char *const envp[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int sp[2] = {-1, -1}, child, e, ok_fa = 0, ok_attr = 0;
	pid_t pid = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("proc_spawn: socketpair");
		goto out;
	}
	/* dup2 onto itself would keep close-on-exec: make sure the child's
	 * end is some other number first. */
	if (sp[1] == PROC_CHILD_FD) {
		if ((child = fcntl(sp[1], F_DUPFD_CLOEXEC,
		                   PROC_CHILD_FD + 1)) == -1) {
			log_warn("proc_spawn: fcntl");
			goto out;
		}
		close(sp[1]);
		sp[1] = child;
	}
	if ((e = posix_spawn_file_actions_init(&fa)) != 0)
		goto spawn_err;
	ok_fa = 1;
	if ((e = posix_spawnattr_init(&attr)) != 0)
		goto spawn_err;
	ok_attr = 1;
	/* The child starts with default handlers and nothing blocked, as
	 * after proc_fork's reset, and with 0-2 and PROC_CHILD_FD only:
	 * descriptors someone forgot to make close-on-exec (or that this
	 * process inherited so) are closed before the exec. */
	sigemptyset(&none);
	sigfillset(&all);
	if ((e = posix_spawn_file_actions_adddup2(&fa, sp[1], PROC_CHILD_FD)) !=
	        0 ||
	    (e = posix_spawn_file_actions_addclosefrom_np(&fa, PROC_CHILD_FD +
	                                                           1)) != 0 ||
	    (e = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (e = posix_spawnattr_setsigdefault(&attr, &all)) != 0 ||
	    (e = posix_spawnattr_setflags(
	         &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
		goto spawn_err;
	/* glibc's posix_spawn runs the child on its own stack in a vfork-like
	 * clone and execs at once: nothing of this (multi-threaded) process
	 * runs in it, no lock another thread held can be inherited. */
	if ((e = posix_spawn(&pid, path, &fa, &attr, argv,
	                     envp != NULL ? envp : environ)) != 0) {
		pid = -1;
		goto spawn_err;
	}
	*fd = sp[0];
	sp[0] = -1;
	goto out;
spawn_err:
	errno = e;
	log_warn("proc_spawn: %s", path);
out:
	if (ok_fa)
		posix_spawn_file_actions_destroy(&fa);
	if (ok_attr)
		posix_spawnattr_destroy(&attr);
	if (sp[0] != -1)
		close(sp[0]);
	if (sp[1] != -1)
		close(sp[1]);
	return pid;
}

int
proc_send(int fd, uint32_t type, uint64_t id, const void *p, size_t len)
{
	return proc_send_fd(fd, type, id, p, len, -1);
}

int
proc_send_fd(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
             int passfd)
{
	return proc_send_max(fd, type, id, p, len, passfd, PROC_MAX_MSG);
}

static int proc_send_impl(int fd, uint32_t type, uint64_t id, const void *p,
                          size_t len, int passfd, size_t max, int timeout_ms);

int
proc_send_max(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
              int passfd, size_t max)
{
	return proc_send_impl(fd, type, id, p, len, passfd, max, -1);
}

int
proc_send_within(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
                 int passfd, size_t max, int timeout_ms)
{
	return proc_send_impl(fd, type, id, p, len, passfd, max,
	                      timeout_ms < 0 ? 0 : timeout_ms);
}

static long long
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd takes more bytes or the deadline (ms, proc_now_ms)
 * passes: 0, or -1 (ETIMEDOUT, or poll's error). */
static int
proc_wait_out(int fd, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int pr;

	if ((left = deadline - proc_now_ms()) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	pfd.revents = 0;
	if ((pr = poll(&pfd, 1, (int)left)) == -1 && errno != EINTR)
		return -1;
	if (pr == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

/* The header of a message of len bytes: 0, or -1 with EMSGSIZE (past
 * max, or no payload given). proc_send_impl and proc_queue frame alike. */
static int
proc_hdr_fill(struct proc_hdr *hdr, uint32_t type, uint64_t id, const void *p,
              size_t len, size_t max)
{
	if (len > max || len > UINT32_MAX || (len > 0 && p == NULL)) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->type = type;
	hdr->len = (uint32_t)len;
	hdr->id = id;
	return 0;
}

/* Room for one descriptor's control message (SCM_RIGHTS). */
union proc_cmsg1 {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int))];
};

/* Makes passfd ride along msg's data (in cm, which must outlive msg). */
static void
proc_cmsg_fd(struct msghdr *msg, union proc_cmsg1 *cm, int passfd)
{
	struct cmsghdr *c;

	memset(cm, 0, sizeof(*cm));
	msg->msg_control = cm->buf;
	msg->msg_controllen = sizeof(cm->buf);
	c = CMSG_FIRSTHDR(msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passfd, sizeof(int));
}

/* timeout_ms -1: no deadline (the socket's own send timeout, if any). */
static int
proc_send_impl(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
               int passfd, size_t max, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? proc_now_ms() + timeout_ms : 0;
	struct proc_hdr hdr;
	struct iovec iov[2], *cur = iov;
	struct msghdr msg;
	union proc_cmsg1 cm;
	size_t niov;
	ssize_t n;

	if (proc_hdr_fill(&hdr, type, id, p, len, max) == -1)
		return -1;
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)(uintptr_t)p;
	iov[1].iov_len = len;
	niov = len > 0 ? 2 : 1;

	/* One sendmsg usually takes it all; loop for the short writes a
	 * stream socket is allowed to make. */
	while (niov > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = cur;
		msg.msg_iovlen = niov;
		/* With the first byte only: the descriptor arrives with
		 * the header, where proc_recv_fd looks. */
		if (passfd != -1)
			proc_cmsg_fd(&msg, &cm, passfd);
		/* MSG_NOSIGNAL: a dead peer is EPIPE here, not a SIGPIPE that
		 * kills the sender. With a deadline, the waits are ours. */
		n = sendmsg(fd, &msg,
		            MSG_NOSIGNAL |
		                (timeout_ms >= 0 ? MSG_DONTWAIT : 0));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (timeout_ms < 0 ||
			    (errno != EAGAIN && errno != EWOULDBLOCK) ||
			    proc_wait_out(fd, deadline) == -1)
				return -1;
			continue;
		}
		passfd = -1;
		while (n > 0) {
			if ((size_t)n >= cur->iov_len) {
				n -= (ssize_t)cur->iov_len;
				cur++;
				niov--;
			} else {
				cur->iov_base = (uint8_t *)cur->iov_base + n;
				cur->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

/* Reads exactly len bytes: 0, 1 on EOF before the first byte, -1 on error
 * or EOF in the middle (a truncated message). */
static int
proc_read_full(int fd, void *p, size_t len)
{
	uint8_t *dst = p;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, dst + done, len - done);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			if (done == 0)
				return 1;
			errno = EPROTO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* The payload after a header: len checked against max first. */
static int
proc_recv_payload(int fd, const struct proc_hdr *hdr, struct buf *payload,
                  size_t max)
{
	uint8_t chunk[PROC_CHUNK];
	size_t left, n;

	if (max > PROC_MAX_MSG)
		max = PROC_MAX_MSG;
	if (hdr->len > max) {
		/* The payload is still in the stream; skipping it would trust
		 * the very length we just refused, so the channel ends. */
		errno = EMSGSIZE;
		return -1;
	}
	if (payload != NULL)
		buf_reset(payload);
	for (left = hdr->len; left > 0; left -= n) {
		n = left < sizeof(chunk) ? left : sizeof(chunk);
		if (proc_read_full(fd, chunk, n) != 0) {
			errno = EPROTO;
			return -1;
		}
		if (payload != NULL && buf_append(payload, chunk, n) == -1)
			return -1;
	}
	return 0;
}

/*
 * The descriptors in msg's control data, into fds from *nfds on, at most
 * cap in all: 0, or -1 when anything else came (other control data, a
 * truncated list, more descriptors than cap). What does not fit is
 * closed here; on -1 the caller closes what was stored.
 */
static int
cmsg_fds(struct msghdr *msg, int *fds, size_t cap, size_t *nfds)
{
	struct cmsghdr *c;
	size_t i, n;
	int got[16], bad = (msg->msg_flags & MSG_CTRUNC) != 0;

	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			bad = 1;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > 16)
			n = 16;
		memcpy(got, CMSG_DATA(c), n * sizeof(int));
		for (i = 0; i < n; i++) {
			if (!bad && *nfds < cap)
				fds[(*nfds)++] = got[i];
			else {
				bad = 1;
				close(got[i]);
			}
		}
	}
	return bad ? -1 : 0;
}

/*
 * Reads the header with recvmsg, taking at most one descriptor with it.
 * Anything else in the control data (two descriptors, a truncated list,
 * credentials) is closed and refused.
 */
static int
proc_read_hdr_fd(int fd, struct proc_hdr *hdr, int *passfd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct msghdr msg;
	struct iovec iov;
	ssize_t n;
	size_t nfd = 0;
	int one = -1, bad;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = hdr;
	iov.iov_len = sizeof(*hdr);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0)
		return 1;
	/* One descriptor, and only when none was taken before. */
	bad = cmsg_fds(&msg, &one, *passfd == -1 ? 1 : 0, &nfd) == -1;
	if (nfd == 1)
		*passfd = one;
	if (!bad && (size_t)n < sizeof(*hdr) &&
	    proc_read_full(fd, (uint8_t *)hdr + n, sizeof(*hdr) - (size_t)n) !=
	        0)
		bad = 1;
	if (bad) {
		if (*passfd != -1)
			close(*passfd);
		*passfd = -1;
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
proc_recv(int fd, struct proc_hdr *hdr, struct buf *payload, size_t max)
{
	return proc_recv_fd(fd, hdr, payload, max, NULL);
}

int
proc_recv_fd(int fd, struct proc_hdr *hdr, struct buf *payload, size_t max,
             int *passfd)
{
	int rc, got = -1;

	if (passfd != NULL)
		*passfd = -1;
	rc = passfd != NULL ? proc_read_hdr_fd(fd, hdr, &got)
	                    : proc_read_full(fd, hdr, sizeof(*hdr));
	if (rc != 0)
		return rc;
	if ((rc = proc_recv_payload(fd, hdr, payload, max)) == -1) {
		if (got != -1)
			close(got);
		return -1;
	}
	if (passfd != NULL)
		*passfd = got;
	return 0;
}

/* --- framing for event loops ------------------------------------------ */

int
proc_frame(const uint8_t *p, size_t len, size_t max, struct proc_hdr *hdr)
{
	if (len < sizeof(*hdr))
		return 0;
	memcpy(hdr, p, sizeof(*hdr));
	/* The length is checked before anything waits for it: a peer
	 * cannot make us buffer more than max. */
	if (hdr->len > max)
		return -1;
	if (len - sizeof(*hdr) < hdr->len)
		return 0;
	return 1;
}

int
proc_evbuf_take(struct evbuffer *in, size_t max, struct proc_hdr *hdr,
                struct buf *payload)
{
	uint8_t raw[sizeof(*hdr)];
	size_t have = evbuffer_get_length(in);
	int rc;

	if (have < sizeof(raw))
		return 0;
	if (evbuffer_copyout(in, raw, sizeof(raw)) != (ev_ssize_t)sizeof(raw))
		return -1;
	if ((rc = proc_frame(raw, sizeof(raw), max, hdr)) == -1)
		return -1;
	/* rc is 0 here unless hdr->len == 0: the payload is not in raw */
	if (have - sizeof(raw) < hdr->len)
		return 0;
	buf_reset(payload);
	if (hdr->len > 0) {
		const uint8_t *all =
		    evbuffer_pullup(in, (ev_ssize_t)(sizeof(raw) + hdr->len));

		if (all == NULL ||
		    buf_append(payload, all + sizeof(raw), hdr->len) == -1)
			return -1;
	}
	evbuffer_drain(in, sizeof(raw) + hdr->len);
	return 1;
}

long
proc_read_some(int fd, struct evbuffer *in, int *fds, size_t cap, size_t *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} cm;
	uint8_t chunk[65536];
	struct msghdr msg;
	struct iovec iov;
	size_t start = *nfds;
	ssize_t r;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = chunk;
	iov.iov_len = sizeof(chunk);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -1;
	if (cmsg_fds(&msg, fds, cap, nfds) == -1) {
		while (*nfds > start)
			close(fds[--(*nfds)]);
		errno = EPROTO;
		return -1;
	}
	if (r > 0 && evbuffer_add(in, chunk, (size_t)r) == -1) {
		errno = ENOMEM;
		return -1;
	}
	return (long)r;
}

int
proc_queue(struct evbuffer *out, uint32_t type, uint64_t id, const void *p,
           size_t len, size_t max)
{
	struct proc_hdr hdr;

	if (proc_hdr_fill(&hdr, type, id, p, len, max) == -1)
		return -1;
	if (evbuffer_add(out, &hdr, sizeof(hdr)) == -1 ||
	    (len > 0 && evbuffer_add(out, p, len) == -1)) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
proc_queue_fd(struct evbuffer *out, struct proc_fdq *fq, uint32_t type,
              uint64_t id, const void *p, size_t len, size_t max, int passfd)
{
	size_t at = evbuffer_get_length(out);

	if (fq->n == PROC_FDQ_MAX) {
		errno = EAGAIN;
		return -1;
	}
	if (proc_queue(out, type, id, p, len, max) == -1)
		return -1;
	fq->q[fq->n].at = at;
	fq->q[fq->n].fd = passfd;
	fq->n++;
	return 0;
}

void
proc_fdq_clear(struct proc_fdq *fq)
{
	while (fq->n > 0)
		close(fq->q[--fq->n].fd);
}

/* One non-blocking write of p[0..len) with passfd (-1: none) on its
 * first byte. */
static ssize_t
proc_send_some(int fd, const void *p, size_t len, int passfd)
{
	union proc_cmsg1 cm;
	struct msghdr msg;
	struct iovec iov;

	if (passfd == -1)
		return send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)(uintptr_t)p;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	proc_cmsg_fd(&msg, &cm, passfd);
	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int
proc_flush_some(int fd, struct evbuffer *out, struct proc_fdq *fq)
{
	size_t len, i;
	ssize_t n;
	int passfd;

	while ((len = evbuffer_get_length(out)) > 0) {
		if (len > PROC_FLUSH_CHUNK)
			len = PROC_FLUSH_CHUNK;
		passfd = -1;
		if (fq != NULL && fq->n > 0) {
			/* A descriptor goes with the first byte of its
			 * message, and no other with the same write. */
			if (fq->q[0].at == 0) {
				passfd = fq->q[0].fd;
				if (fq->n > 1 && fq->q[1].at < len)
					len = fq->q[1].at;
			} else if (fq->q[0].at < len)
				len = fq->q[0].at;
		}
		n = proc_send_some(fd, evbuffer_pullup(out, (ev_ssize_t)len),
		                   len, passfd);
		if (n > 0) {
			evbuffer_drain(out, (size_t)n);
			if (passfd != -1) {
				close(passfd);
				memmove(fq->q, fq->q + 1,
				        --fq->n * sizeof(fq->q[0]));
			}
			for (i = 0; fq != NULL && i < fq->n; i++)
				fq->q[i].at -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		return -1;
	}
	return 0;
}

int
proc_flush_within(int fd, struct evbuffer *out, struct proc_fdq *fq,
                  int timeout_ms)
{
	long long deadline = proc_now_ms() + timeout_ms;
	int rc;

	while ((rc = proc_flush_some(fd, out, fq)) == 1)
		if (proc_wait_out(fd, deadline) == -1)
			return -1;
	return rc;
}
