/*
 * filter: postgres_changes filters and row rules, as pure functions.
 *
 * A filter is the `filter` string of a supabase-js postgres_changes binding
 * (PROTOCOL.md 5.2): conditions `column=op.value` joined by ',' and ANDed, with the
 * operators eq, neq, lt, lte, gt, gte, in. Values are compared with the semantics of the
 * column's PostgreSQL type (numbers numerically, timestamps as instants, booleans, uuids,
 * text bytewise). A record is the typed JSON object the SQL trigger produced.
 *
 * A row rule (option `row_rule`) says which rows of a table an identity may see: all of
 * them, or those whose column equals one of its claims. Rules are resolved once per
 * subscription into "all", "none" or an extra eq condition, so delivery evaluates one
 * filter per distinct subscription shape, never per subscriber.
 *
 * No I/O; jansson is used for records only.
 */
#ifndef GW_FILTER_H
#define GW_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct gw_buf;
struct json_t;
struct filter;
struct filter_rows;

/* A column of the table a filter applies to: name and pg_type.typname (e.g. "int8"). */
struct filter_column {
    const char *name; /* column name */
    const char *type; /* pg_type.typname, arrays as "_int4" */
};

/*
 * Parses a filter. "" or NULL gives *out = NULL (matches everything) and returns 0.
 * On a syntax error returns GW_EPARSE and appends the client message to err, worded as
 * PROTOCOL.md 5.2: "Error parsing `filter` params: <detail>". At most 100 `in` values.
 */
int filter_parse(const char *text, struct filter **out, struct gw_buf *err);
void filter_free(struct filter *f);

/*
 * Checks the filter against the table's columns: every column must exist and every value
 * must be castable to the column's type. Returns 0, or GW_EINVAL with the message
 * "Unable to subscribe to changes with given parameters. <detail>" appended to err.
 */
int filter_check(const struct filter *f, const struct filter_column *cols, size_t n,
                 struct gw_buf *err);

/*
 * Evaluates the filter on a record (a JSON object: column -> typed value). A NULL filter
 * matches. A condition on a column absent from the record, or whose value is null, fails.
 * `cols` gives the types (a column missing from cols is compared as text).
 */
bool filter_match(const struct filter *f, const struct json_t *record,
                  const struct filter_column *cols, size_t n);

/* Appends the condition column=eq.value (used for row rules). */
void filter_add_eq(struct filter **f, const char *column, const char *value);

/* Appends a canonical text of the filter (same conditions -> same text) for grouping
 * subscriptions by shape. A NULL filter gives "". */
void filter_canonical(const struct filter *f, struct gw_buf *out);

/*
 * Index keys. When f has an eq condition on a column whose values can be keyed (integers,
 * uuid, text/varchar), sets *column and *type (borrowed from f and cols), appends the
 * normalised key of the condition's value to key, and returns true. filter_value_key()
 * appends the key of a record value for that type (false when it has none, e.g. null).
 * Equal keys hold exactly when the eq condition holds, so an index on them is exact.
 */
bool filter_eq_key(const struct filter *f, const struct filter_column *cols, size_t n,
                   const char **column, const char **type, struct gw_buf *key);
bool filter_value_key(const struct json_t *v, const char *type, struct gw_buf *key);

/* ---- row rules ---- */

/* Returns the text of claim `name`, or NULL when the identity has none. */
typedef const char *filter_claim_fn(void *ud, const char *name);

enum filter_rows_result {
    FILTER_ROWS_NONE = 0,  /* no rule grants anything: the identity sees no row */
    FILTER_ROWS_ALL = 1,   /* every row */
    FILTER_ROWS_WHERE = 2, /* rows where column == value (see filter_rows_resolve) */
};

struct filter_rows *filter_rows_new(void);
void filter_rows_free(struct filter_rows *r);

/*
 * Parses one rule (the value of a `row_rule` option) and appends it:
 *   TABLE  all|COLUMN={CLAIM}  [CLAIM=V1|V2 ...]
 * TABLE is schema.table, schema.* or *. The first rule whose table matches and whose
 * conditions hold decides. Returns 0, or GW_EPARSE with a message in err.
 */
int filter_rows_add(struct filter_rows *r, const char *rule, struct gw_buf *err);

/*
 * Resolves what an identity (claims read through `claim`) may see of schema.table.
 * For FILTER_ROWS_WHERE, *column and *value are set: column borrowed from the rule,
 * value borrowed from the claim function's result (copy it before the claims go away).
 * A WHERE rule whose claim is missing resolves to NONE.
 */
enum filter_rows_result filter_rows_resolve(const struct filter_rows *r, const char *schema,
                                            const char *table, filter_claim_fn *claim, void *ud,
                                            const char **column, const char **value);

#endif
