/*
 * probe.c: what the driver reads from /proc (load.h): per-CPU busy time (/proc/stat), the
 * CPU ticks and VmRSS of a set of processes and all their descendants (one pass over
 * /proc/<pid>/stat builds the parent links, then the tree is walked), and the TCP memory
 * of /proc/net/sockstat. Every reader tolerates processes that vanish meanwhile.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/load.h"

struct pinfo {
    pid_t pid;      /* process id */
    pid_t ppid;     /* its parent */
    int64_t ticks;  /* utime + stime */
    int64_t cticks; /* cutime + cstime (reaped children) */
};

/* Reads /proc/<pid>/stat. Returns 0, or -1 when the process is gone. */
static int
read_stat(pid_t pid, struct pinfo *pi)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    long ppid, cut, cst;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ppid, &ut,
               &st, &cut, &cst) != 5)
        return -1;
    pi->pid = pid;
    pi->ppid = (pid_t)ppid;
    pi->ticks = (int64_t)(ut + st);
    pi->cticks = (int64_t)(cut + cst);
    return 0;
}

/* Every process of the system; *n set. Owned by the caller. */
static struct pinfo *
scan_procs(size_t *n)
{
    DIR *dir = opendir("/proc");
    struct pinfo *v = NULL;
    size_t cap = 0;
    struct dirent *e;

    *n = 0;
    while (dir && (e = readdir(dir))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);

        if (*end || pid <= 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 512;
            v = gw_xrealloc(v, cap * sizeof(*v));
        }
        if (read_stat((pid_t)pid, &v[*n]) == 0)
            (*n)++;
    }
    if (dir)
        closedir(dir);
    return v;
}

/* Marks in `in` the pids and their descendants; returns how many roots exist. */
static unsigned
mark_tree(const struct pinfo *v, size_t n, bool *in, const pid_t *pids, unsigned np)
{
    unsigned roots = 0;
    bool grew = true;

    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < np; k++)
            if (v[i].pid == pids[k]) {
                in[i] = true;
                roots++;
            }
    while (grew) { /* a few passes: trees are shallow */
        grew = false;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; !in[i] && j < n; j++)
                if (in[j] && v[i].ppid == v[j].pid)
                    in[i] = grew = true;
    }
    return roots;
}

/* VmRSS of pid in KB, -1 when unreadable. */
static int64_t
rss_kb(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    long long kb = -1;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* Sums value() over the processes of the trees rooted at pids; -1 when no root exists. */
static int64_t
tree_sum(const pid_t *pids, unsigned np, int64_t (*value)(const struct pinfo *p, bool root))
{
    size_t n;
    struct pinfo *v = scan_procs(&n);
    bool *in = gw_xcalloc(n ? n : 1, sizeof(*in));
    int64_t total = -1;

    if (mark_tree(v, n, in, pids, np)) {
        total = 0;
        for (size_t i = 0; i < n; i++) {
            bool root = false;

            for (unsigned k = 0; k < np; k++)
                root |= v[i].pid == pids[k];
            if (in[i])
                total += value(&v[i], root);
        }
    }
    free(in);
    free(v);
    return total;
}

/* CPU ticks of one process, with its reaped children for a root. */
static int64_t
cpu_value(const struct pinfo *p, bool root)
{
    return p->ticks + (root ? p->cticks : 0);
}

int64_t
lt_tree_cpu_ticks(const pid_t *pids, unsigned np)
{
    return tree_sum(pids, np, cpu_value);
}

static int64_t
rss_value(const struct pinfo *p, bool root)
{
    int64_t kb = rss_kb(p->pid);

    (void)root;
    return kb > 0 ? kb : 0;
}

int64_t
lt_tree_rss_kb(const pid_t *pids, unsigned np)
{
    return tree_sum(pids, np, rss_value);
}

unsigned
lt_cpu_stat(uint64_t *busy, uint64_t *total, unsigned max)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    unsigned n = 0;

    while (f && n < max && fgets(line, sizeof(line), f)) {
        unsigned long long v[8] = { 0 };

        /* cpuN user nice system idle iowait irq softirq steal */
        if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9' ||
            sscanf(line + 3, "%*u %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
            continue;
        total[n] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        busy[n] = total[n] - v[3] - v[4];
        n++;
    }
    if (f)
        fclose(f);
    return n;
}

int64_t
lt_sockstat_tcp_mem(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    char line[512];
    int64_t mem = -1;

    while (f && fgets(line, sizeof(line), f)) {
        char *m = strstr(line, " mem ");

        if (strncmp(line, "TCP:", 4) == 0 && m) {
            mem = strtoll(m + 5, NULL, 10);
            break;
        }
    }
    if (f)
        fclose(f);
    return mem;
}
