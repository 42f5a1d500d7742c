#include "common/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/output_file.h"

namespace prunekv {
namespace {

// Colour-blind-safe palette (Okabe-Ito).
constexpr const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
constexpr double kMarginLeft = 70, kMarginRight = 20, kPanelTop = 28, kPanelBottom = 36, kTitleHeight = 30;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string tick_label(double value) {
  const double a = std::abs(value);
  if (a >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (a >= 1e4) return fmt::format("{:.3g}k", value / 1e3);
  return fmt::format("{:.4g}", value);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  void finish(bool from_zero) {
    if (!std::isfinite(lo)) lo = hi = 0;
    if (from_zero) lo = std::min(lo, 0.0);
    if (hi <= lo) hi = lo + 1;
  }
};

}  // namespace

namespace detail {

std::vector<double> nice_ticks(double lo, double hi, size_t target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target == 0) return {lo};
  const double raw = (hi - lo) / double(target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude * 1.0000001) {
      step = m * magnitude;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

PlotSeries decimate(const PlotSeries& series, size_t columns) {
  const size_t n = std::min(series.x.size(), series.y.size());
  if (n <= 3 * columns || columns == 0) return series;
  PlotSeries out{series.label, {}, {}, series.markers};
  const double x0 = series.x.front(), x1 = series.x[n - 1];
  const double width = x1 > x0 ? (x1 - x0) / double(columns) : 1.0;
  size_t i = 0;
  while (i < n) {
    const size_t bucket = std::min(columns - 1, size_t((series.x[i] - x0) / width));
    size_t first = i, min_i = i, max_i = i;
    while (i < n && std::min(columns - 1, size_t((series.x[i] - x0) / width)) == bucket) {
      if (series.y[i] < series.y[min_i]) min_i = i;
      if (series.y[i] > series.y[max_i]) max_i = i;
      ++i;
    }
    size_t picks[] = {first, min_i, max_i, i - 1};
    std::sort(std::begin(picks), std::end(picks));
    const size_t* end = std::unique(std::begin(picks), std::end(picks));
    for (const size_t* p = picks; p != end; ++p) {
      out.x.push_back(series.x[*p]);
      out.y.push_back(series.y[*p]);
    }
  }
  return out;
}

}  // namespace detail

std::string render_svg_plot(std::span<const PlotPanel> panels, const PlotOptions& options) {
  const double width = double(options.width), panel_height = double(options.panel_height);
  const double title_height = options.title.empty() ? 0 : kTitleHeight;
  const double height = title_height + panel_height * double(panels.size()) + 24;
  const double plot_width = width - kMarginLeft - kMarginRight;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  if (!options.title.empty())
    svg += fmt::format("<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                       width / 2, escape(options.title));
  // One x range for every panel, so panels line up in time.
  Range x_range;
  for (const auto& panel : panels)
    for (const auto& s : panel.series)
      for (double x : s.x) x_range.add(x);
  x_range.finish(true);
  const std::vector<double> x_ticks = detail::nice_ticks(x_range.lo, x_range.hi, 8);
  for (size_t p = 0; p < panels.size(); ++p) {
    const PlotPanel& panel = panels[p];
    const double top = title_height + double(p) * panel_height + kPanelTop;
    const double plot_height = panel_height - kPanelTop - kPanelBottom;
    Range y_range;
    for (const auto& s : panel.series)
      for (double y : s.y) y_range.add(y);
    y_range.finish(true);
    const std::vector<double> y_ticks = detail::nice_ticks(y_range.lo, y_range.hi, 5);
    y_range.hi = std::max(y_range.hi, y_ticks.empty() ? y_range.hi : y_ticks.back());
    auto px = [&](double x) { return kMarginLeft + (x - x_range.lo) / (x_range.hi - x_range.lo) * plot_width; };
    auto py = [&](double y) { return top + plot_height - (y - y_range.lo) / (y_range.hi - y_range.lo) * plot_height; };
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{}</text>\n", kMarginLeft, top - 8,
                       escape(panel.title));
    for (double t : y_ticks)
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#e0e0e0\"/>"
          "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
          kMarginLeft, kMarginLeft + plot_width, py(t), kMarginLeft - 5, py(t) + 4, tick_label(t));
    for (double t : x_ticks)
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#f0f0f0\"/>"
          "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
          px(t), top, top + plot_height, top + plot_height + 14, tick_label(t));
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", kMarginLeft,
                       top, plot_width, plot_height);
    svg += fmt::format(
        "<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", 14.0,
        top + plot_height / 2, escape(panel.y_label));
    if (p + 1 == panels.size())
      svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kMarginLeft + plot_width / 2,
                         top + plot_height + 30, escape(options.x_label));
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const PlotSeries line = detail::decimate(panel.series[s], size_t(plot_width));
      const char* color = kColors[s % std::size(kColors)];
      std::string points;
      for (size_t i = 0; i < std::min(line.x.size(), line.y.size()); ++i)
        if (std::isfinite(line.x[i]) && std::isfinite(line.y[i])) points += fmt::format("{:.1f},{:.1f} ", px(line.x[i]), py(line.y[i]));
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.3\" points=\"{}\"/>\n", color, points);
      if (line.markers)
        for (size_t i = 0; i < std::min(line.x.size(), line.y.size()); ++i)
          if (std::isfinite(line.x[i]) && std::isfinite(line.y[i]))
            svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(line.x[i]),
                               py(line.y[i]), color);
      // Legend, top right inside the panel.
      const double ly = top + 14 + 14 * double(s);
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" stroke-width=\"2\"/>"
          "<text x=\"{4:.1f}\" y=\"{5:.1f}\" text-anchor=\"end\">{6}</text>\n",
          kMarginLeft + plot_width - 26, kMarginLeft + plot_width - 8, ly - 4, color, kMarginLeft + plot_width - 30, ly,
          escape(line.label));
    }
  }
  svg += "</svg>\n";
  return svg;
}

void write_svg_plot(const std::string& path, std::span<const PlotPanel> panels, const PlotOptions& options) {
  write_output_file(path, "--plot", render_svg_plot(panels, options));
}

}  // namespace prunekv
