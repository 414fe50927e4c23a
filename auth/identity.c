/*
 * identity.c: refcounted identities built from a claim object.
 *
 * The claim object is never modified after creation, so pointers to its strings stay
 * valid while the identity lives. Integer and real claims are formatted once, at
 * creation, into a second object (`texts`) so auth_identity_claim() can return them as
 * text without allocating. Role, sub and exp are precomputed.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Formats a real with the fewest significant digits that read back to the same value. */
static void
format_real(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* Builds the name -> text object for the integer and real claims. */
static json_t *
format_numbers(json_t *claims)
{
    json_t *texts = json_object();
    const char *name;
    json_t *v;
    char buf[64];

    json_object_foreach(claims, name, v) {
        if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            format_real(json_real_value(v), buf, sizeof(buf));
        else
            continue;
        json_object_set_new(texts, name, json_string(buf));
    }
    return texts;
}

int64_t
auth__exp_seconds(double exp)
{
    if (exp >= 9.2e18)
        return INT64_MAX;
    if (exp <= -9.2e18)
        return INT64_MIN;
    if (exp > 0 && exp < 1)
        return 1; /* keep 0 for "never expires" */
    if (exp < 0 && exp > -1)
        return -1;
    return (int64_t)exp;
}

struct auth_identity *
auth__identity_new(json_t *claims, const char *role_claim)
{
    struct auth_identity *id = gw_xcalloc(1, sizeof(*id));
    json_t *exp = json_object_get(claims, "exp");
    const char *role;

    id->refs = 1;
    id->claims = claims;
    id->texts = format_numbers(claims);
    role = auth_identity_claim(id, role_claim ? role_claim : "role");
    id->role = role ? role : "";
    id->sub = auth_identity_claim(id, "sub");
    id->exp = json_is_number(exp) ? auth__exp_seconds(json_number_value(exp)) : 0;
    return id;
}

struct auth_identity *
auth_identity_from_json(const char *claims_json, const char *role_claim)
{
    json_t *claims;

    if (!claims_json)
        return NULL;
    claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    return auth__identity_new(claims, role_claim);
}

struct auth_identity *
auth_identity_ref(struct auth_identity *id)
{
    if (id)
        id->refs++;
    return id;
}

void
auth_identity_unref(struct auth_identity *id)
{
    if (!id || --id->refs > 0)
        return;
    json_decref(id->claims);
    json_decref(id->texts);
    free(id);
}

const char *
auth_identity_claim(const struct auth_identity *id, const char *name)
{
    json_t *v;

    if (!id || !name)
        return NULL;
    v = json_object_get(id->claims, name);
    if (!v)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
    case JSON_REAL:
        return json_string_value(json_object_get(id->texts, name));
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return NULL;
    }
}

const char *
auth_identity_role(const struct auth_identity *id)
{
    return id ? id->role : "";
}

int64_t
auth_identity_exp(const struct auth_identity *id)
{
    return id ? id->exp : 0;
}

const char *
auth_identity_sub(const struct auth_identity *id)
{
    return id ? id->sub : NULL;
}
