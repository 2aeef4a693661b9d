//! Output spike counts per class, as bars.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{figure, font, save, DrawResult, Size};
use crate::error::{Error, Result};

struct Counts<'a> {
    counts: &'a [f32],
    label: Option<usize>,
    title: &'a str,
}

impl Counts<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let c = self.counts.len();
        let top = self.counts.iter().cloned().fold(1f32, f32::max) as f64 * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, font(22.0))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..c as f64 - 0.5, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(c.min(20))
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .light_line_style(WHITE)
            .x_desc("class")
            .y_desc("spike count")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(self.counts.iter().enumerate().map(|(i, &n)| {
                let color = if Some(i) == self.label {
                    GREEN.filled()
                } else {
                    BLUE.mix(0.7).filled()
                };
                Rectangle::new([(i as f64 - 0.35, 0.0), (i as f64 + 0.35, n as f64)], color)
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

figure!(Counts<'_>);

/// Draws a bar per class with its spike count; the bar of `label` (the true class, if given)
/// is green.
pub fn spike_count(
    path: &Path,
    counts: &[f32],
    label: Option<usize>,
    title: &str,
    size: Size,
) -> Result<()> {
    if counts.is_empty() {
        return Err(Error::invalid("counts", "no classes to plot"));
    }
    if let Some(l) = label.filter(|&l| l >= counts.len()) {
        return Err(Error::invalid(
            "label",
            format!("class {l} is out of range for {} outputs", counts.len()),
        ));
    }
    save(
        path,
        size,
        &Counts {
            counts,
            label,
            title,
        },
    )
}
