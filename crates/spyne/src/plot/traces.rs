//! Membrane traces of chosen neurons, with the threshold and the spikes.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{figure, font, save, DrawResult, Size};
use crate::error::{Error, Result};

struct Traces<'a> {
    mems: &'a [f32],
    spikes: &'a [f32],
    steps: usize,
    ids: &'a [usize],
    threshold: &'a [f32],
    title: &'a str,
}

impl Traces<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(self.title, font(22.0))
            .map_err(|e| e.to_string())?;
        let k = self.ids.len();
        let panels = root.split_evenly((k, 1));
        for (i, panel) in panels.iter().enumerate() {
            let u: Vec<f32> = (0..self.steps).map(|t| self.mems[t * k + i]).collect();
            let theta = self.threshold[i];
            let lo = u.iter().cloned().fold(0f32, f32::min).min(0.0) as f64;
            let hi = u.iter().cloned().fold(theta, f32::max) as f64;
            let pad = 0.1 * (hi - lo).max(1e-3);
            let last = i + 1 == k;
            let mut chart = ChartBuilder::on(panel)
                .margin(8)
                .x_label_area_size(if last { 40 } else { 8 })
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..(self.steps.max(2) - 1) as f64, (lo - pad)..(hi + pad))
                .map_err(|e| e.to_string())?;
            let mut mesh = chart.configure_mesh();
            mesh.disable_x_mesh()
                .y_desc(format!("U, neuron {}", self.ids[i]))
                .label_style(font(12.0))
                .axis_desc_style(font(14.0))
                .y_labels(4);
            if last {
                mesh.x_desc("time step")
                    .x_label_formatter(&|x| format!("{x:.0}"));
            } else {
                mesh.x_labels(0);
            }
            mesh.draw().map_err(|e| e.to_string())?;
            let thr = [
                (0.0, theta as f64),
                ((self.steps.max(2) - 1) as f64, theta as f64),
            ];
            chart
                .draw_series(LineSeries::new(thr, RED.mix(0.7).stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label("threshold θ")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
            chart
                .draw_series(LineSeries::new(
                    u.iter().enumerate().map(|(t, &v)| (t as f64, v as f64)),
                    BLUE.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("membrane U")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
            let fired = (0..self.steps).filter(|&t| self.spikes[t * k + i] != 0.0);
            chart
                .draw_series(fired.map(|t| Circle::new((t as f64, u[t] as f64), 4, BLACK.filled())))
                .map_err(|e| e.to_string())?
                .label("spike")
                .legend(|(x, y)| Circle::new((x + 8, y), 4, BLACK.filled()));
            if i == 0 {
                chart
                    .configure_series_labels()
                    .label_font(font(12.0))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

figure!(Traces<'_>);

/// What [`traces`] draws: for the neurons `ids`, their membranes and spikes over `steps`
/// steps (`steps × ids.len()`, time-major) and each one's threshold.
#[derive(Debug, Clone, Copy)]
pub struct TraceData<'a> {
    /// Membranes, `steps × ids.len()`.
    pub mems: &'a [f32],
    /// Spikes (0/1), `steps × ids.len()`.
    pub spikes: &'a [f32],
    /// Time steps.
    pub steps: usize,
    /// The neurons' indices in their layer (for the labels).
    pub ids: &'a [usize],
    /// Each neuron's threshold θ.
    pub threshold: &'a [f32],
}

/// Draws membrane traces, one panel per neuron, with its threshold and its spikes marked.
pub fn traces(path: &Path, data: &TraceData, title: &str, size: Size) -> Result<()> {
    let TraceData {
        mems,
        spikes,
        steps,
        ids,
        threshold,
    } = *data;
    let k = ids.len();
    if k == 0 || k > 16 {
        return Err(Error::invalid(
            "neurons",
            format!("choose 1 to 16 neurons to trace, got {k}"),
        ));
    }
    if steps == 0 || mems.len() != steps * k || spikes.len() != steps * k || threshold.len() != k {
        return Err(Error::Shape {
            context: "traces",
            expected: vec![steps, k],
            got: vec![mems.len(), spikes.len(), threshold.len()],
        });
    }
    save(
        path,
        size,
        &Traces {
            mems,
            spikes,
            steps,
            ids,
            threshold,
            title,
        },
    )
}
