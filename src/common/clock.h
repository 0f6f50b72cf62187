/*
 * clock: the monotonic clock as seconds, for measuring durations (scan
 * times, timeouts); one definition for the agent, the scan engine and
 * vigil-scand.
 */
#ifndef VIGIL_CLOCK_H
#define VIGIL_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (not wall time; only differences count). */
double mono_now(void);

#endif
