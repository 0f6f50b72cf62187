/*
 * Tests of httpc_proxy_check (src/common/httpc.c): the one accepted proxy
 * form is http://HOST:PORT; credentials in the URL, other schemes, a
 * missing port or a path are refused, and no message repeats a password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "httpc.h"

static void
test_accepted(void **state)
{
	static const char *ok[] = {
	    "http://proxy.corp:3128", "http://proxy.corp:3128/",
	    "proxy.corp:8080",        "http://127.0.0.1:3128",
	    "http://[::1]:3128",
	};
	char err[768];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err[0] = '\0';
		if (httpc_proxy_check(ok[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
	}
}

static void
refused(const char *url, const char *why)
{
	char err[768] = "";

	assert_int_equal(httpc_proxy_check(url, err, sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("%s: message \"%s\" does not say \"%s\"", url, err,
		         why);
	if (strstr(err, "s3cret") != NULL)
		fail_msg("%s: message repeats the password: %s", url, err);
}

static void
test_refused(void **state)
{
	(void)state;
	refused("http://vigil:s3cret@proxy.corp:3128", "credentials");
	refused("http://vigil@proxy.corp:3128", "credentials");
	refused("vigil:s3cret@proxy.corp:3128", "credentials");
	refused("http://vigil:s3cret@proxy.corp", "credentials");
	refused("socks5://proxy.corp:1080", "not supported");
	refused("https://proxy.corp:3128", "not supported");
	refused("http://proxy.corp", "no port");
	refused("http://proxy.corp:3128/path", "no path");
	refused("http://proxy.corp:3128/?a=b", "no path");
	refused("http://proxy.corp:99999", "URL");
	refused("", "URL");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
