/*
 * match.c: checks filters against a table's columns and evaluates them on records.
 *
 * Each column type maps to a kind (filter__kind_of) that says how both sides are read
 * and compared: the record side is typed JSON (numbers, booleans, strings, nested JSON),
 * or a string for any type, and the filter side is text. compare() reads both and returns
 * their order, or CMP_FAIL when either is not a value of the type; a failed comparison
 * fails the condition whatever the operator, like SQL NULL. Numbers compare exactly as
 * decimals (int64 directly when both sides are integers), timestamps as instants, uuids
 * as bytes and text bytewise: collation-aware ordering is not applied, so lt/gt on text
 * follows byte order (the "C" collation), not the database's.
 */
#include "filter/filter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "filter/filter_int.h"

#define CMP_FAIL      2  /* compare(): a side is not a value of the column's type */
#define NUM_TEXT_SIZE 40 /* bytes for an int64 or a %.17g double */

static const struct {
    const char *name;       /* pg_type.typname */
    enum filter__kind kind; /* how it compares */
} kinds[] = {
    { "int8", FILTER__INT },
    { "int4", FILTER__INT },
    { "int2", FILTER__INT },
    { "oid", FILTER__INT },
    { "numeric", FILTER__NUM },
    { "float8", FILTER__NUM },
    { "float4", FILTER__NUM },
    { "bool", FILTER__BOOL },
    { "uuid", FILTER__UUID },
    { "timestamptz", FILTER__TIMESTAMPTZ },
    { "timestamp", FILTER__TIMESTAMP },
    { "date", FILTER__DATE },
    { "time", FILTER__TIME },
    { "jsonb", FILTER__JSON },
    { "json", FILTER__JSON },
    { "bpchar", FILTER__BPCHAR },
    { "citext", FILTER__CITEXT },
};

enum filter__kind
filter__kind_of(const char *type)
{
    if (!type)
        return FILTER__TEXT;
    if (type[0] == '_')
        return FILTER__ARRAY;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        /* The first-byte test skips most strcmp calls on the delivery path. */
        if (type[0] == kinds[i].name[0] && strcmp(type, kinds[i].name) == 0)
            return kinds[i].kind;
    }
    return FILTER__TEXT;
}

static const char *
column_type(const struct filter_column *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (cols[i].name[0] == name[0] && strcmp(cols[i].name, name) == 0)
            return cols[i].type;
    }
    return NULL;
}

/* Prints a double with the fewest digits that read back to the same value. */
static void
format_real(double v, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* The text of a JSON number or string (numbers printed into buf), or NULL. */
static const char *
scalar_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        format_real(json_real_value(v), buf, size);
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static int
order(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* A JSON real has already lost any precision beyond a double's, so it is compared with
 * the double nearest to the filter value (and is always finite). */
static int
cmp_real(double a, const char *fv)
{
    struct filter__dec d;
    double b;

    if (filter__dec_parse(fv, true, &d) != 0)
        return CMP_FAIL;
    if (d.kind != FILTER__DEC_FINITE)
        return d.kind == FILTER__DEC_NEG_INF ? 1 : -1;
    b = strtod(fv, NULL);
    return (a > b) - (a < b);
}

static int
cmp_num(const json_t *rv, const char *fv)
{
    char buf[NUM_TEXT_SIZE];
    const char *text;
    struct filter__dec a, b;

    if (json_is_real(rv))
        return cmp_real(json_real_value(rv), fv);
    text = scalar_text(rv, buf, sizeof(buf));
    if (!text || json_is_boolean(rv) || filter__dec_parse(text, true, &a) != 0 ||
        filter__dec_parse(fv, true, &b) != 0)
        return CMP_FAIL;
    return filter__dec_cmp(&a, &b);
}

static int
cmp_int(const json_t *rv, const char *fv)
{
    int64_t b;

    if (json_is_integer(rv) && filter__int64_parse(fv, &b) == 0)
        return order(json_integer_value(rv), b);
    return cmp_num(rv, fv);
}

static int
cmp_bool(const json_t *rv, const char *fv)
{
    bool a, b;

    if (json_is_boolean(rv))
        a = json_is_true(rv);
    else if (!json_is_string(rv) || filter__bool_parse(json_string_value(rv), &a) != 0)
        return CMP_FAIL;
    if (filter__bool_parse(fv, &b) != 0)
        return CMP_FAIL;
    return (int)a - (int)b;
}

static int
cmp_uuid(const json_t *rv, const char *fv)
{
    unsigned char a[16], b[16];
    int r;

    if (!json_is_string(rv) || filter__uuid_parse(json_string_value(rv), a) != 0 ||
        filter__uuid_parse(fv, b) != 0)
        return CMP_FAIL;
    r = memcmp(a, b, sizeof(a));
    return (r > 0) - (r < 0);
}

static int
cmp_time(enum filter__kind k, const json_t *rv, const char *fv)
{
    int64_t a, b;

    if (!json_is_string(rv) || filter__time_parse(json_string_value(rv), k, &a) != 0 ||
        filter__time_parse(fv, k, &b) != 0)
        return CMP_FAIL;
    return order(a, b);
}

/* Compares text: bytewise, without trailing spaces (bpchar) or ASCII case (citext). */
static int
cmp_bytes(enum filter__kind k, const char *a, size_t na, const char *b, size_t nb)
{
    size_t n;
    int r = 0;

    if (k == FILTER__BPCHAR) {
        while (na > 0 && a[na - 1] == ' ')
            na--;
        while (nb > 0 && b[nb - 1] == ' ')
            nb--;
    }
    n = na < nb ? na : nb;
    for (size_t i = 0; i < n && r == 0; i++) {
        unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];

        if (k == FILTER__CITEXT) {
            ca = (unsigned char)(ca >= 'A' && ca <= 'Z' ? ca + 32 : ca);
            cb = (unsigned char)(cb >= 'A' && cb <= 'Z' ? cb + 32 : cb);
        }
        r = (ca > cb) - (ca < cb);
    }
    return r ? r : (na > nb) - (na < nb);
}

/* Compares a record value of any JSON type as text: objects and arrays as compact JSON. */
static int
cmp_text(enum filter__kind k, const json_t *rv, const char *fv)
{
    char buf[NUM_TEXT_SIZE];
    const char *text = scalar_text(rv, buf, sizeof(buf));
    char *dumped = NULL;
    int r;

    if (json_is_string(rv))
        return cmp_bytes(k, text, json_string_length(rv), fv, strlen(fv));
    if (!text)
        text = dumped = json_dumps(rv, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return CMP_FAIL;
    r = cmp_bytes(k, text, strlen(text), fv, strlen(fv));
    free(dumped);
    return r;
}

/* JSON equality with jsonb semantics for numbers (1 = 1.0); key order never matters. */
static bool
json_same(const json_t *a, const json_t *b)
{
    char buf[NUM_TEXT_SIZE];
    const char *key;
    json_t *v;

    if (json_is_number(a) && json_is_number(b))
        return cmp_num(a, scalar_text(b, buf, sizeof(buf))) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return false;
        /* json_object_foreach wants a non-const object; it only reads it. */
        json_object_foreach((json_t *)a, key, v) {
            const json_t *w = json_object_get(b, key);

            if (!w || !json_same(v, w))
                return false;
        }
        return true;
    default:
        return true; /* same literal: true, false or null */
    }
}

static int
cmp_json(const json_t *rv, const char *fv)
{
    json_t *parsed = json_loads(fv, JSON_DECODE_ANY, NULL);
    int r;

    if (!parsed)
        return CMP_FAIL;
    r = json_same(rv, parsed) ? 0 : 1;
    json_decref(parsed);
    return r;
}

static int compare(enum filter__kind k, const char *type, const json_t *rv, const char *fv);

/* Equality of a record array and a parsed literal: 0 equal, 1 different or CMP_FAIL. */
static int
array_same(const char *elem_type, const json_t *rv, const json_t *lit)
{
    enum filter__kind k = filter__kind_of(elem_type);

    if (!json_is_array(rv) || json_array_size(rv) != json_array_size(lit))
        return json_is_array(rv) ? 1 : CMP_FAIL;
    for (size_t i = 0; i < json_array_size(lit); i++) {
        const json_t *a = json_array_get(rv, i), *b = json_array_get(lit, i);
        int r;

        if (json_is_null(a) || json_is_null(b))
            r = json_is_null(a) && json_is_null(b) ? 0 : 1;
        else if (json_is_array(b))
            r = array_same(elem_type, a, b);
        else if (json_is_array(a))
            r = 1;
        else
            r = compare(k, elem_type, a, json_string_value(b));
        if (r != 0)
            return r == CMP_FAIL ? CMP_FAIL : 1;
    }
    return 0;
}

static int
cmp_array(const char *type, const json_t *rv, const char *fv)
{
    json_t *lit = filter__array_parse(fv);
    int r;

    if (!lit)
        return CMP_FAIL;
    r = array_same(type + 1, rv, lit);
    json_decref(lit);
    return r;
}

/* Orders record value rv against filter text fv: -1, 0, 1 or CMP_FAIL. For json and
 * arrays only equality is known: 0 equal, 1 different. */
static int
compare(enum filter__kind k, const char *type, const json_t *rv, const char *fv)
{
    switch (k) {
    case FILTER__INT:
        return cmp_int(rv, fv);
    case FILTER__NUM:
        return cmp_num(rv, fv);
    case FILTER__BOOL:
        return cmp_bool(rv, fv);
    case FILTER__UUID:
        return cmp_uuid(rv, fv);
    case FILTER__DATE:
    case FILTER__TIME:
    case FILTER__TIMESTAMP:
    case FILTER__TIMESTAMPTZ:
        return cmp_time(k, rv, fv);
    case FILTER__JSON:
        return cmp_json(rv, fv);
    case FILTER__ARRAY:
        return cmp_array(type, rv, fv);
    default:
        return cmp_text(k, rv, fv);
    }
}

static bool
ordered_op(enum filter__op op)
{
    return op == FILTER__LT || op == FILTER__LTE || op == FILTER__GT || op == FILTER__GTE;
}

static bool
cond_holds(const struct filter__cond *c, const char *type, const json_t *rv)
{
    enum filter__kind k = filter__kind_of(type);
    bool any = false;
    int r = 0;

    if (!rv || json_is_null(rv))
        return false;
    if (c->op == FILTER__IN) {
        for (size_t i = 0; i < c->nvalues && !any; i++) {
            r = compare(k, type, rv, c->values[i]);
            if (r == CMP_FAIL)
                return false;
            any = r == 0;
        }
        return c->negate ? !any : any;
    }
    if (ordered_op(c->op) && (k == FILTER__JSON || k == FILTER__ARRAY))
        return false;
    r = compare(k, type, rv, c->values[0]);
    switch (c->op) {
    case FILTER__EQ:
        return r == 0;
    case FILTER__NEQ:
        return r != 0 && r != CMP_FAIL;
    case FILTER__LT:
        return r < 0;
    case FILTER__LTE:
        return r <= 0;
    case FILTER__GT:
        return r > 0 && r != CMP_FAIL;
    default:
        return r >= 0 && r != CMP_FAIL;
    }
}

bool
filter_match(const struct filter *f, const struct json_t *record, const struct filter_column *cols,
             size_t n)
{
    if (!f || f->n == 0)
        return true;
    if (!json_is_object(record))
        return false;
    for (size_t i = 0; i < f->n; i++) {
        const struct filter__cond *c = &f->conds[i];

        if (!cond_holds(c, column_type(cols, n, c->column), json_object_get(record, c->column)))
            return false;
    }
    return true;
}

/* ---- checking ---- */

#define CHECK_PREFIX "Unable to subscribe to changes with given parameters. "

/* Checks an integer against the range of int2, int4, int8 or oid (0 to 2^32-1; oidin
 * would also wrap negative input, which is refused here). */
static int
check_int(const char *type, const char *value)
{
    int64_t v;
    int rc = filter__int64_parse(value, &v);

    if (rc != 0)
        return rc;
    if (strcmp(type, "int2") == 0 && (v < INT16_MIN || v > INT16_MAX))
        return GW_ELIMIT;
    if (strcmp(type, "int4") == 0 && (v < INT32_MIN || v > INT32_MAX))
        return GW_ELIMIT;
    if (strcmp(type, "oid") == 0 && (v < 0 || v > (int64_t)UINT32_MAX))
        return GW_ELIMIT;
    return 0;
}

/* Checks a number; float4 and float8 must also fit their range, as float8in wants. */
static int
check_num(const char *type, const char *value)
{
    struct filter__dec d;
    double v;

    if (filter__dec_parse(value, true, &d) != 0)
        return GW_EPARSE;
    if (d.kind != FILTER__DEC_FINITE || strcmp(type, "numeric") == 0)
        return 0;
    errno = 0;
    v = strcmp(type, "float4") == 0 ? (double)strtof(value, NULL) : strtod(value, NULL);
    if (errno == ERANGE && (v == 0.0 || isinf(v)))
        return GW_ELIMIT;
    return 0;
}

static int check_value(const char *type, const char *value);

/* Checks every non-null element of an array literal against the element type. */
static int
check_elements(const char *elem_type, const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        int rc = 0;

        if (json_is_array(e))
            rc = check_elements(elem_type, e);
        else if (json_is_string(e))
            rc = check_value(elem_type, json_string_value(e));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
check_array(const char *type, const char *value)
{
    json_t *arr = filter__array_parse(value);
    int rc;

    if (!arr)
        return GW_EPARSE;
    rc = check_elements(type + 1, arr);
    json_decref(arr);
    return rc;
}

/* Returns 0 when value can be cast to type, else GW_EPARSE (syntax) or GW_ELIMIT. */
static int
check_value(const char *type, const char *value)
{
    enum filter__kind k = filter__kind_of(type);
    unsigned char uuid[16];
    int64_t t;
    json_t *j;
    bool b;

    switch (k) {
    case FILTER__INT:
        return check_int(type, value);
    case FILTER__NUM:
        return check_num(type, value);
    case FILTER__BOOL:
        return filter__bool_parse(value, &b);
    case FILTER__UUID:
        return filter__uuid_parse(value, uuid);
    case FILTER__DATE:
    case FILTER__TIME:
    case FILTER__TIMESTAMP:
    case FILTER__TIMESTAMPTZ:
        return filter__time_parse(value, k, &t);
    case FILTER__JSON:
        j = json_loads(value, JSON_DECODE_ANY, NULL);
        json_decref(j);
        return j ? 0 : GW_EPARSE;
    case FILTER__ARRAY:
        return check_array(type, value);
    default:
        return 0;
    }
}

static void
append_value_error(struct gw_buf *err, int rc, const char *type, const char *value,
                   const char *column)
{
    struct gw_buf v;

    gw_buf_init(&v);
    gw_buf_append_json_str(&v, value, strlen(value));
    gw_buf_printf(err, CHECK_PREFIX "%s %s: %s (column \"%s\")",
                  rc == GW_ELIMIT ? "value out of range for type" : "invalid input syntax for type",
                  type, v.data, column);
    gw_buf_release(&v);
}

static int
check_cond(const struct filter__cond *c, const struct filter_column *cols, size_t n,
           struct gw_buf *err)
{
    const char *type = column_type(cols, n, c->column);
    enum filter__kind k;

    for (size_t i = 0; !type && i < n; i++) {
        if (strcmp(cols[i].name, c->column) == 0)
            type = "text"; /* a column without a type compares as text */
    }
    if (!type) {
        gw_buf_printf(err, CHECK_PREFIX "Column \"%s\" does not exist on the table", c->column);
        return GW_EINVAL;
    }
    k = filter__kind_of(type);
    if (ordered_op(c->op) && (k == FILTER__JSON || k == FILTER__ARRAY)) {
        gw_buf_printf(err, CHECK_PREFIX "Operator %s is not supported on column \"%s\" of type %s",
                      filter__op_names[c->op], c->column, type);
        return GW_EINVAL;
    }
    for (size_t i = 0; i < c->nvalues; i++) {
        int rc = check_value(type, c->values[i]);

        if (rc != 0) {
            append_value_error(err, rc, type, c->values[i], c->column);
            return GW_EINVAL;
        }
    }
    return 0;
}

int
filter_check(const struct filter *f, const struct filter_column *cols, size_t n, struct gw_buf *err)
{
    struct gw_buf scratch;
    int rc = 0;

    gw_buf_init(&scratch);
    for (size_t i = 0; f && i < f->n && rc == 0; i++)
        rc = check_cond(&f->conds[i], cols, n, err ? err : &scratch);
    gw_buf_release(&scratch);
    return rc;
}
