/*
 * filter.c: parses postgres_changes filters and prints their canonical text.
 *
 * The text is split on ',' outside "..." and (...) (PROTOCOL.md 5.2); each trimmed
 * segment is `column=[not.]op.value`, split at the first '=' and then at the first '.'
 * after an optional `not.`. Values are raw text or PostgREST-style quoted ("a,b" with \"
 * and \\ escapes); `in` takes a parenthesised list of such values. Conditions are
 * normalised as they are parsed so that equivalent filters print the same canonical
 * text: `not.` is folded into the opposite operator (not.lt is gte), `in` lists are
 * sorted without duplicates, and an `in` of one value becomes eq (or neq under not.).
 * Syntax errors start with "Error parsing `filter` params: " and, for a bad operator,
 * carry the server's detail, the unknown pieces as a list: ["foo", "hey"].
 */
#include "filter/filter.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "filter/filter_int.h"

#define PARSE_PREFIX "Error parsing `filter` params: "
#define ECHO_MAX     200 /* bytes of client text quoted back in an error */

static const struct {
    const char *name;   /* operator as written */
    enum filter__op op; /* internal operator */
} ops[] = {
    { "eq", FILTER__EQ }, { "neq", FILTER__NEQ }, { "lt", FILTER__LT }, { "lte", FILTER__LTE },
    { "gt", FILTER__GT }, { "gte", FILTER__GTE }, { "in", FILTER__IN },
};

const char *const filter__op_names[] = { "eq", "neq", "lt", "lte", "gt", "gte", "in" };

/* The operator that not.op means, for every operator but in. */
static const enum filter__op negated[] = {
    [FILTER__EQ] = FILTER__NEQ, [FILTER__NEQ] = FILTER__EQ, [FILTER__LT] = FILTER__GTE,
    [FILTER__LTE] = FILTER__GT, [FILTER__GT] = FILTER__LTE, [FILTER__GTE] = FILTER__LT,
};

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Narrows [*p, *p + *n) to its bytes without leading and trailing whitespace. */
static void
trim(const char **p, size_t *n)
{
    while (*n > 0 && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*p)[*n - 1]))
        (*n)--;
}

/* Appends s[0..n) as a JSON string, cut to ECHO_MAX bytes on a UTF-8 boundary and then
 * ending in "..." inside the quotes. */
static void
append_echo(struct gw_buf *err, const char *s, size_t n)
{
    size_t cut = n;

    if (n > ECHO_MAX) {
        cut = ECHO_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    gw_buf_append_json_str(err, s, cut);
    if (cut < n) {
        err->len--; /* reopen the closing quote */
        gw_buf_append_str(err, "...\"");
    }
}

/* Appends PARSE_PREFIX, `why` and the quoted segment. */
static int
syntax_error(struct gw_buf *err, const char *why, const char *seg, size_t n)
{
    gw_buf_printf(err, PARSE_PREFIX "%s in ", why);
    append_echo(err, seg, n);
    return GW_EPARSE;
}

/* Returns the end of the segment at p: the next ',' outside quotes and parentheses. */
static const char *
segment_end(const char *p, const char *end)
{
    bool quoted = false;
    int depth = 0;

    for (; p < end; p++) {
        if (quoted && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '(')
            depth++;
        else if (!quoted && *p == ')' && depth > 0)
            depth--;
        else if (!quoted && depth == 0 && *p == ',')
            break;
    }
    return p;
}

/*
 * Reads one value at p[0..n): raw text, or a quoted string with \ escapes that must
 * span the whole range. Returns a malloc'd string, or NULL with the reason in *why.
 */
static char *
read_value(const char *p, size_t n, const char **why)
{
    struct gw_buf b;
    size_t i;

    if (n == 0 || *p != '"') {
        if (memchr(p, '"', n)) {
            *why = "a value containing '\"' must be quoted";
            return NULL;
        }
        return gw_xstrndup(p, n);
    }
    gw_buf_init(&b);
    for (i = 1; i < n && p[i] != '"'; i++) {
        i += p[i] == '\\' && i + 1 < n;
        gw_buf_append(&b, p + i, 1);
    }
    if (i >= n || i + 1 != n) {
        *why = i >= n ? "unterminated quoted value" : "unexpected text after a quoted value";
        gw_buf_release(&b);
        return NULL;
    }
    return gw_buf_steal(&b, NULL);
}

static void
push_value(struct filter__cond *c, char *v)
{
    c->values = gw_xrealloc(c->values, (c->nvalues + 1) * sizeof(*c->values));
    c->values[c->nvalues++] = v;
}

/* Reads "(v1,v2,...)" into c->values; "()" is an empty list. */
static int
read_list(struct filter__cond *c, const char *p, size_t n, const char **why)
{
    const char *end;

    if (n < 2 || p[0] != '(' || p[n - 1] != ')') {
        *why = "`in` filter value must be wrapped by parentheses";
        return GW_EPARSE;
    }
    p++;
    n -= 2;
    trim(&p, &n);
    end = p + n;
    for (const char *q = p; n > 0; q++) {
        const char *stop = segment_end(q, end), *item = q;
        size_t len = (size_t)(stop - q);
        char *v;

        trim(&item, &len);
        if (len == 0) {
            *why = "empty value in an `in` list";
            return GW_EPARSE;
        }
        if (c->nvalues == FILTER_MAX_IN) {
            *why = "more than 100 values in an `in` list";
            return GW_EPARSE;
        }
        v = read_value(item, len, why);
        if (!v)
            return GW_EPARSE;
        push_value(c, v);
        if (stop == end)
            break;
        q = stop;
    }
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Folds not. into the operator, sorts `in` lists without duplicates, and turns an `in`
 * of one value into eq or neq. */
static void
normalise(struct filter__cond *c)
{
    size_t k = 0;

    if (c->op != FILTER__IN) {
        c->op = c->negate ? negated[c->op] : c->op;
        c->negate = false;
        return;
    }
    if (c->nvalues > 1)
        qsort(c->values, c->nvalues, sizeof(*c->values), cmp_str);
    for (size_t i = 0; i < c->nvalues; i++) {
        if (k > 0 && strcmp(c->values[k - 1], c->values[i]) == 0)
            free(c->values[i]);
        else
            c->values[k++] = c->values[i];
    }
    c->nvalues = k;
    if (k == 1) {
        c->op = c->negate ? FILTER__NEQ : FILTER__EQ;
        c->negate = false;
    }
}

/* Appends PARSE_PREFIX and the pieces the server could not use, e.g. ["foo", "hey"]. */
static int
pieces_error(struct gw_buf *err, const char *a, size_t na, const char *b, size_t nb,
             const char *hint)
{
    gw_buf_append_str(err, PARSE_PREFIX "[");
    append_echo(err, a, na);
    if (b) {
        gw_buf_append_str(err, ", ");
        append_echo(err, b, nb);
    }
    gw_buf_printf(err, "] (%s)", hint);
    return GW_EPARSE;
}

static bool
find_op(const char *p, size_t n, enum filter__op *op)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strlen(ops[i].name) == n && memcmp(ops[i].name, p, n) == 0) {
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

/* Reads the value part after "op." into c (one value, or the list of `in`). */
static int
read_values(struct filter__cond *c, const char *p, size_t n, const char **why)
{
    char *v;

    if (c->op == FILTER__IN)
        return read_list(c, p, n, why);
    v = read_value(p, n, why);
    if (!v)
        return GW_EPARSE;
    push_value(c, v);
    return 0;
}

/* Parses one trimmed, non-empty segment s[0..n) into c. */
static int
parse_cond(struct filter__cond *c, const char *s, size_t n, struct gw_buf *err)
{
    const char *eq = memchr(s, '=', n), *end = s + n, *col = s, *rest, *dot, *why = NULL;
    size_t ncol;

    if (!eq)
        return pieces_error(err, s, n, NULL, 0, "expected column=operator.value");
    ncol = (size_t)(eq - s);
    trim(&col, &ncol);
    if (ncol == 0)
        return syntax_error(err, "empty column name", s, n);
    for (rest = eq + 1; rest < end && is_space(*rest);)
        rest++;
    if (end - rest >= 4 && memcmp(rest, "not.", 4) == 0) {
        c->negate = true;
        rest += 4;
    }
    dot = memchr(rest, '.', (size_t)(end - rest));
    if (!dot)
        return pieces_error(err, rest, (size_t)(end - rest), NULL, 0,
                            "expected column=operator.value");
    if (!find_op(rest, (size_t)(dot - rest), &c->op))
        return pieces_error(err, rest, (size_t)(dot - rest), dot + 1, (size_t)(end - dot - 1),
                            "unsupported operator; use eq, neq, lt, lte, gt, gte or in");
    c->column = gw_xstrndup(col, ncol);
    if (read_values(c, dot + 1, (size_t)(end - dot - 1), &why) != 0)
        return syntax_error(err, why, s, n);
    normalise(c);
    return 0;
}

/* Appends a zeroed condition to f and returns it. */
static struct filter__cond *
new_cond(struct filter *f)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->conds = gw_xrealloc(f->conds, f->cap * sizeof(*f->conds));
    }
    return memset(&f->conds[f->n++], 0, sizeof(*f->conds));
}

int
filter_parse(const char *text, struct filter **out, struct gw_buf *err)
{
    struct gw_buf scratch;
    struct filter *f = NULL;
    const char *p = text, *q, *end;
    size_t n = text ? strlen(text) : 0;
    int rc = 0;

    *out = NULL;
    trim(&p, &n);
    if (n == 0)
        return 0;
    gw_buf_init(&scratch);
    err = err ? err : &scratch;
    f = gw_xcalloc(1, sizeof(*f));
    end = p + n;
    for (q = p;; q++) {
        const char *stop = segment_end(q, end), *seg = q;
        size_t len = (size_t)(stop - q);

        trim(&seg, &len);
        rc = len ? parse_cond(new_cond(f), seg, len, err)
                 : syntax_error(err, "empty condition", p, n);
        if (rc != 0 || stop == end)
            break;
        q = stop;
    }
    if (rc == 0) {
        *out = f;
        f = NULL;
    }
    filter_free(f);
    gw_buf_release(&scratch);
    return rc;
}

static void
cond_release(struct filter__cond *c)
{
    for (size_t i = 0; i < c->nvalues; i++)
        free(c->values[i]);
    free(c->values);
    free(c->column);
}

void
filter_free(struct filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        cond_release(&f->conds[i]);
    free(f->conds);
    free(f);
}

void
filter_add_eq(struct filter **f, const char *column, const char *value)
{
    struct filter__cond *c;

    if (!*f)
        *f = gw_xcalloc(1, sizeof(**f));
    c = new_cond(*f);
    c->column = gw_xstrdup(column);
    c->op = FILTER__EQ;
    push_value(c, gw_xstrdup(value));
}

/* ---- canonical text ---- */

static int
cond_cmp(const void *pa, const void *pb)
{
    const struct filter__cond *a = *(const struct filter__cond *const *)pa;
    const struct filter__cond *b = *(const struct filter__cond *const *)pb;
    int r = strcmp(a->column, b->column);

    if (r != 0)
        return r;
    if (a->op != b->op)
        return a->op < b->op ? -1 : 1;
    if (a->negate != b->negate)
        return a->negate ? 1 : -1;
    if (a->nvalues != b->nvalues)
        return a->nvalues < b->nvalues ? -1 : 1;
    for (size_t i = 0; i < a->nvalues && r == 0; i++)
        r = strcmp(a->values[i], b->values[i]);
    return r;
}

/* Appends s between double quotes, with " and \ escaped by a backslash. */
static void
append_quoted(struct gw_buf *out, const char *s)
{
    gw_buf_append(out, "\"", 1);
    while (*s) {
        size_t run = strcspn(s, "\"\\");

        gw_buf_append(out, s, run);
        s += run;
        if (*s) {
            gw_buf_append(out, "\\", 1);
            gw_buf_append(out, s++, 1);
        }
    }
    gw_buf_append(out, "\"", 1);
}

static void
append_cond(struct gw_buf *out, const struct filter__cond *c)
{
    gw_buf_printf(out, "%s=%s%s.", c->column, c->negate ? "not." : "", filter__op_names[c->op]);
    if (c->op != FILTER__IN) {
        append_quoted(out, c->values[0]);
        return;
    }
    gw_buf_append(out, "(", 1);
    for (size_t i = 0; i < c->nvalues; i++) {
        if (i > 0)
            gw_buf_append(out, ",", 1);
        append_quoted(out, c->values[i]);
    }
    gw_buf_append(out, ")", 1);
}

void
filter_canonical(const struct filter *f, struct gw_buf *out)
{
    const struct filter__cond **sorted;
    size_t printed = 0;

    gw_buf_append(out, "", 0);
    if (!f || f->n == 0)
        return;
    sorted = gw_xmalloc(f->n * sizeof(*sorted));
    for (size_t i = 0; i < f->n; i++)
        sorted[i] = &f->conds[i];
    qsort(sorted, f->n, sizeof(*sorted), cond_cmp);
    for (size_t i = 0; i < f->n; i++) {
        if (i > 0 && cond_cmp(&sorted[i - 1], &sorted[i]) == 0)
            continue; /* the same condition twice */
        if (printed++ > 0)
            gw_buf_append(out, ",", 1);
        append_cond(out, sorted[i]);
    }
    free(sorted);
}
