/*
 * auth.c: the token verification pipeline.
 *
 * auth_verify() runs: empty -> AUTH_MISSING; equal to anon_key (constant time) -> the
 * shared "anon" identity; cache hit by SHA-256 -> the cached identity after re-checking
 * exp/nbf against now; otherwise split the token into three base64url parts, parse the
 * header with jansson, pin the algorithm to a configured key (HS256 -> jwt_secret, RS256
 * -> RSA key, ES256 -> P-256 key, selected by kid), check the signature with OpenSSL,
 * parse and type-check the claims, check the time window, then build and cache the
 * identity. libjwt is not used: its decoder trusts the header's alg (see ENGINEERING.md).
 */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "auth/auth_int.h"
#include "base/base.h"

struct auth {
    char *secret;               /* HS256 secret, NULL when none */
    size_t secret_len;          /* bytes */
    char *anon_key;             /* opaque key for role anon, NULL when none */
    size_t anon_len;            /* bytes */
    char *role_claim;           /* claim holding the role */
    double leeway;              /* clock leeway for exp, nbf and iat, seconds */
    struct auth_keyset keys;    /* RSA and P-256 public keys */
    EVP_MD *sha256;             /* fetched once for digests and signatures */
    struct auth_identity *anon; /* identity handed out for anon_key, one reference */
    struct auth_cache *cache;   /* verified tokens */
};

/* Algorithms a token may name. */
enum jwt_alg {
    ALG_HS256,
    ALG_RS256,
    ALG_ES256,
};

/* A token split into its three parts, decoded into one buffer. */
struct jwt {
    const char *seg[3];         /* header, payload, signature (base64url, in the token) */
    size_t seg_len[3];          /* bytes of each */
    unsigned char *dec;         /* owned buffer for the decoded parts */
    unsigned char *part[3];     /* decoded parts, inside dec */
    size_t part_len[3];         /* decoded bytes of each */
    enum jwt_alg alg;           /* from the header */
    const struct auth_key *key; /* selected key for RS256/ES256 */
};

static char *
dup_nonempty(const char *s, size_t *len)
{
    if (!s || !*s)
        return NULL;
    if (len)
        *len = strlen(s);
    return gw_xstrdup(s);
}

/* The identity handed out for anon_key: {"<role_claim>":"anon"}, no expiry. */
static struct auth_identity *
anon_identity(const char *role_claim)
{
    json_t *claims = json_object();

    json_object_set_new(claims, role_claim, json_string("anon"));
    return auth__identity_new(claims, role_claim);
}

static int
load_keys(struct auth *a, const struct auth_config *cfg, struct gw_buf *err)
{
    int rc;

    if (cfg->jwt_public_key && *cfg->jwt_public_key) {
        rc = auth__keys_load_pem(&a->keys, cfg->jwt_public_key, err);
        if (rc < 0)
            return rc;
    }
    if (cfg->jwks_file && *cfg->jwks_file) {
        rc = auth__keys_load_jwks(&a->keys, cfg->jwks_file, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct auth *
auth_new(const struct auth_config *cfg, struct gw_buf *err)
{
    struct gw_buf scratch;
    struct auth *a;

    gw_buf_init(&scratch);
    if (!err)
        err = &scratch;
    if (!cfg) {
        gw_buf_append_str(err, "auth: no configuration");
        return NULL;
    }
    a = gw_xcalloc(1, sizeof(*a));
    a->secret = dup_nonempty(cfg->jwt_secret, &a->secret_len);
    a->anon_key = dup_nonempty(cfg->anon_key, &a->anon_len);
    a->role_claim = gw_xstrdup(cfg->role_claim && *cfg->role_claim ? cfg->role_claim : "role");
    a->leeway = (double)cfg->leeway_s;
    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!a->sha256) {
        gw_buf_append_str(err, "auth: OpenSSL has no SHA256");
        goto fail;
    }
    if (load_keys(a, cfg, err) < 0)
        goto fail;
    if (!a->secret && !a->anon_key && a->keys.n == 0) {
        gw_buf_append_str(err, "auth: set at least one of jwt_secret, jwt_public_key, "
                               "jwks_file or anon_key");
        goto fail;
    }
    a->anon = anon_identity(a->role_claim);
    a->cache = auth__cache_new();
    gw_buf_release(&scratch);
    return a;
fail:
    gw_buf_release(&scratch);
    auth_free(a);
    return NULL;
}

void
auth_free(struct auth *a)
{
    if (!a)
        return;
    auth__cache_free(a->cache);
    auth_identity_unref(a->anon);
    auth__keys_release(&a->keys);
    EVP_MD_free(a->sha256);
    free(a->secret);
    free(a->anon_key);
    free(a->role_claim);
    free(a);
}

/* Splits at exactly two dots and base64url-decodes the three parts. */
static enum auth_reason
jwt_split(struct jwt *t, const char *token, size_t len)
{
    const char *p = token, *end = token + len;
    size_t off = 0;

    for (int i = 0; i < 3; i++) {
        const char *dot = i < 2 ? memchr(p, '.', (size_t)(end - p)) : NULL;

        if (i < 2 && !dot)
            return AUTH_MALFORMED;
        t->seg[i] = p;
        t->seg_len[i] = (size_t)((dot ? dot : end) - p);
        p = dot ? dot + 1 : end;
    }
    if (memchr(t->seg[2], '.', t->seg_len[2]) || t->seg_len[0] == 0 || t->seg_len[1] == 0)
        return AUTH_MALFORMED;
    t->dec = gw_xmalloc(len);
    for (int i = 0; i < 3; i++) {
        t->part[i] = t->dec + off;
        if (auth__b64url_decode(t->seg[i], t->seg_len[i], t->part[i], &t->part_len[i]) < 0)
            return AUTH_MALFORMED;
        off += t->part_len[i];
    }
    return AUTH_OK;
}

/* Pins the header's alg to a configured key. */
static enum auth_reason
pick_key(const struct auth *a, struct jwt *t, const char *alg, const char *kid)
{
    if (strcasecmp(alg, "none") == 0)
        return AUTH_MALFORMED;
    if (strcmp(alg, "HS256") == 0) {
        t->alg = ALG_HS256;
        return a->secret ? AUTH_OK : AUTH_SIGNATURE;
    }
    if (strcmp(alg, "RS256") == 0) {
        t->alg = ALG_RS256;
        t->key = auth__keys_select(&a->keys, AUTH_KTY_RSA, kid);
    } else if (strcmp(alg, "ES256") == 0) {
        t->alg = ALG_ES256;
        t->key = auth__keys_select(&a->keys, AUTH_KTY_EC256, kid);
    }
    /* Any other algorithm, or no key for this one: nothing configured can verify it. */
    return t->key ? AUTH_OK : AUTH_SIGNATURE;
}

/* Parses the header: a JSON object with a string alg, an optional string kid, no crit. */
static enum auth_reason
jwt_header(const struct auth *a, struct jwt *t)
{
    json_t *h = json_loadb((const char *)t->part[0], t->part_len[0], JSON_REJECT_DUPLICATES, NULL);
    json_t *alg = json_object_get(h, "alg");
    json_t *kid = json_object_get(h, "kid");
    enum auth_reason r = AUTH_MALFORMED;

    if (!json_is_object(h) || !json_is_string(alg) || (kid && !json_is_string(kid)))
        goto out;
    /* We implement no header extensions, so a critical one must be refused (RFC 7515). */
    if (json_object_get(h, "crit"))
        goto out;
    r = pick_key(a, t, json_string_value(alg), json_string_value(kid));
out:
    json_decref(h);
    return r;
}

static bool
jwt_signature_ok(const struct auth *a, const struct jwt *t)
{
    /* The signing input is header.payload exactly as the token spells them. */
    size_t in_len = t->seg_len[0] + 1 + t->seg_len[1];

    if (t->alg == ALG_HS256)
        return auth__hs256_verify(a->secret, a->secret_len, t->seg[0], in_len, t->part[2],
                                  t->part_len[2]);
    return auth__pkey_verify(t->key, a->sha256, t->seg[0], in_len, t->part[2], t->part_len[2]);
}

/* True when claim `name` is absent or a number (stored in *out, with *present). */
static bool
optional_number(json_t *claims, const char *name, double *out, bool *present)
{
    json_t *v = json_object_get(claims, name);

    *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* Parses and type-checks the claims: exp (number) and role (non-empty string) required,
 * iat and nbf numbers when present; the later of them becomes the not-before time. */
static enum auth_reason
jwt_claims(const struct auth *a, const struct jwt *t, json_t **out, struct auth_times *times)
{
    json_t *claims =
        json_loadb((const char *)t->part[1], t->part_len[1], JSON_REJECT_DUPLICATES, NULL);
    const char *role = json_string_value(json_object_get(claims, a->role_claim));
    bool has_exp = false, has_iat = false, has_nbf = false;
    double iat = 0, nbf = 0;

    if (!json_is_object(claims)) {
        json_decref(claims);
        return AUTH_MALFORMED;
    }
    if (!optional_number(claims, "exp", &times->exp, &has_exp) || !has_exp || !role || !*role ||
        !optional_number(claims, "iat", &iat, &has_iat) ||
        !optional_number(claims, "nbf", &nbf, &has_nbf)) {
        json_decref(claims);
        return AUTH_CLAIMS;
    }
    /* A token is not valid before its nbf, nor before it was issued. */
    times->has_nbf = has_nbf || has_iat;
    times->nbf = has_nbf && (!has_iat || nbf > iat) ? nbf : iat;
    *out = claims;
    return AUTH_OK;
}

/* Decodes and verifies a JWT; on success *claims holds the claim object. */
static enum auth_reason
jwt_verify(const struct auth *a, const char *token, size_t len, json_t **claims,
           struct auth_times *times)
{
    struct jwt t;
    enum auth_reason r;

    memset(&t, 0, sizeof(t));
    if (len > AUTH_MAX_TOKEN) {
        r = AUTH_MALFORMED;
        goto out;
    }
    r = jwt_split(&t, token, len);
    if (r == AUTH_OK)
        r = jwt_header(a, &t);
    if (r == AUTH_OK && !jwt_signature_ok(a, &t))
        r = AUTH_SIGNATURE;
    if (r == AUTH_OK)
        r = jwt_claims(a, &t, claims, times);
out:
    free(t.dec);
    return r;
}

/* Checks the time window: expired when now >= exp + leeway, early when nbf (or iat) >
 * now + leeway. */
static enum auth_reason
check_times(const struct auth *a, const struct auth_times *t, int64_t now_s,
            struct auth_failure *why)
{
    double now = (double)now_s;

    if (t->exp + a->leeway <= now) {
        double ago = now - t->exp;

        why->expired_for_s = ago >= 9.2e18 ? INT64_MAX : (int64_t)ago;
        return AUTH_EXPIRED;
    }
    if (t->has_nbf && t->nbf > now + a->leeway)
        return AUTH_NOT_YET;
    return AUTH_OK;
}

static int
fail(struct auth_failure *why, enum auth_reason r)
{
    why->reason = r;
    return r == AUTH_EXPIRED ? GW_EEXPIRED : GW_EAUTH;
}

/* Serves a cached token. Returns 1 on a hit (0 or failure code in *rc), 0 on a miss. */
static int
from_cache(struct auth *a, const unsigned char *key, int64_t now_s, struct auth_identity **out,
           struct auth_failure *why, int *rc)
{
    struct auth_times times;
    struct auth_identity *id = auth__cache_get(a->cache, key, &times);
    enum auth_reason r;

    if (!id)
        return 0;
    r = check_times(a, &times, now_s, why);
    if (r == AUTH_OK) {
        *out = auth_identity_ref(id);
        *rc = 0;
    } else {
        if (r == AUTH_EXPIRED)
            auth__cache_drop(a->cache, key);
        *rc = fail(why, r);
    }
    return 1;
}

int
auth_verify(struct auth *a, const char *token, size_t len, int64_t now_s,
            struct auth_identity **out, struct auth_failure *why)
{
    struct auth_failure scratch;
    unsigned char key[AUTH_SHA256_LEN];
    struct auth_times times = { 0 };
    json_t *claims = NULL;
    enum auth_reason r;
    bool keyed;
    int rc;

    if (!why)
        why = &scratch;
    why->reason = AUTH_OK;
    why->expired_for_s = 0;
    if (!a || !out)
        return GW_EINVAL;
    *out = NULL;
    if (!token || len == 0)
        return fail(why, AUTH_MISSING);
    if (a->anon_key && len == a->anon_len && CRYPTO_memcmp(token, a->anon_key, len) == 0) {
        *out = auth_identity_ref(a->anon);
        return 0;
    }
    keyed = len <= AUTH_MAX_TOKEN && EVP_Digest(token, len, key, NULL, a->sha256, NULL) == 1;
    if (keyed && from_cache(a, key, now_s, out, why, &rc))
        return rc;
    r = jwt_verify(a, token, len, &claims, &times);
    if (r == AUTH_OK)
        r = check_times(a, &times, now_s, why);
    if (r != AUTH_OK) {
        json_decref(claims);
        return fail(why, r);
    }
    *out = auth__identity_new(claims, a->role_claim);
    if (keyed)
        auth__cache_put(a->cache, key, *out, &times);
    return 0;
}

void
auth_failure_message(const struct auth_failure *why, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    buf[0] = '\0';
    switch (why ? why->reason : AUTH_OK) {
    case AUTH_OK:
        break;
    case AUTH_MISSING:
        snprintf(buf, cap, "API key is missing");
        break;
    case AUTH_MALFORMED:
        snprintf(buf, cap, "The token provided is not a valid JWT");
        break;
    case AUTH_SIGNATURE:
        snprintf(buf, cap, "Failed to validate JWT signature");
        break;
    case AUTH_EXPIRED:
        snprintf(buf, cap, "Token has expired %lld seconds ago", (long long)why->expired_for_s);
        break;
    case AUTH_CLAIMS:
        snprintf(buf, cap, "Fields `role` and `exp` are required in JWT");
        break;
    case AUTH_NOT_YET:
        snprintf(buf, cap, "Token is not yet valid");
        break;
    }
}

const char *
auth_failure_code(const struct auth_failure *why)
{
    switch (why ? why->reason : AUTH_OK) {
    case AUTH_MALFORMED:
        return "MalformedJWT";
    case AUTH_SIGNATURE:
        return "JwtSignatureError";
    case AUTH_OK:
    case AUTH_MISSING:
    case AUTH_EXPIRED:
    case AUTH_CLAIMS:
    case AUTH_NOT_YET:
        break;
    }
    return "InvalidJWTToken";
}
