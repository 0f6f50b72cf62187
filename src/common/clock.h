/*
 * clock: the monotonic clock as seconds, for measuring durations (scan
 * times, timeouts); one definition for the agent, the scan engine and
 * vigil-scand.
 */
#ifndef VIGIL_CLOCK_H
#define VIGIL_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (not wall time; only differences count). */
double mono_now(void);
/* Seconds of CPU the calling thread has used (0 when unknown). */
double thread_cpu_now(void);

#endif
