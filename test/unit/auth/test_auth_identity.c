/*
 * test_auth_identity.c: identities (claim accessors, refcounts, from_json), the HS256
 * signer (checked against an independent HMAC and against auth_verify) and the failure
 * texts and codes.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/base.h"
#include "harness.h"
#include "jwt_helpers.h"

static void
test_claim_accessors(void)
{
    struct auth_identity *id = auth_identity_from_json(
        "{\"role\":\"user\",\"sub\":\"abc\",\"exp\":1700003600,\"business_id\":42,"
        "\"neg\":-7,\"ratio\":1.5,\"tenth\":0.1,\"whole\":3.0,\"ok\":true,\"no\":false,"
        "\"nil\":null,\"obj\":{\"a\":1},\"arr\":[1],\"custom:business_id\":\"42\","
        "\"big\":9007199254740993}",
        NULL);

    ASSERT_NOT_NULL(id);
    ASSERT_STR_EQ(auth_identity_role(id), "user");
    ASSERT_STR_EQ(auth_identity_sub(id), "abc");
    ASSERT_INT_EQ(auth_identity_exp(id), 1700003600);
    ASSERT_STR_EQ(auth_identity_claim(id, "role"), "user");
    ASSERT_STR_EQ(auth_identity_claim(id, "business_id"), "42");
    ASSERT_STR_EQ(auth_identity_claim(id, "neg"), "-7");
    ASSERT_STR_EQ(auth_identity_claim(id, "big"), "9007199254740993");
    ASSERT_STR_EQ(auth_identity_claim(id, "ratio"), "1.5");
    ASSERT_STR_EQ(auth_identity_claim(id, "tenth"), "0.1");
    ASSERT_STR_EQ(auth_identity_claim(id, "whole"), "3");
    ASSERT_STR_EQ(auth_identity_claim(id, "exp"), "1700003600");
    ASSERT_STR_EQ(auth_identity_claim(id, "ok"), "true");
    ASSERT_STR_EQ(auth_identity_claim(id, "no"), "false");
    ASSERT_STR_EQ(auth_identity_claim(id, "custom:business_id"), "42");
    ASSERT_NULL(auth_identity_claim(id, "nil"));
    ASSERT_NULL(auth_identity_claim(id, "obj"));
    ASSERT_NULL(auth_identity_claim(id, "arr"));
    ASSERT_NULL(auth_identity_claim(id, "missing"));
    ASSERT_NULL(auth_identity_claim(id, NULL));
    ASSERT_NULL(auth_identity_claim(NULL, "role"));
    auth_identity_unref(id);
}

static void
test_refcount(void)
{
    struct auth_identity *id = auth_identity_from_json("{\"role\":\"r\",\"n\":5}", NULL);
    const char *n;

    ASSERT_NOT_NULL(id);
    ASSERT_TRUE(auth_identity_ref(id) == id);
    n = auth_identity_claim(id, "n");
    auth_identity_unref(id);
    /* Still referenced once: the formatted claim is still readable (ASan would catch it). */
    ASSERT_STR_EQ(n, "5");
    ASSERT_STR_EQ(auth_identity_role(id), "r");
    auth_identity_unref(id);
    auth_identity_unref(NULL);
    ASSERT_NULL(auth_identity_ref(NULL));
}

static void
test_from_json(void)
{
    struct auth_identity *id;

    ASSERT_NULL(auth_identity_from_json("[1,2]", NULL));
    ASSERT_NULL(auth_identity_from_json("\"role\"", NULL));
    ASSERT_NULL(auth_identity_from_json("{\"role\":", NULL));
    ASSERT_NULL(auth_identity_from_json(NULL, NULL));
    id = auth_identity_from_json("{\"sub\":12}", NULL);
    ASSERT_NOT_NULL(id);
    ASSERT_STR_EQ(auth_identity_role(id), ""); /* never NULL */
    ASSERT_STR_EQ(auth_identity_sub(id), "12");
    ASSERT_INT_EQ(auth_identity_exp(id), 0);
    auth_identity_unref(id);
    id =
        auth_identity_from_json("{\"cognito:groups\":\"partners\",\"exp\":99.9}", "cognito:groups");
    ASSERT_NOT_NULL(id);
    ASSERT_STR_EQ(auth_identity_role(id), "partners");
    ASSERT_INT_EQ(auth_identity_exp(id), 99);
    ASSERT_NULL(auth_identity_sub(id));
    auth_identity_unref(id);
}

static void
test_sign_hs256(void)
{
    const char *secret = "0123456789abcdef0123456789abcdef";
    const char *claims = "{\"role\":\"authenticated\",\"exp\":1700003600,\"sub\":\"x\"}";
    char *mine = auth_sign_hs256(secret, claims);
    char *ref = th_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, "HS256", secret,
                         strlen(secret), NULL);
    struct auth_config cfg = { .jwt_secret = secret };
    struct auth *a = auth_new(&cfg, NULL);
    struct auth_identity *id = NULL;
    struct auth_failure why;

    ASSERT_NOT_NULL(mine);
    ASSERT_NOT_NULL(a);
    ASSERT_STR_EQ(mine, ref);
    ASSERT_TRUE(strncmp(mine, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
    ASSERT_NULL(strchr(mine, '='));
    ASSERT_INT_EQ(auth_verify(a, mine, strlen(mine), 1700000000, &id, &why), 0);
    ASSERT_STR_EQ(auth_identity_sub(id), "x");
    auth_identity_unref(id);
    ASSERT_NULL(auth_sign_hs256(secret, "[1]"));
    ASSERT_NULL(auth_sign_hs256(secret, "{"));
    ASSERT_NULL(auth_sign_hs256(secret, NULL));
    ASSERT_NULL(auth_sign_hs256("", claims));
    ASSERT_NULL(auth_sign_hs256(NULL, claims));
    auth_free(a);
    free(mine);
    free(ref);
}

static void
test_failure_texts(void)
{
    static const struct {
        enum auth_reason reason;
        const char *message;
        const char *code;
    } cases[] = {
        { AUTH_MISSING, "API key is missing", "InvalidJWTToken" },
        { AUTH_MALFORMED, "The token provided is not a valid JWT", "MalformedJWT" },
        { AUTH_SIGNATURE, "Failed to validate JWT signature", "JwtSignatureError" },
        { AUTH_EXPIRED, "Token has expired 3 seconds ago", "InvalidJWTToken" },
        { AUTH_CLAIMS, "Fields `role` and `exp` are required in JWT", "InvalidJWTToken" },
        { AUTH_NOT_YET, "Token is not yet valid", "InvalidJWTToken" },
    };

    char buf[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_failure why = { cases[i].reason, 3 };

        auth_failure_message(&why, buf, sizeof(buf));
        ASSERT_STR_EQ(buf, cases[i].message);
        ASSERT_STR_EQ(auth_failure_code(&why), cases[i].code);
    }
    {
        struct auth_failure why = { AUTH_EXPIRED, 1234 };

        auth_failure_message(&why, buf, 10);
        ASSERT_STR_EQ(buf, "Token has");
    }
}

int
main(void)
{
    RUN(test_claim_accessors);
    RUN(test_refcount);
    RUN(test_from_json);
    RUN(test_sign_hs256);
    RUN(test_failure_texts);
    return HARNESS_DONE();
}
