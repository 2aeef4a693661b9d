//! The fused kernel of the explicitly recurrent neurons (RLeaky, RSynaptic): a whole
//! sequence forward and backward, on plain `f32` slices.
//!
//! With `R(S) = S·W + b` (all-to-all) or `V ⊙ S` (one-to-one) and `r[t] = H(U[t−1] − θ)`:
//! RLeaky `base = β·U[t−1] + I[t] + R(S[t−1])`; RSynaptic `I_syn[t] = α·I_syn[t−1] + I[t] +
//! R(S[t−1])`, `base = β·U[t−1] + I_syn[t]`; then `U[t] = base − r·θ` (subtract),
//! `base·(1 − r)` (zero) or `base`, and `S[t] = H(U[t] − θ)`; zero-then-integrate uses
//! `(1 − r)·U[t−1]` in place of `U[t−1]` in `base`.
//!
//! The fed-back spikes are binary: the forward product `S·W` adds the rows of `W` of the
//! neurons that fired (work in proportion to the spikes), and so does the weight gradient
//! `Σ_t S[t−1]ᵀ·e[t]`. The backward product `e·Wᵀ` is dense, one small GEMM per step for a
//! task's rows. Time runs outermost: the neurons of a row are coupled through `W`.

use rayon::prelude::*;

pub use backward::backward;

use super::buffer::Shared;
use super::lif::{reset_code, spike, step, NONE, SUB, ZERO, ZTI};
use crate::neuron::Reset;
use crate::surrogate::Surrogate;

/// The shape and settings of one recurrent call.
#[derive(Debug, Clone)]
pub struct RlifSpec {
    /// With a synaptic current (RSynaptic).
    pub synaptic: bool,
    /// All-to-all feedback `S·W + b` (else one-to-one `V ⊙ S`).
    pub all_to_all: bool,
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
    /// The input is one `[B, N]` current for every step.
    pub static_input: bool,
    /// Also output the membranes.
    pub mems: bool,
    /// Start from the given state (`[S, B, N]`: `[spikes, U]` or `[spikes, I_syn, U]`).
    pub init: bool,
    /// Also output the final state.
    pub final_state: bool,
}

impl RlifSpec {
    /// State planes: `[S, U]` or `[S, I_syn, U]`.
    pub fn state_rows(&self) -> usize {
        if self.synaptic {
            3
        } else {
            2
        }
    }

    /// Planes of `[B, N]` in the output: spikes, membranes, final state.
    pub fn output_planes(&self) -> usize {
        self.steps
            + if self.mems { self.steps } else { 0 }
            + if self.final_state {
                self.state_rows()
            } else {
                0
            }
    }
}

/// Parameter rows `[α, β, θ, V, b]` (α zero for RLeaky, `V` unused all-to-all, `b` unused
/// one-to-one), each `[N]`.
pub const PARAM_ROWS: usize = 5;

/// Rows per parallel task: fixed, so sums over tasks add in the same order on any pool.
const ROWS: usize = 4;

fn tasks(batch: usize) -> Vec<std::ops::Range<usize>> {
    (0..batch)
        .step_by(ROWS)
        .map(|b| b..(b + ROWS).min(batch))
        .collect()
}

#[derive(Clone, Copy)]
struct P<'a> {
    alpha: &'a [f32],
    beta: &'a [f32],
    theta: &'a [f32],
    v: &'a [f32],
    bias: &'a [f32],
}

fn split(params: &[f32], n: usize) -> P<'_> {
    let row = |k: usize| &params[k * n..(k + 1) * n];
    P {
        alpha: row(0),
        beta: row(1),
        theta: row(2),
        v: row(3),
        bias: row(4),
    }
}

/// One row's forward state.
struct RowState {
    u: Vec<f32>,
    syn: Vec<f32>,
    s: Vec<f32>,
}

fn load(spec: &RlifSpec, init: &[f32], b: usize) -> RowState {
    let n = spec.features;
    let row = |k: usize| init[(k * spec.batch + b) * n..][..n].to_vec();
    if !spec.init {
        return RowState {
            u: vec![0.0; n],
            syn: vec![0.0; n],
            s: vec![0.0; n],
        };
    }
    if spec.synaptic {
        RowState {
            s: row(0),
            syn: row(1),
            u: row(2),
        }
    } else {
        RowState {
            s: row(0),
            syn: vec![0.0; n],
            u: row(1),
        }
    }
}

/// `R(S)` for one row: the sum of the fired neurons' rows of `w` (`[N, N]`) plus the bias, or
/// `V ⊙ S`. Written into `rec`.
fn feedback(spec: &RlifSpec, p: P, w: &[f32], s: &[f32], rec: &mut [f32]) {
    let n = spec.features;
    if spec.all_to_all {
        rec.fill(0.0);
        for (i, &si) in s.iter().enumerate() {
            if si != 0.0 {
                let wi = &w[i * n..(i + 1) * n];
                if si == 1.0 {
                    rec.iter_mut().zip(wi).for_each(|(r, &x)| *r += x);
                } else {
                    rec.iter_mut().zip(wi).for_each(|(r, &x)| *r += si * x);
                }
            }
        }
        rec.iter_mut().zip(p.bias).for_each(|(r, &b)| *r += b);
    } else {
        for k in 0..n {
            rec[k] = s[k] * p.v[k];
        }
    }
}

/// One step of one row (the composed path's operations, in its order).
fn step_row<const SYN: bool, const RESET: u8>(p: P, x: &[f32], rec: &[f32], st: &mut RowState) {
    let n = st.u.len();
    for k in 0..n {
        let prev = st.u[k];
        let r = step(prev - p.theta[k]);
        let kept = if RESET == ZTI { prev - r * prev } else { prev };
        let base = if SYN {
            st.syn[k] = st.syn[k] * p.alpha[k] + x[k] + rec[k];
            kept * p.beta[k] + st.syn[k]
        } else {
            kept * p.beta[k] + x[k] + rec[k]
        };
        st.u[k] = match RESET {
            SUB => base - r * p.theta[k],
            ZERO => base - r * base,
            _ => base,
        };
        st.s[k] = spike(st.u[k] - p.theta[k]);
    }
}

fn input_row<'a>(spec: &RlifSpec, input: &'a [f32], t: usize, b: usize) -> &'a [f32] {
    let n = spec.features;
    let row = if spec.static_input {
        b
    } else {
        t * spec.batch + b
    };
    &input[row * n..(row + 1) * n]
}

macro_rules! by_kind {
    ($spec:expr, $go:ident ( $($arg:expr),* )) => {
        match ($spec.synaptic, reset_code($spec.reset)) {
            (false, SUB) => $go::<false, SUB>($($arg),*),
            (false, ZERO) => $go::<false, ZERO>($($arg),*),
            (false, ZTI) => $go::<false, ZTI>($($arg),*),
            (false, _) => $go::<false, NONE>($($arg),*),
            (true, SUB) => $go::<true, SUB>($($arg),*),
            (true, ZERO) => $go::<true, ZERO>($($arg),*),
            (true, ZTI) => $go::<true, ZTI>($($arg),*),
            (true, _) => $go::<true, NONE>($($arg),*),
        }
    };
}

/// Forward: spikes, membranes (when asked) and final state (when asked), as
/// [`RlifSpec::output_planes`] planes of `[B, N]`.
pub fn forward(
    spec: &RlifSpec,
    input: &[f32],
    params: &[f32],
    w: &[f32],
    init: &[f32],
) -> Vec<f32> {
    let (n, b_n, t_n) = (spec.features, spec.batch, spec.steps);
    let p = split(params, n);
    let mut out = vec![0.0f32; spec.output_planes() * b_n * n];
    let ptr = Shared(out.as_mut_ptr());
    tasks(b_n).into_par_iter().for_each(|rows| {
        let mut rec = vec![0.0f32; n];
        for b in rows {
            let mut st = load(spec, init, b);
            for t in 0..t_n {
                feedback(spec, p, w, &st.s, &mut rec);
                by_kind!(
                    spec,
                    step_row(p, input_row(spec, input, t, b), &rec, &mut st)
                );
                // SAFETY: row b of every plane belongs to this task alone.
                unsafe {
                    ptr.row(t * b_n + b, n).copy_from_slice(&st.s);
                    if spec.mems {
                        ptr.row((t_n + t) * b_n + b, n).copy_from_slice(&st.u);
                    }
                }
            }
            if spec.final_state {
                let first = spec.output_planes() - spec.state_rows();
                let planes: Vec<&[f32]> = if spec.synaptic {
                    vec![&st.s, &st.syn, &st.u]
                } else {
                    vec![&st.s, &st.u]
                };
                for (k, plane) in planes.into_iter().enumerate() {
                    // SAFETY: as above.
                    unsafe { ptr.row((first + k) * b_n + b, n) }.copy_from_slice(plane);
                }
            }
        }
    });
    out
}

// After the macros above, which it uses.
mod backward;
