/*
 * test_filter_key.c: index keys of eq conditions agree with filter_match().
 */
#include <jansson.h>
#include <stdlib.h>

#include "base/base.h"
#include "filter/filter.h"
#include "harness.h"

static const struct filter_column cols[] = {
    { "id", "int8" }, { "name", "text" }, { "u", "uuid" }, { "n", "numeric" }, { "v", "varchar" },
};
#define NCOLS (sizeof cols / sizeof cols[0])

static char column_copy[64];

/* Returns the key text of the filter (malloc'd) or NULL when it has none; *column points
 * at a copy of the keyed column (the filter is freed before returning). */
static char *
eq_key(const char *text, const char **column)
{
    struct filter *f = NULL;
    struct gw_buf key;
    const char *type, *col;
    char *out = NULL;

    gw_buf_init(&key);
    if (filter_parse(text, &f, NULL) == 0 && filter_eq_key(f, cols, NCOLS, &col, &type, &key)) {
        out = gw_buf_steal(&key, NULL);
        snprintf(column_copy, sizeof column_copy, "%s", col);
        *column = column_copy;
    }
    gw_buf_release(&key);
    filter_free(f);
    return out;
}

static char *
value_key(const char *json, const char *type)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    struct gw_buf key;
    char *out = NULL;

    gw_buf_init(&key);
    if (filter_value_key(v, type, &key))
        out = gw_buf_steal(&key, NULL);
    gw_buf_release(&key);
    json_decref(v);
    return out;
}

static void
test_int_keys(void)
{
    const char *col = NULL;
    char *k = eq_key("id=eq.042", &col);
    char *v1 = value_key("42", "int8"), *v2 = value_key("\"42\"", "int8");

    ASSERT_STR_EQ(k, "42");
    ASSERT_STR_EQ(col, "id");
    ASSERT_STR_EQ(v1, "42");
    ASSERT_STR_EQ(v2, "42");
    free(k);
    free(v1);
    free(v2);
}

static void
test_uuid_and_text_keys(void)
{
    const char *col = NULL;
    char *k = eq_key("u=eq.A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", &col);
    char *v = value_key("\"a0eebc999c0b4ef8bb6d6bb9bd380a11\"", "uuid");
    char *t = eq_key("name=eq.\"a,b\"", &col);

    ASSERT_STR_EQ(k, "a0eebc999c0b4ef8bb6d6bb9bd380a11");
    ASSERT_STR_EQ(v, k);
    ASSERT_STR_EQ(t, "a,b");
    ASSERT_STR_EQ(col, "name");
    free(k);
    free(v);
    free(t);
}

static void
test_not_keyed(void)
{
    const char *col = NULL;
    char *a = eq_key("n=eq.1.0", &col); /* numeric: 1.0 == 1, not a text key */
    char *b = eq_key("id=gt.5", &col);  /* no eq condition */
    char *c = eq_key("id=not.in.(1,2)", &col);
    char *d = value_key("null", "int8"); /* null never equals anything */

    ASSERT_NULL(a);
    ASSERT_NULL(b);
    ASSERT_NULL(c);
    ASSERT_NULL(d);
}

static void
test_second_condition_keyed(void)
{
    const char *col = NULL;
    char *k = eq_key("n=gt.1,v=eq.x", &col);

    ASSERT_STR_EQ(k, "x");
    ASSERT_STR_EQ(col, "v");
    free(k);
}

int
main(void)
{
    RUN(test_int_keys);
    RUN(test_uuid_and_text_keys);
    RUN(test_not_keyed);
    RUN(test_second_condition_keyed);
    return HARNESS_DONE();
}
