/*
 * test_plot: lt_plot_svg() (loadtest/plot.c) on crafted result files. Each test writes a
 * JSON file into a private temporary directory, plots it and inspects the SVG text: tag
 * balance, the polylines per series and their points, escaping, gaps, the axis scale,
 * the footer, and the error codes and messages for bad inputs.
 */
#include "loadtest/plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char dir[] = "/tmp/test_plot.XXXXXX";
static char json_path[64];
static char svg_path[64];

/* One timeline sample line: t_s, connections, deliveries/s, p50, p99, max (JSON text). */
#define SAMPLE(t, c, d, p50, p99, mx)                                                 \
    "{\"t_s\":" t ",\"connections\":" c ",\"deliveries_per_s\":" d ",\"p50_ms\":" p50 \
    ",\"p99_ms\":" p99 ",\"max_ms\":" mx ",\"rss_kb\":null,\"published_per_s\":20}"

/* A complete result document around a label and the timeline's array body. */
static char *
result_json(const char *label, const char *timeline)
{
    static const char fmt[] =
        "{\"tool\":\"tidings-load\",\"format\":1,\"scenario\":\"fanout\",\"label\":\"%s\","
        "\"started\":\"2026-11-23T18:30:00Z\",\"host\":{\"nproc\":2,\"kernel\":\"6.1\"},"
        "\"params\":{\"clients\":19000,\"rate\":20,\"target\":\"tidings\",\"seconds\":10,"
        "\"payload_bytes\":200},"
        "\"results\":{\"drops\":0,\"duplicates\":3,\"deliveries_per_s\":12345.6,"
        "\"latency_ms\":{\"p50\":0.85,\"p90\":2,\"p99\":4.5,\"p999\":9,\"max\":2500000},"
        "\"complete\":false},"
        "\"timeline\":[%s]}";
    size_t n = sizeof(fmt) + strlen(label) + strlen(timeline);
    char *s = malloc(n);

    snprintf(s, n, fmt, label, timeline);
    return s;
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    fputs(text, f);
    fclose(f);
}

/* Returns the malloc'd contents of path, or NULL. */
static char *
read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

/* Writes the result for (label, timeline), plots it; returns the SVG text or NULL. */
static char *
plot(const char *label, const char *timeline)
{
    char *json = result_json(label, timeline);
    struct gw_buf err;
    int rc;

    gw_buf_init(&err);
    unlink(svg_path);
    write_text(json_path, json);
    free(json);
    rc = lt_plot_svg(json_path, svg_path, &err);
    if (rc != 0)
        fprintf(stderr, "lt_plot_svg: %d %s\n", rc, err.data ? err.data : "");
    gw_buf_release(&err);
    return rc == 0 ? read_text(svg_path) : NULL;
}

static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Points in the k-th (0-based) element starting with `open` that has a points attribute;
 * -1 if there is no such element. */
static int
points_of(const char *svg, const char *open, size_t k)
{
    const char *p = svg, *q;
    int n = 1;

    for (size_t i = 0; p && i <= k; i++)
        if ((p = strstr(p, open)))
            p += strlen(open);
    if (!p || !(p = strstr(p, "points=\"")))
        return -1;
    p += strlen("points=\"");
    for (q = p; *q && *q != '"'; q++)
        n += *q == ' ';
    return q == p ? 0 : n;
}

/* The y coordinate of point i of the first element starting with `open`, or -1. */
static double
point_y(const char *svg, const char *open, int i)
{
    const char *p = strstr(svg, open);
    double x, y = -1.0;

    if (!p || !(p = strstr(p, "points=\"")))
        return -1.0;
    p += strlen("points=\"");
    while (i-- > 0 && p)
        if ((p = strchr(p, ' ')))
            p++;
    if (!p || sscanf(p, "%lf,%lf", &x, &y) != 2)
        return -1.0;
    return y;
}

/* Checks that every element is closed in order and that the document is one <svg>:
 * returns 1 when balanced. Text and attribute values must not hold a raw '<'. */
static int
balanced(const char *s)
{
    char stack[32][16];
    int depth = 0, roots = 0;

    while ((s = strchr(s, '<'))) {
        const char *end = strchr(s, '>');
        size_t len;

        if (!end)
            return 0;
        if (s[1] == '?' || s[1] == '!') {
            s = end + 1;
            continue;
        }
        for (const char *c = s + 1; c < end; c++)
            if (*c == '<')
                return 0;
        if (s[1] == '/') {
            len = strcspn(s + 2, " >");
            if (depth == 0 || strlen(stack[depth - 1]) != len ||
                strncmp(stack[depth - 1], s + 2, len) != 0)
                return 0;
            depth--;
        } else if (end[-1] != '/') {
            len = strcspn(s + 1, " >\n");
            if (depth == 32 || len >= 16)
                return 0;
            roots += depth == 0;
            memcpy(stack[depth], s + 1, len);
            stack[depth++][len] = '\0';
        }
        s = end + 1;
    }
    return depth == 0 && roots == 1;
}

/* Five samples, p50 rising, a linear latency range. */
static const char five[] = SAMPLE("1", "100", "0", "1", "2", "3") "," SAMPLE(
    "2", "1000", "2000", "2", "4",
    "6") "," SAMPLE("3", "1000", "2000", "3", "6",
                    "9") "," SAMPLE("4", "1000", "2000", "4", "8",
                                    "12") "," SAMPLE("5", "1000", "1500", "5", "10", "15");

static void
test_plot_series_and_points(void)
{
    char *svg = plot("run 1", five);

    ASSERT_NOT_NULL(svg);
    ASSERT_TRUE(strncmp(svg, "<?xml", 5) == 0);
    ASSERT_INT_EQ(balanced(svg), 1);
    ASSERT_INT_EQ(count(svg, "<script"), 0);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"p50\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"p99\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"max\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"dps\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"conn\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline"), 5);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"p50\"", 0), 5);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"max\"", 0), 5);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"dps\"", 0), 5);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"conn\"", 0), 5);
    /* A rising p50 is drawn upwards: smaller y further right. */
    ASSERT_TRUE(point_y(svg, "<polyline class=\"p50\"", 0) >
                point_y(svg, "<polyline class=\"p50\"", 4));
    ASSERT_TRUE(point_y(svg, "<polyline class=\"p50\"", 4) > 0.0);
    ASSERT_INT_EQ(count(svg, "data-scale=\"linear\""), 1);
    free(svg);
}

static void
test_plot_title_and_footer(void)
{
    char *svg = plot("a<b&c>\\\"q\\\"", five);

    ASSERT_NOT_NULL(svg);
    ASSERT_INT_EQ(balanced(svg), 1);
    ASSERT_INT_EQ(count(svg, "a<b&c>"), 0);
    /* The label is in the <title> element and in the visible title line. */
    ASSERT_INT_EQ(count(svg, "tidings-load fanout: a&lt;b&amp;c&gt;&quot;q&quot;"), 2);
    ASSERT_INT_EQ(count(svg, "started 2026-11-23T18:30:00Z"), 1);
    ASSERT_INT_EQ(count(svg, "clients 19k"), 1);
    ASSERT_INT_EQ(count(svg, "target tidings"), 1);
    ASSERT_INT_EQ(count(svg, "rate 20 msg/s"), 1);
    ASSERT_INT_EQ(count(svg, "latency p50 0.85 ms"), 1);
    ASSERT_INT_EQ(count(svg, "max 2.5M ms"), 1);
    ASSERT_INT_EQ(count(svg, "deliveries 12.3k/s"), 1);
    ASSERT_INT_EQ(count(svg, "drops 0 "), 1);
    ASSERT_INT_EQ(count(svg, "duplicates 3 "), 1);
    ASSERT_INT_EQ(count(svg, "INCOMPLETE"), 1);
    /* Compact tick labels: deliveries 0..2.5k and connections 0..1.5k, steps of 500. */
    ASSERT_INT_EQ(count(svg, ">2.5k</text>"), 1);
    ASSERT_INT_EQ(count(svg, ">1.5k</text>"), 2);
    free(svg);
}

static void
test_plot_null_splits(void)
{
    static const char tl[] =
        SAMPLE("1", "10", "5", "1", "2", "3") "," SAMPLE("2", "10", "5", "1", "2", "3") "," SAMPLE(
            "3", "10", "5", "1", "null", "3") "," SAMPLE("4", "10", "5", "1", "2",
                                                         "3") "," SAMPLE("5", "10", "5", "1", "2",
                                                                         "3");
    static const char lone[] = SAMPLE("1", "10", "5", "1", "2", "3") "," SAMPLE(
        "2", "10", "5", "1", "null", "3") "," SAMPLE("3", "10", "5", "1", "2",
                                                     "3") "," SAMPLE("4", "10", "5", "1", "2", "3");
    char *svg = plot("gaps", tl);

    ASSERT_NOT_NULL(svg);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"p99\""), 2);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"p99\"", 0), 2);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"p99\"", 1), 2);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"p50\""), 1);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"p50\"", 0), 5);
    free(svg);
    /* A single sample between gaps cannot be a line: it is a dot. */
    svg = plot("lone", lone);
    ASSERT_NOT_NULL(svg);
    ASSERT_INT_EQ(count(svg, "<circle class=\"p99-dot\""), 1);
    ASSERT_INT_EQ(count(svg, "<polyline class=\"p99\""), 1);
    ASSERT_INT_EQ(points_of(svg, "<polyline class=\"p99\"", 0), 2);
    free(svg);
}

static void
test_plot_log_scale(void)
{
    /* max/p50 = 500: log10 axis from 1 to 1000 ms. */
    static const char wide[] =
        SAMPLE("0", "1", "1", "1", "20", "500") "," SAMPLE("1", "1", "1", "2", "30", "900");
    /* max/p50 = 90: still linear. */
    static const char narrow[] =
        SAMPLE("0", "1", "1", "1", "20", "90") "," SAMPLE("1", "1", "1", "1", "30", "90");
    char *svg = plot("wide", wide);

    ASSERT_NOT_NULL(svg);
    ASSERT_INT_EQ(count(svg, "data-scale=\"log\""), 1);
    ASSERT_INT_EQ(count(svg, "log scale"), 1);
    ASSERT_INT_EQ(count(svg, ">1k</text>"), 1);
    ASSERT_INT_EQ(count(svg, ">100</text>"), 1);
    ASSERT_INT_EQ(count(svg, ">10</text>"), 1);
    /* 1 ms is the bottom of the axis, so the first p50 sits on the panel's lower edge. */
    ASSERT_TRUE(point_y(svg, "<polyline class=\"p50\"", 0) > 289.0);
    free(svg);
    svg = plot("narrow", narrow);
    ASSERT_NOT_NULL(svg);
    ASSERT_INT_EQ(count(svg, "data-scale=\"linear\""), 1);
    ASSERT_INT_EQ(count(svg, "log scale"), 0);
    free(svg);
}

/* Plots the raw text `json` and checks the error code and that err names the problem. */
static void
expect_error(const char *json, const char *out, int code, const char *words)
{
    struct gw_buf err;
    int rc;

    gw_buf_init(&err);
    unlink(svg_path);
    if (json)
        write_text(json_path, json);
    else
        unlink(json_path);
    rc = lt_plot_svg(json_path, out, &err);
    ASSERT_INT_EQ(rc, code);
    ASSERT_NOT_NULL(err.data);
    ASSERT_NOT_NULL(strstr(err.data, words));
    ASSERT_INT_EQ(access(svg_path, F_OK), -1);
    gw_buf_release(&err);
}

static void
test_plot_errors(void)
{
    char *empty = result_json("e", "");
    char *nosample = result_json("e", "{\"t_s\":null}");
    char *ok = result_json("e", SAMPLE("1", "1", "1", "1", "1", "1"));

    expect_error(NULL, svg_path, GW_EIO, "cannot read");
    expect_error("{\"tool\":", svg_path, GW_EPARSE, "not JSON");
    expect_error("{\"tool\":\"tidings-load\",\"format\":1}", svg_path, GW_EPARSE,
                 "not a tidings-load result");
    expect_error("{\"tool\":\"other\",\"timeline\":[]}", svg_path, GW_EPARSE,
                 "not a tidings-load result");
    expect_error(empty, svg_path, GW_EINVAL, "no samples");
    expect_error(nosample, svg_path, GW_EINVAL, "no samples");
    expect_error(ok, "/nonexistent-dir/x.svg", GW_EIO, "cannot write /nonexistent-dir/x.svg");
    free(empty);
    free(nosample);
    free(ok);
}

int
main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(json_path, sizeof(json_path), "%s/in.json", dir);
    snprintf(svg_path, sizeof(svg_path), "%s/out.svg", dir);
    RUN(test_plot_series_and_points);
    RUN(test_plot_title_and_footer);
    RUN(test_plot_null_splits);
    RUN(test_plot_log_scale);
    RUN(test_plot_errors);
    unlink(json_path);
    unlink(svg_path);
    rmdir(dir);
    return HARNESS_DONE();
}
