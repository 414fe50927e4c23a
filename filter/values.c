/*
 * values.c: readers for the scalar types a filter compares: decimals, integers, booleans
 * and uuids, following the input rules of PostgreSQL's int8in, numeric_in, boolin and
 * uuid_in closely enough that a value accepted here is accepted by PostgreSQL.
 *
 * Decimals are never converted to binary: filter__dec_parse() records where the
 * significant digits are and the decimal exponent, and filter__dec_cmp() compares digit
 * by digit, so 10 > 9, 0.1 == 0.10 and 9007199254740993 != 9007199254740992 hold exactly
 * whatever the precision of the column.
 */
#include "filter/filter_int.h"

#include <string.h>
#include <strings.h>

#include "base/base.h"

#define DEC_MAX_EXP 1000000L /* largest exponent accepted after 'e' */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *
skip_space(const char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

/* True when p, up to trailing spaces, is `word` in any case. */
static bool
rest_is(const char *p, const char *word)
{
    size_t n = strlen(word);

    return strncasecmp(p, word, n) == 0 && *skip_space(p + n) == '\0';
}

/* Reads NaN, Infinity or inf after an optional sign already consumed into d->neg. */
static bool
parse_special(const char *p, bool signed_, struct filter__dec *d)
{
    if (!signed_ && rest_is(p, "nan")) {
        d->kind = FILTER__DEC_NAN;
        return true;
    }
    if (rest_is(p, "infinity") || rest_is(p, "inf")) {
        d->kind = d->neg ? FILTER__DEC_NEG_INF : FILTER__DEC_POS_INF;
        d->neg = false;
        return true;
    }
    return false;
}

/* Reads an exponent "e[+-]digits" at *pp into *exp; false on bad syntax or size. */
static bool
parse_exponent(const char **pp, long *exp)
{
    const char *p = *pp + 1;
    bool neg = false;
    long e = 0;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!is_digit(*p))
        return false;
    for (; is_digit(*p); p++) {
        e = e * 10 + (*p - '0');
        if (e > DEC_MAX_EXP)
            return false;
    }
    *exp = neg ? -e : e;
    *pp = p;
    return true;
}

int
filter__dec_parse(const char *s, bool special, struct filter__dec *d)
{
    const char *p = skip_space(s), *last = NULL;
    bool point = false, digits = false, signed_ = false;
    long exp = 0, e = 0;

    memset(d, 0, sizeof(*d));
    if (*p == '+' || *p == '-') {
        d->neg = *p++ == '-';
        signed_ = true;
    }
    if (special && parse_special(p, signed_, d))
        return 0;
    for (; is_digit(*p) || (*p == '.' && !point); p++) {
        if (*p == '.') {
            point = true;
            continue;
        }
        digits = true;
        if (*p != '0') {
            d->dig = d->dig ? d->dig : p;
            last = p;
        }
        /* Integer digits from the first significant one raise the exponent; zeros
         * between the point and the first significant digit lower it. */
        if (!point && d->dig)
            exp++;
        else if (point && !d->dig)
            exp--;
    }
    if (!digits || ((*p == 'e' || *p == 'E') && !parse_exponent(&p, &e)))
        return GW_EPARSE;
    if (*skip_space(p) != '\0')
        return GW_EPARSE;
    if (!d->dig) {
        d->neg = false;
        return 0;
    }
    d->exp = exp + e;
    for (const char *q = d->dig; q <= last; q++)
        d->ndig += *q != '.';
    return 0;
}

static int
rank(const struct filter__dec *d)
{
    switch (d->kind) {
    case FILTER__DEC_NEG_INF:
        return -2;
    case FILTER__DEC_POS_INF:
        return 2;
    case FILTER__DEC_NAN:
        return 3;
    case FILTER__DEC_FINITE:
        break;
    }
    return d->ndig == 0 ? 0 : d->neg ? -1 : 1;
}

/* Compares the absolute values of two non-zero finite decimals. */
static int
cmp_magnitude(const struct filter__dec *a, const struct filter__dec *b)
{
    const char *p = a->dig, *q = b->dig;
    size_t i;

    if (a->exp != b->exp)
        return a->exp < b->exp ? -1 : 1;
    for (i = 0; i < a->ndig && i < b->ndig; i++, p++, q++) {
        p += *p == '.';
        q += *q == '.';
        if (*p != *q)
            return *p < *q ? -1 : 1;
    }
    return a->ndig == b->ndig ? 0 : a->ndig < b->ndig ? -1 : 1;
}

int
filter__dec_cmp(const struct filter__dec *a, const struct filter__dec *b)
{
    int ra = rank(a), rb = rank(b);

    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 1)
        return cmp_magnitude(a, b);
    if (ra == -1)
        return cmp_magnitude(b, a);
    return 0;
}

int
filter__int64_parse(const char *s, int64_t *out)
{
    const char *p = skip_space(s);
    uint64_t v = 0, limit;
    bool neg = false;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!is_digit(*p))
        return GW_EPARSE;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; is_digit(*p); p++) {
        uint64_t digit = (uint64_t)(*p - '0');

        if (v > (limit - digit) / 10) {
            while (is_digit(*p))
                p++;
            return *skip_space(p) == '\0' ? GW_ELIMIT : GW_EPARSE;
        }
        v = v * 10 + digit;
    }
    if (*skip_space(p) != '\0')
        return GW_EPARSE;
    /* -(v - 1) - 1 reaches INT64_MIN without overflowing. */
    *out = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
    return 0;
}

/* True when p[0..n) is a non-empty prefix of `word` at least `min` bytes long. */
static bool
prefix_of(const char *p, size_t n, const char *word, size_t min)
{
    return n >= min && n <= strlen(word) && strncasecmp(p, word, n) == 0;
}

int
filter__bool_parse(const char *s, bool *out)
{
    const char *p = skip_space(s);
    size_t n = strlen(p);

    while (n > 0 && is_space(p[n - 1]))
        n--;
    /* boolin accepts any unambiguous prefix of true, false, yes, no, on, off. */
    if (prefix_of(p, n, "true", 1) || prefix_of(p, n, "yes", 1) || prefix_of(p, n, "on", 2) ||
        (n == 1 && *p == '1')) {
        *out = true;
        return 0;
    }
    if (prefix_of(p, n, "false", 1) || prefix_of(p, n, "no", 1) || prefix_of(p, n, "off", 2) ||
        (n == 1 && *p == '0')) {
        *out = false;
        return 0;
    }
    return GW_EPARSE;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
filter__uuid_parse(const char *s, unsigned char out[16])
{
    const char *p = s;
    bool braces = *p == '{';

    p += braces;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);

        if (hi < 0 || lo < 0)
            return GW_EPARSE;
        out[i] = (unsigned char)(hi << 4 | lo);
        p += 2;
        /* uuid_in allows a hyphen after any group of four hex digits but the last. */
        if (*p == '-' && i % 2 == 1 && i < 15)
            p++;
    }
    if (braces && *p++ != '}')
        return GW_EPARSE;
    return *p == '\0' ? 0 : GW_EPARSE;
}
