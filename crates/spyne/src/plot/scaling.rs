//! Time per iteration and peak memory against the number of time steps, one line per
//! framework, on log axes: the picture of `bench/peers.sh`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{figure, font, save, DrawResult, Size};
use crate::error::{Error, Result};

/// One framework's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingSeries {
    /// The framework's name (the legend).
    pub name: String,
    /// `(steps, milliseconds per iteration, memory in MB)`, in any order; the memory is what
    /// the memory panel's label says (peak resident memory, or that less the input's bytes).
    pub points: Vec<(f64, f64, f64)>,
}

struct Scaling<'a> {
    series: &'a [ScalingSeries],
    title: &'a str,
    memory: &'a str,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A log axis's label: only at 1, 2 and 5 times a power of ten, so labels never crowd.
fn nice(v: &f64) -> String {
    let p = 10f64.powf(v.log10().floor());
    let m = v / p;
    if [1.0, 2.0, 5.0].iter().any(|k| (m - k).abs() < 1e-6) {
        format!("{v}")
    } else {
        String::new()
    }
}

/// A log axis range covering `values` with some room.
fn span(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    lo / 1.5..hi * 1.5
}

impl Scaling<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        y_desc: &str,
        y: fn(&(f64, f64, f64)) -> f64,
    ) -> DrawResult {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(
                span(all().map(|p| p.0)).log_scale(),
                span(all().map(y)).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("time steps T")
            .y_desc(y_desc)
            .x_label_formatter(&nice)
            .y_label_formatter(&nice)
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, y(p))).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(self.title, font(20.0))
            .map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
        self.panel(&left, "ms per training iteration", |p| p.1)?;
        self.panel(&right, self.memory, |p| p.2)
    }
}

figure!(Scaling<'_>);

/// Draws time per iteration and memory against T for every series, log axes, to `path`
/// (PNG, or SVG for `.svg`); `memory` labels the memory axis. Every value must be positive.
pub fn scaling(
    path: &Path,
    series: &[ScalingSeries],
    (title, memory): (&str, &str),
    size: Size,
) -> Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    if series.is_empty() || series.iter().any(|s| s.points.is_empty()) {
        return Err(Error::invalid("scaling plot", "every series needs a point"));
    }
    if let Some(p) = points.clone().find(|p| {
        !(p.0 > 0.0
            && p.1 > 0.0
            && p.2 > 0.0
            && p.0.is_finite()
            && p.1.is_finite()
            && p.2.is_finite())
    }) {
        return Err(Error::invalid(
            "scaling plot",
            format!("{p:?} is not positive: log axes need positive values"),
        ));
    }
    let figure = Scaling {
        series,
        title,
        memory,
    };
    save(path, size, &figure)
}
