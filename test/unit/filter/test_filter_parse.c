/*
 * test_filter_parse.c: filter syntax (PROTOCOL.md 5.2), its error texts, the
 * normalisation behind filter_canonical() and filter_add_eq(). The parsed shape is
 * observed through the canonical text, which prints every condition with quoted values.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "filter/filter.h"
#include "harness.h"

/* Parses text and returns its canonical text in a static buffer ("ERR:<msg>" on error). */
static const char *
canon(const char *text)
{
    static char out[4096];
    struct gw_buf b, err;
    struct filter *f = NULL;
    int rc;

    gw_buf_init(&b);
    gw_buf_init(&err);
    rc = filter_parse(text, &f, &err);
    if (rc == 0)
        filter_canonical(f, &b);
    snprintf(out, sizeof(out), "%s%s", rc == 0 ? "" : "ERR:", rc == 0 ? b.data : err.data);
    if (rc != 0 && rc != GW_EPARSE)
        snprintf(out, sizeof(out), "unexpected rc %d", rc);
    filter_free(f);
    gw_buf_release(&b);
    gw_buf_release(&err);
    return out;
}

/* Parses text, expects GW_EPARSE and a NULL filter, and returns the message. */
static const char *
parse_error(const char *text)
{
    static char out[4096];
    struct gw_buf err;
    struct filter *f = (struct filter *)&out; /* must be reset to NULL */
    int rc;

    gw_buf_init(&err);
    rc = filter_parse(text, &f, &err);
    snprintf(out, sizeof(out), "%s", rc == GW_EPARSE && f == NULL && err.data ? err.data : "?");
    gw_buf_release(&err);
    return out;
}

static void
test_operators(void)
{
    ASSERT_STR_EQ(canon("id=eq.5"), "id=eq.\"5\"");
    ASSERT_STR_EQ(canon("id=neq.5"), "id=neq.\"5\"");
    ASSERT_STR_EQ(canon("id=lt.5"), "id=lt.\"5\"");
    ASSERT_STR_EQ(canon("id=lte.5"), "id=lte.\"5\"");
    ASSERT_STR_EQ(canon("id=gt.5"), "id=gt.\"5\"");
    ASSERT_STR_EQ(canon("id=gte.5"), "id=gte.\"5\"");
    ASSERT_STR_EQ(canon("id=in.(1,2,3)"), "id=in.(\"1\",\"2\",\"3\")");
    /* The value runs to the end of the segment and may hold dots and '='. */
    ASSERT_STR_EQ(canon("v=eq.1.5.x=y"), "v=eq.\"1.5.x=y\"");
    ASSERT_STR_EQ(canon("v=eq."), "v=eq.\"\"");
    ASSERT_STR_EQ(canon("  id = eq.5  "), "id=eq.\"5\"");
}

static void
test_negation(void)
{
    ASSERT_STR_EQ(canon("id=not.eq.5"), "id=neq.\"5\"");
    ASSERT_STR_EQ(canon("id=not.neq.5"), "id=eq.\"5\"");
    ASSERT_STR_EQ(canon("id=not.lt.5"), "id=gte.\"5\"");
    ASSERT_STR_EQ(canon("id=not.lte.5"), "id=gt.\"5\"");
    ASSERT_STR_EQ(canon("id=not.gt.5"), "id=lte.\"5\"");
    ASSERT_STR_EQ(canon("id=not.gte.5"), "id=lt.\"5\"");
    ASSERT_STR_EQ(canon("s=not.in.(a,b)"), "s=not.in.(\"a\",\"b\")");
    ASSERT_STR_EQ(canon("s=not.in.(a)"), "s=neq.\"a\"");
    /* Only a leading not. negates; "not" as a column value is plain text. */
    ASSERT_STR_EQ(canon("s=eq.not.x"), "s=eq.\"not.x\"");
}

static void
test_quoted_values(void)
{
    ASSERT_STR_EQ(canon("name=eq.\"a,b\",id=eq.1"), "id=eq.\"1\",name=eq.\"a,b\"");
    ASSERT_STR_EQ(canon("name=eq.\"(x,y)\""), "name=eq.\"(x,y)\"");
    ASSERT_STR_EQ(canon("name=eq.\"say \\\"hi\\\" \\\\ ok\""),
                  "name=eq.\"say \\\"hi\\\" \\\\ ok\"");
    ASSERT_STR_EQ(canon("name=eq.\"\""), "name=eq.\"\"");
    ASSERT_STR_EQ(canon("name=eq.\" padded \""), "name=eq.\" padded \"");
}

static void
test_in_lists(void)
{
    struct gw_buf text, want;

    /* Sorted, duplicates dropped, items trimmed, quoted items may hold ',' and ')'. */
    ASSERT_STR_EQ(canon("s=in.(b, \"c,d)\" , a,a)"), "s=in.(\"a\",\"b\",\"c,d)\")");
    ASSERT_STR_EQ(canon("s=in.(x)"), "s=eq.\"x\"");
    ASSERT_STR_EQ(canon("s=in.()"), "s=in.()");
    ASSERT_STR_EQ(canon("s=in.(a,b),t=eq.1"), "s=in.(\"a\",\"b\"),t=eq.\"1\"");

    gw_buf_init(&text);
    gw_buf_append_str(&text, "n=in.(");
    for (int i = 0; i < 100; i++)
        gw_buf_printf(&text, "%s%d", i ? "," : "", 1000 + i);
    gw_buf_append_str(&text, ")");
    ASSERT_TRUE(strncmp(canon(text.data), "n=in.(\"1000\",\"1001\",", 20) == 0);
    ASSERT_TRUE(strstr(canon(text.data), "\"1099\")") != NULL);
    text.len--;
    gw_buf_append_str(&text, ",1100)");
    /* The message quotes the first 200 bytes of the condition and then "...". */
    gw_buf_init(&want);
    gw_buf_append_str(&want, "Error parsing `filter` params: more than 100 values in an `in` "
                             "list in \"");
    gw_buf_append(&want, text.data, 200);
    gw_buf_append_str(&want, "...\"");
    ASSERT_STR_EQ(parse_error(text.data), want.data);
    ASSERT_TRUE(strstr(parse_error(text.data), ",1037,1038...\"") != NULL);
    gw_buf_release(&want);
    gw_buf_release(&text);
}

static void
test_empty(void)
{
    struct filter *f = (struct filter *)&f;
    struct gw_buf b;

    ASSERT_INT_EQ(filter_parse(NULL, &f, NULL), 0);
    ASSERT_NULL(f);
    f = (struct filter *)&f;
    ASSERT_INT_EQ(filter_parse("", &f, NULL), 0);
    ASSERT_NULL(f);
    f = (struct filter *)&f;
    ASSERT_INT_EQ(filter_parse("  \t ", &f, NULL), 0);
    ASSERT_NULL(f);
    gw_buf_init(&b);
    filter_canonical(NULL, &b);
    ASSERT_MEM_STR(b.data, b.len, "");
    gw_buf_release(&b);
    filter_free(NULL);
}

static void
test_operator_errors(void)
{
    ASSERT_STR_EQ(parse_error("id=foo.hey"),
                  "Error parsing `filter` params: [\"foo\", \"hey\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    ASSERT_STR_EQ(parse_error("name=like.a%"),
                  "Error parsing `filter` params: [\"like\", \"a%\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    ASSERT_STR_EQ(parse_error("name=not.ilike.a%"),
                  "Error parsing `filter` params: [\"ilike\", \"a%\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    ASSERT_STR_EQ(parse_error("x=is.null"),
                  "Error parsing `filter` params: [\"is\", \"null\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    ASSERT_STR_EQ(parse_error("x=EQ.1"),
                  "Error parsing `filter` params: [\"EQ\", \"1\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    ASSERT_STR_EQ(parse_error("idfoo"), "Error parsing `filter` params: [\"idfoo\"] (expected "
                                        "column=operator.value)");
    ASSERT_STR_EQ(parse_error("id=eq5"), "Error parsing `filter` params: [\"eq5\"] (expected "
                                         "column=operator.value)");
}

static void
test_syntax_errors(void)
{
    struct gw_buf err;
    struct filter *f = NULL;

    ASSERT_STR_EQ(parse_error("=eq.5"),
                  "Error parsing `filter` params: empty column name in \"=eq.5\"");
    ASSERT_STR_EQ(parse_error("a=eq.1,,b=eq.2"),
                  "Error parsing `filter` params: empty condition in \"a=eq.1,,b=eq.2\"");
    ASSERT_STR_EQ(parse_error("a=eq.1, "),
                  "Error parsing `filter` params: empty condition in \"a=eq.1,\"");
    ASSERT_STR_EQ(parse_error("name=eq.\"abc"),
                  "Error parsing `filter` params: unterminated quoted value in "
                  "\"name=eq.\\\"abc\"");
    ASSERT_STR_EQ(parse_error("name=eq.\"a\"b"),
                  "Error parsing `filter` params: unexpected text after a quoted value in "
                  "\"name=eq.\\\"a\\\"b\"");
    ASSERT_STR_EQ(parse_error("name=eq.a\"b"),
                  "Error parsing `filter` params: a value containing '\"' must be quoted in "
                  "\"name=eq.a\\\"b\"");
    ASSERT_STR_EQ(parse_error("s=in.a"),
                  "Error parsing `filter` params: `in` filter value must be wrapped by "
                  "parentheses in \"s=in.a\"");
    ASSERT_STR_EQ(parse_error("s=in.(a,b"),
                  "Error parsing `filter` params: `in` filter value must be wrapped by "
                  "parentheses in \"s=in.(a,b\"");
    ASSERT_STR_EQ(parse_error("s=in.(a,,b)"),
                  "Error parsing `filter` params: empty value in an `in` list in "
                  "\"s=in.(a,,b)\"");
    ASSERT_STR_EQ(parse_error("s=in.(a,\"b\"c)"),
                  "Error parsing `filter` params: unexpected text after a quoted value in "
                  "\"s=in.(a,\\\"b\\\"c)\"");
    /* A later bad condition fails the whole filter; messages are appended to err. */
    ASSERT_STR_EQ(parse_error("a=eq.1,b=xx.2"),
                  "Error parsing `filter` params: [\"xx\", \"2\"] (unsupported operator; "
                  "use eq, neq, lt, lte, gt, gte or in)");
    gw_buf_init(&err);
    gw_buf_append_str(&err, "ctx: ");
    ASSERT_INT_EQ(filter_parse("a", &f, &err), GW_EPARSE);
    ASSERT_STR_EQ(err.data, "ctx: Error parsing `filter` params: [\"a\"] (expected "
                            "column=operator.value)");
    ASSERT_INT_EQ(filter_parse("a", &f, NULL), GW_EPARSE);
    ASSERT_NULL(f);
    gw_buf_release(&err);
}

static void
test_canonical_groups_equivalents(void)
{
    char a[512];

    snprintf(a, sizeof(a), "%s", canon("a=eq.1,b=gt.2"));
    ASSERT_STR_EQ(canon("b=gt.2, a=eq.1"), a);
    ASSERT_STR_EQ(canon("a=eq.1,b=not.lte.2,a=eq.1"), a);
    ASSERT_STR_EQ(canon("a=in.(1),b=gt.\"2\""), a);
    ASSERT_TRUE(strcmp(canon("a=eq.1,b=gt.3"), a) != 0);
    ASSERT_TRUE(strcmp(canon("a=eq.1,b=gte.2"), a) != 0);
    ASSERT_STR_EQ(canon("s=in.(y,x,x)"), "s=in.(\"x\",\"y\")");
    ASSERT_STR_EQ(canon("s=in.(x,y)"), "s=in.(\"x\",\"y\")");
    /* A quoted comma is one value, not a list. */
    ASSERT_STR_EQ(canon("a=eq.\"1,2\""), "a=eq.\"1,2\"");
    ASSERT_STR_EQ(canon("a=in.(1,2)"), "a=in.(\"1\",\"2\")");
}

static void
test_canonical_round_trip(void)
{
    static const char *const texts[] = {
        "name=eq.\"say \\\"hi\\\" \\\\ (a,b)\",id=not.in.(3,\"x,y\",\"\"),ts=gte.2025-05-01",
        "v=eq.,w=lt.\"\"",
        "s=in.()",
    };
    char first[1024];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        snprintf(first, sizeof(first), "%s", canon(texts[i]));
        ASSERT_TRUE(strncmp(first, "ERR:", 4) != 0);
        ASSERT_STR_EQ(canon(first), first);
    }
}

static void
test_add_eq(void)
{
    struct filter *f = NULL;
    struct gw_buf b;

    gw_buf_init(&b);
    filter_add_eq(&f, "business_id", "b\"7");
    ASSERT_NOT_NULL(f);
    filter_canonical(f, &b);
    ASSERT_STR_EQ(b.data, "business_id=eq.\"b\\\"7\"");
    filter_free(f);
    f = NULL;

    ASSERT_INT_EQ(filter_parse("z=gt.1", &f, NULL), 0);
    filter_add_eq(&f, "a", "x");
    gw_buf_reset(&b);
    filter_canonical(f, &b);
    ASSERT_STR_EQ(b.data, "a=eq.\"x\",z=gt.\"1\"");
    filter_free(f);
    gw_buf_release(&b);
}

int
main(void)
{
    RUN(test_operators);
    RUN(test_negation);
    RUN(test_quoted_values);
    RUN(test_in_lists);
    RUN(test_empty);
    RUN(test_operator_errors);
    RUN(test_syntax_errors);
    RUN(test_canonical_groups_equivalents);
    RUN(test_canonical_round_trip);
    RUN(test_add_eq);
    return HARNESS_DONE();
}
