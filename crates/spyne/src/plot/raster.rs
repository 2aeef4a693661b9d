//! Spike raster: which neuron fired at which step, for one sample.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{figure, font, save, DrawResult, Size};
use crate::error::{Error, Result};

struct Raster<'a> {
    spikes: &'a [f32],
    steps: usize,
    neurons: usize,
    title: &'a str,
}

impl Raster<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, font(22.0))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..self.steps as f64, 0f64..self.neurons as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc("time step")
            .y_desc("neuron")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .draw()
            .map_err(|e| e.to_string())?;
        let cells = (0..self.steps).flat_map(|t| (0..self.neurons).map(move |n| (t, n)));
        let fired = cells.filter(|&(t, n)| self.spikes[t * self.neurons + n] != 0.0);
        chart
            .draw_series(fired.map(|(t, n)| {
                let (x, y) = (t as f64, n as f64);
                Rectangle::new([(x + 0.1, y), (x + 0.9, y + 1.0)], BLACK.filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

figure!(Raster<'_>);

/// Draws the spike raster of one sample: `spikes` is `steps × neurons` (time-major, 0/1),
/// a mark where a neuron fired. Written to `path` (PNG, or SVG for `.svg`).
pub fn raster(
    path: &Path,
    spikes: &[f32],
    steps: usize,
    neurons: usize,
    title: &str,
    size: Size,
) -> Result<()> {
    if steps == 0 || neurons == 0 || spikes.len() != steps * neurons {
        return Err(Error::Shape {
            context: "raster spikes",
            expected: vec![steps, neurons],
            got: vec![spikes.len()],
        });
    }
    save(
        path,
        size,
        &Raster {
            spikes,
            steps,
            neurons,
            title,
        },
    )
}
