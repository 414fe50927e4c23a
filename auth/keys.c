/*
 * keys.c: the verification keys and the signature primitives.
 *
 * Keys come from a PEM SubjectPublicKeyInfo file and/or a JWKS file, are parsed once into
 * EVP_PKEYs and classified as RSA (RS256 only) or EC P-256 (ES256 only), so an algorithm
 * is always pinned to the key type. Signatures are checked with OpenSSL directly:
 * HMAC-SHA256 + CRYPTO_memcmp for HS256, EVP_DigestVerify for RS256 and ES256 (the JOSE
 * r||s form is converted to DER first). auth_sign_hs256() lives here too.
 */
#include "auth/auth_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "base/base.h"

/* Base64url of {"alg":"HS256","typ":"JWT"}. */
#define HS256_HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/* Reads a whole file of at most AUTH_MAX_KEY_FILE bytes into out. */
static int
read_file(const char *what, const char *path, struct gw_buf *out, struct gw_buf *err)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;
    int rc = 0;

    if (!f) {
        gw_buf_printf(err, "%s %s: %s", what, path, strerror(errno));
        return GW_EIO;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > AUTH_MAX_KEY_FILE) {
            gw_buf_printf(err, "%s %s: larger than %d bytes", what, path, AUTH_MAX_KEY_FILE);
            rc = GW_ELIMIT;
            break;
        }
        gw_buf_append(out, chunk, n);
    }
    if (rc == 0 && ferror(f)) {
        gw_buf_printf(err, "%s %s: read error", what, path);
        rc = GW_EIO;
    }
    fclose(f);
    return rc;
}

/* Classifies pkey as RSA >= 2048 bits or EC P-256. Returns the type or 0 with a reason. */
static enum auth_kty
classify(EVP_PKEY *pkey, const char **why)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < AUTH_MIN_RSA_BITS) {
            *why = "RSA key shorter than 2048 bits";
            return 0;
        }
        return AUTH_KTY_RSA;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
            OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
            *why = "EC key is not on curve P-256";
            return 0;
        }
        return AUTH_KTY_EC256;
    }
    *why = "key is neither RSA nor EC P-256";
    return 0;
}

/* Appends a key, taking ownership of pkey; kid is copied. */
static void
add_key(struct auth_keyset *ks, enum auth_kty kty, const char *kid, EVP_PKEY *pkey)
{
    ks->keys = gw_xrealloc(ks->keys, (ks->n + 1) * sizeof(*ks->keys));
    ks->keys[ks->n].kty = kty;
    ks->keys[ks->n].kid = kid ? gw_xstrdup(kid) : NULL;
    ks->keys[ks->n].pkey = pkey;
    ks->n++;
}

int
auth__keys_load_pem(struct auth_keyset *ks, const char *path, struct gw_buf *err)
{
    struct gw_buf text;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    const char *why = NULL;
    enum auth_kty kty;
    int rc;

    gw_buf_init(&text);
    rc = read_file("jwt_public_key", path, &text, err);
    if (rc < 0)
        goto out;
    rc = GW_EPARSE;
    bio = BIO_new_mem_buf(text.data ? text.data : "", (int)text.len);
    pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (!pkey) {
        gw_buf_printf(err,
                      "jwt_public_key %s: not a PEM public key "
                      "(expected -----BEGIN PUBLIC KEY-----)",
                      path);
        goto out;
    }
    kty = classify(pkey, &why);
    if (!kty) {
        gw_buf_printf(err, "jwt_public_key %s: %s", path, why);
        goto out;
    }
    add_key(ks, kty, NULL, pkey);
    pkey = NULL;
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    gw_buf_release(&text);
    return rc;
}

/* Decodes a base64url JWK member into a new buffer. Returns NULL when absent or invalid,
 * or when its length is not in [min, max]. */
static unsigned char *
jwk_bytes(json_t *jwk, const char *name, size_t min, size_t max, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    size_t n = s ? strlen(s) : 0;
    unsigned char *buf;

    if (!s || n / 4 * 3 > max + 3)
        return NULL;
    buf = gw_xmalloc(n * 3 / 4 + 1);
    if (auth__b64url_decode(s, n, buf, len) < 0 || *len < min || *len > max) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Builds a public EVP_PKEY of algorithm name ("RSA", "EC") from an OSSL_PARAM builder. */
static EVP_PKEY *
pkey_fromdata(const char *name, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* An RSA public key from the JWK members n and e (base64url, big-endian). */
static EVP_PKEY *
jwk_rsa(json_t *jwk)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = jwk_bytes(jwk, "n", 1, 2048, &nlen);
    unsigned char *e = jwk_bytes(jwk, "e", 1, 8, &elen);
    BIGNUM *bn_n = n ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;

    if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        pkey = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

/* An EC P-256 public key from the JWK members x and y (exactly 32 bytes each). */
static EVP_PKEY *
jwk_ec(json_t *jwk)
{
    size_t xlen = 0, ylen = 0;
    unsigned char *x = jwk_bytes(jwk, "x", 32, 32, &xlen);
    unsigned char *y = jwk_bytes(jwk, "y", 32, 32, &ylen);
    unsigned char pt[65];
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;

    if (!x || !y)
        goto out;
    pt[0] = 0x04; /* uncompressed point: 0x04 || x || y */
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
        pkey = pkey_fromdata("EC", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

/* Why a JWK is skipped (not an error), or NULL when it is one we can use. */
static const char *
jwk_skip_reason(json_t *jwk, const char *kty)
{
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *alg = json_string_value(json_object_get(jwk, "alg"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));

    if (use && strcmp(use, "sig") != 0)
        return "use_not_sig";
    if (strcmp(kty, "RSA") == 0)
        return alg && strcmp(alg, "RS256") != 0 ? "alg_not_RS256" : NULL;
    if (strcmp(kty, "EC") == 0) {
        if (!crv || strcmp(crv, "P-256") != 0)
            return "crv_not_P-256";
        return alg && strcmp(alg, "ES256") != 0 ? "alg_not_ES256" : NULL;
    }
    return "unsupported_kty";
}

/* Checks the types of the optional members a JWK may carry. */
static bool
jwk_members_ok(json_t *jwk)
{
    static const char *const names[] = { "kid", "alg", "use", "crv" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_object_get(jwk, names[i]);

        if (v && !json_is_string(v))
            return false;
    }
    return true;
}

/* Adds one JWK (index i of the keys array) or skips it. 0 or GW_EPARSE with err. */
static int
load_jwk(struct auth_keyset *ks, const char *path, size_t i, json_t *jwk, struct gw_buf *err)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    const char *skip;
    enum auth_kty type;
    EVP_PKEY *pkey;

    if (!json_is_object(jwk) || !kty || !jwk_members_ok(jwk)) {
        gw_buf_printf(err, "jwks_file %s: keys[%zu] is not a JWK object with a string kty", path,
                      i);
        return GW_EPARSE;
    }
    skip = jwk_skip_reason(jwk, kty);
    if (skip) {
        gw_log(GW_LOG_WARN, "auth_jwk_skipped", "file=%s index=%zu reason=%s", path, i, skip);
        return 0;
    }
    type = strcmp(kty, "RSA") == 0 ? AUTH_KTY_RSA : AUTH_KTY_EC256;
    for (size_t k = 0; k < ks->n; k++) {
        if (ks->keys[k].kty == type && kid && ks->keys[k].kid && !strcmp(kid, ks->keys[k].kid)) {
            gw_buf_printf(err, "jwks_file %s: keys[%zu]: duplicate kid '%s'", path, i, kid);
            return GW_EPARSE;
        }
    }
    pkey = type == AUTH_KTY_RSA ? jwk_rsa(jwk) : jwk_ec(jwk);
    ERR_clear_error();
    if (!pkey || (type == AUTH_KTY_RSA && EVP_PKEY_get_bits(pkey) < AUTH_MIN_RSA_BITS)) {
        gw_buf_printf(err, "jwks_file %s: keys[%zu]: invalid %s key%s", path, i, kty,
                      pkey ? " (shorter than 2048 bits)" : "");
        EVP_PKEY_free(pkey);
        return GW_EPARSE;
    }
    add_key(ks, type, kid, pkey);
    return 0;
}

int
auth__keys_load_jwks(struct auth_keyset *ks, const char *path, struct gw_buf *err)
{
    struct gw_buf text;
    json_error_t jerr;
    json_t *root = NULL, *keys;
    size_t before = ks->n;
    int rc;

    gw_buf_init(&text);
    rc = read_file("jwks_file", path, &text, err);
    if (rc < 0)
        goto out;
    rc = GW_EPARSE;
    root = json_loadb(text.data ? text.data : "", text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gw_buf_printf(err, "jwks_file %s:%d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        gw_buf_printf(err, "jwks_file %s: expected an object {\"keys\": [...]}", path);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(keys); i++) {
        if (load_jwk(ks, path, i, json_array_get(keys, i), err) < 0)
            goto out;
    }
    if (ks->n == before) {
        gw_buf_printf(err, "jwks_file %s: no usable key (RSA or EC P-256 for signatures)", path);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    gw_buf_release(&text);
    return rc;
}

void
auth__keys_release(struct auth_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        EVP_PKEY_free(ks->keys[i].pkey);
    }
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

const struct auth_key *
auth__keys_select(const struct auth_keyset *ks, enum auth_kty kty, const char *kid)
{
    const struct auth_key *only = NULL, *kidless = NULL;
    size_t n_type = 0, n_kidless = 0;

    for (size_t i = 0; i < ks->n; i++) {
        const struct auth_key *k = &ks->keys[i];

        if (k->kty != kty)
            continue;
        n_type++;
        only = k;
        if (!k->kid) {
            n_kidless++;
            kidless = k;
        } else if (kid && strcmp(k->kid, kid) == 0) {
            return k;
        }
    }
    if (kid)
        return n_kidless == 1 ? kidless : NULL;
    return n_type == 1 ? only : NULL;
}

bool
auth__hs256_verify(const char *secret, size_t secret_len, const void *in, size_t in_len,
                   const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;

    if (sig_len != AUTH_HS256_SIG_LEN || secret_len > INT_MAX)
        return false;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, in, in_len, mac, &mac_len) ||
        mac_len != AUTH_HS256_SIG_LEN) {
        ERR_clear_error();
        return false;
    }
    return CRYPTO_memcmp(mac, sig, AUTH_HS256_SIG_LEN) == 0;
}

/* Converts a JOSE ES256 signature (r||s, 32 bytes each) to DER in der (cap bytes). */
static bool
es256_to_der(const unsigned char *sig, unsigned char *der, size_t cap, size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *p = der;
    bool ok = false;
    int n;

    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    /* es owns r and s from here. */
    n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0 || (size_t)n > cap || i2d_ECDSA_SIG(es, &p) != n)
        goto out;
    *der_len = (size_t)n;
    ok = true;
out:
    ECDSA_SIG_free(es);
    return ok;
}

bool
auth__pkey_verify(const struct auth_key *k, EVP_MD *md, const void *in, size_t in_len,
                  const unsigned char *sig, size_t sig_len)
{
    unsigned char der[80]; /* DER of a P-256 signature is at most 72 bytes */
    EVP_MD_CTX *ctx = NULL;
    bool ok = false;

    if (k->kty == AUTH_KTY_EC256) {
        if (sig_len != AUTH_ES256_SIG_LEN || !es256_to_der(sig, der, sizeof(der), &sig_len))
            goto out;
        sig = der;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1 &&
         EVP_DigestVerify(ctx, sig, sig_len, in, in_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

char *
auth_sign_hs256(const char *secret, const char *claims_json)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    struct gw_buf b;
    json_t *claims;
    size_t secret_len = secret ? strlen(secret) : 0;

    if (!secret_len || secret_len > INT_MAX || !claims_json)
        return NULL;
    claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    json_decref(claims);
    gw_buf_init(&b);
    gw_buf_append_str(&b, HS256_HEADER ".");
    auth__b64url_append(&b, claims_json, strlen(claims_json));
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)b.data, b.len, mac,
              &mac_len)) {
        ERR_clear_error();
        gw_buf_release(&b);
        return NULL;
    }
    gw_buf_append(&b, ".", 1);
    auth__b64url_append(&b, mac, mac_len);
    return gw_buf_steal(&b, NULL);
}
