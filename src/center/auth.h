/*
 * auth.h: what the admin-user files share (auth.c authorizes, auth_login.c
 * logs in, auth_users.c, auth_totp.c and auth_keys.c manage users, second
 * factors and API keys). Private to src/center/auth*.c.
 */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include "center.h"

#define C(r)           ((struct center *)(r)->arg)
#define COOKIE         "vigil_session"
#define CSRF_COOKIE    "vigil_csrf"
#define GENERIC_LOGIN  "invalid username, password or code"
#define NAME_MAX_LEN   64
#define LABEL_MAX_LEN  128
#define SECRET_HEX_LEN 64

struct user {
	char name[NAME_MAX_LEN + 1];
	char role[16];
	char hash[PW_HASH_MAX];
	char totp[64];
	long long totp_last, locked_until, failures;
	int disabled, found, local;
	int central; /* source "master": kept by the master (manage.c) */
};

/* auth_keys.c */
void adm_keys(struct http_req *r);
void adm_key_create(struct http_req *r);
void adm_key_revoke(struct http_req *r);
/* auth_login.c */
const char *auth_jstr(json_t *o, const char *k);
int auth_check_fields(struct http_req *r, json_t *j, const char *const *known,
                      const char *const *strs);
void auth_user_load(struct center *c, const char *name, struct user *u);
void auth_user_wipe(struct user *u);
void auth_login(struct http_req *r);
void auth_logout(struct http_req *r);
void auth_session(struct http_req *r);
/* auth_users.c */
int auth_password_field(struct http_req *r, const char *pw, char *hash,
                        size_t n);
int auth_role_field(struct http_req *r, json_t *j, int *role);
void adm_users(struct http_req *r);
void adm_user_create(struct http_req *r);
void adm_user(struct http_req *r);
/* auth_totp.c */
void auth_password(struct http_req *r);
void auth_totp_enroll(struct http_req *r);
void auth_totp_confirm(struct http_req *r);
void auth_totp_disable(struct http_req *r);
/* auth.c */
int auth_valid_name(const char *s);
int auth_cookie_session(struct http_req *r, char out[SECRET_HEX_LEN + 1]);

#endif
