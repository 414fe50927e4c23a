/*
 * rows.c: row rules, which say which rows of a table an identity may see.
 *
 * A rule is `TABLE all|COLUMN={CLAIM} [CLAIM=V1|V2 ...]`, tokens separated by spaces.
 * TABLE is schema.table, schema.* or *; the conditions compare claims with the listed
 * values ('*' means the claim only has to be present). Rules are kept in the order
 * added; filter_rows_resolve() walks them once and the first rule whose table and
 * conditions match decides: all rows, or the rows whose column equals the claim. No rule
 * means no row. Claim names may contain ':' (custom:business_id), never spaces or '='.
 */
#include "filter/filter.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define ROWS_USAGE "expected TABLE all|COLUMN={CLAIM} [CLAIM=V1|V2 ...]"

struct rows_rule {
    char *schema;                /* owned schema, NULL for any */
    char *table;                 /* owned table, NULL for any */
    char *column;                /* owned column compared with the claim, NULL for all */
    char *claim;                 /* owned claim giving the column's value, NULL for all */
    struct gw_claim_cond *conds; /* owned conditions, all must hold */
    size_t nconds;               /* conditions */
};

struct filter_rows {
    struct rows_rule *rules; /* owned, in evaluation order */
    size_t n;                /* rules */
};

/* A token of the rule text: a run without spaces or tabs. */
struct tok {
    const char *p; /* start, inside the rule text */
    int len;       /* bytes (int for %.*s) */
};

struct filter_rows *
filter_rows_new(void)
{
    return gw_xcalloc(1, sizeof(struct filter_rows));
}

static void
rule_release(struct rows_rule *ru)
{
    for (size_t i = 0; i < ru->nconds; i++)
        gw_claim_cond_release(&ru->conds[i]);
    free(ru->conds);
    free(ru->schema);
    free(ru->table);
    free(ru->column);
    free(ru->claim);
}

void
filter_rows_free(struct filter_rows *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_release(&r->rules[i]);
    free(r->rules);
    free(r);
}

/* Reads the next token at *s; returns false at the end of the text. */
static bool
next_tok(const char **s, struct tok *t)
{
    size_t len;

    if (!gw_next_token(s, &t->p, &len))
        return false;
    t->len = (int)len;
    return true;
}

/* Parses *, schema.* or schema.table. */
static int
parse_table(struct rows_rule *ru, const struct tok *t, struct gw_buf *err)
{
    const char *dot = memchr(t->p, '.', (size_t)t->len), *end = t->p + t->len;

    if (t->len == 1 && *t->p == '*')
        return 0;
    if (!dot || dot == t->p || dot + 1 == end || memchr(dot + 1, '.', (size_t)(end - dot - 1)) ||
        (dot - t->p == 1 && *t->p == '*')) {
        gw_buf_printf(err, "row_rule: bad table '%.*s': expected schema.table, schema.* or *",
                      t->len, t->p);
        return GW_EPARSE;
    }
    ru->schema = gw_xstrndup(t->p, (size_t)(dot - t->p));
    if (end - dot != 2 || dot[1] != '*')
        ru->table = gw_xstrndup(dot + 1, (size_t)(end - dot - 1));
    return 0;
}

/* Parses all or COLUMN={CLAIM}. */
static int
parse_grant(struct rows_rule *ru, const struct tok *t, struct gw_buf *err)
{
    const char *eq = memchr(t->p, '=', (size_t)t->len), *end = t->p + t->len;

    if (t->len == 3 && memcmp(t->p, "all", 3) == 0)
        return 0;
    if (!eq || eq == t->p || end - eq < 4 || eq[1] != '{' || end[-1] != '}' ||
        memchr(eq + 2, '{', (size_t)(end - eq - 3)) ||
        memchr(eq + 2, '}', (size_t)(end - eq - 3))) {
        gw_buf_printf(err, "row_rule: bad grant '%.*s': expected all or COLUMN={CLAIM}", t->len,
                      t->p);
        return GW_EPARSE;
    }
    ru->column = gw_xstrndup(t->p, (size_t)(eq - t->p));
    ru->claim = gw_xstrndup(eq + 2, (size_t)(end - eq - 3));
    return 0;
}

/* Parses CLAIM=V1|V2 (the claim name is up to the first '='). */
static int
parse_cond(struct rows_rule *ru, const struct tok *t, struct gw_buf *err)
{
    struct gw_claim_cond c;
    struct gw_buf why;
    int rc;

    gw_buf_init(&why);
    rc = gw_claim_cond_parse(&c, t->p, (size_t)t->len, &why);
    if (rc && err)
        gw_buf_printf(err, "row_rule: %s", why.data ? why.data : "bad condition");
    gw_buf_release(&why);
    if (rc)
        return rc;
    ru->conds = gw_xrealloc(ru->conds, (ru->nconds + 1) * sizeof(*ru->conds));
    ru->conds[ru->nconds++] = c;
    return 0;
}

static int
parse_rule(struct rows_rule *ru, const char *text, struct gw_buf *err)
{
    const char *s = text;
    struct tok table, grant, t;
    int rc;

    if (!next_tok(&s, &table) || !next_tok(&s, &grant)) {
        gw_buf_printf(err, "row_rule: " ROWS_USAGE ", got '%s'", text);
        return GW_EPARSE;
    }
    rc = parse_table(ru, &table, err);
    if (rc == 0)
        rc = parse_grant(ru, &grant, err);
    while (rc == 0 && next_tok(&s, &t))
        rc = parse_cond(ru, &t, err);
    return rc;
}

int
filter_rows_add(struct filter_rows *r, const char *rule, struct gw_buf *err)
{
    struct gw_buf scratch;
    struct rows_rule ru;
    int rc;

    if (!r || !rule)
        return GW_EINVAL;
    gw_buf_init(&scratch);
    memset(&ru, 0, sizeof(ru));
    rc = parse_rule(&ru, rule, err ? err : &scratch);
    if (rc != 0) {
        rule_release(&ru);
        goto out;
    }
    r->rules = gw_xrealloc(r->rules, (r->n + 1) * sizeof(*r->rules));
    r->rules[r->n++] = ru;
out:
    gw_buf_release(&scratch);
    return rc;
}

static bool
rule_applies(const struct rows_rule *ru, const char *schema, const char *table,
             filter_claim_fn *claim, void *ud)
{
    if (ru->schema && strcmp(ru->schema, schema) != 0)
        return false;
    if (ru->table && strcmp(ru->table, table) != 0)
        return false;
    for (size_t i = 0; i < ru->nconds; i++) {
        if (!gw_claim_cond_holds(&ru->conds[i], claim(ud, ru->conds[i].claim)))
            return false;
    }
    return true;
}

enum filter_rows_result
filter_rows_resolve(const struct filter_rows *r, const char *schema, const char *table,
                    filter_claim_fn *claim, void *ud, const char **column, const char **value)
{
    *column = NULL;
    *value = NULL;
    for (size_t i = 0; r && i < r->n; i++) {
        const struct rows_rule *ru = &r->rules[i];
        const char *v;

        if (!rule_applies(ru, schema, table, claim, ud))
            continue;
        if (!ru->column)
            return FILTER_ROWS_ALL;
        v = claim(ud, ru->claim);
        if (!v)
            return FILTER_ROWS_NONE;
        *column = ru->column;
        *value = v;
        return FILTER_ROWS_WHERE;
    }
    return FILTER_ROWS_NONE;
}
