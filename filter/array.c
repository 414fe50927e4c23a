/*
 * array.c: reads PostgreSQL array literals, the text form of array columns in filters
 * (`tags=eq.{a,b}`), into JSON arrays so they can be compared with the typed JSON arrays
 * of records element by element.
 *
 * Grammar (array_in, one-character ',' delimiter, no dimension decoration):
 *   array := '{' [ item { ',' item } ] '}'      item := array | quoted | bare
 *   quoted := '"' { char | '\' char } '"'        bare := run without {},"  ('\' escapes)
 * Whitespace around items is ignored; a bare unescaped NULL (any case) is a null element.
 * Nesting is limited to 6 levels like PostgreSQL's MAXDIM.
 */
#include "filter/filter_int.h"

#include <strings.h>

#include <jansson.h>

#include "base/base.h"

#define ARRAY_MAX_DEPTH 6 /* PostgreSQL MAXDIM */

static const char *
skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Reads a quoted element at *pp (at the quote) into a new JSON string. */
static json_t *
read_quoted(const char **pp)
{
    const char *p = *pp + 1;
    struct gw_buf b;
    json_t *s = NULL;

    gw_buf_init(&b);
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        gw_buf_append(&b, p, 1);
    }
    if (*p == '"') {
        s = json_stringn_nocheck(b.data ? b.data : "", b.len);
        *pp = p + 1;
    }
    gw_buf_release(&b);
    return s;
}

/* Reads a bare element at *pp into a new JSON string, or JSON null for NULL. */
static json_t *
read_bare(const char **pp)
{
    const char *p = *pp;
    struct gw_buf b;
    size_t keep = 0; /* bytes up to the last escaped or non-space one */
    bool escaped = false;
    json_t *v = NULL;

    gw_buf_init(&b);
    for (; *p && *p != ',' && *p != '}'; p++) {
        if (*p == '{' || *p == '"')
            goto out;
        if (*p == '\\' && p[1]) {
            escaped = true;
            gw_buf_append(&b, ++p, 1);
            keep = b.len;
            continue;
        }
        gw_buf_append(&b, p, 1);
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            keep = b.len;
    }
    if (keep == 0)
        goto out;
    if (!escaped && keep == 4 && strncasecmp(b.data, "null", 4) == 0)
        v = json_null();
    else
        v = json_stringn_nocheck(b.data, keep);
    *pp = p;
out:
    gw_buf_release(&b);
    return v;
}

static json_t *read_array(const char **pp, int depth);

static json_t *
read_item(const char **pp, int depth)
{
    if (**pp == '{')
        return read_array(pp, depth + 1);
    if (**pp == '"')
        return read_quoted(pp);
    return read_bare(pp);
}

/* Reads an array at *pp (at '{'). */
static json_t *
read_array(const char **pp, int depth)
{
    const char *p = skip_space(*pp + 1);
    json_t *arr;

    if (depth > ARRAY_MAX_DEPTH)
        return NULL;
    arr = json_array();
    if (*p == '}') {
        *pp = p + 1;
        return arr;
    }
    for (;;) {
        json_t *item = read_item(&p, depth);

        if (!item || json_array_append_new(arr, item) != 0)
            break;
        p = skip_space(p);
        if (*p == '}') {
            *pp = p + 1;
            return arr;
        }
        if (*p++ != ',')
            break;
        p = skip_space(p);
    }
    json_decref(arr);
    return NULL;
}

json_t *
filter__array_parse(const char *s)
{
    const char *p = skip_space(s);
    json_t *arr;

    if (*p != '{')
        return NULL;
    arr = read_array(&p, 1);
    if (arr && *skip_space(p) != '\0') {
        json_decref(arr);
        return NULL;
    }
    return arr;
}
