//! SNN losses, named as in snntorch's `functional` module.
//!
//! Outputs are `[T, batch, classes]`; targets are class indices. Every loss returns a
//! one-element tensor and is averaged over the batch.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::kernel;

/// Which loss the training loop uses. A [`crate::setting::Setting`]: `"ce-rate"` or
/// `{ type = "mse-count", correct_rate = 0.9, incorrect_rate = 0.1 }`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LossKind {
    /// Σ_t CE(U[t], y): cross-entropy on the output membrane at every step, summed (the
    /// tutorial's loss).
    CeMembrane,
    /// Mean over steps of CE(S[t], y).
    CeRate,
    /// CE(Σ_t S[t], y).
    CeCount,
    /// CE(max_t U[t], y).
    CeMaxMembrane,
    /// MSE between spike counts and `T·rate` targets (80 % correct, 20 % incorrect by default).
    MseCount {
        /// Target firing rate of the correct class (default 0.8).
        #[serde(default = "rate_on")]
        correct_rate: f32,
        /// Target firing rate of the other classes (default 0.2).
        #[serde(default = "rate_off")]
        incorrect_rate: f32,
    },
    /// Mean over steps of MSE(U[t], on/off targets).
    MseMembrane {
        /// Target membrane of the correct class (default 1).
        #[serde(default = "one")]
        on_target: f32,
        /// Target membrane of the other classes (default 0).
        #[serde(default)]
        off_target: f32,
    },
    /// CE on negated first-spike times (earliest spike wins).
    CeTemporal,
    /// MSE between first-spike times and targets (correct at step 0, others at the last).
    MseTemporal,
}

impl LossKind {
    /// Parses `ce-membrane` (default), `ce-rate`, `ce-count`, `ce-max-membrane`, `mse-count`,
    /// `mse-membrane`, `ce-temporal`, `mse-temporal`, with optional parameters
    /// (`mse-count:correct_rate=0.9`; see [`crate::setting`]).
    pub fn from_name(name: &str) -> Result<LossKind> {
        <LossKind as crate::setting::Setting>::parse(name)
    }

    /// The canonical name.
    pub fn name(&self) -> &'static str {
        match self {
            LossKind::CeMembrane => "ce-membrane",
            LossKind::CeRate => "ce-rate",
            LossKind::CeCount => "ce-count",
            LossKind::CeMaxMembrane => "ce-max-membrane",
            LossKind::MseCount { .. } => "mse-count",
            LossKind::MseMembrane { .. } => "mse-membrane",
            LossKind::CeTemporal => "ce-temporal",
            LossKind::MseTemporal => "mse-temporal",
        }
    }

    /// Whether the loss reads membranes (otherwise spikes).
    pub fn uses_membrane(&self) -> bool {
        matches!(
            self,
            LossKind::CeMembrane | LossKind::CeMaxMembrane | LossKind::MseMembrane { .. }
        )
    }

    /// Evaluates the loss on spikes and membranes `[T, batch, classes]` (the membranes may be
    /// left out for a loss that reads only spikes: see [`LossKind::uses_membrane`]).
    pub fn compute(
        &self,
        spikes: Tensor<3>,
        mems: Option<Tensor<3>>,
        targets: &[usize],
    ) -> Result<Tensor<1>> {
        let mems = || {
            mems.ok_or_else(|| {
                Error::invalid(
                    "loss",
                    format!("{} reads the output membranes", self.name()),
                )
            })
        };
        match *self {
            LossKind::CeMembrane => ce_membrane_loss(mems()?, targets),
            LossKind::CeRate => ce_rate_loss(spikes, targets),
            LossKind::CeCount => ce_count_loss(spikes, targets),
            LossKind::CeMaxMembrane => ce_max_membrane_loss(mems()?, targets),
            LossKind::MseCount {
                correct_rate,
                incorrect_rate,
            } => mse_count_loss(spikes, targets, correct_rate, incorrect_rate),
            LossKind::MseMembrane {
                on_target,
                off_target,
            } => mse_membrane_loss(mems()?, targets, on_target, off_target),
            LossKind::CeTemporal => ce_temporal_loss(spikes, targets),
            LossKind::MseTemporal => mse_temporal_loss(spikes, targets),
        }
    }
}

fn rate_on() -> f32 {
    0.8
}

fn rate_off() -> f32 {
    0.2
}

fn one() -> f32 {
    1.0
}

impl crate::setting::Setting for LossKind {
    const WHAT: &'static str = "loss";

    fn alias(name: &str) -> Option<serde_json::Value> {
        (name == "ce-mem").then(|| serde_json::json!({ "type": "ce-membrane" }))
    }
}

/// One-hot `[batch, classes]` with `on` at the target and `off` elsewhere.
pub fn one_hot(
    targets: &[usize],
    classes: usize,
    on: f32,
    off: f32,
    device: &Device,
) -> Result<Tensor<2>> {
    check_targets(targets, classes)?;
    let mut v = vec![off; targets.len() * classes];
    for (i, &y) in targets.iter().enumerate() {
        v[i * classes + y] = on;
    }
    Ok(Tensor::from_data(
        TensorData::new(v, [targets.len(), classes]),
        device,
    ))
}

/// Every target a class below `classes`.
fn check_targets(targets: &[usize], classes: usize) -> Result<()> {
    match targets.iter().find(|&&y| y >= classes) {
        Some(&y) => Err(Error::invalid(
            "target",
            format!("class {y} is out of range for {classes} outputs"),
        )),
        None => Ok(()),
    }
}

fn check(out: &Tensor<3>, targets: &[usize]) -> Result<[usize; 3]> {
    let dims = out.dims();
    if dims[1] != targets.len() {
        return Err(Error::Shape {
            context: "loss targets vs batch",
            expected: vec![dims[1]],
            got: vec![targets.len()],
        });
    }
    Ok(dims)
}

/// Cross-entropy of `logits` `[batch, classes]` against `targets`, averaged over the batch.
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize]) -> Result<Tensor<1>> {
    mean_cross_entropy(logits.unsqueeze_dim(0), targets)
}

/// Σ_t CE(U[t], y): the tutorial's loss on the output membrane, summed over steps.
pub fn ce_membrane_loss(mems: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    mean_cross_entropy(mems, targets)
}

/// `−(1/B)·Σ_{t,b} log softmax(x[t, b])[y_b]` for `x` `[T, B, C]`: one op on the CPU
/// backend, burn's ops elsewhere ([`reference_cross_entropy`]).
fn mean_cross_entropy(x: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    let [t, b, c] = check(&x, targets)?;
    if t * b == 0 {
        return Err(Error::invalid(
            "loss",
            format!("{t} steps of {b} samples have no loss"),
        ));
    }
    let scale = 1.0 / b as f32;
    if !kernel::supports(&x.device()) {
        return reference_cross_entropy(x, targets, scale);
    }
    check_targets(targets, c)?;
    Ok(kernel::cross_entropy(x.reshape([t * b, c]), targets, scale))
}

/// `−scale·Σ_{t,b} log softmax(x[t, b])[y_b]` for `x` `[T, B, C]` as burn tensor ops: the
/// definition, on any backend. The cross-entropy losses above compute the same in one op on
/// the CPU backend, and this elsewhere.
pub fn reference_cross_entropy(x: Tensor<3>, targets: &[usize], scale: f32) -> Result<Tensor<1>> {
    let c = x.dims()[2];
    // The one-hot broadcast over steps.
    let y = one_hot(targets, c, 1.0, 0.0, &x.device())?.unsqueeze_dim::<3>(0);
    Ok((log_softmax(x, 2) * y).sum().neg().mul_scalar(scale))
}

/// snntorch `ce_rate_loss`: the mean over steps of CE(S[t], y).
pub fn ce_rate_loss(spikes: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    let [t, _, _] = spikes.dims();
    Ok(ce_membrane_loss(spikes, targets)?.div_scalar(t as f32))
}

/// snntorch `ce_count_loss`: CE(Σ_t S[t], y).
pub fn ce_count_loss(spikes: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    let [_, b, c] = check(&spikes, targets)?;
    cross_entropy(spikes.sum_dim(0).reshape([b, c]), targets)
}

/// snntorch `ce_max_membrane_loss`: CE(max_t U[t], y).
pub fn ce_max_membrane_loss(mems: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    let [_, b, c] = check(&mems, targets)?;
    cross_entropy(mems.max_dim(0).reshape([b, c]), targets)
}

/// snntorch `mse_count_loss`: MSE between spike counts and `⌊T·rate⌋` targets, divided by T.
pub fn mse_count_loss(
    spikes: Tensor<3>,
    targets: &[usize],
    correct_rate: f32,
    incorrect_rate: f32,
) -> Result<Tensor<1>> {
    let [t, b, c] = check(&spikes, targets)?;
    let on = (t as f32 * correct_rate).trunc();
    let off = (t as f32 * incorrect_rate).trunc();
    let y = one_hot(targets, c, on, off, &spikes.device())?;
    let d = spikes.sum_dim(0).reshape([b, c]) - y;
    Ok((d.clone() * d).mean().div_scalar(t as f32))
}

/// snntorch `mse_membrane_loss`: the mean over steps of MSE(U[t], targets).
pub fn mse_membrane_loss(
    mems: Tensor<3>,
    targets: &[usize],
    on_target: f32,
    off_target: f32,
) -> Result<Tensor<1>> {
    let [_, _, c] = check(&mems, targets)?;
    let y = one_hot(targets, c, on_target, off_target, &mems.device())?.unsqueeze_dim::<3>(0);
    let d = mems - y;
    // The mean over (T, B, C) equals (1/T)·Σ_t of the mean over (B, C).
    Ok((d.clone() * d).mean())
}

/// First-spike times `[batch, classes]` (0-based; silent outputs read `T − 1`, as in snntorch).
///
/// The gradient is snntorch's sign estimator: `∂time/∂S[t] = −1` at the first-spike step.
pub fn first_spike_times(spikes: Tensor<3>) -> Tensor<2> {
    let [t, b, c] = spikes.dims();
    let device = spikes.device();
    let host = crate::tensor::to_vec(spikes.clone().detach());
    let mut times = vec![(t - 1) as f32; b * c];
    let mut mask = vec![0.0f32; t * b * c];
    for k in 0..b * c {
        let first = (0..t)
            .find(|&s| host[s * b * c + k] != 0.0)
            .unwrap_or(t - 1);
        times[k] = first as f32;
        mask[first * b * c + k] = 1.0;
    }
    let times = Tensor::<2>::from_data(TensorData::new(times, [b, c]), &device);
    let mask = Tensor::<3>::from_data(TensorData::new(mask, [t, b, c]), &device);
    let picked = (spikes * mask).sum_dim(0).reshape([b, c]).neg();
    times + (picked.clone() - picked.detach())
}

/// snntorch `ce_temporal_loss` (negate): CE(−first_spike_times, y).
pub fn ce_temporal_loss(spikes: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    check(&spikes, targets)?;
    cross_entropy(first_spike_times(spikes).neg(), targets)
}

/// snntorch `mse_temporal_loss`: MSE(time/T, target/T), with the correct class's target at
/// step 0 and the others at `T − 1`.
pub fn mse_temporal_loss(spikes: Tensor<3>, targets: &[usize]) -> Result<Tensor<1>> {
    let [t, _, c] = check(&spikes, targets)?;
    let device = spikes.device();
    let y = one_hot(targets, c, 0.0, (t - 1) as f32, &device)?;
    let d = (first_spike_times(spikes) - y).div_scalar(t as f32);
    Ok((d.clone() * d).mean())
}

/// snntorch `l1_rate_sparsity`: `λ·Σ S` over every step, sample and neuron.
pub fn l1_rate_sparsity(spikes: Tensor<3>, lambda: f32) -> Tensor<1> {
    spikes.sum().mul_scalar(lambda)
}
