#include "common/svg_plot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace prunekv {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SvgPlot, NiceTicksUseOneTwoFiveSteps) {
  EXPECT_EQ(detail::nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(detail::nice_ticks(0, 1000, 4), (std::vector<double>{0, 500, 1000}));
  const auto ticks = detail::nice_ticks(0.13, 0.91, 8);
  EXPECT_NEAR(ticks.front(), 0.2, 1e-12);
  EXPECT_NEAR(ticks[1] - ticks[0], 0.1, 1e-12);
}

TEST(SvgPlot, DecimationKeepsEndsAndExtremes) {
  PlotSeries s{"x", {}, {}};
  for (int i = 0; i < 10000; ++i) {
    s.x.push_back(i);
    s.y.push_back(std::sin(i * 0.01));
  }
  s.y[5000] = 42;  // a one-step spike must survive
  const PlotSeries d = detail::decimate(s, 100);
  EXPECT_LE(d.x.size(), 400u);
  EXPECT_EQ(d.x.front(), 0);
  EXPECT_EQ(d.x.back(), 9999);
  EXPECT_EQ(*std::max_element(d.y.begin(), d.y.end()), 42);
  EXPECT_TRUE(std::is_sorted(d.x.begin(), d.x.end()));
  const PlotSeries small{"s", {1, 2}, {3, 4}};
  EXPECT_EQ(detail::decimate(small, 100).x, small.x);
}

TEST(SvgPlot, RendersOnePolylinePerSeriesPerPanelWithEscapedLabels) {
  const std::vector<PlotPanel> panels = {
      {"blocks", "%", {{"full", {0, 1, 2}, {0, 50, 20}}, {"dbudget<T=1%>", {0, 1, 2}, {0, 30, 10}}}},
      {"running", "requests", {{"full", {0, 2}, {1, 3}}, {"dbudget<T=1%>", {0, 2}, {2, 5}}}},
  };
  const std::string svg = render_svg_plot(panels, {"A & B", "time (s)", 600, 200});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 4u);
  EXPECT_NE(svg.find("A &amp; B"), std::string::npos);
  EXPECT_NE(svg.find("dbudget&lt;T=1%&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("dbudget<T"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(SvgPlot, EmptySeriesStillRenderAValidDocument) {
  const std::vector<PlotPanel> panels = {{"empty", "y", {{"none", {}, {}}}}};
  const std::string svg = render_svg_plot(panels, {});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace prunekv
