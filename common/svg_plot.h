#pragma once
// A small SVG line-chart writer for time series (simulate and bench plot blocks used, running
// and waiting requests over time) and for eval's fidelity frontier: panels stacked vertically,
// shared x range, one line per series (optionally with a dot per point), nice axis ticks and a
// legend. Long series are decimated to the min and max of each
// pixel column, so peaks survive.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace prunekv {

struct PlotSeries {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;  // same length as x
  bool markers = false;   // also a dot at every point (a one-point series shows only its dot)
};

struct PlotPanel {
  std::string title;
  std::string y_label;
  std::vector<PlotSeries> series;  // colours by index, the same across panels
};

struct PlotOptions {
  std::string title;
  std::string x_label = "time (s)";
  size_t width = 900;          // pixels
  size_t panel_height = 220;   // pixels per panel
};

// The SVG document.
std::string render_svg_plot(std::span<const PlotPanel> panels, const PlotOptions& options);
// Renders and writes it; throws ConfigError when the file cannot be written.
void write_svg_plot(const std::string& path, std::span<const PlotPanel> panels, const PlotOptions& options);

namespace detail {
// Tick positions covering [lo, hi] with a 1/2/5 x 10^k step, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, size_t target);
// Keeps, for each of `columns` equal x buckets, the first point and the min and max y points, in
// x order: at most 3 * columns points.
PlotSeries decimate(const PlotSeries& series, size_t columns);
}  // namespace detail

}  // namespace prunekv
