/*
 * key.c: index keys for eq conditions, so the gateway can find the subscriptions a change
 * matches with one hash lookup per indexed column instead of evaluating every filter.
 *
 * A key is a normalised text of a value for a column type: integers (int2/int4/int8/oid)
 * as decimal int64, uuids as 32 lower-case hex digits, text and varchar as their bytes.
 * Other types are not keyed (their equality is not plain text equality). Equal keys hold
 * exactly when filter_match() would find the eq condition true.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "filter/filter.h"
#include "filter/filter_int.h"

static bool
keyable(enum filter__kind k)
{
    return k == FILTER__INT || k == FILTER__UUID || k == FILTER__TEXT;
}

static const char *
type_of(const struct filter_column *cols, size_t n, const char *column)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cols[i].name, column) == 0)
            return cols[i].type;
    }
    return NULL;
}

/* Appends the key of text s for kind k; false when s is not a valid value of k. */
static bool
text_key(const char *s, enum filter__kind k, struct gw_buf *key)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char u[16];
    int64_t i;

    switch (k) {
    case FILTER__INT:
        if (filter__int64_parse(s, &i))
            return false;
        gw_buf_printf(key, "%lld", (long long)i);
        return true;
    case FILTER__UUID:
        if (filter__uuid_parse(s, u))
            return false;
        for (int b = 0; b < 16; b++) {
            char two[2] = { hex[u[b] >> 4], hex[u[b] & 15] };

            gw_buf_append(key, two, 2);
        }
        return true;
    default:
        gw_buf_append_str(key, s);
        return true;
    }
}

bool
filter_eq_key(const struct filter *f, const struct filter_column *cols, size_t n,
              const char **column, const char **type, struct gw_buf *key)
{
    for (size_t c = 0; f && c < f->n; c++) {
        const struct filter__cond *cond = &f->conds[c];
        const char *t = type_of(cols, n, cond->column);
        size_t mark = key->len;

        if (cond->op != FILTER__EQ || cond->negate || cond->nvalues != 1 || !t ||
            !keyable(filter__kind_of(t)))
            continue;
        if (!text_key(cond->values[0], filter__kind_of(t), key)) {
            key->len = mark;
            continue;
        }
        *column = cond->column;
        *type = t;
        return true;
    }
    return false;
}

bool
filter_value_key(const struct json_t *v, const char *type, struct gw_buf *key)
{
    enum filter__kind k = filter__kind_of(type);

    if (!keyable(k))
        return false;
    if (json_is_integer(v) && k == FILTER__INT) {
        gw_buf_printf(key, "%lld", (long long)json_integer_value(v));
        return true;
    }
    if (!json_is_string(v))
        return false;
    return text_key(json_string_value(v), k, key);
}
