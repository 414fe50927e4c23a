/*
 * plot: `tidings-load plot RESULT.json OUT.svg`. Reads a tidings-load result file (the JSON
 * of docs: "tool", "scenario", "label", "started", "params", "results", "timeline") and
 * draws it as one self-contained SVG (no scripts, no external fonts or CSS), about 900x600:
 * a title, a latency panel (p50, p99, max over time) above a throughput panel (deliveries/s,
 * with connections on a secondary axis), and a footer with the summary numbers.
 */
#ifndef LT_PLOT_H
#define LT_PLOT_H

#include "base/base.h"

/*
 * Reads the result JSON at json_path and writes the SVG to svg_path (created or truncated).
 *
 * Returns 0, or a negative GW_E* code with a one-line message appended to err:
 *   GW_EIO     json_path cannot be opened or read, or svg_path cannot be written;
 *   GW_EPARSE  json_path is not JSON, or not a tidings-load result ("tool" is not
 *              "tidings-load" or "timeline" is not an array);
 *   GW_EINVAL  the timeline holds no sample with a numeric "t_s" (nothing to plot).
 * The latency axis is logarithmic when the largest plotted latency is more than 100 times
 * the smallest positive one, otherwise linear from 0. Null or missing values leave gaps.
 * Neither path is kept. Blocking file I/O: call it from a command, not an event loop.
 */
int lt_plot_svg(const char *json_path, const char *svg_path, struct gw_buf *err);

#endif
