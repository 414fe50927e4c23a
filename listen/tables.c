/*
 * tables.c: the set of tables enabled with tidings.enable_changes(), as loaded from the
 * view tidings.enabled_tables (columns arrive as a JSON array of {name, type}). A reload
 * builds a new set and swaps it in (jobs.c), so lookups never see a half-built set.
 */
#include "listen/listen_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void
table_release(struct pg_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        free((char *)t->columns[i].name);
        free((char *)t->columns[i].type);
    }
    free((struct pg_column *)t->columns);
    free((char *)t->schema);
    free((char *)t->name);
}

void
pg__tables_release(struct pg_tableset *t)
{
    for (size_t i = 0; i < t->n; i++)
        table_release(&t->tables[i]);
    free(t->tables);
    memset(t, 0, sizeof(*t));
}

/* Fills cols from the JSON array text; returns the count or GW_EPARSE. */
static int
parse_columns(const char *text, struct pg_column **cols, size_t *n)
{
    json_t *arr = json_loads(text ? text : "[]", 0, NULL);
    size_t i;
    json_t *c;
    int rc = 0;

    *cols = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        rc = GW_EPARSE;
        goto out;
    }
    *cols = gw_xcalloc(json_array_size(arr), sizeof(**cols));
    json_array_foreach(arr, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));

        if (!name || !type) {
            rc = GW_EPARSE;
            goto out;
        }
        (*cols)[i].name = gw_xstrdup(name);
        (*cols)[i].type = gw_xstrdup(type);
        *n = i + 1;
    }
out:
    json_decref(arr);
    return rc;
}

int
pg__tables_add(struct pg_tableset *t, const char *schema, const char *name, bool replica_full,
               const char *columns_json)
{
    struct pg_table tab = { 0 };
    struct pg_column *cols = NULL;
    size_t n = 0;
    int rc = parse_columns(columns_json, &cols, &n);

    tab.columns = cols;
    tab.n_columns = n;
    if (rc < 0) {
        table_release(&tab);
        return rc;
    }
    tab.schema = gw_xstrdup(schema);
    tab.name = gw_xstrdup(name);
    tab.replica_full = replica_full;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->tables = gw_xrealloc(t->tables, t->cap * sizeof(*t->tables));
    }
    t->tables[t->n++] = tab;
    return 0;
}

const struct pg_table *
pg__tables_find(const struct pg_tableset *t, const char *schema, const char *name)
{
    if (!schema || !name)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->tables[i].name, name) == 0 && strcmp(t->tables[i].schema, schema) == 0)
            return &t->tables[i];
    }
    return NULL;
}
