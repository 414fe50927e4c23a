/*
 * load.c: main() of `tidings-load` (load.h, load_cli.md).
 *
 *   tidings-load SCENARIO [--option value ...]
 *   tidings-load plot RESULT.json OUT.svg
 *   tidings-load --help | SCENARIO --help
 *
 * Parses and checks the options (opts.c), runs the scenario (driver.c), prints the human
 * summary on stdout, writes --json / --csv (report.c) and sets the exit status: 0 complete
 * (nothing lost, duplicated or failed), 1 ran but lost or failed something, 2 usage or
 * set-up error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/load.h"
#include "loadtest/plot.h"

static int
plot_main(int argc, char **argv)
{
    struct gw_buf err;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: tidings-load plot RESULT.json OUT.svg\n");
        return 2;
    }
    gw_buf_init(&err);
    rc = lt_plot_svg(argv[2], argv[3], &err);
    if (rc)
        fprintf(stderr, "tidings-load plot: %s\n", err.len ? err.data : gw_strerror(rc));
    gw_buf_release(&err);
    return rc ? 2 : 0;
}

/* Writes the result files; returns false when one could not be written. */
static bool
write_files(const struct lt_opts *o, const struct lt_result *r)
{
    bool ok = true;

    if (o->json_path && lt_result_json(o->json_path, o, r)) {
        fprintf(stderr, "tidings-load: cannot write %s\n", o->json_path);
        ok = false;
    }
    if (o->csv_path && lt_result_csv(o->csv_path, o, r)) {
        fprintf(stderr, "tidings-load: cannot write %s\n", o->csv_path);
        ok = false;
    }
    return ok;
}

static int
run_main(struct lt_opts *o)
{
    struct lt_result *r = gw_xcalloc(1, sizeof(*r));
    struct gw_buf err;
    int rc, status;

    gw_buf_init(&err);
    rc = lt_run(o, r, &err);
    if (rc)
        fprintf(stderr, "tidings-load: %s\n", err.len ? err.data : gw_strerror(rc));
    lt_result_print(stdout, o, r);
    fflush(stdout);
    status = rc ? 2 : (lt_result_complete(o, r) ? 0 : 1);
    if (!write_files(o, r))
        status = 2;
    gw_buf_release(&err);
    lt_result_release(r);
    free(r);
    return status;
}

int
main(int argc, char **argv)
{
    struct lt_opts o;
    struct gw_buf err;
    int rc;

    if (argc >= 2 && strcmp(argv[1], "plot") == 0)
        return plot_main(argc, argv);
    lt_opts_init(&o);
    gw_buf_init(&err);
    rc = argc < 2 ? GW_EINVAL : lt_opts_parse(&o, argc - 1, argv + 1, &err);
    if (rc == 1) {
        lt_opts_usage(stdout);
        gw_buf_release(&err);
        return 0;
    }
    if (!rc)
        rc = lt_opts_check(&o, &err);
    if (rc) {
        fprintf(stderr, "tidings-load: %s\n", err.len ? err.data : "a scenario is required");
        lt_opts_usage(stderr);
        gw_buf_release(&err);
        return 2;
    }
    gw_buf_release(&err);
    return run_main(&o);
}
