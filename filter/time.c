/*
 * time.c: reads ISO 8601 dates, times and timestamps into comparable numbers.
 *
 * Accepted: "YYYY-MM-DD", then optionally 'T' or spaces and "HH:MM[:SS[.fraction]]",
 * then optionally a zone: Z, UTC, GMT, +hh, +hhmm, +hh:mm or +hh:mm:ss (PostgreSQL
 * prints historical offsets with seconds). Also infinity and -infinity. Years run from 1
 * to 200000 (no BC). Fractions are rounded to microseconds like PostgreSQL does.
 * A date-time is turned into days since 1970-01-01 plus microseconds of the day; the
 * column kind then decides what counts: days for date, the clock for time, the local
 * value for timestamp (a zone is ignored, as timestamp_in does) and the UTC instant for
 * timestamptz, where a value without a zone is taken as UTC (the session time zone of
 * Supabase databases).
 */
#include "filter/filter_int.h"

#include <string.h>
#include <strings.h>

#include "base/base.h"

#define USEC_PER_SEC  1000000LL
#define USEC_PER_DAY  (86400LL * USEC_PER_SEC)
#define TIME_MAX_YEAR 200000 /* keeps microseconds far from int64 overflow */

/* A parsed date-time: the parts present and their values. */
struct datetime {
    bool has_date;  /* a date was given */
    bool has_time;  /* a clock was given */
    bool has_zone;  /* a zone was given */
    int64_t days;   /* days since 1970-01-01 */
    int64_t usec;   /* microseconds since midnight, up to 24:00:00 */
    int64_t offset; /* zone offset east of UTC, seconds */
    int infinite;   /* +1 infinity, -1 -infinity, 0 finite */
};

/* Reads between min and max digits at *pp; false when there are fewer than min. */
static bool
read_num(const char **pp, int min, int max, int64_t *out)
{
    const char *p = *pp;
    int64_t v = 0;
    int n = 0;

    while (n < max && p[n] >= '0' && p[n] <= '9') {
        v = v * 10 + (p[n] - '0');
        n++;
    }
    if (n < min)
        return false;
    *out = v;
    *pp = p + n;
    return true;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
parse_date(const char **pp, struct datetime *dt)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p = *pp;
    int64_t y, m, d;

    if (!read_num(&p, 4, 6, &y) || *p++ != '-' || !read_num(&p, 1, 2, &m) || *p++ != '-' ||
        !read_num(&p, 1, 2, &d))
        return false;
    if (y < 1 || y > TIME_MAX_YEAR || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && is_leap(y)))
        return false;
    dt->has_date = true;
    dt->days = days_from_civil(y, m, d);
    *pp = p;
    return true;
}

/* Reads ".digits" into microseconds, rounding half up at the seventh digit. */
static int64_t
read_fraction(const char **pp)
{
    const char *p = *pp + 1;
    int64_t usec = 0;
    bool round_up = false;
    int n = 0;

    for (; *p >= '0' && *p <= '9'; p++, n++) {
        if (n < 6)
            usec = usec * 10 + (*p - '0');
        else if (n == 6)
            round_up = *p >= '5';
    }
    for (; n < 6; n++)
        usec *= 10;
    *pp = p;
    return usec + round_up;
}

static bool
parse_clock(const char **pp, struct datetime *dt)
{
    const char *p = *pp;
    int64_t h, m, s = 0, frac = 0;

    if (!read_num(&p, 1, 2, &h) || *p++ != ':' || !read_num(&p, 2, 2, &m))
        return false;
    if (*p == ':') {
        p++;
        if (!read_num(&p, 2, 2, &s))
            return false;
        if (*p == '.' && p[1] >= '0' && p[1] <= '9')
            frac = read_fraction(&p);
    }
    /* 24:00:00 is a valid end of day; a leap second 60 is allowed as PostgreSQL does. */
    if (h > 24 || m > 59 || s > 60 || (h == 24 && (m || s || frac)))
        return false;
    dt->has_time = true;
    dt->usec = ((h * 60 + m) * 60 + s) * USEC_PER_SEC + frac;
    *pp = p;
    return true;
}

/* Reads "+hh", "+hhmm", "+hh:mm" or "+hh:mm:ss" at *pp (at the sign). */
static bool
parse_offset(const char **pp, int64_t *offset)
{
    const char *p = *pp;
    int64_t h, m = 0, s = 0;
    bool neg = *p++ == '-';

    if (!read_num(&p, 1, 2, &h))
        return false;
    if (*p == ':' || (*p >= '0' && *p <= '9')) {
        bool colon = *p == ':';

        p += colon;
        if (!read_num(&p, 2, 2, &m))
            return false;
        if (colon && *p == ':' && (p++, !read_num(&p, 2, 2, &s)))
            return false;
    }
    if (h > 15 || m > 59 || s > 59)
        return false;
    *offset = (neg ? -1 : 1) * ((h * 60 + m) * 60 + s);
    *pp = p;
    return true;
}

static bool
parse_zone(const char **pp, struct datetime *dt)
{
    const char *p = *pp;

    while (*p == ' ')
        p++;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (strncasecmp(p, "utc", 3) == 0 || strncasecmp(p, "gmt", 3) == 0) {
        p += 3;
    } else if (*p == '+' || *p == '-') {
        if (!parse_offset(&p, &dt->offset))
            return false;
    } else {
        return true; /* no zone */
    }
    dt->has_zone = true;
    *pp = p;
    return true;
}

/* Reads infinity, +infinity or -infinity (any case); returns +1, -1 or 0 for none. */
static int
parse_special(const char *p)
{
    int sign = *p == '-' ? -1 : 1;

    p += *p == '+' || *p == '-';
    if (strncasecmp(p, "infinity", 8) != 0)
        return 0;
    for (p += 8; *p == ' '; p++)
        ;
    return *p == '\0' ? sign : 0;
}

/* Reads "date[(T|spaces)clock[zone]]", or "clock[zone]" when date_optional. */
static bool
parse_datetime(const char *s, bool date_optional, struct datetime *dt)
{
    const char *p = s;
    bool need_clock = false;

    memset(dt, 0, sizeof(*dt));
    while (*p == ' ')
        p++;
    dt->infinite = parse_special(p);
    if (dt->infinite)
        return true;
    if (parse_date(&p, dt)) {
        if (*p == 'T' || *p == 't') {
            p++;
            need_clock = true;
        } else if (*p == ' ') {
            while (*p == ' ')
                p++;
            need_clock = *p != '\0';
        }
    } else {
        need_clock = date_optional;
        if (!need_clock)
            return false;
    }
    if (need_clock && !(parse_clock(&p, dt) && parse_zone(&p, dt)))
        return false;
    while (*p == ' ')
        p++;
    return *p == '\0';
}

int
filter__time_parse(const char *s, enum filter__kind kind, int64_t *out)
{
    struct datetime dt;

    if (!parse_datetime(s, kind == FILTER__TIME, &dt))
        return GW_EPARSE;
    if (dt.infinite) {
        if (kind == FILTER__TIME)
            return GW_EPARSE;
        *out = dt.infinite > 0 ? INT64_MAX : INT64_MIN;
        return 0;
    }
    switch (kind) {
    case FILTER__DATE:
        *out = dt.days;
        return 0;
    case FILTER__TIME:
        if (!dt.has_time)
            return GW_EPARSE;
        *out = dt.usec;
        return 0;
    case FILTER__TIMESTAMPTZ:
        *out = dt.days * USEC_PER_DAY + dt.usec - dt.offset * USEC_PER_SEC;
        return 0;
    default:
        *out = dt.days * USEC_PER_DAY + dt.usec;
        return 0;
    }
}
