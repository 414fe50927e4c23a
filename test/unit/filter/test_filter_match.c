/*
 * test_filter_match.c: filter_check() against a table's columns and filter_match() on
 * typed JSON records, with the semantics of each column type: numbers compare as
 * numbers, timestamps as instants, uuids and citext case-insensitively, text bytewise,
 * and NULL or missing values fail every operator.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "filter/filter.h"
#include "harness.h"

static const struct filter_column cols[] = {
    { "id", "int8" },       { "n", "int4" },         { "small", "int2" },    { "oid", "oid" },
    { "price", "numeric" }, { "f", "float8" },       { "f4", "float4" },     { "done", "bool" },
    { "uid", "uuid" },      { "ts", "timestamptz" }, { "lts", "timestamp" }, { "d", "date" },
    { "t", "time" },        { "name", "text" },      { "vc", "varchar" },    { "meta", "jsonb" },
    { "tags", "_text" },    { "nums", "_int4" },     { "code", "bpchar" },   { "email", "citext" },
    { "notype", NULL },
};

#define NCOLS (sizeof(cols) / sizeof(cols[0]))

/* Evaluates filter text on a record given as JSON text: 1 match, 0 no match, -1 error. */
static int
match(const char *filter, const char *record)
{
    struct filter *f = NULL;
    json_t *rec = json_loads(record, 0, NULL);
    int r = -1;

    if (rec && filter_parse(filter, &f, NULL) == 0 && filter_check(f, cols, NCOLS, NULL) == 0)
        r = filter_match(f, rec, cols, NCOLS) ? 1 : 0;
    filter_free(f);
    json_decref(rec);
    return r;
}

/* Checks filter text against cols and returns the message ("" when it passes). */
static const char *
check(const char *filter)
{
    static char out[1024];
    struct filter *f = NULL;
    struct gw_buf err;
    int rc;

    gw_buf_init(&err);
    rc = filter_parse(filter, &f, NULL);
    if (rc == 0)
        rc = filter_check(f, cols, NCOLS, &err);
    snprintf(out, sizeof(out), "%s", rc == 0 ? "" : rc == GW_EINVAL && err.data ? err.data : "?");
    filter_free(f);
    gw_buf_release(&err);
    return out;
}

#define PREFIX "Unable to subscribe to changes with given parameters. "

static void
test_check_columns(void)
{
    ASSERT_STR_EQ(check("nope=eq.1"), PREFIX "Column \"nope\" does not exist on the table");
    ASSERT_STR_EQ(check("id=eq.1,Name=eq.x"), PREFIX "Column \"Name\" does not exist on the table");
    ASSERT_STR_EQ(check("id=eq.1,name=eq.x,notype=eq.y"), "");
    ASSERT_INT_EQ(filter_check(NULL, cols, NCOLS, NULL), 0);
}

static void
test_check_values(void)
{
    ASSERT_STR_EQ(check("id=eq.abc"),
                  PREFIX "invalid input syntax for type int8: \"abc\" (column \"id\")");
    ASSERT_STR_EQ(check("id=eq.1.5"),
                  PREFIX "invalid input syntax for type int8: \"1.5\" (column \"id\")");
    ASSERT_STR_EQ(check("id=eq.9223372036854775807,id=gt.-9223372036854775808"), "");
    ASSERT_STR_EQ(check("id=eq.9223372036854775808"),
                  PREFIX "value out of range for type int8: \"9223372036854775808\" (column "
                         "\"id\")");
    ASSERT_STR_EQ(check("small=eq.32767,small=gt.-32768"), "");
    ASSERT_STR_EQ(check("small=eq.32768"),
                  PREFIX "value out of range for type int2: \"32768\" (column \"small\")");
    ASSERT_STR_EQ(check("n=in.(1,2147483648)"),
                  PREFIX "value out of range for type int4: \"2147483648\" (column \"n\")");
    ASSERT_STR_EQ(check("oid=eq.4294967295"), "");
    ASSERT_STR_EQ(check("oid=eq.-1"),
                  PREFIX "value out of range for type oid: \"-1\" (column \"oid\")");
    ASSERT_STR_EQ(check("price=eq.12.50,price=gt.-1e3,price=neq.NaN,f=lt.Infinity,f=gt..5"), "");
    ASSERT_STR_EQ(check("price=eq.12,5"), "?"); /* "5": a condition without '=' */
    ASSERT_STR_EQ(check("price=eq.1e"),
                  PREFIX "invalid input syntax for type numeric: \"1e\" (column \"price\")");
    ASSERT_STR_EQ(check("f=eq.1e400"),
                  PREFIX "value out of range for type float8: \"1e400\" (column \"f\")");
    ASSERT_STR_EQ(check("f4=eq.1e39"),
                  PREFIX "value out of range for type float4: \"1e39\" (column \"f4\")");
    ASSERT_STR_EQ(check("done=eq.maybe"),
                  PREFIX "invalid input syntax for type bool: \"maybe\" (column \"done\")");
    ASSERT_STR_EQ(check("done=in.(t,F,yes,NO,on,off,1,0,TRUE,false)"), "");
    ASSERT_STR_EQ(check("uid=eq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"),
                  PREFIX "invalid input syntax for type uuid: "
                         "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\" (column \"uid\")");
    ASSERT_STR_EQ(check("uid=in.(A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,"
                        "{a0eebc999c0b4ef8bb6d6bb9bd380a11})"),
                  "");
}

static void
test_check_times_and_structures(void)
{
    ASSERT_STR_EQ(check("ts=gt.2025-05-01,ts=lt.2025-05-01T12:34:56.123456+00:00,"
                        "ts=neq.2025-05-01 12:34Z,ts=neq.2025-05-01T12:34:56-0530,"
                        "ts=neq.2025-05-01T12:34:56+02,ts=neq.infinity,lts=lt.2025-05-01 10:00,"
                        "d=gte.2025-05-01,t=lt.23:59:59.999"),
                  "");
    ASSERT_STR_EQ(check("ts=gt.2025-13-01"), PREFIX "invalid input syntax for type timestamptz: "
                                                    "\"2025-13-01\" (column \"ts\")");
    ASSERT_STR_EQ(check("d=eq.2025-02-29"),
                  PREFIX "invalid input syntax for type date: \"2025-02-29\" (column \"d\")");
    ASSERT_STR_EQ(check("d=eq.2024-02-29"), "");
    ASSERT_STR_EQ(check("lts=eq.yesterday"), PREFIX "invalid input syntax for type timestamp: "
                                                    "\"yesterday\" (column \"lts\")");
    ASSERT_STR_EQ(check("ts=eq.2025-05-01T25:00"), PREFIX "invalid input syntax for type "
                                                          "timestamptz: \"2025-05-01T25:00\" "
                                                          "(column \"ts\")");
    ASSERT_STR_EQ(check("meta=eq.\"{\\\"a\\\":1}\""), "");
    ASSERT_STR_EQ(check("meta=eq.{a:1}"),
                  PREFIX "invalid input syntax for type jsonb: \"{a:1}\" (column \"meta\")");
    ASSERT_STR_EQ(check("meta=gt.1"),
                  PREFIX "Operator gt is not supported on column \"meta\" of type jsonb");
    ASSERT_STR_EQ(check("tags=not.lt.{a}"),
                  PREFIX "Operator gte is not supported on column \"tags\" of type _text");
    ASSERT_STR_EQ(check("nums=eq.\"{1,2,NULL}\",tags=eq.\"{a,\\\"b c\\\"}\""), "");
    ASSERT_STR_EQ(check("nums=eq.\"{1,x}\""),
                  PREFIX "invalid input syntax for type _int4: \"{1,x}\" (column \"nums\")");
    ASSERT_STR_EQ(check("nums=eq.1"),
                  PREFIX "invalid input syntax for type _int4: \"1\" (column \"nums\")");
}

static void
test_numbers(void)
{
    /* Text order would put "10" before "9". */
    ASSERT_INT_EQ(match("n=gt.9", "{\"n\":10}"), 1);
    ASSERT_INT_EQ(match("n=lt.9", "{\"n\":10}"), 0);
    ASSERT_INT_EQ(match("n=gte.10,n=lte.10", "{\"n\":10}"), 1);
    ASSERT_INT_EQ(match("n=lt.-4", "{\"n\":-5}"), 1);
    ASSERT_INT_EQ(match("n=eq.+07", "{\"n\":7}"), 1);
    /* Numeric values as strings, and decimals with trailing zeros. */
    ASSERT_INT_EQ(match("n=eq.5", "{\"n\":\"5\"}"), 1);
    ASSERT_INT_EQ(match("price=eq.12.5", "{\"price\":\"12.50\"}"), 1);
    ASSERT_INT_EQ(match("price=eq.0.10", "{\"price\":0.1}"), 1);
    ASSERT_INT_EQ(match("price=gt.12.49", "{\"price\":12.5}"), 1);
    ASSERT_INT_EQ(match("price=gt.-1", "{\"price\":-0.5}"), 1);
    ASSERT_INT_EQ(match("price=eq.0", "{\"price\":\"-0.000\"}"), 1);
    ASSERT_INT_EQ(match("price=gt.123456789012345678901234567890.4",
                        "{\"price\":\"123456789012345678901234567890.5\"}"),
                  1);
    ASSERT_INT_EQ(match("price=eq.1e3", "{\"price\":1000}"), 1);
    ASSERT_INT_EQ(match("price=gt.1e308", "{\"price\":\"NaN\"}"), 1);
    ASSERT_INT_EQ(match("price=eq.NaN", "{\"price\":\"NaN\"}"), 1);
    ASSERT_INT_EQ(match("f=eq.0.0000001", "{\"f\":1e-7}"), 1);
    ASSERT_INT_EQ(match("f=lt.Infinity", "{\"f\":1.5e300}"), 1);
    ASSERT_INT_EQ(match("f4=eq.0.1", "{\"f4\":0.1}"), 1);
    /* int8 beyond 2^53 stays exact, as an integer and as a string. */
    ASSERT_INT_EQ(match("id=eq.9007199254740993", "{\"id\":9007199254740993}"), 1);
    ASSERT_INT_EQ(match("id=eq.9007199254740992", "{\"id\":9007199254740993}"), 0);
    ASSERT_INT_EQ(match("id=gt.9007199254740992", "{\"id\":\"9007199254740993\"}"), 1);
    ASSERT_INT_EQ(match("id=lt.-9223372036854775807", "{\"id\":-9223372036854775808}"), 1);
    /* A record value that is not a number fails every operator. */
    ASSERT_INT_EQ(match("n=neq.1", "{\"n\":\"abc\"}"), 0);
    ASSERT_INT_EQ(match("n=not.in.(1,2)", "{\"n\":true}"), 0);
}

static void
test_text(void)
{
    ASSERT_INT_EQ(match("name=eq.Ann", "{\"name\":\"Ann\"}"), 1);
    ASSERT_INT_EQ(match("name=eq.ann", "{\"name\":\"Ann\"}"), 0);
    ASSERT_INT_EQ(match("name=eq.\"a,b\"", "{\"name\":\"a,b\"}"), 1);
    /* Bytewise: 'B' (0x42) sorts before 'a' (0x61), unlike most collations. */
    ASSERT_INT_EQ(match("name=lt.a", "{\"name\":\"B\"}"), 1);
    ASSERT_INT_EQ(match("name=gt.ab", "{\"name\":\"abc\"}"), 1);
    ASSERT_INT_EQ(match("vc=gt.\xc3\xa9", "{\"vc\":\"\xc3\xa9t\xc3\xa9\"}"), 1);
    ASSERT_INT_EQ(match("code=eq.ab", "{\"code\":\"ab  \"}"), 1);
    ASSERT_INT_EQ(match("email=eq.ann@x.com", "{\"email\":\"Ann@X.com\"}"), 1);
    /* A column without a type, or absent from cols, compares as text. */
    ASSERT_INT_EQ(match("notype=eq.5", "{\"notype\":5}"), 1);
    ASSERT_INT_EQ(match("notype=eq.5.0", "{\"notype\":5}"), 0);
}

static void
test_unknown_column_in_record_compares_as_text(void)
{
    struct filter *f = NULL;
    json_t *rec = json_loads("{\"extra\":10,\"flag\":true}", 0, NULL);

    ASSERT_INT_EQ(filter_parse("extra=lt.9,flag=eq.true", &f, NULL), 0);
    ASSERT_TRUE(filter_match(f, rec, cols, NCOLS)); /* "10" < "9" as text */
    ASSERT_TRUE(filter_match(f, rec, NULL, 0));
    filter_free(f);
    json_decref(rec);
}

static void
test_bool_and_uuid(void)
{
    ASSERT_INT_EQ(match("done=eq.true", "{\"done\":true}"), 1);
    ASSERT_INT_EQ(match("done=eq.t", "{\"done\":true}"), 1);
    ASSERT_INT_EQ(match("done=eq.YES", "{\"done\":true}"), 1);
    ASSERT_INT_EQ(match("done=neq.false", "{\"done\":true}"), 1);
    ASSERT_INT_EQ(match("done=eq.true", "{\"done\":false}"), 0);
    ASSERT_INT_EQ(match("done=eq.f", "{\"done\":\"false\"}"), 1);
    ASSERT_INT_EQ(match("done=lt.true", "{\"done\":false}"), 1);
    ASSERT_INT_EQ(match("uid=eq.A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                        "{\"uid\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}"),
                  1);
    ASSERT_INT_EQ(match("uid=eq.{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
                        "{\"uid\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}"),
                  1);
    ASSERT_INT_EQ(match("uid=eq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12",
                        "{\"uid\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}"),
                  0);
    ASSERT_INT_EQ(match("uid=gt.00000000-0000-0000-0000-000000000000",
                        "{\"uid\":\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"}"),
                  1);
}

static void
test_timestamps(void)
{
    const char *rec = "{\"ts\":\"2025-05-01T12:34:56.123456+00:00\"}";

    ASSERT_INT_EQ(match("ts=eq.2025-05-01T14:34:56.123456+02:00", rec), 1);
    ASSERT_INT_EQ(match("ts=eq.2025-05-01T07:04:56.123456-0530", rec), 1);
    ASSERT_INT_EQ(match("ts=eq.2025-05-01 12:34:56.123456Z", rec), 1);
    ASSERT_INT_EQ(match("ts=eq.2025-05-01T12:34:56.123456", rec), 1);  /* no zone: UTC */
    ASSERT_INT_EQ(match("ts=eq.2025-05-01T12:34:56.1234555", rec), 1); /* rounded */
    ASSERT_INT_EQ(match("ts=gt.2025-05-01T12:34:56+00", rec), 1);
    ASSERT_INT_EQ(match("ts=lt.2025-05-01T13:34:56+02", rec), 0);
    ASSERT_INT_EQ(match("ts=gt.2025-05-01", rec), 1);
    ASSERT_INT_EQ(match("ts=lt.2025-05-02,ts=gt.2024-12-31T23:59:59.999999", rec), 1);
    ASSERT_INT_EQ(match("ts=lt.infinity,ts=gt.-infinity", rec), 1);
    ASSERT_INT_EQ(match("ts=eq.2025-05-01T12:34:56.123456+00:00",
                        "{\"ts\":\"2025-05-01T15:34:56.123456+03:00\"}"),
                  1);
}

static void
test_timestamp_date_time(void)
{
    const char *rec = "{\"lts\":\"2025-05-01T12:34:56\",\"d\":\"2025-05-01\",\"t\":\"08:00:00\"}";

    ASSERT_INT_EQ(match("lts=gt.2025-05-01", rec), 1);
    ASSERT_INT_EQ(match("lts=lt.2025-05-02", rec), 1);
    ASSERT_INT_EQ(match("lts=eq.2025-05-01", rec), 0);
    ASSERT_INT_EQ(match("lts=eq.2025-05-01 12:34:56", rec), 1);
    /* timestamp without time zone ignores a zone in the filter, as PostgreSQL does. */
    ASSERT_INT_EQ(match("lts=eq.2025-05-01T12:34:56+02:00", rec), 1);
    ASSERT_INT_EQ(match("d=eq.2025-05-01,d=lt.2025-05-10,d=gt.2024-12-31", rec), 1);
    ASSERT_INT_EQ(match("d=eq.2025-5-1", rec), 1);
    ASSERT_INT_EQ(match("d=eq.2025-05-01T23:00", rec), 1);
    ASSERT_INT_EQ(match("t=lt.9:00,t=gt.07:59:59.999999", rec), 1);
    ASSERT_INT_EQ(match("lts=eq.2025-05-01", "{\"lts\":\"not a time\"}"), 0);
}

static void
test_null_and_missing(void)
{
    ASSERT_INT_EQ(match("id=eq.1", "{\"id\":null}"), 0);
    ASSERT_INT_EQ(match("id=neq.1", "{\"id\":null}"), 0);
    ASSERT_INT_EQ(match("id=not.eq.1", "{\"id\":null}"), 0);
    ASSERT_INT_EQ(match("id=not.in.(1,2)", "{\"id\":null}"), 0);
    ASSERT_INT_EQ(match("name=eq.null", "{\"name\":null}"), 0);
    ASSERT_INT_EQ(match("meta=eq.null", "{\"meta\":null}"), 0);
    ASSERT_INT_EQ(match("name=neq.x", "{\"id\":1}"), 0);
    ASSERT_INT_EQ(match("name=not.in.(x)", "{\"id\":1}"), 0);
    ASSERT_INT_EQ(match("name=gt.", "{\"id\":1}"), 0);
    ASSERT_INT_EQ(match("id=eq.1", "[1]"), 0);
    ASSERT_INT_EQ(match("", "{}"), 1);
}

static void
test_in_and_negation(void)
{
    ASSERT_INT_EQ(match("id=in.(1,2,3)", "{\"id\":2}"), 1);
    ASSERT_INT_EQ(match("id=in.(1,2,3)", "{\"id\":4}"), 0);
    ASSERT_INT_EQ(match("id=in.(01,2)", "{\"id\":1}"), 1);
    ASSERT_INT_EQ(match("id=in.()", "{\"id\":1}"), 0);
    ASSERT_INT_EQ(match("id=not.in.(1,2)", "{\"id\":3}"), 1);
    ASSERT_INT_EQ(match("id=not.in.(1,2)", "{\"id\":1}"), 0);
    ASSERT_INT_EQ(match("name=in.(\"a,b\",c)", "{\"name\":\"a,b\"}"), 1);
    ASSERT_INT_EQ(match("id=not.eq.1", "{\"id\":2}"), 1);
    ASSERT_INT_EQ(match("id=not.gt.5", "{\"id\":5}"), 1);
    ASSERT_INT_EQ(match("id=not.gt.5", "{\"id\":6}"), 0);
    ASSERT_INT_EQ(match("ts=in.(2025-05-01T14:00:00+02,2030-01-01)",
                        "{\"ts\":\"2025-05-01T12:00:00+00:00\"}"),
                  1);
}

static void
test_and(void)
{
    const char *rec = "{\"id\":5,\"name\":\"Ann\",\"done\":true,\"price\":9.5}";

    ASSERT_INT_EQ(match("id=gt.1,name=eq.Ann,done=eq.true", rec), 1);
    ASSERT_INT_EQ(match("id=gt.1,name=eq.Bob,done=eq.true", rec), 0);
    ASSERT_INT_EQ(match("id=gt.1,name=eq.Ann,done=eq.false", rec), 0);
    ASSERT_INT_EQ(match("id=gt.5,name=eq.Ann,done=eq.true", rec), 0);
    ASSERT_INT_EQ(match("price=gt.9,price=lt.10", rec), 1);
}

static void
test_json_and_arrays(void)
{
    const char *rec = "{\"meta\":{\"a\":1,\"b\":[1,2]},\"tags\":[\"a\",\"b c\"],"
                      "\"nums\":[[1,2],[3,null]]}";

    /* Values holding ',' or '"' are quoted in the filter; JSON compares as jsonb does. */
    ASSERT_INT_EQ(match("meta=eq.\"{\\\"b\\\":[1,2.0],\\\"a\\\":1}\"", rec), 1);
    ASSERT_INT_EQ(match("meta=eq.\"{\\\"a\\\":1}\"", rec), 0);
    ASSERT_INT_EQ(match("meta=neq.\"{\\\"a\\\":1}\"", rec), 1);
    ASSERT_INT_EQ(match("meta=eq.\"1\"", "{\"meta\":1.0}"), 1);
    ASSERT_INT_EQ(match("tags=eq.\"{a,\\\"b c\\\"}\"", rec), 1);
    ASSERT_INT_EQ(match("tags=eq.\"{\\\"b c\\\",a}\"", rec), 0);
    ASSERT_INT_EQ(match("tags=in.({x},\"{a, b c }\")", rec), 1);
    ASSERT_INT_EQ(match("nums=eq.\"{{1,2},{03,NULL}}\"", rec), 1);
    ASSERT_INT_EQ(match("nums=eq.\"{{1,2},{3,4}}\"", rec), 0);
    ASSERT_INT_EQ(match("nums=eq.\"{1,2}\"", "{\"nums\":[1,2]}"), 1);
    ASSERT_INT_EQ(match("nums=eq.{1}", "{\"nums\":[1,2]}"), 0);
    ASSERT_INT_EQ(match("nums=eq.{}", "{\"nums\":[]}"), 1);
}

static void
test_null_filter(void)
{
    json_t *rec = json_loads("{\"id\":1}", 0, NULL);

    ASSERT_TRUE(filter_match(NULL, rec, cols, NCOLS));
    ASSERT_TRUE(filter_match(NULL, NULL, NULL, 0));
    json_decref(rec);
}

int
main(void)
{
    RUN(test_check_columns);
    RUN(test_check_values);
    RUN(test_check_times_and_structures);
    RUN(test_numbers);
    RUN(test_text);
    RUN(test_unknown_column_in_record_compares_as_text);
    RUN(test_bool_and_uuid);
    RUN(test_timestamps);
    RUN(test_timestamp_date_time);
    RUN(test_null_and_missing);
    RUN(test_in_and_negation);
    RUN(test_and);
    RUN(test_json_and_arrays);
    RUN(test_null_filter);
    return HARNESS_DONE();
}
