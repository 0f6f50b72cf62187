/*
 * ldapauth.c: LDAP / LDAPS as an optional identity source for admin
 * logins (libldap). A user not found among the local users is
 * authenticated by binding to the directory as that user (DN from a
 * template, or found by a search); the user's groups are then read and
 * mapped to the highest Vigil role configured for any of them. No mapped
 * group, no login. The directory's certificate is verified against
 * [ldap] ca_file; a plain ldap:// connection must be upgraded with
 * StartTLS, since the user's password crosses it.
 *
 * The calls are synchronous, bounded by [ldap] timeout: a login waits for
 * the directory, and so does the admin listener meanwhile (logins are rare
 * and rate limited).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldap.h>

#include "center.h"
#include "tls.h"

#define DN_MAX 1024

static int
down(struct buf *err, const char *what, int rc)
{
	buf_printf(err, "%s: %s", what, ldap_err2string(rc));
	return LDAPAUTH_DOWN;
}

/* The result code of a bind: a wrong password or an unknown DN is the
 * user's problem, anything else the directory's. */
static int
bind_as(LDAP *ld, const char *dn, const char *pw)
{
	struct berval cred;

	cred.bv_val = (char *)pw;
	cred.bv_len = strlen(pw);
	return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	                        NULL);
}

static int
connect_dir(const struct center_conf *cf, LDAP **out, struct buf *err)
{
	struct timeval tv = {(time_t)cf->ldap_timeout, 0};
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	int rc;
	LDAP *ld = NULL;

	*out = NULL;
	if ((rc = ldap_initialize(&ld, cf->ldap_uri)) != LDAP_SUCCESS)
		return down(err, cf->ldap_uri, rc);
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &tv.tv_sec);
	/* TLS options of this handle only; NEWCTX applies them. */
	rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (rc == LDAP_SUCCESS && cf->ldap_ca_file != NULL)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE,
		                     cf->ldap_ca_file);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	if (rc != LDAP_SUCCESS) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return down(err, "TLS settings", rc);
	}
	if (cf->ldap_starttls &&
	    (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return down(err, "StartTLS", rc);
	}
	*out = ld;
	return 0;
}

/* The user's DN: from the template, or the one entry the search finds. */
static int
user_dn(const struct center_conf *cf, LDAP *ld, const char *name, char *dn,
        size_t n, struct buf *err)
{
	char esc[512], filter[1024], pw[512] = "";
	struct buf b;
	LDAPMessage *res = NULL, *e;
	char *attrs[] = {LDAP_NO_ATTRS, NULL}, *d;
	int rc, count;

	if (cf->ldap_user_dn != NULL) {
		if (ldap_dn_escape(name, esc, sizeof(esc)) == -1 ||
		    fill_template(cf->ldap_user_dn, esc, dn, n) == -1)
			return LDAPAUTH_BAD;
		return 0;
	}
	if (cf->ldap_bind_password_file != NULL) {
		buf_init(&b, sizeof(pw) - 1);
		if (tls_check_key_perms(cf->ldap_bind_password_file, err) ==
		        -1 ||
		    tls_read_file(cf->ldap_bind_password_file, sizeof(pw) - 1,
		                  &b, err) == -1) {
			buf_free(&b);
			return LDAPAUTH_DOWN;
		}
		snprintf(pw, sizeof(pw), "%.*s", (int)b.len,
		         (const char *)b.data);
		pw[strcspn(pw, "\r\n")] = '\0';
		explicit_bzero(b.data, b.len);
		buf_free(&b);
	}
	rc = bind_as(ld, cf->ldap_bind_dn ? cf->ldap_bind_dn : "", pw);
	explicit_bzero(pw, sizeof(pw));
	if (rc != LDAP_SUCCESS)
		return down(err, "bind for the user search", rc);
	if (ldap_filter_escape(name, esc, sizeof(esc)) == -1 ||
	    fill_template(cf->ldap_search_filter, esc, filter,
	                  sizeof(filter)) == -1)
		return LDAPAUTH_BAD;
	rc = ldap_search_ext_s(ld, cf->ldap_search_base, LDAP_SCOPE_SUBTREE,
	                       filter, attrs, 0, NULL, NULL, NULL, 2, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_msgfree(res);
		return down(err, "user search", rc);
	}
	count = ldap_count_entries(ld, res);
	/* None: unknown user. Several: ambiguous, refused like unknown. */
	if (count != 1 || (e = ldap_first_entry(ld, res)) == NULL ||
	    (d = ldap_get_dn(ld, e)) == NULL) {
		if (count > 1)
			log_warnx("ldap: %d entries match the login name; "
			          "refused",
			          count);
		ldap_msgfree(res);
		return LDAPAUTH_BAD;
	}
	rc = snprintf(dn, n, "%s", d) < (int)n ? 0 : LDAPAUTH_BAD;
	ldap_memfree(d);
	ldap_msgfree(res);
	return rc;
}

/* The highest role any of the user's groups maps to. */
static int
group_role(const struct center_conf *cf, LDAP *ld, const char *dn,
           struct buf *err)
{
	char esc[DN_MAX * 3], filter[DN_MAX * 3 + 256];
	char *attrs[] = {"cn", NULL}, *gdn;
	LDAPMessage *res = NULL, *e;
	struct berval **cn;
	int rc, best = ROLE_NONE, role, i;

	if (ldap_filter_escape(dn, esc, sizeof(esc)) == -1 ||
	    fill_template(cf->ldap_group_filter, esc, filter, sizeof(filter)) ==
	        -1)
		return LDAPAUTH_BAD;
	rc = ldap_search_ext_s(ld, cf->ldap_group_base, LDAP_SCOPE_SUBTREE,
	                       filter, attrs, 0, NULL, NULL, NULL, 1000, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_msgfree(res);
		return down(err, "group search", rc);
	}
	for (e = ldap_first_entry(ld, res); e != NULL;
	     e = ldap_next_entry(ld, e)) {
		gdn = ldap_get_dn(ld, e);
		cn = ldap_get_values_len(ld, e, "cn");
		for (role = ROLE_ADMIN; role > best; role--) {
			const char *list = cf->ldap_groups[role];
			int hit = gdn != NULL && list_has(list, gdn);

			for (i = 0; !hit && cn != NULL && cn[i] != NULL; i++) {
				char v[256];

				snprintf(v, sizeof(v), "%.*s",
				         (int)cn[i]->bv_len, cn[i]->bv_val);
				hit = list_has(list, v);
			}
			if (hit)
				best = role;
		}
		ldap_value_free_len(cn);
		ldap_memfree(gdn);
	}
	ldap_msgfree(res);
	return best;
}

int
ldapauth_login(const struct center_conf *cf, const char *name, const char *pw,
               struct buf *err)
{
	LDAP *ld = NULL;
	char dn[DN_MAX];
	int rc;

	/* An empty password is an unauthenticated bind, which succeeds
	 * for any DN (RFC 4513 5.1.2): never a login. */
	if (cf->ldap_uri == NULL || *pw == '\0')
		return LDAPAUTH_BAD;
	if ((rc = connect_dir(cf, &ld, err)) != 0)
		return rc;
	if ((rc = user_dn(cf, ld, name, dn, sizeof(dn), err)) != 0)
		goto out;
	rc = bind_as(ld, dn, pw);
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INVALID_DN_SYNTAX ||
	    rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_INAPPROPRIATE_AUTH ||
	    rc == LDAP_UNWILLING_TO_PERFORM) {
		rc = LDAPAUTH_BAD;
		goto out;
	}
	if (rc != LDAP_SUCCESS) {
		rc = down(err, "bind", rc);
		goto out;
	}
	/* Groups are read as the user: what the user may see. */
	rc = group_role(cf, ld, dn, err);
out:
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

int
ldapauth_check(const struct center_conf *cf)
{
	int nerr = 0, r, any = 0;

	if (cf->ldap_uri == NULL)
		return 0;
	if (strncmp(cf->ldap_uri, "ldaps://", 8) != 0 &&
	    strncmp(cf->ldap_uri, "ldap://", 7) != 0) {
		log_warnx("check: [ldap] uri: %s: must be ldaps://HOST[:PORT] "
		          "or ldap://HOST[:PORT]",
		          cf->ldap_uri);
		nerr++;
	}
	if (strncmp(cf->ldap_uri, "ldap://", 7) == 0 && !cf->ldap_starttls) {
		log_warnx("check: [ldap] uri: %s is plain LDAP and would carry "
		          "passwords in clear; use ldaps:// or starttls = yes",
		          cf->ldap_uri);
		nerr++;
	}
	if ((cf->ldap_user_dn == NULL) == (cf->ldap_search_base == NULL)) {
		log_warnx("check: [ldap]: set either user_dn (a DN with %%s "
		          "for the login name) or search_base");
		nerr++;
	}
	if (cf->ldap_user_dn != NULL) {
		char big[DN_MAX];

		if (fill_template(cf->ldap_user_dn, "x", big, sizeof(big)) ==
		    -1) {
			log_warnx(
			    "check: [ldap] user_dn: needs exactly one %%s "
			    "(the login name) and no other %%");
			nerr++;
		}
	} else {
		char big[DN_MAX];

		if (fill_template(cf->ldap_search_filter, "x", big,
		                  sizeof(big)) == -1) {
			log_warnx("check: [ldap] search_filter: needs exactly "
			          "one %%s and no other %%");
			nerr++;
		}
	}
	{
		char big[DN_MAX];

		if (fill_template(cf->ldap_group_filter, "x", big,
		                  sizeof(big)) == -1) {
			log_warnx("check: [ldap] group_filter: needs exactly "
			          "one %%s (the user's DN) and no other %%");
			nerr++;
		}
	}
	if (cf->ldap_group_base == NULL) {
		log_warnx("check: [ldap] group_base: required (where the "
		          "groups that map to roles are)");
		nerr++;
	}
	for (r = ROLE_READONLY; r <= ROLE_ADMIN; r++)
		any |= cf->ldap_groups[r] != NULL;
	if (!any) {
		log_warnx("check: [ldap]: no group maps to a role (set "
		          "admin_groups, operator_groups, analyst_groups or "
		          "readonly_groups); nobody could log in");
		nerr++;
	}
	if (cf->ldap_ca_file != NULL && access(cf->ldap_ca_file, R_OK) == -1) {
		log_warnx("check: [ldap] ca_file: %s: %s", cf->ldap_ca_file,
		          strerror(errno));
		nerr++;
	}
	if (cf->ldap_bind_password_file != NULL) {
		struct buf e;

		buf_init(&e, 1024);
		if (tls_check_key_perms(cf->ldap_bind_password_file, &e) ==
		    -1) {
			log_warnx("check: [ldap] bind_password_file: %s",
			          buf_cstr(&e));
			nerr++;
		}
		buf_free(&e);
	}
	return nerr;
}
