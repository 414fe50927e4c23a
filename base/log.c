/*
 * log.c: one line per event on stderr, "ts=... level=... event=... k=v ..." or JSON.
 * The caller formats its own key=value pairs; JSON mode splits them at spaces and '='.
 */
#include "base/base.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static enum gw_log_level min_level = GW_LOG_INFO;
static bool json_mode;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
gw_log_setup(enum gw_log_level level, bool json)
{
    min_level = level;
    json_mode = json;
}

int
gw_log_level_parse(const char *s, enum gw_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum gw_log_level)i;
            return 0;
        }
    }
    return GW_EINVAL;
}

static void
format_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char day[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03ldZ", day, ts.tv_nsec / 1000000);
}

/* Converts "a=1 b=x y" into ,"a":1,"b":"x y" (a value runs until the next " key="). */
static void
append_json_pairs(struct gw_buf *b, const char *kv)
{
    const char *p = kv;

    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end;
        const char *next;

        while (*p == ' ')
            p++;
        eq = strchr(p, '=');
        if (!eq)
            break;
        end = eq + 1;
        next = NULL;
        for (const char *q = end; *q; q++) {
            if (*q == ' ') {
                const char *k = q + 1;

                while (*k && *k != ' ' && *k != '=')
                    k++;
                if (*k == '=') {
                    next = q + 1;
                    end = q;
                    break;
                }
            }
        }
        if (!next)
            end = eq + 1 + strlen(eq + 1);
        gw_buf_append(b, ",", 1);
        gw_buf_append_json_str(b, p, (size_t)(eq - p));
        gw_buf_append(b, ":", 1);
        gw_buf_append_json_str(b, eq + 1, (size_t)(end - eq - 1));
        if (!next)
            break;
        p = next;
    }
}

void
gw_log(enum gw_log_level level, const char *event, const char *fmt, ...)
{
    struct gw_buf line, kv;
    char ts[48];
    va_list ap;

    if (level < min_level)
        return;
    gw_buf_init(&line);
    gw_buf_init(&kv);
    if (fmt && *fmt) {
        va_list cp;
        int n;

        va_start(ap, fmt);
        va_copy(cp, ap);
        n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
        if (n > 0) {
            gw_buf_reserve(&kv, (size_t)n);
            vsnprintf(kv.data, (size_t)n + 1, fmt, ap);
            kv.len = (size_t)n;
        }
        va_end(ap);
    }
    format_time(ts, sizeof ts);
    if (json_mode) {
        gw_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_names[level]);
        gw_buf_append_json_str(&line, event, strlen(event));
        if (kv.len)
            append_json_pairs(&line, kv.data);
        gw_buf_append_str(&line, "}\n");
    } else {
        gw_buf_printf(&line, "ts=%s level=%s event=%s%s%s\n", ts, level_names[level], event,
                      kv.len ? " " : "", kv.len ? kv.data : "");
    }
    fwrite(line.data, 1, line.len, stderr);
    gw_buf_release(&line);
    gw_buf_release(&kv);
}
