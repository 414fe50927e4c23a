/*
 * plot.c: a tidings-load result (JSON) drawn as one self-contained SVG (plot.h).
 *
 * The timeline is read into columns of doubles, NaN standing for null or missing values.
 * The page is fixed at 900x600: a title block, two panels sharing the time axis (latency
 * above, deliveries/s and connections below) and a footer with the run's summary. Every
 * axis gets "nice" ticks (1, 2 or 5 times a power of ten); the latency axis switches to
 * log10 with ticks on decades when its values span more than 100x. A series is drawn as
 * one polyline per run of non-null samples, so a null leaves a gap; a run of one sample
 * is a dot. All text taken from the JSON is escaped for XML. The SVG is built in memory
 * and written at the end, so a failure never leaves a half-drawn image behind a 0 return.
 */
#include "loadtest/plot.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Page geometry, in SVG user units (pixels). */
#define PAGE_W     900.0
#define PAGE_H     600.0
#define PLOT_X0    72.0  /* left edge of both panels */
#define PLOT_X1    828.0 /* right edge of both panels */
#define LAT_Y0     64.0  /* top of the latency panel */
#define LAT_Y1     290.0 /* bottom of the latency panel */
#define RATE_Y0    318.0 /* top of the deliveries panel */
#define RATE_Y1    520.0 /* bottom of the deliveries panel */
#define MAX_TICKS  64    /* bound on the ticks of one axis */
#define LOG_SPAN   100.0 /* latency max/min ratio above which the axis is log10 */
#define NUM_STRLEN 32    /* room for one formatted number */
#define HEADROOM   1.1   /* linear value axes reach 10 % above the data, clear of the legend */

/* Timeline columns, in the order of col_key[]. */
enum col { COL_T, COL_CONN, COL_DPS, COL_P50, COL_P99, COL_MAX, COL_COUNT };

static const char *const col_key[COL_COUNT] = {
    "t_s", "connections", "deliveries_per_s", "p50_ms", "p99_ms", "max_ms",
};

struct timeline {
    size_t n;               /* samples kept (those with a numeric t_s) */
    double *col[COL_COUNT]; /* owned columns of n values each; NaN = null */
};

struct axis {
    double lo;   /* value at the start of the axis */
    double hi;   /* value at the end of the axis */
    double step; /* tick spacing (linear axes) */
    bool log;    /* log10 scale, ticks on decades */
};

struct panel {
    double x0, y0; /* top-left corner */
    double x1, y1; /* bottom-right corner */
};

struct series {
    enum col col;      /* timeline column drawn */
    const char *cls;   /* SVG class of its polylines (tests and styling find them by it) */
    const char *label; /* legend text */
    const char *color; /* stroke colour */
    const char *dash;  /* stroke-dasharray, or NULL for a solid line */
    const char *fill;  /* area fill colour down to the axis, or NULL for none */
};

static const struct series lat_series[] = {
    { COL_P50, "p50", "p50", "#1f77b4", NULL, NULL },
    { COL_P99, "p99", "p99", "#ff7f0e", NULL, NULL },
    { COL_MAX, "max", "max", "#d62728", "5,3", NULL },
};

static const struct series rate_series[] = {
    { COL_DPS, "dps", "deliveries/s", "#2ca02c", NULL, "#2ca02c" },
    { COL_CONN, "conn", "connections (right axis)", "#9467bd", "6,3", NULL },
};

/* ---- errors and text ---- */

/* Appends a formatted message to err (if any) and returns rc. */
static int fail(struct gw_buf *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct gw_buf *err, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err)
        gw_buf_append_str(err, msg);
    return rc;
}

/* Appends s escaped for XML text and attribute values; control characters become spaces. */
static void
append_xml(struct gw_buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '<')
            gw_buf_append_str(b, "&lt;");
        else if (c == '>')
            gw_buf_append_str(b, "&gt;");
        else if (c == '&')
            gw_buf_append_str(b, "&amp;");
        else if (c == '"')
            gw_buf_append_str(b, "&quot;");
        else if (c == '\'')
            gw_buf_append_str(b, "&apos;");
        else if (c < 0x20 || c == 0x7f)
            gw_buf_append_str(b, " ");
        else
            gw_buf_append(b, s, 1);
    }
}

/* Formats v compactly: 3 significant digits and a k/M/G/T suffix (1.2k, 3.4M); NaN: n/a. */
static const char *
fmt_num(double v, char out[NUM_STRLEN])
{
    static const char suffix[] = { '\0', 'k', 'M', 'G', 'T' };
    size_t i = 0;

    if (!isfinite(v)) {
        snprintf(out, NUM_STRLEN, "n/a");
        return out;
    }
    /* 999.5 would round up to "1e+03" with %.3g, so it already takes the next suffix. */
    while (fabs(v) >= 999.5 && i + 1 < sizeof(suffix)) {
        v /= 1000.0;
        i++;
    }
    if (fabs(v) < 1e-9)
        v = 0.0; /* no "-0" and no 1e-17 from tick arithmetic */
    snprintf(out, NUM_STRLEN, "%.3g%c", v, suffix[i]);
    return out;
}

/* A JSON value as display text: strings as is, numbers compact, anything else "n/a". */
static const char *
json_text(const json_t *v, char out[NUM_STRLEN])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_number(v))
        return fmt_num(json_number_value(v), out);
    if (json_is_true(v))
        return "yes";
    if (json_is_false(v))
        return "no";
    snprintf(out, NUM_STRLEN, "n/a");
    return out;
}

/* A JSON number, NaN when v is null, missing or not a number. */
static double
json_num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ---- input ---- */

/* Loads json_path and checks that it is a tidings-load result. */
static int
load_result(const char *json_path, json_t **out, struct gw_buf *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(json_path, 0, &jerr);
    const char *tool;

    if (!root) {
        if (json_error_code(&jerr) == json_error_cannot_open_file)
            return fail(err, GW_EIO, "cannot read %s: %s", json_path, jerr.text);
        return fail(err, GW_EPARSE, "%s: not JSON: %s (line %d)", json_path, jerr.text, jerr.line);
    }
    tool = json_string_value(json_object_get(root, "tool"));
    if (!tool || strcmp(tool, "tidings-load") != 0 ||
        !json_is_array(json_object_get(root, "timeline"))) {
        json_decref(root);
        return fail(err, GW_EPARSE,
                    "%s: not a tidings-load result (needs \"tool\": \"tidings-load\" and a "
                    "\"timeline\" array)",
                    json_path);
    }
    *out = root;
    return 0;
}

static void
timeline_release(struct timeline *tl)
{
    for (size_t c = 0; c < COL_COUNT; c++)
        free(tl->col[c]);
    memset(tl, 0, sizeof(*tl));
}

/* Copies the samples of arr that have a numeric t_s into tl's columns. */
static void
timeline_load(struct timeline *tl, const json_t *arr)
{
    size_t cap = json_array_size(arr), i;
    const json_t *sample;

    for (size_t c = 0; c < COL_COUNT; c++)
        tl->col[c] = gw_xcalloc(cap ? cap : 1, sizeof(double));
    tl->n = 0;
    json_array_foreach(arr, i, sample) {
        if (!json_is_number(json_object_get(sample, col_key[COL_T])))
            continue;
        for (size_t c = 0; c < COL_COUNT; c++)
            tl->col[c][tl->n] = json_num(json_object_get(sample, col_key[c]));
        tl->n++;
    }
}

/* Widens [*lo, *hi] to hold the finite values of column c (only positive ones if pos). */
static size_t
col_range(const struct timeline *tl, enum col c, bool pos, double *lo, double *hi)
{
    size_t found = 0;

    for (size_t i = 0; i < tl->n; i++) {
        double v = tl->col[c][i];

        if (!isfinite(v) || (pos && v <= 0.0))
            continue;
        *lo = fmin(*lo, v);
        *hi = fmax(*hi, v);
        found++;
    }
    return found;
}

/* ---- axes ---- */

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks over range. */
static double
nice_step(double range, double want)
{
    double raw = range / want, mag = pow(10.0, floor(log10(raw))), r = raw / mag;

    if (r <= 1.0)
        return mag;
    if (r <= 2.0)
        return 2.0 * mag;
    if (r <= 5.0)
        return 5.0 * mag;
    return 10.0 * mag;
}

/* A linear axis covering [lo, hi], widened to whole tick steps. */
static struct axis
axis_linear(double lo, double hi, double want)
{
    struct axis a = { .log = false };

    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (!(hi > lo))
        hi = lo + (lo > 0.0 ? lo : 1.0);
    a.step = nice_step(hi - lo, want);
    /* The epsilon keeps 0.3/0.1 = 2.9999999999999996 from gaining an extra tick. */
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

/* A log10 axis from the decade at or below lo to the decade at or above hi (lo > 0). */
static struct axis
axis_log(double lo, double hi)
{
    struct axis a = { .log = true, .step = 10.0 };

    a.lo = pow(10.0, floor(log10(lo) + 1e-9));
    a.hi = pow(10.0, ceil(log10(hi) - 1e-9));
    if (!(a.hi > a.lo))
        a.hi = a.lo * 10.0;
    return a;
}

/* Fills ticks[] with the tick values of a; returns how many. */
static size_t
axis_ticks(const struct axis *a, double ticks[MAX_TICKS])
{
    long steps = lround((a->hi - a->lo) / a->step);
    size_t n = 0;

    if (a->log) {
        long k0 = lround(log10(a->lo)), k1 = lround(log10(a->hi));

        for (long k = k0; k <= k1 && n < MAX_TICKS; k++)
            ticks[n++] = pow(10.0, (double)k);
        return n;
    }
    for (long i = 0; i <= steps && n < MAX_TICKS; i++)
        ticks[n++] = a->lo + (double)i * a->step;
    return n;
}

/* Maps v on axis a to a coordinate between p0 (at lo) and p1 (at hi). */
static double
axis_pos(const struct axis *a, double v, double p0, double p1)
{
    double f;

    if (a->log)
        f = (log10(fmax(v, a->lo)) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    else
        f = (v - a->lo) / (a->hi - a->lo);
    return p0 + f * (p1 - p0);
}

/* ---- drawing ---- */

/* Vertical grid lines at the time ticks; their labels and the axis title when `labels`. */
static void
draw_time_axis(struct gw_buf *b, const struct panel *p, const struct axis *x, bool labels)
{
    double ticks[MAX_TICKS];
    size_t n = axis_ticks(x, ticks);
    char num[NUM_STRLEN];

    for (size_t i = 0; i < n; i++) {
        double px = axis_pos(x, ticks[i], p->x0, p->x1);

        gw_buf_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", px,
            p->y0, px, p->y1);
        if (labels)
            gw_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px,
                          p->y1 + 15.0, fmt_num(ticks[i], num));
    }
    if (labels)
        gw_buf_printf(b,
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time since start "
                      "(s)</text>\n",
                      (p->x0 + p->x1) / 2.0, p->y1 + 32.0);
}

/* Ticks, labels and title of a vertical axis on the left (with grid lines) or right side. */
static void
draw_value_axis(struct gw_buf *b, const struct panel *p, const struct axis *y, bool right,
                const char *title)
{
    double ticks[MAX_TICKS], ax = right ? p->x1 : p->x0, dir = right ? 1.0 : -1.0;
    double tx = ax + dir * (right ? 52.0 : 50.0), ty = (p->y0 + p->y1) / 2.0;
    size_t n = axis_ticks(y, ticks);
    char num[NUM_STRLEN];

    for (size_t i = 0; i < n; i++) {
        double py = axis_pos(y, ticks[i], p->y1, p->y0);

        if (!right)
            gw_buf_printf(b,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#e4e4e4\"/>\n",
                          p->x0, py, p->x1, py);
        gw_buf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#666\"/>\n"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n",
                      ax, py, ax + dir * 4.0, py, ax + dir * 7.0, py + 4.0, right ? "start" : "end",
                      fmt_num(ticks[i], num));
    }
    gw_buf_printf(b,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(%d "
                  "%.1f %.1f)\">%s</text>\n",
                  tx, ty, right ? 90 : -90, tx, ty, title);
}

/* Appends the "x,y x,y ..." points of samples [start, start + len) of s. */
static void
append_points(struct gw_buf *b, const struct timeline *tl, const struct series *s,
              const struct axis *x, const struct axis *y, const struct panel *p, size_t start,
              size_t len)
{
    for (size_t i = start; i < start + len; i++)
        gw_buf_printf(b, "%s%.1f,%.1f", i > start ? " " : "",
                      axis_pos(x, tl->col[COL_T][i], p->x0, p->x1),
                      axis_pos(y, tl->col[s->col][i], p->y1, p->y0));
}

/* Draws one run of non-null samples: a dot for one sample, else a polyline (and area). */
static void
draw_run(struct gw_buf *b, const struct timeline *tl, const struct series *s, const struct axis *x,
         const struct axis *y, const struct panel *p, size_t start, size_t len)
{
    if (len == 1) {
        gw_buf_printf(b, "<circle class=\"%s-dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>\n",
                      s->cls, axis_pos(x, tl->col[COL_T][start], p->x0, p->x1),
                      axis_pos(y, tl->col[s->col][start], p->y1, p->y0), s->color);
        return;
    }
    if (s->fill) {
        gw_buf_printf(b, "<polygon class=\"%s-area\" fill=\"%s\" fill-opacity=\"0.15\" points=\"",
                      s->cls, s->fill);
        append_points(b, tl, s, x, y, p, start, len);
        gw_buf_printf(b, " %.1f,%.1f %.1f,%.1f\"/>\n",
                      axis_pos(x, tl->col[COL_T][start + len - 1], p->x0, p->x1), p->y1,
                      axis_pos(x, tl->col[COL_T][start], p->x0, p->x1), p->y1);
    }
    gw_buf_printf(b, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"",
                  s->cls, s->color);
    if (s->dash)
        gw_buf_printf(b, " stroke-dasharray=\"%s\"", s->dash);
    gw_buf_append_str(b, " points=\"");
    append_points(b, tl, s, x, y, p, start, len);
    gw_buf_append_str(b, "\"/>\n");
}

/* Draws series s as one run per stretch of non-null values. */
static void
draw_series(struct gw_buf *b, const struct timeline *tl, const struct series *s,
            const struct axis *x, const struct axis *y, const struct panel *p)
{
    size_t start = 0, len = 0;

    for (size_t i = 0; i <= tl->n; i++) {
        if (i < tl->n && isfinite(tl->col[s->col][i])) {
            if (len++ == 0)
                start = i;
            continue;
        }
        if (len)
            draw_run(b, tl, s, x, y, p, start, len);
        len = 0;
    }
}

/* A legend row in the top-left corner of panel p. */
static void
draw_legend(struct gw_buf *b, const struct panel *p, const struct series *s, size_t n)
{
    double x = p->x0 + 10.0, y = p->y0 + 14.0;

    for (size_t i = 0; i < n; i++) {
        double w = 30.0 + 7.0 * (double)strlen(s[i].label);

        gw_buf_printf(b,
                      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"#fff\" "
                      "fill-opacity=\"0.85\"/>\n"
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2\"%s%s%s/>\n"
                      "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                      x - 4.0, y - 11.0, w, x, y - 4.0, x + 18.0, y - 4.0, s[i].color,
                      s[i].dash ? " stroke-dasharray=\"" : "", s[i].dash ? s[i].dash : "",
                      s[i].dash ? "\"" : "", x + 22.0, y, s[i].label);
        x += w + 8.0;
    }
}

/* The latency axis: log10 when the values span more than LOG_SPAN, else linear from 0. */
static struct axis
latency_axis(const struct timeline *tl)
{
    double lo = INFINITY, hi = -INFINITY, plo = INFINITY, phi = -INFINITY;

    for (size_t i = 0; i < sizeof(lat_series) / sizeof(lat_series[0]); i++) {
        col_range(tl, lat_series[i].col, false, &lo, &hi);
        col_range(tl, lat_series[i].col, true, &plo, &phi);
    }
    if (isfinite(plo) && phi / plo > LOG_SPAN)
        return axis_log(plo, phi);
    return axis_linear(0.0, isfinite(hi) ? fmax(hi, 0.0) * HEADROOM : 1.0, 5.0);
}

/* The upper panel: latency percentiles over time. */
static void
draw_latency(struct gw_buf *b, const struct timeline *tl, const struct axis *x)
{
    const struct panel p = { PLOT_X0, LAT_Y0, PLOT_X1, LAT_Y1 };
    struct axis y = latency_axis(tl);
    size_t n = sizeof(lat_series) / sizeof(lat_series[0]);

    gw_buf_printf(b, "<g id=\"latency\" data-scale=\"%s\">\n", y.log ? "log" : "linear");
    draw_time_axis(b, &p, x, false);
    draw_value_axis(b, &p, &y, false,
                    y.log ? "delivery latency (ms, log scale)" : "delivery latency (ms)");
    for (size_t i = 0; i < n; i++)
        draw_series(b, tl, &lat_series[i], x, &y, &p);
    gw_buf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                  "stroke=\"#999\"/>\n",
                  p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0);
    draw_legend(b, &p, lat_series, n);
    gw_buf_append_str(b, "</g>\n");
}

/* The lower panel: deliveries/s (left axis) and connections (right axis) over time. */
static void
draw_rate(struct gw_buf *b, const struct timeline *tl, const struct axis *x)
{
    const struct panel p = { PLOT_X0, RATE_Y0, PLOT_X1, RATE_Y1 };
    double dlo = 0.0, dhi = 0.0, clo = 0.0, chi = 0.0;
    struct axis yd, yc;

    col_range(tl, COL_DPS, false, &dlo, &dhi);
    col_range(tl, COL_CONN, false, &clo, &chi);
    yd = axis_linear(0.0, dhi * HEADROOM, 5.0);
    yc = axis_linear(0.0, chi * HEADROOM, 5.0);
    gw_buf_append_str(b, "<g id=\"rate\">\n");
    draw_time_axis(b, &p, x, true);
    draw_value_axis(b, &p, &yd, false, "deliveries/s");
    draw_value_axis(b, &p, &yc, true, "connections");
    draw_series(b, tl, &rate_series[0], x, &yd, &p);
    draw_series(b, tl, &rate_series[1], x, &yc, &p);
    gw_buf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                  "stroke=\"#999\"/>\n",
                  p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0);
    draw_legend(b, &p, rate_series, 2);
    gw_buf_append_str(b, "</g>\n");
}

/* Appends the first title line: "tidings-load SCENARIO: LABEL" (escaped). */
static void
title_text(struct gw_buf *b, const json_t *root)
{
    const char *label = json_string_value(json_object_get(root, "label"));
    char num[NUM_STRLEN];

    gw_buf_append_str(b, "tidings-load ");
    append_xml(b, json_text(json_object_get(root, "scenario"), num));
    if (label && *label) {
        gw_buf_append_str(b, ": ");
        append_xml(b, label);
    }
}

/* Appends "name value" for a param to the subtitle, escaped. */
static void
param_text(struct gw_buf *b, const json_t *params, const char *key, const char *name,
           const char *unit)
{
    char num[NUM_STRLEN];

    gw_buf_printf(b, " \xc2\xb7 %s ", name);
    append_xml(b, json_text(json_object_get(params, key), num));
    gw_buf_append_str(b, unit);
}

/* The title block: scenario and label, then start time and the key parameters. */
static void
draw_title(struct gw_buf *b, const json_t *root)
{
    const json_t *params = json_object_get(root, "params");
    char num[NUM_STRLEN];

    gw_buf_append_str(b, "<title>");
    title_text(b, root);
    gw_buf_append_str(b, "</title>\n<text x=\"72\" y=\"26\" font-size=\"16\" "
                         "font-weight=\"bold\">");
    title_text(b, root);
    gw_buf_append_str(b, "</text>\n<text x=\"72\" y=\"46\" fill=\"#444\">started ");
    append_xml(b, json_text(json_object_get(root, "started"), num));
    param_text(b, params, "clients", "clients", "");
    param_text(b, params, "rate", "rate", " msg/s");
    param_text(b, params, "target", "target", "");
    param_text(b, params, "seconds", "measured", " s");
    param_text(b, params, "payload_bytes", "payload", " B");
    gw_buf_append_str(b, "</text>\n");
}

/* The footer: the run's summary from "results". */
static void
draw_footer(struct gw_buf *b, const json_t *root)
{
    const json_t *res = json_object_get(root, "results");
    const json_t *lat = json_object_get(res, "latency_ms");
    const json_t *complete = json_object_get(res, "complete");
    char n1[NUM_STRLEN], n2[NUM_STRLEN], n3[NUM_STRLEN], n4[NUM_STRLEN], n5[NUM_STRLEN],
        n6[NUM_STRLEN];

    gw_buf_printf(b,
                  "<text x=\"72\" y=\"584\" fill=\"#222\">latency p50 %s ms \xc2\xb7 p99 %s ms "
                  "\xc2\xb7 max %s ms \xc2\xb7 deliveries %s/s \xc2\xb7 drops %s \xc2\xb7 "
                  "duplicates %s \xc2\xb7 %s</text>\n",
                  fmt_num(json_num(json_object_get(lat, "p50")), n1),
                  fmt_num(json_num(json_object_get(lat, "p99")), n2),
                  fmt_num(json_num(json_object_get(lat, "max")), n3),
                  fmt_num(json_num(json_object_get(res, "deliveries_per_s")), n4),
                  fmt_num(json_num(json_object_get(res, "drops")), n5),
                  fmt_num(json_num(json_object_get(res, "duplicates")), n6),
                  json_is_true(complete)    ? "complete"
                  : json_is_false(complete) ? "INCOMPLETE"
                                            : "completeness n/a");
}

/* Builds the whole SVG document for root and its timeline into b. */
static void
render(struct gw_buf *b, const json_t *root, const struct timeline *tl)
{
    double tlo = INFINITY, thi = -INFINITY;
    struct axis x;

    col_range(tl, COL_T, false, &tlo, &thi);
    x = axis_linear(tlo, thi, 10.0);
    gw_buf_printf(b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
                  PAGE_W, PAGE_H, PAGE_W, PAGE_H);
    draw_title(b, root);
    draw_latency(b, tl, &x);
    draw_rate(b, tl, &x);
    draw_footer(b, root);
    gw_buf_append_str(b, "</svg>\n");
}

/* Writes the n bytes of data to path. */
static int
write_file(const char *path, const char *data, size_t n, struct gw_buf *err)
{
    FILE *f = fopen(path, "w");
    int e;

    if (!f)
        return fail(err, GW_EIO, "cannot write %s: %s", path, strerror(errno));
    if (fwrite(data, 1, n, f) != n) {
        e = errno;
        fclose(f);
        return fail(err, GW_EIO, "cannot write %s: %s", path, strerror(e));
    }
    if (fclose(f) != 0)
        return fail(err, GW_EIO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int
lt_plot_svg(const char *json_path, const char *svg_path, struct gw_buf *err)
{
    struct timeline tl = { 0 };
    json_t *root = NULL;
    struct gw_buf svg;
    int rc;

    gw_buf_init(&svg);
    if ((rc = load_result(json_path, &root, err)) < 0)
        goto out;
    timeline_load(&tl, json_object_get(root, "timeline"));
    if (tl.n == 0) {
        rc = fail(err, GW_EINVAL, "%s: the timeline has no samples to plot", json_path);
        goto out;
    }
    render(&svg, root, &tl);
    rc = write_file(svg_path, svg.data, svg.len, err);
out:
    gw_buf_release(&svg);
    timeline_release(&tl);
    json_decref(root);
    return rc;
}
