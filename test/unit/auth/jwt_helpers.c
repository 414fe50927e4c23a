/*
 * jwt_helpers.c: see jwt_helpers.h. Base64url is done with EVP_EncodeBlock plus the URL
 * alphabet; signatures with HMAC() and EVP_DigestSign; ES256 DER is converted to r||s.
 */
#include "jwt_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        abort();
    return p;
}

char *
th_b64url(const void *p, size_t n)
{
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    return out;
}

/* Signs in with key (RS256 or ES256); returns the JOSE signature bytes in sig. */
static size_t
sign_pkey(const char *alg, EVP_PKEY *key, const char *in, unsigned char *sig, size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[1024];
    size_t len = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *es;

    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, der, &len, (const unsigned char *)in, strlen(in)) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    if (strcmp(alg, "RS256") == 0) {
        if (len > cap)
            abort();
        memcpy(sig, der, len);
        return len;
    }
    es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!es || cap < 64 || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
        abort();
    ECDSA_SIG_free(es);
    return 64;
}

char *
th_token(const char *header, const char *payload, const char *alg, const void *secret,
         size_t secret_len, EVP_PKEY *key)
{
    char *h = th_b64url(header, strlen(header));
    char *p = th_b64url(payload, strlen(payload));
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *in = xmalloc(in_len + 1);
    unsigned char sig[1024];
    size_t sig_len = 0;
    unsigned mac_len = 0;
    char *s, *out;

    snprintf(in, in_len + 1, "%s.%s", h, p);
    if (strcmp(alg, "HS256") == 0) {
        if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)in, in_len, sig,
                  &mac_len))
            abort();
        sig_len = mac_len;
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        sig_len = sign_pkey(alg, key, in, sig, sizeof(sig));
    }
    s = th_b64url(sig, sig_len);
    out = xmalloc(in_len + 1 + strlen(s) + 1);
    snprintf(out, in_len + 1 + strlen(s) + 1, "%s.%s", in, s);
    free(h);
    free(p);
    free(in);
    free(s);
    return out;
}

char *
th_public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    long n;

    if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1)
        abort();
    n = BIO_get_mem_data(bio, &data);
    out = xmalloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    return out;
}

/* Base64url of a BIGNUM parameter, padded to pad bytes (0 = minimal). */
static char *
bn_param(EVP_PKEY *key, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    char *out;

    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
        abort();
    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    if (n <= 0)
        abort();
    out = th_b64url(buf, (size_t)n);
    BN_free(bn);
    return out;
}

char *
th_jwk(EVP_PKEY *key, const char *kid)
{
    char kidpart[256] = "";
    char *a, *b, *out = xmalloc(4096);

    if (kid)
        snprintf(kidpart, sizeof(kidpart), ",\"kid\":\"%s\"", kid);
    if (EVP_PKEY_is_a(key, "RSA")) {
        a = bn_param(key, OSSL_PKEY_PARAM_RSA_N, 0);
        b = bn_param(key, OSSL_PKEY_PARAM_RSA_E, 0);
        snprintf(out, 4096,
                 "{\"kty\":\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"%s\","
                 "\"e\":\"%s\"%s}",
                 a, b, kidpart);
    } else {
        a = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        b = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s}", a, b,
                 kidpart);
    }
    free(a);
    free(b);
    return out;
}

char *
th_write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = xmalloc(n);
    FILE *f;

    snprintf(path, n, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    return path;
}
