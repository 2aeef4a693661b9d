//! The fused CPU kernels: a Leaky or Synaptic layer over a whole sequence, forward and
//! backward, on plain `f32` slices.
//!
//! Rows of the batch are independent, so both passes split the batch across rayon's pool.
//! The arithmetic follows the composed path operation for operation (same order, no fused
//! multiply-add), so the forward values are bit-identical to it.

mod backward;
mod step_back;

use rayon::prelude::*;

pub use backward::backward;
pub(super) use backward::{recompute_row, sum_in_order, Rows, StateGrads, Walk};
pub(super) use step_back::{back_step, lanes, LaneParams, Lanes, StepIn};

use super::buffer::{Shared, Unfilled};
use crate::neuron::Reset;
use crate::surrogate::Surrogate;

/// Which neuron a fused kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifKind {
    /// `U[t] = β·U[t−1] + I[t]` (+ reset); parameters rows `[β, θ]`.
    Leaky,
    /// `I_syn[t] = α·I_syn[t−1] + I[t]`, `U[t] = β·U[t−1] + I_syn[t]` (+ reset); parameter
    /// rows `[α, β, θ]`.
    Synaptic,
}

impl LifKind {
    /// Parameter rows the kernel reads (`[β, θ]` or `[α, β, θ]`).
    pub fn param_rows(self) -> usize {
        match self {
            LifKind::Leaky => 2,
            LifKind::Synaptic => 3,
        }
    }

    /// Rows of the state (`[U]`, or `[I_syn, U]` for Synaptic).
    pub fn state_rows(self) -> usize {
        match self {
            LifKind::Leaky => 1,
            LifKind::Synaptic => 2,
        }
    }
}

/// The shape and settings of one fused call.
#[derive(Debug, Clone)]
pub struct LifSpec {
    /// Neuron model.
    pub kind: LifKind,
    /// Reset mechanism.
    pub reset: Reset,
    /// Surrogate for `∂S/∂U`.
    pub surrogate: Surrogate,
    /// Time steps.
    pub steps: usize,
    /// Batch rows.
    pub batch: usize,
    /// Neurons per row.
    pub features: usize,
    /// The input is one `[batch, features]` current applied at every step.
    pub static_input: bool,
    /// Also output the membranes (after the spikes, as `[2·T, batch, features]`).
    pub mems: bool,
    /// The call starts from a given state (`[S, batch, features]`, S = [`LifKind::state_rows`])
    /// instead of rest.
    pub init: bool,
    /// Also output the state after the last step (`S` more rows of `[batch, features]`, after
    /// the spikes and membranes).
    pub final_state: bool,
}

impl LifSpec {
    /// Rows of `[batch, features]` in the op's output: spikes, membranes, final state.
    pub fn output_planes(&self) -> usize {
        let mems = if self.mems { self.steps } else { 0 };
        let state = if self.final_state {
            self.kind.state_rows()
        } else {
            0
        };
        self.steps + mems + state
    }
}

/// Rows per parallel task: fixed, so sums over tasks add in the same order on any pool.
pub(super) const ROWS_PER_TASK: usize = 4;

/// Parameter rows, each of length `features` (`alpha` empty for Leaky).
#[derive(Clone, Copy)]
pub(super) struct Params<'a> {
    pub(super) alpha: &'a [f32],
    pub(super) beta: &'a [f32],
    pub(super) theta: &'a [f32],
}

pub(super) fn split_params<'a>(spec: &LifSpec, params: &'a [f32]) -> Params<'a> {
    let n = spec.features;
    match spec.kind {
        LifKind::Leaky => Params {
            alpha: &[],
            beta: &params[..n],
            theta: &params[n..2 * n],
        },
        LifKind::Synaptic => Params {
            alpha: &params[..n],
            beta: &params[n..2 * n],
            theta: &params[2 * n..3 * n],
        },
    }
}

/// `H(x)`: 1 where `x > 0`.
#[inline(always)]
pub(super) fn step(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The emitted spike: like [`step`], but a NaN membrane gives a NaN spike, so that a NaN
/// reaches the loss (and is reported) instead of reading as silence.
#[inline(always)]
pub(super) fn spike(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else {
        step(x)
    }
}

/// Reset mechanisms as const-generic codes, so that each kernel instance is branch-free.
pub(super) const SUB: u8 = 0;
pub(super) const ZERO: u8 = 1;
pub(super) const NONE: u8 = 2;
/// Zero the previous membrane, then integrate (for Leaky the same as [`ZERO`]).
pub(super) const ZTI: u8 = 3;

pub(super) fn reset_code(r: Reset) -> u8 {
    match r {
        Reset::Subtract => SUB,
        Reset::Zero => ZERO,
        Reset::None => NONE,
        Reset::ZeroThenIntegrate => ZTI,
    }
}

/// Calls `$go::<…, SYN, RESET>(…)` for the spec's neuron and reset (after any generic
/// arguments given).
macro_rules! monomorphize {
    ($spec:expr, $go:ident ( $($arg:expr),* )) => {
        monomorphize!($spec, $go::<>($($arg),*))
    };
    ($spec:expr, $go:ident :: < $($g:literal),* > ( $($arg:expr),* )) => {
        match ($spec.kind, reset_code($spec.reset)) {
            (LifKind::Leaky, SUB) => $go::<$($g,)* false, SUB>($($arg),*),
            // Leaky's zero reset already zeroes the previous membrane.
            (LifKind::Leaky, ZERO | ZTI) => $go::<$($g,)* false, ZERO>($($arg),*),
            (LifKind::Leaky, _) => $go::<$($g,)* false, NONE>($($arg),*),
            (LifKind::Synaptic, SUB) => $go::<$($g,)* true, SUB>($($arg),*),
            (LifKind::Synaptic, ZERO) => $go::<$($g,)* true, ZERO>($($arg),*),
            (LifKind::Synaptic, ZTI) => $go::<$($g,)* true, ZTI>($($arg),*),
            (LifKind::Synaptic, _) => $go::<$($g,)* true, NONE>($($arg),*),
        }
    };
}
pub(super) use monomorphize;

/// Runs `$body` compiled for AVX-512 or AVX2 when the CPU has them (the loops are then 16 or
/// 8 lanes wide; results are bit-identical, as no multiply-add is fused), else for the
/// baseline.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$($g:ident: $gt:ty),*>($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$(const $g: $gt),*>($($a: $t),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$(const $g: $gt),*>($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512<$(const $g: $gt),*>($($a: $t),*) {
                    body::<$($g),*>($($a),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$(const $g: $gt),*>($($a: $t),*) {
                    body::<$($g),*>($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F, checked just above.
                    return unsafe { avx512::<$($g),*>($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2::<$($g),*>($($a),*) };
                }
            }
            body::<$($g),*>($($a),*)
        }
    };
}
pub(super) use multiversion;

/// One step of one batch row: updates the membrane `u` (and current `syn`) from input `x`.
/// Same operations, in the same order, as the composed path.
#[inline(always)]
pub(super) fn step_row<const SYN: bool, const RESET: u8>(
    p: Params,
    x: &[f32],
    u: &mut [f32],
    syn: &mut [f32],
) {
    let n = u.len();
    let (x, beta, theta) = (&x[..n], &p.beta[..n], &p.theta[..n]);
    if SYN {
        let (alpha, syn) = (&p.alpha[..n], &mut syn[..n]);
        for k in 0..n {
            let prev = u[k];
            let r = step(prev - theta[k]);
            syn[k] = syn[k] * alpha[k] + x[k];
            let kept = if RESET == ZTI { prev - r * prev } else { prev };
            let base = kept * beta[k] + syn[k];
            u[k] = match RESET {
                SUB => base - r * theta[k],
                ZERO => base - r * base,
                _ => base,
            };
        }
    } else {
        for k in 0..n {
            let prev = u[k];
            let r = step(prev - theta[k]);
            u[k] = match RESET {
                SUB => prev * beta[k] + x[k] - r * theta[k],
                ZERO => (prev - r * prev) * beta[k] + x[k],
                _ => prev * beta[k] + x[k],
            };
        }
    }
}

/// The input row of batch row `b` at step `t`.
#[inline(always)]
pub(super) fn input_row<'a>(spec: &LifSpec, input: &'a [f32], t: usize, b: usize) -> &'a [f32] {
    let n = spec.features;
    let row = if spec.static_input {
        b
    } else {
        t * spec.batch + b
    };
    &input[row * n..(row + 1) * n]
}

/// The batch rows of each parallel task.
pub(super) fn tasks(batch: usize) -> Vec<std::ops::Range<usize>> {
    (0..batch)
        .step_by(ROWS_PER_TASK)
        .map(|b| b..(b + ROWS_PER_TASK).min(batch))
        .collect()
}

/// Batch row `b`'s initial state: copied from `init` (`[S, B, N]`: `[U]`, or `[I_syn, U]`)
/// when `spec.init`, else rest.
#[inline(always)]
pub(super) fn load_state<const SYN: bool>(
    spec: &LifSpec,
    init: &[f32],
    b: usize,
    u: &mut [f32],
    syn: &mut [f32],
) {
    if !spec.init {
        u.fill(0.0);
        syn.fill(0.0);
        return;
    }
    let n = spec.features;
    let row = |k: usize| &init[(k * spec.batch + b) * n..][..n];
    if SYN {
        syn.copy_from_slice(row(0));
        u.copy_from_slice(row(1));
    } else {
        u.copy_from_slice(row(0));
        syn.fill(0.0);
    }
}

/// Writes batch row `b`'s state (`u`, and `syn` for Synaptic) into the state planes that
/// start at plane `first` of `out` (planes of `[B, N]`).
///
/// # Safety
/// Those rows lie inside `out` and belong to the calling task alone.
#[inline(always)]
pub(super) unsafe fn store_state<const SYN: bool>(
    spec: &LifSpec,
    out: Shared,
    first: usize,
    b: usize,
    u: &[f32],
    syn: &[f32],
) {
    let (b_n, n) = (spec.batch, spec.features);
    if SYN {
        out.row(first * b_n + b, n).copy_from_slice(syn);
        out.row((first + 1) * b_n + b, n).copy_from_slice(u);
    } else {
        out.row(first * b_n + b, n).copy_from_slice(u);
    }
}

/// Forward: returns spikes `[T, B, N]`, then membranes when `spec.mems`, then the final
/// state when `spec.final_state` ([`LifSpec::output_planes`] planes of `[B, N]`). `init` is
/// the initial state when `spec.init` (else ignored).
pub fn forward(spec: &LifSpec, input: &[f32], params: &[f32], init: &[f32]) -> Vec<f32> {
    let p = split_params(spec, params);
    let mut out = Unfilled::new(spec.output_planes() * spec.batch * spec.features);
    let ptr = Shared(out.as_mut_ptr());
    tasks(spec.batch).into_par_iter().for_each(|rows| {
        monomorphize!(spec, forward_rows(spec, input, p, init, rows, ptr));
    });
    // SAFETY: the tasks cover every batch row, and each writes its row of every output
    // plane: T of spikes, T of membranes when `mems`, the state planes when `final_state`.
    unsafe { out.assume_filled() }
}

multiversion! {
    /// Forward over the batch rows `rows`, writing their spikes (and membranes, final state)
    /// into `out`.
    fn forward_rows<SYN: bool, RESET: u8>(spec: &LifSpec, input: &[f32], p: Params, init: &[f32], rows: std::ops::Range<usize>, out: Shared) {
        let (b_n, n) = (spec.batch, spec.features);
        let (mut u, mut syn) = (vec![0.0f32; n], vec![0.0f32; n]);
        for b in rows {
            load_state::<SYN>(spec, init, b, &mut u, &mut syn);
            for t in 0..spec.steps {
                step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut u, &mut syn);
                let row = t * b_n + b;
                // SAFETY: row b of step t belongs to this task alone; `out` outlives the call.
                let s = unsafe { out.row(row, n) };
                for ((s, &u), &th) in s.iter_mut().zip(&u).zip(&p.theta[..n]) {
                    *s = spike(u - th);
                }
                if spec.mems {
                    // SAFETY: as above, in the membrane planes (after the T spike planes).
                    unsafe { out.row(spec.steps * b_n + row, n) }.copy_from_slice(&u);
                }
            }
            if spec.final_state {
                let first = spec.output_planes() - spec.kind.state_rows();
                // SAFETY: row b of the state planes belongs to this task alone.
                unsafe { store_state::<SYN>(spec, out, first, b, &u, &syn) };
            }
        }
    }
}
