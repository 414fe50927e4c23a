/*
 * filter_int.h: declarations shared by the files of the filter module.
 *
 * filter.c parses filters and prints their canonical text, match.c checks and evaluates
 * them, values.c reads numbers, booleans and uuids, time.c reads dates and timestamps,
 * array.c reads PostgreSQL array literals, rows.c holds the row rules.
 */
#ifndef GW_FILTER_INT_H
#define GW_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

#define FILTER_MAX_IN 100 /* values in one `in` list (PROTOCOL.md 5.2) */

enum filter__op {
    FILTER__EQ = 0,
    FILTER__NEQ,
    FILTER__LT,
    FILTER__LTE,
    FILTER__GT,
    FILTER__GTE,
    FILTER__IN,
};

/* Operator names as written in filters, indexed by enum filter__op. */
extern const char *const filter__op_names[];

/* One condition `column=[not.]op.value`. `not.` is folded into the operator at parse
 * time (not.lt is gte, not.eq is neq), except for `in`, which keeps the flag. */
struct filter__cond {
    char *column;       /* owned column name */
    enum filter__op op; /* operator */
    bool negate;        /* not.in: none of the values is equal */
    char **values;      /* owned: one value, or the `in` list sorted without duplicates */
    size_t nvalues;     /* number of values (0 only for an empty `in` list) */
};

struct filter {
    struct filter__cond *conds; /* owned conditions, ANDed, in the order given */
    size_t n;                   /* conditions in use */
    size_t cap;                 /* conditions allocated */
};

/* How a column's values are read and compared, from its pg_type.typname. */
enum filter__kind {
    FILTER__TEXT = 0,    /* bytewise, also every unknown type */
    FILTER__BPCHAR,      /* bytewise ignoring trailing spaces (character(n)) */
    FILTER__CITEXT,      /* ASCII case-insensitive */
    FILTER__INT,         /* int2, int4, int8, oid */
    FILTER__NUM,         /* float4, float8, numeric: decimal text exactly, JSON reals as doubles */
    FILTER__BOOL,        /* false < true */
    FILTER__UUID,        /* 16 bytes, case-insensitive text */
    FILTER__DATE,        /* days */
    FILTER__TIME,        /* microseconds of the day */
    FILTER__TIMESTAMP,   /* local microseconds, a zone is ignored */
    FILTER__TIMESTAMPTZ, /* UTC microseconds; no zone means UTC */
    FILTER__JSON,        /* json, jsonb: equality only */
    FILTER__ARRAY,       /* _type: equality only, element by element */
};

enum filter__kind filter__kind_of(const char *type);

/* ---- values.c ---- */

enum filter__dec_kind {
    FILTER__DEC_FINITE = 0,
    FILTER__DEC_NEG_INF,
    FILTER__DEC_POS_INF,
    FILTER__DEC_NAN,
};

/* A decimal number as read from text, without copying: value = ±0.d1d2...dn x 10^exp. */
struct filter__dec {
    enum filter__dec_kind kind; /* finite, infinities or NaN */
    bool neg;                   /* finite and below zero */
    long exp;                   /* decimal exponent of the first significant digit + 1 */
    const char *dig;            /* first significant digit, inside the text */
    size_t ndig;                /* significant digits (0 for zero); a '.' may sit between */
};

/* Reads a decimal number (optional spaces, sign, digits, fraction, exponent); with
 * `special`, also NaN, Infinity and inf. Returns 0 or GW_EPARSE. */
int filter__dec_parse(const char *s, bool special, struct filter__dec *d);
/* Orders two decimals like PostgreSQL numeric: -inf < finite < +inf < NaN. */
int filter__dec_cmp(const struct filter__dec *a, const struct filter__dec *b);
/* Reads a whole-string integer. Returns 0, GW_EPARSE (syntax) or GW_ELIMIT (range). */
int filter__int64_parse(const char *s, int64_t *out);
/* Reads t/f/true/false/yes/no/on/off/1/0 in any case. Returns 0 or GW_EPARSE. */
int filter__bool_parse(const char *s, bool *out);
/* Reads 32 hex digits, hyphens allowed after any group of four, optional braces. */
int filter__uuid_parse(const char *s, unsigned char out[16]);

/* ---- time.c ---- */

/* Reads a date, time, timestamp or timestamptz (by kind) into one comparable number:
 * days for FILTER__DATE, microseconds otherwise; infinity and -infinity map to
 * INT64_MAX and INT64_MIN. Returns 0 or GW_EPARSE. */
int filter__time_parse(const char *s, enum filter__kind kind, int64_t *out);

/* ---- array.c ---- */

/* Reads a PostgreSQL array literal ("{1,2,{3}}", "{a,\"b c\",NULL}") into a new JSON array
 * of strings, nulls and nested arrays. Returns NULL when the text is not an array. */
struct json_t *filter__array_parse(const char *s);

#endif
