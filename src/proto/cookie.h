/*
 * cookie: finds one cookie's value in a request's Cookie header (RFC 6265
 * section 5.4: "name=value" pairs separated by "; "). No I/O; the header
 * comes from the client, so it is bounded and never trusted to be well
 * formed. A fuzz target (fuzz/fuzz_cookie.c). vigild uses it for the admin
 * session cookie.
 */
#ifndef VIGIL_PROTO_COOKIE_H
#define VIGIL_PROTO_COOKIE_H

#include <stddef.h>

/*
 * Copies the value of the first cookie called name in hdr (len bytes, not
 * necessarily NUL-terminated) into out (size n, NUL-terminated) and
 * returns its length; -1 when there is no such cookie, its value does not
 * fit, or it holds bytes a cookie value may not (RFC 6265 cookie-octet:
 * no controls, blanks, '"', ',', ';' or '\\'). Surrounding double quotes
 * are removed.
 */
int cookie_get(const char *hdr, size_t len, const char *name, char *out,
               size_t n);

#endif
