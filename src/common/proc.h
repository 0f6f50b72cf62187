/*
 * proc: privilege separation by fork + socketpair (after OpenBSD proc.c).
 * Messages are typed and size-checked: a fixed header {type, len, id} and at
 * most PROC_MAX_MSG bytes of payload; anything else closes the channel.
 */
#ifndef VIGIL_PROC_H
#define VIGIL_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define PROC_MAX_MSG (64u * 1024)

struct proc_hdr {
	uint32_t type;
	uint32_t len; /* payload bytes that follow */
	uint64_t id;  /* request id, echoed in the reply */
};

/* Forks; the child runs child_main(fd, arg) and then _exit()s with its
 * return value. The parent gets the child's pid and its end in *fd. The
 * child closes every descriptor except fd and 0-2. */
pid_t proc_fork(int *fd, int (*child_main)(int fd, void *arg), void *arg);
/*
 * Spawns path with argv and envp (posix_spawn; NULL: this process's
 * environment):
 * the child finds its end of the socketpair as descriptor PROC_CHILD_FD
 * and inherits nothing else but 0-2 and what is not close-on-exec (it
 * should close the rest itself), with default signal handlers and an empty
 * mask. The parent gets the child's pid and its end in *fd; -1 (logged)
 * when it could not be started. Safe in a multi-threaded process.
 */
#define PROC_CHILD_FD 3
pid_t proc_spawn(int *fd, const char *path, char *const argv[],
                 char *const envp[]);
/* Blocking, whole-message send/receive (EINTR-safe). proc_recv returns 0,
 * 1 on orderly EOF, -1 on error or a message larger than max (which also
 * means the channel is no longer usable). */
int proc_send(int fd, uint32_t type, uint64_t id, const void *p, size_t len);
int proc_recv(int fd, struct proc_hdr *hdr, struct buf *payload, size_t max);
/*
 * The same with one descriptor riding along (SCM_RIGHTS): proc_send_fd
 * passes passfd (the sender keeps its own copy); proc_recv_fd stores the
 * received descriptor (close-on-exec) in *passfd, or -1 when the message
 * carried none. More than one descriptor, or a truncated control message,
 * closes whatever arrived and fails (-1, EPROTO): a peer cannot make the
 * receiver hold descriptors it did not ask for.
 */
int proc_send_fd(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
                 int passfd);
int proc_recv_fd(int fd, struct proc_hdr *hdr, struct buf *payload, size_t max,
                 int *passfd);

/*
 * For channels read from an event loop (vigild's gateway workers,
 * src/center/gwproc.c), whose messages may be larger than PROC_MAX_MSG:
 * the limit is the caller's, still checked on both sides.
 *
 * proc_send_max: proc_send_fd with max instead of PROC_MAX_MSG (blocking,
 * whole message; passfd -1 for none).
 *
 * proc_send_within: the same, but the whole message must be written
 * within timeout_ms, however the peer reads (a send timeout bounds each
 * wait only: a peer that reads a little at a time could keep the sender
 * blocked for good); else -1 with ETIMEDOUT, the message perhaps in part
 * written (the channel is then unusable: close it).
 *
 * proc_queue: appends one message (header and payload, as proc_send
 * writes it) to out, to be written later with others: 0, or -1 (EMSGSIZE
 * past max, ENOMEM).
 *
 * proc_queue_fd: proc_queue with a descriptor riding along: passfd is
 * taken (kept in fq, closed once sent or by proc_fdq_clear) and goes with
 * the first byte of its message, as proc_send_fd sends it. -1 with EAGAIN
 * when fq holds PROC_FDQ_MAX already (passfd then stays the caller's).
 *
 * proc_flush_within: writes all of out to fd within timeout_ms (as
 * proc_send_within: however the peer reads), draining what was written,
 * with the descriptors of fq (NULL: none); 0, or -1 (ETIMEDOUT, or the
 * write's error; the channel is then unusable: close it).
 *
 * proc_flush_some: writes what of out fd takes now, without waiting, with
 * the descriptors of fq (NULL: none): 0 (all of it written), 1 (some
 * left: write again once fd is writable), or -1 (the write's error; the
 * channel is then unusable).
 *
 * proc_fdq_clear: closes the descriptors fq still holds (its channel was
 * closed, or out drained unsent).
 *
 * proc_frame: a pure parser of the bytes buffered so far: 1 when a whole
 * message is there (*hdr filled; it takes sizeof(*hdr) + hdr->len bytes),
 * 0 when more bytes are needed, -1 when its length is past max (the
 * channel is then unusable: close it).
 *
 * proc_evbuf_take: proc_frame on an evbuffer; on 1 the payload is moved
 * into payload (reset first) and the message removed from in.
 *
 * proc_read_some: one non-blocking read of what is there into in; each
 * descriptor that rides along (SCM_RIGHTS) is appended to fds[*nfds]
 * (capacity cap; beyond it, and on any malformed control data, every
 * descriptor received is closed and -1 with EPROTO). Bytes read, 0 at EOF,
 * -1 on error (EAGAIN when nothing is there).
 */
struct evbuffer;
int proc_send_max(int fd, uint32_t type, uint64_t id, const void *p, size_t len,
                  int passfd, size_t max);
int proc_send_within(int fd, uint32_t type, uint64_t id, const void *p,
                     size_t len, int passfd, size_t max, int timeout_ms);
int proc_queue(struct evbuffer *out, uint32_t type, uint64_t id, const void *p,
               size_t len, size_t max);
/* Descriptors of messages queued in an evbuffer (proc_queue_fd): each
 * with the offset of its message in the queue. */
#define PROC_FDQ_MAX 32
struct proc_fdq {
	struct {
		size_t at;
		int fd;
	} q[PROC_FDQ_MAX];
	size_t n;
};
int proc_queue_fd(struct evbuffer *out, struct proc_fdq *fq, uint32_t type,
                  uint64_t id, const void *p, size_t len, size_t max,
                  int passfd);
void proc_fdq_clear(struct proc_fdq *fq);
int proc_flush_within(int fd, struct evbuffer *out, struct proc_fdq *fq,
                      int timeout_ms);
int proc_flush_some(int fd, struct evbuffer *out, struct proc_fdq *fq);
#define PROC_FLUSH_CHUNK (256u << 10) /* bytes per write of a flush */
int proc_frame(const uint8_t *p, size_t len, size_t max, struct proc_hdr *hdr);
int proc_evbuf_take(struct evbuffer *in, size_t max, struct proc_hdr *hdr,
                    struct buf *payload);
long proc_read_some(int fd, struct evbuffer *in, int *fds, size_t cap,
                    size_t *nfds);

#endif
