/*
 * test_auth_verify.c: auth_new() and auth_verify() against tokens signed here with
 * OpenSSL: HS256, RS256 (PEM), ES256 (JWKS), algorithm confusion, alg none, tampering,
 * claims and time checks, malformed input, anon_key and the verified-token cache.
 * Keys are generated at test time and written to a mkdtemp() directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth/auth.h"
#include "base/base.h"
#include "harness.h"
#include "jwt_helpers.h"

#define NOW    1700000000LL
#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"

static const char *const HS = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *const RS = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
static const char *const ES = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";

static char dir[] = "/tmp/tidings-auth-XXXXXX";
static EVP_PKEY *rsa_key;  /* RSA 2048 */
static EVP_PKEY *ec_key;   /* EC P-256 */
static EVP_PKEY *ec_key2;  /* a second P-256 key, never configured */
static char *rsa_pem_path; /* public PEM of rsa_key */
static char *ec_pem_path;  /* public PEM of ec_key */
static char *rsa_pem_text; /* its text, the alg-confusion "secret" */
static char *jwks_path;    /* rsa_key as kid "rsa1", ec_key as kid "ec1" */
static char *files[16];    /* every file written, removed at the end */
static size_t nfiles;

static char *
keep(char *path)
{
    files[nfiles++] = path;
    return path;
}

static void
setup(void)
{
    char jwks[8192], *jr, *je, *ec_pem;

    if (!mkdtemp(dir))
        abort();
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa_key || !ec_key || !ec_key2)
        abort();
    rsa_pem_text = th_public_pem(rsa_key);
    rsa_pem_path = keep(th_write_file(dir, "rsa.pem", rsa_pem_text));
    ec_pem = th_public_pem(ec_key);
    ec_pem_path = keep(th_write_file(dir, "ec.pem", ec_pem));
    free(ec_pem);
    jr = th_jwk(rsa_key, "rsa1");
    je = th_jwk(ec_key, "ec1");
    snprintf(jwks, sizeof(jwks), "{\"keys\":[%s,%s]}", jr, je);
    jwks_path = keep(th_write_file(dir, "jwks.json", jwks));
    free(jr);
    free(je);
}

static void
teardown(void)
{
    for (size_t i = 0; i < nfiles; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    rmdir(dir);
    free(rsa_pem_text);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_key2);
}

static struct auth *
new_auth(const char *secret, const char *pem, const char *jwks, const char *anon, unsigned leeway)
{
    struct auth_config cfg = { .jwt_secret = secret,
                               .jwt_public_key = pem,
                               .jwks_file = jwks,
                               .anon_key = anon,
                               .role_claim = NULL,
                               .leeway_s = leeway };
    struct gw_buf err;
    struct auth *a;

    gw_buf_init(&err);
    a = auth_new(&cfg, &err);
    if (!a)
        fprintf(stderr, "auth_new: %s\n", err.data ? err.data : "?");
    gw_buf_release(&err);
    return a;
}

/* Verifies a NUL-terminated token at t; returns the reason, keeps the identity in *id. */
static enum auth_reason
check_at(struct auth *a, const char *token, long long t, struct auth_identity **id,
         struct auth_failure *why)
{
    int rc = auth_verify(a, token, strlen(token), t, id, why);

    if (rc == 0 && why->reason != AUTH_OK)
        return (enum auth_reason)99; /* success must report AUTH_OK */
    if (rc != 0 && (*id != NULL || rc != (why->reason == AUTH_EXPIRED ? GW_EEXPIRED : GW_EAUTH)))
        return (enum auth_reason)98; /* failure must leave *id NULL with the right code */
    return why->reason;
}

/* The reason for a token, dropping any identity. */
static enum auth_reason
reason_of(struct auth *a, const char *token)
{
    struct auth_identity *id = NULL;
    struct auth_failure why;
    enum auth_reason r = check_at(a, token, NOW, &id, &why);

    auth_identity_unref(id);
    return r;
}

/* The reason for a token signed with alg over header/payload. */
static enum auth_reason
reason_signed(struct auth *a, const char *header, const char *payload, const char *alg,
              EVP_PKEY *key)
{
    char *tok = th_token(header, payload, alg, SECRET, strlen(SECRET), key);
    enum auth_reason r = reason_of(a, tok);

    free(tok);
    return r;
}

static void
test_hs256_valid(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    char *tok = th_token(HS, "{\"role\":\"authenticated\",\"exp\":1700003600,\"sub\":\"u1\"}",
                         "HS256", SECRET, strlen(SECRET), NULL);
    struct auth_identity *id = NULL;
    struct auth_failure why;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id, &why), AUTH_OK);
    ASSERT_STR_EQ(auth_identity_role(id), "authenticated");
    ASSERT_STR_EQ(auth_identity_sub(id), "u1");
    ASSERT_INT_EQ(auth_identity_exp(id), 1700003600);
    auth_identity_unref(id);
    free(tok);
    auth_free(a);
}

static void
test_rs256_pem(void)
{
    struct auth *a = new_auth(NULL, rsa_pem_path, NULL, NULL, 0);
    const char *claims = "{\"role\":\"service_role\",\"exp\":1700003600}";

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_signed(a, RS, claims, "RS256", rsa_key), AUTH_OK);
    /* A kid in the token still selects the only (kid-less) PEM key. */
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"RS256\",\"kid\":\"k9\"}", claims, "RS256", rsa_key),
                  AUTH_OK);
    /* No EC key configured: ES256 cannot be verified. */
    ASSERT_INT_EQ(reason_signed(a, ES, claims, "ES256", ec_key), AUTH_SIGNATURE);
    auth_free(a);
}

static void
test_es256_pem(void)
{
    struct auth *a = new_auth(NULL, ec_pem_path, NULL, NULL, 0);
    const char *claims = "{\"role\":\"authenticated\",\"exp\":1700003600}";

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_signed(a, ES, claims, "ES256", ec_key), AUTH_OK);
    ASSERT_INT_EQ(reason_signed(a, ES, claims, "ES256", ec_key2), AUTH_SIGNATURE);
    ASSERT_INT_EQ(reason_signed(a, RS, claims, "RS256", rsa_key), AUTH_SIGNATURE);
    auth_free(a);
}

static void
test_jwks_kid(void)
{
    struct auth *a = new_auth(NULL, NULL, jwks_path, NULL, 0);
    const char *claims = "{\"role\":\"authenticated\",\"exp\":1700003600}";
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char msg[128];
    char *tok;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims, "ES256", ec_key),
                  AUTH_OK);
    ASSERT_INT_EQ(
        reason_signed(a, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", claims, "RS256", rsa_key),
        AUTH_OK);
    /* Without kid: the single key of the matching type. */
    ASSERT_INT_EQ(reason_signed(a, ES, claims, "ES256", ec_key), AUTH_OK);
    /* The kid names a key of the other type. */
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", claims, "ES256", ec_key),
                  AUTH_SIGNATURE);
    /* Right kid, wrong private key. */
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims, "ES256", ec_key2),
                  AUTH_SIGNATURE);
    tok = th_token("{\"alg\":\"ES256\",\"kid\":\"nope\"}", claims, "ES256", NULL, 0, ec_key);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id, &why), AUTH_SIGNATURE);
    free(tok);
    auth_failure_message(&why, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "Failed to validate JWT signature");
    ASSERT_STR_EQ(auth_failure_code(&why), "JwtSignatureError");
    /* kid must be a string. */
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"ES256\",\"kid\":1}", claims, "ES256", ec_key),
                  AUTH_MALFORMED);
    auth_free(a);
}

static void
test_alg_none(void)
{
    struct auth *a = new_auth(SECRET, rsa_pem_path, NULL, NULL, 0);
    const char *claims = "{\"role\":\"service_role\",\"exp\":1700003600}";
    char *h = th_b64url("{\"alg\":\"none\"}", 14);
    char *p = th_b64url(claims, strlen(claims));
    char buf[512];
    struct auth_failure why = { AUTH_MALFORMED, 0 };

    ASSERT_NOT_NULL(a);
    snprintf(buf, sizeof(buf), "%s.%s.", h, p);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED);
    snprintf(buf, sizeof(buf), "%s.%s", h, p);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED);
    snprintf(buf, sizeof(buf), "%s.%s.c2lnbmF0dXJl", h, p);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"NONE\"}", claims, "none", NULL), AUTH_MALFORMED);
    ASSERT_STR_EQ(auth_failure_code(&why), "MalformedJWT");
    free(h);
    free(p);
    auth_free(a);
}

static void
test_alg_confusion(void)
{
    const char *claims = "{\"role\":\"service_role\",\"exp\":1700003600}";
    struct auth *a = new_auth(NULL, rsa_pem_path, NULL, NULL, 0);
    struct auth *both = new_auth(SECRET, rsa_pem_path, NULL, NULL, 0);
    char *forged = th_token(HS, claims, "HS256", rsa_pem_text, strlen(rsa_pem_text), NULL);
    char *empty = th_token(HS, claims, "HS256", "", 0, NULL);

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(both);
    /* HS256 keyed with the public PEM: refused, only a public key is configured. */
    ASSERT_INT_EQ(reason_of(a, forged), AUTH_SIGNATURE);
    /* No secret configured is not an empty secret. */
    ASSERT_INT_EQ(reason_of(a, empty), AUTH_SIGNATURE);
    /* With a real secret configured too, the PEM is still not an HMAC key. */
    ASSERT_INT_EQ(reason_of(both, forged), AUTH_SIGNATURE);
    /* Other algorithms the keys cannot verify. */
    ASSERT_INT_EQ(reason_signed(both, "{\"alg\":\"HS384\"}", claims, "HS256", NULL),
                  AUTH_SIGNATURE);
    ASSERT_INT_EQ(reason_signed(both, "{\"alg\":\"PS256\"}", claims, "RS256", rsa_key),
                  AUTH_SIGNATURE);
    ASSERT_INT_EQ(reason_signed(both, "{\"alg\":\"whatever\"}", claims, "HS256", NULL),
                  AUTH_SIGNATURE);
    free(forged);
    free(empty);
    auth_free(a);
    auth_free(both);
}

static void
test_tampered(void)
{
    struct auth *a = new_auth(SECRET, rsa_pem_path, NULL, NULL, 0);
    char *good =
        th_token(RS, "{\"role\":\"authenticated\",\"exp\":1700003600}", "RS256", NULL, 0, rsa_key);
    char *evil =
        th_token(RS, "{\"role\":\"service_role\",\"exp\":1700003600}", "RS256", NULL, 0, rsa_key);
    char *hs = th_token(HS, "{\"role\":\"authenticated\",\"exp\":1700003600}", "HS256", SECRET,
                        strlen(SECRET), NULL);
    char buf[2048];
    const char *g1 = strchr(good, '.'), *g2 = strrchr(good, '.');
    const char *e1 = strchr(evil, '.'), *e2 = strrchr(evil, '.');
    size_t n = strlen(hs);

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_of(a, good), AUTH_OK);
    /* Evil payload with the good signature. */
    snprintf(buf, sizeof(buf), "%.*s%.*s%s", (int)(g1 - good), good, (int)(e2 - e1), e1, g2);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_SIGNATURE);
    /* Change one signature character of an HS256 token (still valid base64url). */
    ASSERT_INT_EQ(reason_of(a, hs), AUTH_OK);
    hs[n - 2] = hs[n - 2] == 'A' ? 'B' : 'A';
    ASSERT_INT_EQ(reason_of(a, hs), AUTH_SIGNATURE);
    free(good);
    free(evil);
    free(hs);
    auth_free(a);
}

static void
test_wrong_secret(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    char *tok = th_token(HS, "{\"role\":\"authenticated\",\"exp\":1700003600}", "HS256",
                         "another-secret", 14, NULL);

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_of(a, tok), AUTH_SIGNATURE);
    free(tok);
    auth_free(a);
}

static void
test_expired(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    struct auth *lee = new_auth(SECRET, NULL, NULL, NULL, 30);
    char *tok = th_token(HS, "{\"role\":\"authenticated\",\"exp\":1699999988}", "HS256", SECRET,
                         strlen(SECRET), NULL);
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char msg[128];

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(lee);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 12);
    auth_failure_message(&why, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "Token has expired 12 seconds ago");
    ASSERT_STR_EQ(auth_failure_code(&why), "InvalidJWTToken");
    /* Within the leeway it is still valid, beyond it the count is from exp itself. */
    ASSERT_INT_EQ(check_at(lee, tok, NOW, &id, &why), AUTH_OK);
    auth_identity_unref(id);
    id = NULL;
    ASSERT_INT_EQ(check_at(lee, tok, NOW + 28, &id, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 40);
    /* exp == now is expired (0 seconds ago); one second before it is not. */
    ASSERT_INT_EQ(check_at(a, tok, 1699999988, &id, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 0);
    ASSERT_INT_EQ(check_at(a, tok, 1699999987, &id, &why), AUTH_OK);
    auth_identity_unref(id);
    free(tok);
    auth_free(a);
    auth_free(lee);
}

static void
test_claims_required(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    struct auth_failure why = { AUTH_CLAIMS, 0 };
    char msg[128];

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"authenticated\"}", "HS256", NULL), AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"exp\":1700003600}", "HS256", NULL), AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":\"1700003600\"}", "HS256", NULL),
                  AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":null}", "HS256", NULL),
                  AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":7,\"exp\":1700003600}", "HS256", NULL),
                  AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"\",\"exp\":1700003600}", "HS256", NULL),
                  AUTH_CLAIMS);
    ASSERT_INT_EQ(
        reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600,\"iat\":\"x\"}", "HS256", NULL),
        AUTH_CLAIMS);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600,\"iat\":1699999000}",
                                "HS256", NULL),
                  AUTH_OK);
    auth_failure_message(&why, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "Fields `role` and `exp` are required in JWT");
    ASSERT_STR_EQ(auth_failure_code(&why), "InvalidJWTToken");
    auth_free(a);
}

static void
test_real_exp(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    char *tok = th_token(HS, "{\"role\":\"authenticated\",\"exp\":1700000100.5}", "HS256", SECRET,
                         strlen(SECRET), NULL);
    struct auth_identity *id = NULL;
    struct auth_failure why;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id, &why), AUTH_OK);
    ASSERT_INT_EQ(auth_identity_exp(id), 1700000100);
    auth_identity_unref(id);
    id = NULL;
    ASSERT_INT_EQ(check_at(a, tok, NOW + 110, &id, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 9);
    free(tok);
    auth_free(a);
}

static void
test_nbf(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    struct auth *lee = new_auth(SECRET, NULL, NULL, NULL, 200);
    const char *claims = "{\"role\":\"a\",\"exp\":1700003600,\"nbf\":1700000100}";
    struct auth_failure why = { AUTH_NOT_YET, 0 };
    char msg[64];

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(lee);
    ASSERT_INT_EQ(reason_signed(a, HS, claims, "HS256", NULL), AUTH_NOT_YET);
    ASSERT_INT_EQ(reason_signed(lee, HS, claims, "HS256", NULL), AUTH_OK);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600,\"nbf\":1699999000}",
                                "HS256", NULL),
                  AUTH_OK);
    ASSERT_INT_EQ(
        reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600,\"nbf\":\"soon\"}", "HS256", NULL),
        AUTH_CLAIMS);
    /* An iat in the future (beyond the leeway) is refused the same way. */
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600,\"iat\":1700000100}",
                                "HS256", NULL),
                  AUTH_NOT_YET);
    ASSERT_INT_EQ(reason_signed(lee, HS,
                                "{\"role\":\"a\",\"exp\":1700003600,\"iat\":1700000100,"
                                "\"nbf\":1699999000}",
                                "HS256", NULL),
                  AUTH_OK);
    ASSERT_INT_EQ(reason_signed(a, HS,
                                "{\"role\":\"a\",\"exp\":1700003600,\"iat\":1699999000,"
                                "\"nbf\":1700000100}",
                                "HS256", NULL),
                  AUTH_NOT_YET);
    auth_failure_message(&why, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "Token is not yet valid");
    ASSERT_STR_EQ(auth_failure_code(&why), "InvalidJWTToken");
    auth_free(a);
    auth_free(lee);
}

static void
test_malformed(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    const char *claims = "{\"role\":\"a\",\"exp\":1700003600}";
    char *good = th_token(HS, claims, "HS256", SECRET, strlen(SECRET), NULL);
    struct auth_identity *id = (struct auth_identity *)&id;
    struct auth_failure why;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char buf[2048], *big;
    const char *last;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(auth_verify(a, "", 0, NOW, &id, &why), GW_EAUTH);
    ASSERT_NULL(id);
    ASSERT_INT_EQ(why.reason, AUTH_MISSING);
    auth_failure_message(&why, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "API key is missing");
    ASSERT_INT_EQ(auth_verify(a, NULL, 5, NOW, &id, &why), GW_EAUTH);
    ASSERT_INT_EQ(why.reason, AUTH_MISSING);
    ASSERT_INT_EQ(reason_of(a, "garbage"), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_of(a, "eyJhbGciOiJIUzI1NiJ9.e30"), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_of(a, ".."), AUTH_MALFORMED);
    snprintf(buf, sizeof(buf), "%s.x", good);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED); /* four parts */
    snprintf(buf, sizeof(buf), "%s=", good);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED); /* padding */
    snprintf(buf, sizeof(buf), "eyJhbGciOiJIUzI1NiJ9.e30+.%s", strrchr(good, '.') + 1);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED); /* '+' is not base64url */
    /* Non-canonical base64url: the last signature character with a spare bit set. */
    snprintf(buf, sizeof(buf), "%s", good);
    last = strchr(b64, buf[strlen(buf) - 1]);
    buf[strlen(buf) - 1] = b64[(last - b64) | 1];
    ASSERT_INT_EQ(reason_of(a, good), AUTH_OK);
    ASSERT_INT_EQ(reason_of(a, buf), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "not json", claims, "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "[\"HS256\"]", claims, "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "{\"typ\":\"JWT\"}", claims, "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":256}", claims, "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"HS256\",\"alg\":\"none\"}", claims, "HS256", NULL),
                  AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", claims, "HS256", NULL),
                  AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, HS, "[1,2]", "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\"", "HS256", NULL), AUTH_MALFORMED);
    ASSERT_INT_EQ(
        reason_signed(a, HS, "{\"role\":\"a\",\"role\":\"b\",\"exp\":1700003600}", "HS256", NULL),
        AUTH_MALFORMED);
    big = calloc(1, 20000);
    memset(big, 'a', 19999);
    big[100] = '.';
    big[200] = '.';
    ASSERT_INT_EQ(reason_of(a, big), AUTH_MALFORMED);
    free(big);
    free(good);
    auth_free(a);
}

static void
test_anon_key(void)
{
    struct auth *a = new_auth(NULL, NULL, NULL, "sb_publishable_abc123", 0);
    struct auth_identity *id = NULL;
    struct auth_failure why;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(check_at(a, "sb_publishable_abc123", NOW, &id, &why), AUTH_OK);
    ASSERT_STR_EQ(auth_identity_role(id), "anon");
    ASSERT_STR_EQ(auth_identity_claim(id, "role"), "anon");
    ASSERT_INT_EQ(auth_identity_exp(id), 0);
    ASSERT_NULL(auth_identity_sub(id));
    auth_identity_unref(id);
    ASSERT_INT_EQ(reason_of(a, "sb_publishable_abc124"), AUTH_MALFORMED);
    ASSERT_INT_EQ(reason_of(a, "sb_publishable_abc12"), AUTH_MALFORMED);
    /* Only the anon key is configured: a JWT cannot be verified. */
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600}", "HS256", NULL),
                  AUTH_SIGNATURE);
    auth_free(a);
}

static void
test_cache(void)
{
    struct auth *a = new_auth(NULL, rsa_pem_path, NULL, NULL, 0);
    char *tok = th_token(RS, "{\"role\":\"authenticated\",\"exp\":1700000100,\"sub\":\"s\"}",
                         "RS256", NULL, 0, rsa_key);
    char *other =
        th_token(RS, "{\"role\":\"other\",\"exp\":1700000100}", "RS256", NULL, 0, rsa_key);
    struct auth_identity *id1 = NULL, *id2 = NULL, *id3 = NULL;
    struct auth_failure why;

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id1, &why), AUTH_OK);
    ASSERT_INT_EQ(check_at(a, tok, NOW + 50, &id2, &why), AUTH_OK);
    ASSERT_TRUE(id1 == id2); /* served from the cache */
    ASSERT_STR_EQ(auth_identity_sub(id2), "s");
    ASSERT_INT_EQ(check_at(a, other, NOW, &id3, &why), AUTH_OK);
    ASSERT_TRUE(id3 != id1);
    ASSERT_STR_EQ(auth_identity_role(id3), "other");
    auth_identity_unref(id3);
    id3 = NULL;
    /* The cached token has expired by now: refused with the right count. */
    ASSERT_INT_EQ(check_at(a, tok, NOW + 107, &id3, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 7);
    ASSERT_INT_EQ(check_at(a, tok, NOW + 107, &id3, &why), AUTH_EXPIRED);
    ASSERT_INT_EQ(why.expired_for_s, 7);
    /* Identities outlive the verifier. */
    auth_free(a);
    ASSERT_STR_EQ(auth_identity_role(id1), "authenticated");
    auth_identity_unref(id1);
    auth_identity_unref(id2);
    free(tok);
    free(other);
}

static void
test_cache_eviction(void)
{
    struct auth *a = new_auth(SECRET, NULL, NULL, NULL, 0);
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char claims[128], role[16], *tok;
    int ok = 0;

    ASSERT_NOT_NULL(a);
    /* More tokens than the cache holds; each must still verify to its own identity. */
    for (int i = 0; i < 3000; i++) {
        snprintf(role, sizeof(role), "r%d", i % 1500);
        snprintf(claims, sizeof(claims), "{\"role\":\"%s\",\"exp\":1700003600}", role);
        tok = th_token(HS, claims, "HS256", SECRET, strlen(SECRET), NULL);
        if (check_at(a, tok, NOW, &id, &why) == AUTH_OK && !strcmp(auth_identity_role(id), role))
            ok++;
        auth_identity_unref(id);
        id = NULL;
        free(tok);
    }
    ASSERT_INT_EQ(ok, 3000);
    auth_free(a);
}

static void
test_role_claim(void)
{
    struct auth_config cfg = { .jwt_secret = SECRET, .role_claim = "user_role" };
    struct auth *a = auth_new(&cfg, NULL);
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char *tok = th_token(HS, "{\"user_role\":\"partner\",\"role\":\"x\",\"exp\":1700003600}",
                         "HS256", SECRET, strlen(SECRET), NULL);

    ASSERT_NOT_NULL(a);
    ASSERT_INT_EQ(check_at(a, tok, NOW, &id, &why), AUTH_OK);
    ASSERT_STR_EQ(auth_identity_role(id), "partner");
    auth_identity_unref(id);
    ASSERT_INT_EQ(reason_signed(a, HS, "{\"role\":\"a\",\"exp\":1700003600}", "HS256", NULL),
                  AUTH_CLAIMS);
    free(tok);
    auth_free(a);
}

/* auth_new() must fail with a message containing want. */
static int
new_fails(const struct auth_config *cfg, const char *want)
{
    struct gw_buf err;
    struct auth *a;
    int ok;

    gw_buf_init(&err);
    a = auth_new(cfg, &err);
    ok = !a && err.data && strstr(err.data, want);
    if (!ok)
        fprintf(stderr, "auth_new error: %s (wanted %s)\n", err.data ? err.data : "-", want);
    auth_free(a);
    gw_buf_release(&err);
    return ok;
}

static void
test_new_errors(void)
{
    struct auth_config cfg = { 0 };
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char *pem = th_public_pem(small), *pem384 = th_public_pem(p384);
    char *jwk = th_jwk(ec_key, "e"), text[4096];
    char *x;

    ASSERT_TRUE(new_fails(&cfg, "at least one"));
    cfg.jwt_secret = "";
    ASSERT_TRUE(new_fails(&cfg, "at least one"));
    cfg.jwt_public_key = "/nonexistent/key.pem";
    ASSERT_TRUE(new_fails(&cfg, "/nonexistent/key.pem"));
    cfg.jwt_public_key = keep(th_write_file(dir, "junk.pem", "hello\n"));
    ASSERT_TRUE(new_fails(&cfg, "not a PEM public key"));
    cfg.jwt_public_key = keep(th_write_file(dir, "small.pem", pem));
    ASSERT_TRUE(new_fails(&cfg, "shorter than 2048"));
    cfg.jwt_public_key = keep(th_write_file(dir, "p384.pem", pem384));
    ASSERT_TRUE(new_fails(&cfg, "P-256"));
    cfg.jwt_public_key = NULL;
    cfg.jwks_file = keep(th_write_file(dir, "bad.json", "{\"keys\":"));
    ASSERT_TRUE(new_fails(&cfg, "bad.json"));
    cfg.jwks_file = keep(th_write_file(dir, "nokeys.json", "{\"keys\":[{\"kty\":\"oct\"}]}"));
    ASSERT_TRUE(new_fails(&cfg, "no usable key"));
    /* x shortened to 31 bytes (42 base64url characters). */
    x = strstr(jwk, "\"x\":\"") + 5;
    memmove(x + 42, x + 43, strlen(x + 43) + 1);
    snprintf(text, sizeof(text), "{\"keys\":[%s]}", jwk);
    cfg.jwks_file = keep(th_write_file(dir, "shortx.json", text));
    ASSERT_TRUE(new_fails(&cfg, "invalid EC key"));
    free(pem);
    free(pem384);
    free(jwk);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
}

int
main(void)
{
    setup();
    RUN(test_hs256_valid);
    RUN(test_rs256_pem);
    RUN(test_es256_pem);
    RUN(test_jwks_kid);
    RUN(test_alg_none);
    RUN(test_alg_confusion);
    RUN(test_tampered);
    RUN(test_wrong_secret);
    RUN(test_expired);
    RUN(test_claims_required);
    RUN(test_real_exp);
    RUN(test_nbf);
    RUN(test_malformed);
    RUN(test_anon_key);
    RUN(test_cache);
    RUN(test_cache_eviction);
    RUN(test_role_claim);
    RUN(test_new_errors);
    teardown();
    return HARNESS_DONE();
}
