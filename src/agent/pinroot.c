/*
 * pinroot: `vigil-agent pin-root --file ROOT.json`, for an agent that
 * pinned no update root (enrolled before its center had [updates] root)
 * and so takes no updates (docs/updates.md, "Agents without a pinned
 * root"). Run on the agent's host by its administrator, from a file
 * carried there the way the operator trusts (configuration management,
 * a signed package of their own): never from what the center says, which
 * is the point of pinning. The file must be a root metadata file that is
 * signed by its own root threshold and not expired (tuf_trust_init,
 * tuf_root_fresh); --sha256 checks it is the very file the operator meant.
 *
 * A pinned root is never replaced by another: rotation reaches the agent
 * through updates (it walks N.root.json from its pinned root). The one
 * replacement taken here is the normal rotation step: the next version,
 * signed by the pinned root's threshold and its own (tuf_update_root).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.h"
#include "log.h"
#include "tls.h"
#include "tuf.h"

static const char pinroot_usage[] =
    "usage: vigil-agent pin-root --file ROOT.json [--sha256 HEX] "
    "[--data-dir DIR]\n"
    "\n"
    "Pins the signed-update root this agent checks every update from,\n"
    "for an agent that has none (enrolled before its center had\n"
    "[updates] root). The file must be a root metadata file signed by\n"
    "its own root keys and not expired; --sha256 checks it is the file\n"
    "you meant (compare with `sha256sum` where it was made). A pinned\n"
    "root is replaced only by its successor (the next version, signed by\n"
    "the pinned root's keys and its own); the same file again is a no-op.\n"
    "The agent takes updates from its next check on.\n"
    "\n"
    "  --file FILE      the root (1.root.json of the update repository,\n"
    "                   or the [updates] root file of the center)\n"
    "  --sha256 HEX     the file's expected SHA-256\n"
    "  --data-dir DIR   default $VIGIL_AGENT_DATA_DIR or "
    "/var/lib/vigil-agent\n";

int
cmd_pin_root(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"sha256", required_argument, NULL, 's'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = agent_default_dir(), *file = NULL, *want = NULL;
	char pinned[PATH_MAX + 32], hex[65], wanthex[65];
	unsigned char md[32];
	struct buf raw, old, err;
	struct tuf_trust t, cur;
	int c, r, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 's':
			want = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'h':
			fputs(pinroot_usage, stdout);
			return 0;
		default:
			fputs(pinroot_usage, stderr);
			return 2;
		}
	}
	if (optind != argc || file == NULL) {
		fputs(pinroot_usage, stderr);
		return 2;
	}
	if (want != NULL && tls_parse_fingerprint(want, wanthex) == -1) {
		log_warnx("pin-root: --sha256 %s: not 64 hex digits", want);
		return 2;
	}
	buf_init(&raw, TUF_MAX_ROOT + 1);
	buf_init(&old, TUF_MAX_ROOT + 1);
	buf_init(&err, 1024);
	memset(&t, 0, sizeof(t));
	memset(&cur, 0, sizeof(cur));
	if (tls_read_file(file, TUF_MAX_ROOT, &raw, &err) == -1) {
		log_warnx("pin-root: %s", buf_cstr(&err));
		goto out;
	}
	if (EVP_Digest(raw.data, raw.len, md, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	hex_encode(md, 32, hex);
	if (want != NULL && strcmp(hex, wanthex) != 0) {
		log_warnx("pin-root: %s has SHA-256 %s, not the %s expected; "
		          "nothing pinned",
		          file, hex, wanthex);
		goto out;
	}
	if ((r = tuf_trust_init(&t, (const uint8_t *)raw.data, raw.len,
	                        &err)) != TUF_OK) {
		log_warnx("pin-root: %s is not a root this agent can pin (%s): "
		          "%s; nothing pinned",
		          file, tuf_err_name(r), buf_cstr(&err));
		goto out;
	}
	buf_reset(&err);
	if ((r = tuf_root_fresh(&t, (long long)time(NULL), &err)) != TUF_OK) {
		log_warnx("pin-root: %s (%s): %s; nothing pinned", file,
		          tuf_err_name(r), buf_cstr(&err));
		goto out;
	}
	if (access(dir, W_OK) == -1) {
		log_warnx("pin-root: %s: %s (the agent's data directory; "
		          "--data-dir)",
		          dir, strerror(errno));
		goto out;
	}
	snprintf(pinned, sizeof(pinned), "%s/update-root.json", dir);
	if (agent_file_exists(pinned)) {
		buf_reset(&err);
		if (tls_read_file(pinned, TUF_MAX_ROOT, &old, &err) == -1) {
			log_warnx("pin-root: %s", buf_cstr(&err));
			goto out;
		}
		if (old.len == raw.len &&
		    memcmp(old.data, raw.data, raw.len) == 0) {
			printf("%s: this root (version %lld, SHA-256 %s) is "
			       "pinned already\n",
			       pinned, t.meta[TUF_ROOT].version, hex);
			rc = 0;
			goto out;
		}
		buf_reset(&err);
		if ((r = tuf_trust_init(&cur, (const uint8_t *)old.data,
		                        old.len, &err)) != TUF_OK) {
			log_warnx("pin-root: the pinned %s does not verify "
			          "(%s: %s); remove it by hand only if you "
			          "know why it changed",
			          pinned, tuf_err_name(r), buf_cstr(&err));
			goto out;
		}
		buf_reset(&err);
		if ((r = tuf_update_root(&cur, (const uint8_t *)raw.data,
		                         raw.len, &err)) != TUF_OK) {
			log_warnx("pin-root: %s already pins root version "
			          "%lld; %s (version %lld) is not its "
			          "successor (%s: %s): a pinned root is "
			          "replaced only by the next version signed by "
			          "its keys, and the agent follows later roots "
			          "itself through updates; nothing changed",
			          pinned, cur.meta[TUF_ROOT].version, file,
			          t.meta[TUF_ROOT].version, tuf_err_name(r),
			          buf_cstr(&err));
			goto out;
		}
	}
	buf_reset(&err);
	if (tls_write_file(pinned, raw.data, raw.len, 0644, &err) == -1) {
		log_warnx("pin-root: %s", buf_cstr(&err));
		goto out;
	}
	printf("%s: pinned update root version %lld (SHA-256 %s)%s\n", pinned,
	       t.meta[TUF_ROOT].version, hex,
	       old.len ? ", the successor of the root pinned before" : "");
	rc = 0;
out:
	tuf_trust_free(&t);
	tuf_trust_free(&cur);
	buf_free(&raw);
	buf_free(&old);
	buf_free(&err);
	return rc;
}
