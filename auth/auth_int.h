/*
 * auth_int.h: declarations shared by the files of the auth module; not a public header.
 *
 * b64.c encodes and decodes base64url. keys.c holds the verification keys (PEM file and
 * JWKS entries as cached EVP_PKEYs) and the signature primitives (HS256, RS256, ES256).
 * identity.c builds refcounted identities from claim objects. cache.c remembers verified
 * tokens by SHA-256. auth.c runs the verification pipeline; rules.c the authorization rules.
 */
#ifndef GW_AUTH_INT_H
#define GW_AUTH_INT_H

#include "auth/auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define AUTH_MAX_TOKEN     16384   /* longest token accepted, bytes */
#define AUTH_MAX_KEY_FILE  1048576 /* largest PEM or JWKS file read, bytes */
#define AUTH_CACHE_SETS    256     /* cache sets (a power of two) */
#define AUTH_CACHE_WAYS    4       /* entries per set */
#define AUTH_HS256_SIG_LEN 32      /* HMAC-SHA256 output, bytes */
#define AUTH_ES256_SIG_LEN 64      /* JOSE r||s, bytes */
#define AUTH_SHA256_LEN    32      /* cache key, bytes */
#define AUTH_MIN_RSA_BITS  2048    /* smallest RSA modulus accepted */

/* Appends the unpadded base64url encoding of n bytes at p. */
void auth__b64url_append(struct gw_buf *b, const void *p, size_t n);
/* Decodes n characters of unpadded base64url into out, which has room for n * 3 / 4
 * bytes. Rejects padding, other alphabets and non-zero trailing bits. Returns 0 and sets
 * *outlen, or GW_EPARSE. */
int auth__b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);

/* Key types, each pinned to one algorithm. */
enum auth_kty {
    AUTH_KTY_RSA = 1,   /* RSA >= 2048 bits, for RS256 */
    AUTH_KTY_EC256 = 2, /* EC P-256, for ES256 */
};

struct auth_key {
    enum auth_kty kty; /* what the key verifies */
    char *kid;         /* owned; NULL for a key without kid (PEM file) */
    EVP_PKEY *pkey;    /* owned public key, parsed once */
};

struct auth_keyset {
    struct auth_key *keys; /* owned array */
    size_t n;              /* keys in use */
};

/* Loads a PEM SubjectPublicKeyInfo file (RSA or P-256) into ks. 0 or GW_E* with err. */
int auth__keys_load_pem(struct auth_keyset *ks, const char *path, struct gw_buf *err);
/* Loads every usable key of a JWKS file into ks; unusable entries are skipped with a log
 * line. 0, or GW_E* with a message in err (also when no key is usable). */
int auth__keys_load_jwks(struct auth_keyset *ks, const char *path, struct gw_buf *err);
void auth__keys_release(struct auth_keyset *ks);
/* The key of type kty for a token carrying kid (NULL when absent), or NULL when none
 * matches: a kid selects the key with that kid, else the single kid-less key of the type;
 * no kid selects the single key of the type. */
const struct auth_key *auth__keys_select(const struct auth_keyset *ks, enum auth_kty kty,
                                         const char *kid);

/* True when sig is the HMAC-SHA256 of in under secret (constant-time compare). */
bool auth__hs256_verify(const char *secret, size_t secret_len, const void *in, size_t in_len,
                        const unsigned char *sig, size_t sig_len);
/* True when sig (RS256 bytes, or ES256 JOSE r||s) verifies in with key k and digest md. */
bool auth__pkey_verify(const struct auth_key *k, EVP_MD *md, const void *in, size_t in_len,
                       const unsigned char *sig, size_t sig_len);

struct auth_identity {
    unsigned refs;    /* references; freed with the last */
    json_t *claims;   /* owned claim object, never modified after creation */
    json_t *texts;    /* owned: claim name -> formatted text of integer and real claims */
    const char *role; /* role claim text (points into claims/texts) or "" */
    const char *sub;  /* sub claim text or NULL */
    int64_t exp;      /* exp in Unix seconds (truncated), 0 = never expires */
};

/* Builds an identity (refs = 1) from a claim object; steals the reference to claims. */
struct auth_identity *auth__identity_new(json_t *claims, const char *role_claim);
/* Converts a JSON exp number to Unix seconds, saturating, never 0 for a non-zero exp. */
int64_t auth__exp_seconds(double exp);

/* Validity window of a verified token, re-checked on every cache hit. */
struct auth_times {
    double exp;   /* exp claim, Unix seconds */
    double nbf;   /* not before: the later of nbf and iat, Unix seconds, when has_nbf */
    bool has_nbf; /* the token carries nbf or iat */
};

struct auth_cache;

struct auth_cache *auth__cache_new(void);
void auth__cache_free(struct auth_cache *c);
/* The cached identity for a token digest (borrowed) and its times, or NULL. */
struct auth_identity *auth__cache_get(struct auth_cache *c, const unsigned char *key,
                                      struct auth_times *times);
/* Stores a verified token; takes a new reference to id. Evicts the least recently used
 * entry of the set when it is full. */
void auth__cache_put(struct auth_cache *c, const unsigned char *key, struct auth_identity *id,
                     const struct auth_times *times);
/* Removes the entry for key, if any. */
void auth__cache_drop(struct auth_cache *c, const unsigned char *key);

#endif
