/*
 * Unit tests for proc.c: typed messages both ways between a parent and a
 * forked child, the size limits on both ends, EOF when the child exits,
 * and that the child holds no descriptor but its channel and stdio; a
 * spawned child (proc_spawn) talks the same way on PROC_CHILD_FD.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "buf.h"
#include "proc.h"

enum { MSG_ECHO = 1, MSG_REPLY, MSG_QUIT, MSG_BIG, MSG_COUNT_FDS };

static int
fd_number(const char *s)
{
	long long v;

	return str_to_ll(s, 0, 1 << 20, &v) == 0 ? (int)v : -1;
}

/* The child: answers each message until QUIT or EOF. */
static int
echo_child(int fd, void *arg)
{
	struct proc_hdr hdr;
	struct buf in;
	int rc, ret = 0;

	(void)arg;
	buf_init(&in, PROC_MAX_MSG);
	for (;;) {
		rc = proc_recv(fd, &hdr, &in, PROC_MAX_MSG);
		if (rc == 1)
			break;
		if (rc == -1) {
			ret = 3;
			break;
		}
		if (hdr.type == MSG_QUIT) {
			ret = 7;
			break;
		}
		if (hdr.type == MSG_ECHO) {
			/* Reversed payload, so a pass-through would fail. */
			size_t i;

			for (i = 0; i < in.len / 2; i++) {
				uint8_t t = in.data[i];

				in.data[i] = in.data[in.len - 1 - i];
				in.data[in.len - 1 - i] = t;
			}
			if (proc_send(fd, MSG_REPLY, hdr.id, in.data, in.len) ==
			    -1)
				ret = 4;
		} else if (hdr.type == MSG_BIG) {
			static uint8_t big[PROC_MAX_MSG];

			memset(big, 'x', sizeof(big));
			proc_send(fd, MSG_REPLY, hdr.id, big, sizeof(big));
		} else if (hdr.type == MSG_COUNT_FDS) {
			/* Descriptors other than stdio, the channel and the
			 * directory being read. */
			DIR *d = opendir("/proc/self/fd");
			struct dirent *de;
			uint32_t n = 0;
			int x;

			while (d != NULL && (de = readdir(d)) != NULL) {
				x = fd_number(de->d_name);
				if (x > 2 && x != fd && x != dirfd(d))
					n++;
			}
			if (d != NULL)
				closedir(d);
			proc_send(fd, MSG_REPLY, hdr.id, &n, sizeof(n));
		}
	}
	buf_free(&in);
	return ret;
}

static void
test_round_trip(void **state)
{
	struct proc_hdr hdr;
	struct buf in;
	int fd, wstatus, extra;
	pid_t pid;
	uint64_t id;
	char msg[64];

	(void)state;
	/* A descriptor the parent holds (without CLOEXEC) that the child
	 * must not inherit. */
	extra = open("/dev/null", O_RDONLY);
	assert_true(extra > 2);
	pid = proc_fork(&fd, echo_child, NULL);
	assert_true(pid > 0);
	close(extra);
	buf_init(&in, PROC_MAX_MSG);

	for (id = 1; id <= 50; id++) {
		size_t n = (size_t)snprintf(msg, sizeof(msg), "abc-%llu",
		                            (unsigned long long)id);

		assert_int_equal(proc_send(fd, MSG_ECHO, id, msg, n), 0);
		assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 0);
		assert_int_equal(hdr.type, MSG_REPLY);
		assert_true(hdr.id == id);
		assert_int_equal(hdr.len, n);
		assert_int_equal(in.len, n);
		assert_int_equal(in.data[n - 1], 'a');
		assert_int_equal(in.data[0], msg[n - 1]);
	}
	/* Empty payloads are messages too. */
	assert_int_equal(proc_send(fd, MSG_ECHO, 99, NULL, 0), 0);
	assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 0);
	assert_int_equal(hdr.len, 0);
	assert_int_equal(in.len, 0);

	/* A payload of exactly the maximum goes through in pieces. */
	{
		uint8_t *big = malloc(PROC_MAX_MSG);

		assert_non_null(big);
		memset(big, 'y', PROC_MAX_MSG);
		big[0] = 'z';
		assert_int_equal(
		    proc_send(fd, MSG_ECHO, 100, big, PROC_MAX_MSG), 0);
		assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 0);
		assert_int_equal(in.len, PROC_MAX_MSG);
		assert_int_equal(in.data[PROC_MAX_MSG - 1], 'z');
		free(big);
	}

	/* The child keeps only its channel and stdio. */
	{
		uint32_t n;

		assert_int_equal(proc_send(fd, MSG_COUNT_FDS, 101, NULL, 0), 0);
		assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 0);
		assert_int_equal(in.len, sizeof(n));
		memcpy(&n, in.data, sizeof(n));
		assert_int_equal(n, 0);
	}

	assert_int_equal(proc_send(fd, MSG_QUIT, 0, NULL, 0), 0);
	/* The child exits: the parent sees an orderly EOF. */
	assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 1);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 7);
	close(fd);
	buf_free(&in);
}

static void
test_oversize(void **state)
{
	struct proc_hdr hdr;
	struct buf in;
	int fd, wstatus;
	pid_t pid;
	static uint8_t big[PROC_MAX_MSG + 1];

	(void)state;
	/* The sender refuses past PROC_MAX_MSG. */
	errno = 0;
	assert_int_equal(proc_send(-1, MSG_ECHO, 1, big, sizeof(big)), -1);
	assert_int_equal(errno, EMSGSIZE);

	pid = proc_fork(&fd, echo_child, NULL);
	assert_true(pid > 0);
	buf_init(&in, PROC_MAX_MSG);
	/* The receiver refuses a message larger than its own max. */
	assert_int_equal(proc_send(fd, MSG_BIG, 2, NULL, 0), 0);
	errno = 0;
	assert_int_equal(proc_recv(fd, &hdr, &in, 1024), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(in.len, 0);
	close(fd); /* the channel is unusable now; the child sees EOF */
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	buf_free(&in);
}

static void
test_forged_header(void **state)
{
	struct proc_hdr hdr, bad;
	struct buf in;
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	buf_init(&in, PROC_MAX_MSG);

	/* A peer claiming a payload over PROC_MAX_MSG is refused even when
	 * the caller's max is larger. */
	memset(&bad, 0, sizeof(bad));
	bad.type = MSG_ECHO;
	bad.len = PROC_MAX_MSG + 1;
	assert_int_equal(write(sp[1], &bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(proc_recv(sp[0], &hdr, &in, SIZE_MAX), -1);

	/* A truncated header or payload is an error, not EOF. */
	close(sp[0]);
	close(sp[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(write(sp[1], &bad, 5), 5);
	close(sp[1]);
	assert_int_equal(proc_recv(sp[0], &hdr, &in, PROC_MAX_MSG), -1);
	close(sp[0]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	bad.len = 10;
	assert_int_equal(write(sp[1], &bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(write(sp[1], "abc", 3), 3);
	close(sp[1]);
	assert_int_equal(proc_recv(sp[0], &hdr, &in, PROC_MAX_MSG), -1);
	close(sp[0]);

	/* Sending to a closed peer fails with EPIPE instead of SIGPIPE. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	close(sp[1]);
	errno = 0;
	assert_int_equal(proc_send(sp[0], MSG_ECHO, 1, "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(sp[0]);
	buf_free(&in);
}

static int
exit_child(int fd, void *arg)
{
	(void)fd;
	return *(int *)arg;
}

static void
test_eof_when_child_exits(void **state)
{
	struct proc_hdr hdr;
	struct buf in;
	int fd, wstatus, code = 5;
	pid_t pid;

	(void)state;
	pid = proc_fork(&fd, exit_child, &code);
	assert_true(pid > 0);
	buf_init(&in, 0);
	assert_int_equal(proc_recv(fd, &hdr, &in, PROC_MAX_MSG), 1);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_int_equal(WEXITSTATUS(wstatus), 5);
	close(fd);
	buf_free(&in);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A raw message with nfd copies of fd attached (what a hostile peer could
 * send). */
static void
send_with_fds(int sock, int fd, int nfd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 3)];
	} cm;
	struct proc_hdr hdr = {MSG_ECHO, 0, 9};
	struct iovec iov = {&hdr, sizeof(hdr)};
	struct msghdr msg;
	struct cmsghdr *c;
	int fds[3] = {fd, fd, fd};

	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
	assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)sizeof(hdr));
}

/* A descriptor rides along with a message and works on the other side;
 * none is reported as -1; two in one message are refused and closed. */
static void
test_pass_fd(void **state)
{
	struct proc_hdr hdr;
	struct buf in;
	int sp[2], pp[2], got, before;
	char c;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(pipe(pp), 0);
	buf_init(&in, PROC_MAX_MSG);

	assert_int_equal(proc_send_fd(sp[0], MSG_ECHO, 3, "abc", 3, pp[0]), 0);
	assert_int_equal(proc_recv_fd(sp[1], &hdr, &in, 16, &got), 0);
	assert_int_equal(hdr.type, MSG_ECHO);
	assert_int_equal(hdr.id, 3);
	assert_int_equal(in.len, 3);
	assert_true(got >= 0 && got != pp[0]);
	assert_int_equal(write(pp[1], "z", 1), 1);
	assert_int_equal(read(got, &c, 1), 1);
	assert_int_equal(c, 'z');
	assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
	close(got);

	/* No descriptor: -1. */
	assert_int_equal(proc_send(sp[0], MSG_ECHO, 4, NULL, 0), 0);
	assert_int_equal(proc_recv_fd(sp[1], &hdr, &in, 16, &got), 0);
	assert_int_equal(got, -1);

	/* Two at once: refused, and neither stays open here. */
	before = count_fds();
	send_with_fds(sp[0], pp[0], 2);
	assert_int_equal(proc_recv_fd(sp[1], &hdr, &in, 16, &got), -1);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(got, -1);
	assert_int_equal(count_fds(), before);

	/* A payload over the limit closes the descriptor that came with it. */
	assert_int_equal(
	    proc_send_fd(sp[0], MSG_ECHO, 5, "0123456789", 10, pp[0]), 0);
	assert_int_equal(proc_recv_fd(sp[1], &hdr, &in, 4, &got), -1);
	assert_int_equal(got, -1);
	assert_int_equal(count_fds(), before);

	buf_free(&in);
	close(sp[0]);
	close(sp[1]);
	close(pp[0]);
	close(pp[1]);
}

/* proc_spawn: this program again, as echo_child on PROC_CHILD_FD, started
 * while another thread exists (as vigil-scand's pool threads do); a
 * program that does not exist is -1 at once. */
static void *
idle_thread(void *arg)
{
	int *fd = arg;
	char c;

	/* Until the test closes the pipe. */
	while (read(*fd, &c, 1) == -1 && errno == EINTR)
		;
	return NULL;
}

static void
test_spawn(void **state)
{
	static char a0[] = "test_proc", a1[] = "--echo-child";
	char *argv[] = {a0, a1, NULL};
	struct proc_hdr hdr;
	struct buf out;
	pthread_t th;
	int fd, st, tp[2];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(tp, O_CLOEXEC), 0);
	assert_int_equal(pthread_create(&th, NULL, idle_thread, &tp[0]), 0);
	buf_init(&out, PROC_MAX_MSG);
	pid = proc_spawn(&fd, "/proc/self/exe", argv, NULL);
	assert_true(pid > 0);
	assert_int_equal(proc_send(fd, MSG_ECHO, 9, "abc", 3), 0);
	assert_int_equal(proc_recv(fd, &hdr, &out, PROC_MAX_MSG), 0);
	assert_int_equal(hdr.type, MSG_REPLY);
	assert_int_equal(hdr.id, 9);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "cba", 3);
	/* Close-on-exec descriptors (the thread's pipe) stayed behind. */
	assert_int_equal(proc_send(fd, MSG_COUNT_FDS, 10, NULL, 0), 0);
	assert_int_equal(proc_recv(fd, &hdr, &out, PROC_MAX_MSG), 0);
	assert_int_equal(out.len, sizeof(uint32_t));
	assert_int_equal(*(uint32_t *)out.data, 0);
	assert_int_equal(proc_send(fd, MSG_QUIT, 0, NULL, 0), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
	close(fd);
	close(tp[1]);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(tp[0]);

	assert_int_equal(proc_spawn(&fd, "/nonexistent/vigil-test", argv, NULL),
	                 -1);
	buf_free(&out);
}

/*
 * The event-loop side (gateway workers): proc_send_max past PROC_MAX_MSG
 * with the caller's limit, read back piecewise with proc_read_some and
 * framed by proc_evbuf_take; descriptors riding along are queued in
 * order; a length past max is refused before anything waits for it.
 */
static void
test_evbuf_framing(void **state)
{
	int sp[2], fds[4], pf[2];
	size_t nfds = 0, big = PROC_MAX_MSG * 3, i;
	struct evbuffer *in = evbuffer_new();
	struct proc_hdr hdr;
	struct buf pay;
	uint8_t *p = malloc(big), raw[sizeof(struct proc_hdr)];
	pid_t pid;
	long n;
	int rc, got = 0;

	(void)state;
	assert_non_null(in);
	assert_non_null(p);
	for (i = 0; i < big; i++)
		p[i] = (uint8_t)(i * 7);
	buf_init(&pay, big);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(pipe(pf), 0);
	/* The default limit still refuses it; the caller's takes it. */
	assert_int_equal(proc_send_fd(sp[0], 9, 1, p, big, -1), -1);
	assert_int_equal(errno, EMSGSIZE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sp[1]);
		_exit(proc_send_max(sp[0], 9, 1, p, big, -1, big) == 0 &&
		              proc_send_max(sp[0], 10, 2, "x", 1, pf[0], big) ==
		                  0
		          ? 0
		          : 1);
	}
	close(sp[0]);
	while (got < 2) {
		struct pollfd pfd = {sp[1], POLLIN, 0};

		assert_int_equal(poll(&pfd, 1, 10000), 1);
		n = proc_read_some(sp[1], in, fds, 4, &nfds);
		assert_true(n > 0);
		while ((rc = proc_evbuf_take(in, big, &hdr, &pay)) == 1) {
			if (got == 0) {
				assert_int_equal(hdr.type, 9);
				assert_int_equal(hdr.id, 1);
				assert_int_equal(pay.len, big);
				assert_memory_equal(pay.data, p, big);
			} else {
				assert_int_equal(hdr.type, 10);
				assert_int_equal(pay.len, 1);
				assert_int_equal(nfds, 1);
			}
			got++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(waitpid(pid, &rc, 0), pid);
	assert_int_equal(rc, 0);
	/* The descriptor is the pipe's read end: what is written arrives. */
	assert_int_equal(write(pf[1], "k", 1), 1);
	assert_int_equal(read(fds[0], raw, 1), 1);
	assert_int_equal(raw[0], 'k');
	close(fds[0]);

	/* A header claiming more than max: refused at once. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = 1;
	hdr.len = 1000;
	memcpy(raw, &hdr, sizeof(hdr));
	assert_int_equal(proc_frame(raw, sizeof(raw), 999, &hdr), -1);
	assert_int_equal(proc_frame(raw, sizeof(raw), 1000, &hdr), 0);
	assert_int_equal(proc_frame(raw, sizeof(raw) - 1, 0, &hdr), 0);
	evbuffer_add(in, raw, sizeof(raw));
	assert_int_equal(proc_evbuf_take(in, 999, &hdr, &pay), -1);

	close(sp[1]);
	close(pf[0]);
	close(pf[1]);
	evbuffer_free(in);
	buf_free(&pay);
	free(p);
}

/*
 * Messages queued together (proc_queue) and written in one go
 * (proc_flush_within) arrive whole and in order; a peer that does not
 * read makes the flush fail with ETIMEDOUT once its time is up, not hang.
 */
static void
test_queue_flush(void **state)
{
	struct evbuffer *out = evbuffer_new(), *in = evbuffer_new();
	struct proc_hdr hdr;
	struct buf pay;
	static uint8_t big[64 << 10];
	int sp[2], fds[1], sndbuf = 4096, i, rc;
	size_t nfds = 0;

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	buf_init(&pay, 1 << 20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(proc_queue(out, 3, 7, "abc", 3, 16), 0);
	assert_int_equal(proc_queue(out, 4, 8, NULL, 0, 16), 0);
	assert_int_equal(proc_queue(out, 5, 9, "x", 17, 16), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(proc_flush_within(sp[0], out, NULL, 1000), 0);
	assert_int_equal(evbuffer_get_length(out), 0);
	assert_true(proc_read_some(sp[1], in, fds, 1, &nfds) > 0);
	assert_int_equal(proc_evbuf_take(in, 16, &hdr, &pay), 1);
	assert_int_equal(hdr.type, 3);
	assert_int_equal(hdr.id, 7);
	assert_int_equal(pay.len, 3);
	assert_memory_equal(pay.data, "abc", 3);
	assert_int_equal(proc_evbuf_take(in, 16, &hdr, &pay), 1);
	assert_int_equal(hdr.type, 4);
	assert_int_equal(pay.len, 0);
	assert_int_equal(proc_evbuf_take(in, 16, &hdr, &pay), 0);

	/* Nobody reads sp[1] now: the queue cannot all go. */
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (i = 0; i < 64; i++)
		assert_int_equal(proc_queue(out, 6, (uint64_t)i, big,
		                            sizeof(big), sizeof(big)),
		                 0);
	rc = proc_flush_within(sp[0], out, NULL, 200);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(evbuffer_get_length(out) > 0);

	close(sp[0]);
	close(sp[1]);
	evbuffer_free(out);
	evbuffer_free(in);
	buf_free(&pay);
}

/* The file behind descriptor fd: its inode. */
static ino_t
ino_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/*
 * Descriptors queued with their messages (proc_queue_fd) each arrive with
 * their own message, in order, also two in a row and when the channel
 * takes the queue a little at a time; the sender's copies are closed once
 * sent, and proc_fdq_clear closes those never sent.
 */
static void
test_queue_fds(void **state)
{
	struct evbuffer *out = evbuffer_new(), *in = evbuffer_new();
	struct proc_fdq fq;
	struct proc_hdr hdr;
	struct buf pay;
	static uint8_t big[20000];
	ino_t want[4];
	int sp[2], fds[8], files[4], dups[PROC_FDQ_MAX], sndbuf = 4096, i, rc,
	                                                 got = 0;
	size_t nfds = 0;
	char name[64];

	(void)state;
	memset(&fq, 0, sizeof(fq));
	assert_non_null(out);
	assert_non_null(in);
	buf_init(&pay, 1 << 20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "/tmp/vigil-test-proc-fdq.%d.%d",
		         (int)getpid(), i);
		assert_true((files[i] = open(name, O_CREAT | O_RDWR, 0600)) >=
		            0);
		unlink(name);
		want[i] = ino_of(files[i]);
	}
	/* A plain message, two with descriptors back to back, a large one,
	 * and one more with a descriptor. */
	assert_int_equal(proc_queue(out, 1, 0, big, 100, sizeof(big)), 0);
	assert_int_equal(
	    proc_queue_fd(out, &fq, 2, 1, big, 10, sizeof(big), files[0]), 0);
	assert_int_equal(
	    proc_queue_fd(out, &fq, 2, 2, big, 10, sizeof(big), files[1]), 0);
	assert_int_equal(proc_queue(out, 1, 3, big, sizeof(big), sizeof(big)),
	                 0);
	assert_int_equal(proc_queue_fd(out, &fq, 2, 4, big, sizeof(big),
	                               sizeof(big), files[2]),
	                 0);
	/* The channel takes some of it: the rest waits. */
	assert_int_equal(proc_flush_some(sp[0], out, &fq), 1);
	for (i = 0; i < 1000 && got < 5; i++) {
		long n = proc_read_some(sp[1], in, fds, 8, &nfds);

		assert_true(n > 0 || (n == -1 && errno == EAGAIN));
		while (proc_evbuf_take(in, sizeof(big), &hdr, &pay) == 1) {
			assert_int_equal(hdr.id, (uint64_t)got);
			if (hdr.type == 2) {
				/* Its descriptor came no later than its
				 * message. */
				assert_true(nfds > 0);
				assert_true(ino_of(fds[0]) ==
				            want[got == 4 ? 2 : got - 1]);
				close(fds[0]);
				memmove(fds, fds + 1, --nfds * sizeof(int));
			}
			got++;
		}
		rc = proc_flush_some(sp[0], out, &fq);
		assert_true(rc == 0 || rc == 1);
	}
	assert_int_equal(got, 5);
	assert_int_equal(nfds, 0);
	assert_int_equal(fq.n, 0);
	/* Sent: the sender's copies are closed. */
	for (i = 0; i < 3; i++)
		assert_int_equal(fcntl(files[i], F_GETFD), -1);
	/* A full queue refuses one more, and keeps the caller's;
	 * proc_fdq_clear closes what it holds. */
	for (i = 0; i < PROC_FDQ_MAX; i++) {
		assert_true((dups[i] = dup(files[3])) >= 0);
		assert_int_equal(
		    proc_queue_fd(out, &fq, 2, 9, NULL, 0, 16, dups[i]), 0);
	}
	assert_int_equal(proc_queue_fd(out, &fq, 2, 9, NULL, 0, 16, files[3]),
	                 -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_not_equal(fcntl(files[3], F_GETFD), -1);
	proc_fdq_clear(&fq);
	assert_int_equal(fq.n, 0);
	for (i = 0; i < PROC_FDQ_MAX; i++)
		assert_int_equal(fcntl(dups[i], F_GETFD), -1);
	close(files[3]);
	close(sp[0]);
	close(sp[1]);
	evbuffer_free(out);
	evbuffer_free(in);
	buf_free(&pay);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_forged_header),
	    cmocka_unit_test(test_eof_when_child_exits),
	    cmocka_unit_test(test_pass_fd),
	    cmocka_unit_test(test_spawn),
	    cmocka_unit_test(test_evbuf_framing),
	    cmocka_unit_test(test_queue_flush),
	    cmocka_unit_test(test_queue_fds),
	};

	/* test_spawn's child: this program again. */
	if (argc == 2 && strcmp(argv[1], "--echo-child") == 0)
		_exit(echo_child(PROC_CHILD_FD, NULL));

	return cmocka_run_group_tests(tests, NULL, NULL);
}
