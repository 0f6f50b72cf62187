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

#endif
