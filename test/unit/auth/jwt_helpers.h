/*
 * jwt_helpers.h: token and key helpers for the auth tests. They use OpenSSL directly and
 * share no code with the auth module, so a bug there cannot hide itself in the tests.
 */
#ifndef GW_TEST_JWT_HELPERS_H
#define GW_TEST_JWT_HELPERS_H

#include <stddef.h>

#include <openssl/evp.h>

/* Unpadded base64url of n bytes; malloc'd. */
char *th_b64url(const void *p, size_t n);

/*
 * Builds "b64(header).b64(payload).b64(sig)". alg "HS256" signs with secret, "RS256" and
 * "ES256" (JOSE r||s) with key; any other alg leaves the signature part empty. malloc'd.
 */
char *th_token(const char *header, const char *payload, const char *alg, const void *secret,
               size_t secret_len, EVP_PKEY *key);

/* The SubjectPublicKeyInfo PEM of key; malloc'd. */
char *th_public_pem(EVP_PKEY *key);

/* A JWK object text for an RSA or EC P-256 public key; kid may be NULL. malloc'd. */
char *th_jwk(EVP_PKEY *key, const char *kid);

/* Writes text to dir/name and returns the path (malloc'd). Aborts on failure. */
char *th_write_file(const char *dir, const char *name, const char *text);

#endif
