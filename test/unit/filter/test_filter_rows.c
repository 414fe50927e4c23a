/*
 * test_filter_rows.c: row rules (`TABLE all|COLUMN={CLAIM} [CLAIM=V1|V2 ...]`), their
 * parse errors and first-match resolution, on a partner-portal policy with identities
 * given as small claim tables; then a resolved rule applied to a record as a filter.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "filter/filter.h"
#include "harness.h"

/* An identity: claim name/value pairs, ended by a NULL name. */
struct identity {
    const char *claims[10]; /* name, value, name, value, ..., NULL */
};

static const char *
claim_of(void *ud, const char *name)
{
    const struct identity *id = ud;

    for (size_t i = 0; id->claims[i]; i += 2) {
        if (strcmp(id->claims[i], name) == 0)
            return id->claims[i + 1];
    }
    return NULL;
}

static const struct identity admin = { { "role", "admin", "sub", "u1", NULL } };
static const struct identity super_admin = { { "role", "super_admin", NULL } };
static const struct identity user = { { "role", "user", "sub", "u42", NULL } };
static const struct identity partner = { { "role", "partner", "business_id", "b7",
                                           "custom:business_id", "b9", "sub", "u5", NULL } };
static const struct identity anonymous = { { NULL } };

static struct filter_rows *
policy(void)
{
    static const char *const rules[] = {
        "* all role=admin|super_admin",
        "public.business_partners user_id={sub} role=user",
        "public.daily_kpis business_id={business_id}",
        "  public.*\tbusiness_id={custom:business_id}  ",
    };
    struct filter_rows *r = filter_rows_new();

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (filter_rows_add(r, rules[i], NULL) != 0) {
            filter_rows_free(r);
            return NULL;
        }
    }
    return r;
}

/* Resolves and prints the outcome: "all", "none" or "column=value". */
static const char *
resolve(const struct filter_rows *r, const char *schema, const char *table,
        const struct identity *id)
{
    static char out[256];
    const char *column = "x", *value = "y";
    enum filter_rows_result res =
        filter_rows_resolve(r, schema, table, claim_of, (void *)id, &column, &value);

    if (res == FILTER_ROWS_WHERE)
        snprintf(out, sizeof(out), "%s=%s", column, value);
    else
        snprintf(out, sizeof(out), "%s%s", res == FILTER_ROWS_ALL ? "all" : "none",
                 column || value ? " (outputs not reset)" : "");
    return out;
}

static void
test_admins_see_all(void)
{
    struct filter_rows *r = policy();

    ASSERT_NOT_NULL(r);
    ASSERT_STR_EQ(resolve(r, "public", "daily_kpis", &admin), "all");
    ASSERT_STR_EQ(resolve(r, "public", "business_partners", &super_admin), "all");
    ASSERT_STR_EQ(resolve(r, "other", "anything", &admin), "all");
    filter_rows_free(r);
}

static void
test_user_rows(void)
{
    struct filter_rows *r = policy();

    ASSERT_STR_EQ(resolve(r, "public", "business_partners", &user), "user_id=u42");
    /* daily_kpis's rule decides (first match) and the user has no business_id claim. */
    ASSERT_STR_EQ(resolve(r, "public", "daily_kpis", &user), "none");
    ASSERT_STR_EQ(resolve(r, "public", "orders", &user), "none");
    ASSERT_STR_EQ(resolve(r, "other", "orders", &user), "none");
    filter_rows_free(r);
}

static void
test_partner_rows(void)
{
    struct filter_rows *r = policy();

    ASSERT_STR_EQ(resolve(r, "public", "daily_kpis", &partner), "business_id=b7");
    ASSERT_STR_EQ(resolve(r, "public", "orders", &partner), "business_id=b9");
    /* role=user does not hold, so public.* decides for business_partners. */
    ASSERT_STR_EQ(resolve(r, "public", "business_partners", &partner), "business_id=b9");
    ASSERT_STR_EQ(resolve(r, "private", "orders", &partner), "none");
    ASSERT_STR_EQ(resolve(r, "public", "orders", &anonymous), "none");
    filter_rows_free(r);
}

static void
test_presence_condition_and_order(void)
{
    struct filter_rows *r = filter_rows_new();

    ASSERT_INT_EQ(filter_rows_add(r, "public.audit all role=*", NULL), 0);
    ASSERT_INT_EQ(filter_rows_add(r, "public.audit owner={sub}", NULL), 0);
    ASSERT_STR_EQ(resolve(r, "public", "audit", &user), "all");
    ASSERT_STR_EQ(resolve(r, "public", "audit", &anonymous), "none");
    ASSERT_STR_EQ(resolve(r, "public", "audit2", &user), "none");
    filter_rows_free(r);

    ASSERT_STR_EQ(resolve(NULL, "public", "audit", &user), "none");
    filter_rows_free(NULL);
}

/* Adds rule to a fresh rule set and returns the error message ("" when it parses). */
static const char *
add_error(const char *rule)
{
    static char out[512];
    struct filter_rows *r = filter_rows_new();
    struct gw_buf err;
    int rc;

    gw_buf_init(&err);
    rc = filter_rows_add(r, rule, &err);
    snprintf(out, sizeof(out), "%s", rc == 0 ? "" : rc == GW_EPARSE && err.data ? err.data : "?");
    gw_buf_release(&err);
    filter_rows_free(r);
    return out;
}

static void
test_parse_errors(void)
{
    ASSERT_STR_EQ(add_error(""),
                  "row_rule: expected TABLE all|COLUMN={CLAIM} [CLAIM=V1|V2 ...], got ''");
    ASSERT_STR_EQ(add_error("public.x"), "row_rule: expected TABLE all|COLUMN={CLAIM} "
                                         "[CLAIM=V1|V2 ...], got 'public.x'");
    ASSERT_STR_EQ(add_error("orders all"),
                  "row_rule: bad table 'orders': expected schema.table, schema.* or *");
    ASSERT_STR_EQ(add_error("a.b.c all"),
                  "row_rule: bad table 'a.b.c': expected schema.table, schema.* or *");
    ASSERT_STR_EQ(add_error("*.t all"),
                  "row_rule: bad table '*.t': expected schema.table, schema.* or *");
    ASSERT_STR_EQ(add_error("public. all"),
                  "row_rule: bad table 'public.': expected schema.table, schema.* or *");
    ASSERT_STR_EQ(add_error("public.x some"),
                  "row_rule: bad grant 'some': expected all or COLUMN={CLAIM}");
    ASSERT_STR_EQ(add_error("public.x col={}"),
                  "row_rule: bad grant 'col={}': expected all or COLUMN={CLAIM}");
    ASSERT_STR_EQ(add_error("public.x col=sub"),
                  "row_rule: bad grant 'col=sub': expected all or COLUMN={CLAIM}");
    ASSERT_STR_EQ(add_error("public.x ={sub}"),
                  "row_rule: bad grant '={sub}': expected all or COLUMN={CLAIM}");
    ASSERT_STR_EQ(add_error("public.x all role"),
                  "row_rule: expected CLAIM=VALUE[|VALUE...], got 'role'");
    ASSERT_STR_EQ(add_error("public.x all role="),
                  "row_rule: expected CLAIM=VALUE[|VALUE...], got 'role='");
    ASSERT_STR_EQ(add_error("public.x all =a"),
                  "row_rule: expected CLAIM=VALUE[|VALUE...], got '=a'");
    ASSERT_STR_EQ(add_error("public.x all role=a||b"),
                  "row_rule: empty value in condition 'role=a||b'");
    ASSERT_STR_EQ(add_error("public.x owner={custom:owner_id} role=a|b tier=*"), "");
    ASSERT_INT_EQ(filter_rows_add(NULL, "* all", NULL), GW_EINVAL);
}

/* A resolved rule becomes an extra eq condition on the subscription's filter. */
static void
test_resolved_rule_filters_records(void)
{
    static const struct filter_column cols[] = { { "business_id", "text" }, { "n", "int4" } };
    struct filter_rows *r = policy();
    const char *column = NULL, *value = NULL;
    struct filter *f = NULL;
    json_t *mine = json_loads("{\"business_id\":\"b7\",\"n\":3}", 0, NULL);
    json_t *theirs = json_loads("{\"business_id\":\"b8\",\"n\":3}", 0, NULL);

    ASSERT_INT_EQ(
        filter_rows_resolve(r, "public", "daily_kpis", claim_of, (void *)&partner, &column, &value),
        FILTER_ROWS_WHERE);
    ASSERT_INT_EQ(filter_parse("n=gt.2", &f, NULL), 0);
    filter_add_eq(&f, column, value);
    ASSERT_INT_EQ(filter_check(f, cols, 2, NULL), 0);
    ASSERT_TRUE(filter_match(f, mine, cols, 2));
    ASSERT_TRUE(!filter_match(f, theirs, cols, 2));
    filter_free(f);
    filter_rows_free(r);
    json_decref(mine);
    json_decref(theirs);
}

int
main(void)
{
    RUN(test_admins_see_all);
    RUN(test_user_rows);
    RUN(test_partner_rows);
    RUN(test_presence_condition_and_order);
    RUN(test_parse_errors);
    RUN(test_resolved_rule_filters_records);
    return HARNESS_DONE();
}
