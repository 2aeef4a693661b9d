//! Training curves from a run directory's `metrics.csv` and `summary.json`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{figure, font, save, DrawResult, Size};
use crate::error::{Error, Result};
use crate::train::metrics::METRICS_HEADER;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Iteration within the epoch, from 0.
    pub iteration: usize,
    /// The batch's loss.
    pub loss: f32,
    /// The batch's accuracy (fraction).
    pub accuracy: f32,
}

/// Reads `metrics.csv`; a missing header, a malformed row or no rows at all is an error
/// naming the file and the line.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let bad = |reason: String| Error::Data {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == METRICS_HEADER => {}
        Some(h) => return Err(bad(format!("header is '{h}', expected '{METRICS_HEADER}'"))),
        None => return Err(bad("is empty".into())),
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = (f.len() == 4)
            .then(|| {
                Some((
                    f[0].parse().ok()?,
                    f[1].parse().ok()?,
                    f[2].parse::<f32>().ok()?,
                    f[3].parse::<f32>().ok()?,
                ))
            })
            .flatten();
        match parsed {
            Some((epoch, iteration, loss, accuracy))
                if loss.is_finite() && accuracy.is_finite() =>
            {
                rows.push(MetricRow {
                    epoch,
                    iteration,
                    loss,
                    accuracy,
                })
            }
            _ => {
                return Err(bad(format!(
                    "line {} is not 'epoch,iteration,loss,accuracy': '{line}'",
                    i + 2
                )))
            }
        }
    }
    if rows.is_empty() {
        return Err(bad("has no rows".into()));
    }
    Ok(rows)
}

struct Curves<'a> {
    rows: &'a [MetricRow],
    /// Test accuracy (fraction) after each epoch, if known.
    test: &'a [f32],
    title: &'a str,
}

impl Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(self.title, font(22.0))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
        let n = self.rows.len();
        let x_max = n.max(2) as f64;
        let lmax = self.rows.iter().map(|r| r.loss).fold(0f32, f32::max) as f64 * 1.05;
        let mut loss = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..lmax.max(1e-6))
            .map_err(|e| e.to_string())?;
        loss.configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("iteration")
            .y_desc("loss")
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .draw()
            .map_err(|e| e.to_string())?;
        loss.draw_series(LineSeries::new(
            self.rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i as f64, r.loss as f64)),
            BLUE.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        let mut acc = ChartBuilder::on(&bottom)
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..100.0)
            .map_err(|e| e.to_string())?;
        acc.configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("iteration")
            .y_desc("accuracy (%)")
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .draw()
            .map_err(|e| e.to_string())?;
        acc.draw_series(LineSeries::new(
            self.rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i as f64, 100.0 * r.accuracy as f64)),
            BLUE.mix(0.6).stroke_width(1),
        ))
        .map_err(|e| e.to_string())?
        .label("train batch")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
        // Test accuracy at the last iteration of each epoch.
        let ends: Vec<usize> = (0..n)
            .filter(|&i| i + 1 == n || self.rows[i + 1].epoch != self.rows[i].epoch)
            .collect();
        acc.draw_series(
            ends.iter()
                .zip(self.test)
                .map(|(&i, &a)| Circle::new((i as f64, 100.0 * a as f64), 5, RED.filled())),
        )
        .map_err(|e| e.to_string())?
        .label("test (end of epoch)")
        .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.filled()));
        acc.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

figure!(Curves<'_>);

/// Draws loss and accuracy per iteration from `run_dir/metrics.csv`, with the test accuracy
/// of each epoch from `run_dir/summary.json` when it is there.
pub fn curves(run_dir: &Path, path: &Path, size: Size) -> Result<()> {
    let rows = read_metrics(&run_dir.join("metrics.csv"))?;
    let summary = run_dir.join("summary.json");
    let test: Vec<f32> = match std::fs::read(&summary) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Data {
                path: summary.clone(),
                reason: format!("is not valid JSON ({e})"),
            })?;
            v["epoch_test_accuracy"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    let epochs = rows.last().map_or(0, |r| r.epoch);
    let title = match test.last() {
        Some(a) => format!(
            "Training: {epochs} epoch(s), final test accuracy {:.2}%",
            100.0 * a
        ),
        None => format!("Training: {epochs} epoch(s)"),
    };
    save(
        path,
        size,
        &Curves {
            rows: &rows,
            test: &test,
            title: &title,
        },
    )
}
