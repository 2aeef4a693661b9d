//! `metrics.csv` (one row per logged iteration) and `summary.json`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::config::TrainConfig;
use super::trainer::StepReport;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// The header of `metrics.csv`.
pub const METRICS_HEADER: &str = "epoch,iteration,loss,accuracy";

/// Appends iteration rows to `metrics.csv`, flushing every row so that a killed run keeps them.
pub struct MetricsWriter {
    out: BufWriter<File>,
}

impl MetricsWriter {
    /// Opens `path`; with `append` an existing file is continued (resume), otherwise replaced.
    /// A resumed run first drops the rows its checkpoint does not cover: `done` is the
    /// checkpoint's (completed epochs, completed iterations of the next epoch), and the run is
    /// about to repeat everything after it.
    pub fn open(path: &Path, append: bool, done: (usize, usize)) -> Result<Self> {
        let io = |e| Error::io(format!("opening {}", path.display()), e);
        if append && path.exists() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            let mut kept = format!("{METRICS_HEADER}\n");
            for line in text.lines().skip(1) {
                let mut fields = line.split(',').map(|f| f.parse::<usize>().ok());
                // Rows hold the epoch from 1 and the iteration from 0.
                if let (Some(Some(epoch)), Some(Some(iteration))) = (fields.next(), fields.next()) {
                    if epoch <= done.0 || (epoch == done.0 + 1 && iteration < done.1) {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
            }
            write_atomic(path, kept.as_bytes())?;
            let file = OpenOptions::new().append(true).open(path).map_err(io)?;
            return Ok(MetricsWriter {
                out: BufWriter::new(file),
            });
        }
        let mut file = File::create(path).map_err(io)?;
        writeln!(file, "{METRICS_HEADER}").map_err(io)?;
        Ok(MetricsWriter {
            out: BufWriter::new(file),
        })
    }

    /// Writes one row.
    pub fn write(&mut self, r: &StepReport) -> Result<()> {
        writeln!(
            self.out,
            "{},{},{:.6},{:.6}",
            r.epoch, r.iteration, r.loss, r.accuracy
        )
        .and_then(|_| self.out.flush())
        .map_err(|e| Error::io("writing metrics.csv", e))
    }
}

/// The contents of `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run's settings.
    pub config: TrainConfig,
    /// The network, when it was described (a model written in Rust has none).
    pub model: Option<crate::model::ModelSpec>,
    /// Which path the neuron layers took in the last iteration (`fused`, `composed`, `mixed`).
    pub path: String,
    /// Test accuracy (fraction) after each epoch.
    pub epoch_test_accuracy: Vec<f32>,
    /// Test accuracy of the final epoch.
    pub test_accuracy: f32,
    /// Wall time of training (data loading included, test evaluation excluded).
    pub train_seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
    /// Worker threads used.
    pub threads: usize,
    /// spyne's version.
    pub version: String,
}

impl Summary {
    /// Writes the summary atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("summary serialises");
        write_atomic(path, &json)
    }
}
