//! Input encoders (snntorch's `spikegen`): turn a static sample into `T` steps.
//!
//! Encoders work on host values (`len` numbers per sample, flattened) and return
//! `T × len` values, time-major; [`to_tensor`] builds the `[T, batch, features]` tensor.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// How static inputs become a sequence. A [`crate::setting::Setting`]: `"rate"` or
/// `{ type = "rate", gain = 0.5 }`; `latency-linear` is latency with `linear` and `normalize`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Encoding {
    /// The same values at every step (the tutorial's default).
    Direct,
    /// Bernoulli spikes with probability `clamp(gain·x + offset, 0, 1)` at each step.
    Rate {
        /// Gain applied before clamping (default 1).
        #[serde(default = "one")]
        gain: f32,
        /// Offset (default 0).
        #[serde(default)]
        offset: f32,
    },
    /// One spike per input at a time that falls as the input grows (snntorch `latency`).
    Latency(LatencyOptions),
    /// Spikes where the input rose by at least `threshold` since the previous step.
    Delta {
        /// Minimum change for a spike (default 0.1).
        #[serde(default = "tenth")]
        threshold: f32,
        /// Also emit −1 where it fell by at least `threshold`.
        #[serde(default)]
        off_spike: bool,
    },
}

fn one() -> f32 {
    1.0
}

fn tenth() -> f32 {
    0.1
}

impl crate::setting::Setting for Encoding {
    const WHAT: &'static str = "encoding";

    fn alias(name: &str) -> Option<serde_json::Value> {
        (name == "latency-linear")
            .then(|| serde_json::json!({ "type": "latency", "linear": true, "normalize": true }))
    }
}

impl Encoding {
    /// Parses `direct`, `rate`, `latency` (log), `latency-linear` or `delta`, with optional
    /// parameters (`rate:gain=0.5`; see [`crate::setting`]).
    pub fn from_name(name: &str) -> Result<Encoding> {
        <Encoding as crate::setting::Setting>::parse(name)
    }

    /// The canonical name.
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Direct => "direct",
            Encoding::Rate { .. } => "rate",
            Encoding::Latency(o) if o.linear => "latency-linear",
            Encoding::Latency(_) => "latency",
            Encoding::Delta { .. } => "delta",
        }
    }

    /// Whether every step sees the same input (lets the first layer run once).
    pub fn is_static(&self) -> bool {
        matches!(self, Encoding::Direct)
    }

    /// Encodes a batch like [`Encoding::encode`], but a static encoding gives a single step
    /// `[1, batch, features]` (the network feeds it at every step) instead of `T` copies.
    pub fn encode_compact(
        &self,
        data: &[f32],
        batch: usize,
        steps: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor<3>> {
        self.encode(
            data,
            batch,
            if self.is_static() { 1 } else { steps },
            rng,
            device,
        )
    }

    /// Encodes a batch: `data` is `batch × features` values; returns `[T, batch, features]`.
    pub fn encode(
        &self,
        data: &[f32],
        batch: usize,
        steps: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor<3>> {
        if batch == 0 || !data.len().is_multiple_of(batch) {
            return Err(Error::invalid(
                "batch",
                format!("{} values do not split into {batch} samples", data.len()),
            ));
        }
        let values = match self {
            Encoding::Direct => direct(data, steps),
            Encoding::Rate { gain, offset } => rate(data, steps, *gain, *offset, rng),
            Encoding::Latency(o) => latency(data, steps, o)?,
            Encoding::Delta {
                threshold,
                off_spike,
            } => delta(&direct(data, steps), data.len(), *threshold, *off_spike),
        };
        Ok(to_tensor(values, steps, batch, data.len() / batch, device))
    }
}

/// `steps` copies of `data`.
pub fn direct(data: &[f32], steps: usize) -> Vec<f32> {
    data.repeat(steps)
}

/// Rate coding: at each step a spike with probability `clamp(gain·x + offset, 0, 1)`.
pub fn rate(data: &[f32], steps: usize, gain: f32, offset: f32, rng: &mut Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps * data.len());
    for _ in 0..steps {
        out.extend(data.iter().map(|&x| {
            let p = (gain * x + offset).clamp(0.0, 1.0);
            if rng.uniform() < p {
                1.0
            } else {
                0.0
            }
        }));
    }
    out
}

/// Options of [`latency`] (snntorch's defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyOptions {
    /// Inputs below this never fire early (log code: they fire at the latest time).
    pub threshold: f32,
    /// Time constant of the RC model (log) or slope (linear).
    pub tau: f32,
    /// Linear instead of logarithmic code.
    pub linear: bool,
    /// Stretch spike times to fill `0..T`.
    pub normalize: bool,
    /// Remove the spikes of inputs below `threshold`.
    pub clip: bool,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        LatencyOptions {
            threshold: 0.01,
            tau: 1.0,
            linear: false,
            normalize: false,
            clip: false,
        }
    }
}

/// Spike times of latency coding, as snntorch computes them (before rounding).
///
/// Log: `t = τ·ln(x / (x − θ))` with `x` clamped to at least `θ + 1e-7`.
/// Linear: `t = min(−τ·(x − 1), −τ·(θ − 1))`. With `normalize`, times are scaled so that the
/// latest possible time is `T − 1`.
pub fn latency_times(data: &[f32], steps: usize, o: &LatencyOptions) -> Result<Vec<f32>> {
    if !(o.threshold > 0.0 && o.threshold < 1.0) {
        return Err(Error::invalid(
            "threshold",
            format!("latency threshold {} must be in (0, 1)", o.threshold),
        ));
    }
    if o.tau.is_nan() || o.tau <= 0.0 {
        return Err(Error::invalid(
            "tau",
            format!("latency tau {} must be positive", o.tau),
        ));
    }
    if let Some(bad) = data.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        return Err(Error::invalid(
            "data",
            format!("latency coding needs inputs in [0, 1], got {bad}"),
        ));
    }
    let last = steps.saturating_sub(1) as f32;
    let times: Vec<f32> = if o.linear {
        let tau = if o.normalize { last } else { o.tau };
        data.iter()
            .map(|&x| (-tau * (x - 1.0)).min(-tau * (o.threshold - 1.0)))
            .collect()
    } else {
        let t: Vec<f32> = data
            .iter()
            .map(|&x| {
                let x = x.max(o.threshold + 1e-7);
                o.tau * (x / (x - o.threshold)).ln()
            })
            .collect();
        if o.normalize {
            let max = t.iter().cloned().fold(f32::MIN, f32::max);
            t.iter().map(|&v| v * last / max).collect()
        } else {
            t
        }
    };
    Ok(times)
}

/// Latency coding: one spike per input at step `round(t)` (none when `round(t) ≥ T`, or
/// when `clip` is set and the input is below threshold).
pub fn latency(data: &[f32], steps: usize, o: &LatencyOptions) -> Result<Vec<f32>> {
    let times = latency_times(data, steps, o)?;
    let n = data.len();
    let mut out = vec![0.0f32; steps * n];
    for (i, (&t, &x)) in times.iter().zip(data).enumerate() {
        let step = t.round();
        if step >= 0.0 && (step as usize) < steps && !(o.clip && x < o.threshold) {
            out[step as usize * n + i] = 1.0;
        }
    }
    Ok(out)
}

/// Delta modulation over a time-major sequence of `steps × len` values: a spike where the
/// value rose by at least `threshold` since the previous step (the step before the first
/// is zero), and −1 where it fell as much when `off_spike` is set.
pub fn delta(seq: &[f32], len: usize, threshold: f32, off_spike: bool) -> Vec<f32> {
    seq.iter()
        .enumerate()
        .map(|(k, &x)| {
            let prev = if k < len { 0.0 } else { seq[k - len] };
            let d = x - prev;
            if d >= threshold {
                1.0
            } else if off_spike && d <= -threshold {
                -1.0
            } else {
                0.0
            }
        })
        .collect()
}

/// `[steps, batch, features]` from time-major host values.
pub fn to_tensor(
    values: Vec<f32>,
    steps: usize,
    batch: usize,
    features: usize,
    device: &Device,
) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, [steps, batch, features]), device)
}
