//! The fused CPU kernels: a Leaky or Synaptic layer over a whole sequence, forward and
//! backward, on plain `f32` slices.
//!
//! Rows of the batch are independent, so both passes split the batch across rayon's pool.
//! The arithmetic follows the composed path operation for operation (same order, no fused
//! multiply-add), so the forward values are bit-identical to it.

use rayon::prelude::*;

use crate::neuron::Reset;
use crate::surrogate::{eval, with_surrogate_code, DerivativeRef, Surrogate};

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

/// A raw pointer that may cross threads: each task writes a disjoint set of elements.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Row `row` (of length `n`) of the array this points into.
    ///
    /// # Safety
    /// The row lies inside the array, and no one else reads or writes it meanwhile.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn row(&self, row: usize, n: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(row * n), n)
    }
}

/// Reset mechanisms as const-generic codes, so that each kernel instance is branch-free.
pub(super) const SUB: u8 = 0;
pub(super) const ZERO: u8 = 1;
pub(super) const NONE: u8 = 2;

pub(super) fn reset_code(r: Reset) -> u8 {
    match r {
        Reset::Subtract => SUB,
        Reset::Zero => ZERO,
        Reset::None => NONE,
    }
}

/// Calls `$go::<SYN, RESET>(…)` for the spec's neuron and reset.
macro_rules! monomorphize {
    ($spec:expr, $go:ident ( $($arg:expr),* )) => {
        match ($spec.kind, reset_code($spec.reset)) {
            (LifKind::Leaky, SUB) => $go::<false, SUB>($($arg),*),
            (LifKind::Leaky, ZERO) => $go::<false, ZERO>($($arg),*),
            (LifKind::Leaky, _) => $go::<false, NONE>($($arg),*),
            (LifKind::Synaptic, SUB) => $go::<true, SUB>($($arg),*),
            (LifKind::Synaptic, ZERO) => $go::<true, ZERO>($($arg),*),
            (LifKind::Synaptic, _) => $go::<true, NONE>($($arg),*),
        }
    };
}
pub(super) use monomorphize;

/// Runs `$body` compiled for AVX-512 or AVX2 when the CPU has them (the loops are then 16 or
/// 8 lanes wide; results are bit-identical, as no multiply-add is fused), else for the
/// baseline.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident<$($g:ident: $gt:ty),*>($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        fn $name<$(const $g: $gt),*>($($a: $t),*) {
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
            let base = prev * beta[k] + syn[k];
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
    let mut out = vec![0.0f32; spec.output_planes() * spec.batch * spec.features];
    let ptr = Shared(out.as_mut_ptr());
    tasks(spec.batch).into_par_iter().for_each(|rows| {
        monomorphize!(spec, forward_rows(spec, input, p, init, rows, ptr));
    });
    out
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

/// Gradients of one fused call.
pub struct LifGrads {
    /// `∂L/∂input`, the input's shape (`[B, N]` summed over steps when static).
    pub input: Vec<f32>,
    /// `∂L/∂params`, rows as in the parameters.
    pub params: Vec<f32>,
    /// `∂L/∂init`, `[S, B, N]` (empty when the call started from rest).
    pub init: Vec<f32>,
}

/// Where a call's state enters and leaves, for the backward pass: the initial state (read
/// when recomputing), its gradient (written), and the gradient of the final state (read).
#[derive(Clone, Copy)]
pub(super) struct StateGrads<'a> {
    /// The initial state, `[S, B, N]` (ignored unless `spec.init`).
    pub(super) init: &'a [f32],
    /// `∂L/∂init`, `[S, B, N]` (written only when `spec.init`).
    pub(super) g_init: Shared,
    /// `∂L/∂(final state)`, `[S, B, N]`, when `spec.final_state`.
    pub(super) g_end: Option<&'a [f32]>,
}

/// Backward: `grad` is `∂L/∂output` (spikes, then membranes when `spec.mems`, then the final
/// state when `spec.final_state`).
///
/// The membranes are recomputed row by row from the input (cheap, and nothing but the
/// input has to be kept between the passes). With `δ[t] = ∂L/∂U[t]`:
/// `δ[t] = g_U[t] + g_S[t]·σ'(U[t] − θ) + c[t+1]·δ[t+1]`, where `c[t+1] = β`, or
/// `β·(1 − r[t+1])` for zero reset; Synaptic adds the current's recursion
/// `δ_syn[t] = δ[t]·(1 − r[t] if zero reset) + α·δ_syn[t+1]`. Then `∂L/∂I[t]` is `δ[t]`
/// (`δ_syn[t]` for Synaptic), `∂L/∂β = Σ δ[t]·(1 − r[t] if zero)·U[t−1]`,
/// `∂L/∂α = Σ δ_syn[t]·I_syn[t−1]`, `∂L/∂θ = Σ −g_S[t]·σ'(U[t] − θ) − δ[t]·r[t] (subtract)`.
/// The final state's gradient joins `δ[T−1]` (and `δ_syn[T−1]`); the initial state's is
/// `∂L/∂U[−1] = c[0]·δ[0]` (and `α·δ_syn[0]`).
pub fn backward(
    spec: &LifSpec,
    input: &[f32],
    params: &[f32],
    init: &[f32],
    grad: &[f32],
) -> LifGrads {
    let p = split_params(spec, params);
    let rows = spec.kind.param_rows() * spec.features;
    let mut g_input = vec![0.0f32; input.len()];
    let plane = spec.batch * spec.features;
    let state_len = spec.kind.state_rows() * plane;
    let mut g_init = vec![0.0f32; if spec.init { state_len } else { 0 }];
    let state = StateGrads {
        init,
        g_init: Shared(g_init.as_mut_ptr()),
        g_end: spec
            .final_state
            .then(|| &grad[(spec.output_planes() * plane - state_len)..]),
    };
    let task = BackTask {
        spec,
        input,
        p,
        grad,
        k: spec.surrogate.code().1,
        custom: spec.surrogate.custom_derivative(),
        g_input: Shared(g_input.as_mut_ptr()),
        state,
    };
    let partials: Vec<Vec<f32>> = tasks(spec.batch)
        .into_par_iter()
        .map(|rows_of_task| {
            let mut g_params = vec![0.0f32; rows];
            monomorphize!(spec, backward_task(&task, rows_of_task, &mut g_params));
            g_params
        })
        .collect();
    LifGrads {
        input: g_input,
        params: sum_in_order(partials, rows),
        init: g_init,
    }
}

/// Sums per-task partial gradients in task order: the same on any number of threads.
pub(super) fn sum_in_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; len];
    for part in partials {
        for (a, b) in total.iter_mut().zip(part) {
            *a += b;
        }
    }
    total
}

/// What every backward task reads.
struct BackTask<'a> {
    spec: &'a LifSpec,
    input: &'a [f32],
    p: Params<'a>,
    grad: &'a [f32],
    /// Surrogate parameters and custom derivative ([`eval`]).
    k: [f32; 2],
    custom: DerivativeRef<'a>,
    g_input: Shared,
    state: StateGrads<'a>,
}

/// Picks the surrogate's instance of [`backward_rows`].
fn backward_task<const SYN: bool, const RESET: u8>(
    task: &BackTask,
    rows: std::ops::Range<usize>,
    g_params: &mut [f32],
) {
    with_surrogate_code!(
        task.spec.surrogate,
        backward_rows::<SYN, RESET>(task, rows, g_params)
    )
}

multiversion! {
    /// Backward over the batch rows `rows`: recompute, then walk time backwards.
    fn backward_rows<SYN: bool, RESET: u8, SG: u8>(task: &BackTask, rows: std::ops::Range<usize>, g_params: &mut [f32]) {
        let BackTask { spec, input, p, grad, k, custom, g_input, state } = *task;
        let (t_n, b_n, n) = (spec.steps, spec.batch, spec.features);
        let mut us = vec![0.0f32; (t_n + 1) * n];
        let mut syns = vec![0.0f32; if SYN { (t_n + 1) * n } else { 0 }];
        let mut syn = vec![0.0f32; n];
        for b in rows {
            recompute_row::<SYN, RESET>(spec, p, input, state.init, b, &mut us, &mut syns, &mut syn);
            let g_s = Rows { data: grad, stride: b_n * n, offset: b * n };
            let g_u = spec.mems.then_some(Rows { data: grad, stride: b_n * n, offset: t_n * b_n * n + b * n });
            let walk = Walk { spec, p, sg: (k, custom), b, us: &us, syns: &syns, g_s, g_u, g_input, state };
            walk.row::<SYN, RESET, SG>(g_params);
        }
    }
}

/// Rows `t = 0, 1, …` of a time-major array: row `t` starts at `offset + t·stride`.
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    pub(super) data: &'a [f32],
    pub(super) stride: usize,
    pub(super) offset: usize,
}

impl<'a> Rows<'a> {
    #[inline(always)]
    fn row(&self, t: usize, n: usize) -> &'a [f32] {
        &self.data[self.offset + t * self.stride..][..n]
    }
}

/// Recomputes batch row `b` forward: `us` gets `U[−1], U[0], …, U[T−1]` and, for Synaptic,
/// `syns` the currents likewise (`(T + 1)·n` each); `syn` is working space. `U[−1]` is the
/// initial state (`init`, when `spec.init`) or rest.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn recompute_row<const SYN: bool, const RESET: u8>(
    spec: &LifSpec,
    p: Params,
    input: &[f32],
    init: &[f32],
    b: usize,
    us: &mut [f32],
    syns: &mut [f32],
    syn: &mut [f32],
) {
    let n = spec.features;
    load_state::<SYN>(spec, init, b, &mut us[..n], syn);
    if SYN {
        syns[..n].copy_from_slice(syn);
    }
    for t in 0..spec.steps {
        let (done, next) = us.split_at_mut((t + 1) * n);
        next[..n].copy_from_slice(&done[t * n..]);
        step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut next[..n], syn);
        if SYN {
            syns[(t + 1) * n..(t + 2) * n].copy_from_slice(syn);
        }
    }
}

/// Neurons per block of the backward walk: one AVX-512 register.
const LANES: usize = 16;

/// What the backward walk of one batch row reads (see [`Walk::row`]).
pub(super) struct Walk<'a> {
    pub(super) spec: &'a LifSpec,
    pub(super) p: Params<'a>,
    pub(super) sg: ([f32; 2], DerivativeRef<'a>),
    /// The batch row.
    pub(super) b: usize,
    /// The row's recomputed membranes and currents (see [`recompute_row`]).
    pub(super) us: &'a [f32],
    pub(super) syns: &'a [f32],
    /// Upstream gradients of the spikes and (`None`: zero) the membranes.
    pub(super) g_s: Rows<'a>,
    pub(super) g_u: Option<Rows<'a>>,
    pub(super) g_input: Shared,
    pub(super) state: StateGrads<'a>,
}

impl Walk<'_> {
    /// Walks the batch row backwards in time (see [`backward`]), adding to `g_params`
    /// (`[α, β, θ]` or `[β, θ]`) and writing the row's input and initial-state gradients.
    ///
    /// Neurons outer, time inner: a block of [`LANES`] neurons keeps its running gradients
    /// and parameters in registers for the whole walk, and each step loads only its membrane
    /// and upstream gradients (time outer, every running vector went through memory every
    /// step).
    #[inline(always)]
    pub(super) fn row<const SYN: bool, const RESET: u8, const SG: u8>(&self, g_params: &mut [f32]) {
        let n = self.spec.features;
        let (g_alpha, rest) = g_params.split_at_mut(if SYN { n } else { 0 });
        let (g_beta, g_theta) = rest.split_at_mut(n);
        let mut i = 0;
        while i < n {
            let lanes = if i + LANES <= n { LANES } else { 1 };
            let r = i..i + lanes;
            let g = [
                if SYN {
                    &mut g_alpha[r.clone()]
                } else {
                    &mut [][..]
                },
                &mut g_beta[r.clone()],
                &mut g_theta[r],
            ];
            if lanes == LANES {
                self.block::<SYN, RESET, SG, LANES>(i, g);
            } else {
                self.block::<SYN, RESET, SG, 1>(i, g);
            }
            i += lanes;
        }
    }

    /// Lanes `i..i + L` of state row `k` of this batch row in a `[S, B, N]` array.
    #[inline(always)]
    fn state_lanes<const L: usize>(&self, data: &[f32], k: usize, i: usize) -> [f32; L] {
        let (b_n, n) = (self.spec.batch, self.spec.features);
        lanes::<L>(&data[(k * b_n + self.b) * n + i..])
    }

    /// The walk for neurons `i..i + L`; adds to their `[g_α, g_β, g_θ]`.
    #[inline(always)]
    fn block<const SYN: bool, const RESET: u8, const SG: u8, const L: usize>(
        &self,
        i: usize,
        [g_alpha, g_beta, g_theta]: [&mut [f32]; 3],
    ) {
        let (spec, p, (k, custom)) = (self.spec, self.p, self.sg);
        let (t_n, b_n, n) = (spec.steps, spec.batch, spec.features);
        let at = |v: &[f32], row: usize| lanes::<L>(&v[row * n + i..]);
        let (beta, theta) = (lanes::<L>(&p.beta[i..]), lanes::<L>(&p.theta[i..]));
        let alpha = if SYN {
            lanes::<L>(&p.alpha[i..])
        } else {
            [0.0; L]
        };
        let [mut du_next, mut dsyn_next, mut carry] = [[0.0f32; L]; 3];
        let [mut gb, mut gt, mut ga, mut g_static] = [[0.0f32; L]; 4];
        // The final state's gradient joins the last step's (state rows: [U] or [I_syn, U]).
        let (mut end_u, mut end_syn) = match self.state.g_end {
            Some(g) if SYN => (self.state_lanes::<L>(g, 1, i), self.state_lanes::<L>(g, 0, i)),
            Some(g) => (self.state_lanes::<L>(g, 0, i), [0.0; L]),
            None => ([0.0; L], [0.0; L]),
        };
        // `us` holds U[−1], U[0], …: U[t] is its row t + 1.
        let mut u_t = at(self.us, t_n);
        for t in (0..t_n).rev() {
            let u_prev = at(self.us, t);
            let g_s = lanes::<L>(&self.g_s.row(t, n)[i..]);
            let g_u = match &self.g_u {
                Some(rows) => lanes::<L>(&rows.row(t, n)[i..]),
                None => [0.0; L],
            };
            let syn_prev = if SYN { at(self.syns, t) } else { [0.0; L] };
            let mut g_in = [0.0f32; L];
            for l in 0..L {
                let d = eval::<SG>(k, custom, u_t[l] - theta[l]);
                let r = step(u_prev[l] - theta[l]);
                let keep = if RESET == ZERO { 1.0 - r } else { 1.0 };
                let du = g_u[l] + end_u[l] + g_s[l] * d + carry[l] * du_next[l];
                g_in[l] = if SYN {
                    let dsyn = du * keep + alpha[l] * dsyn_next[l] + end_syn[l];
                    ga[l] += dsyn * syn_prev[l];
                    dsyn_next[l] = dsyn;
                    dsyn
                } else {
                    du
                };
                gb[l] += du * keep * u_prev[l];
                gt[l] -= g_s[l] * d + if RESET == SUB { du * r } else { 0.0 };
                // ∂U[t]/∂U[t−1], used one step earlier in time.
                carry[l] = beta[l] * keep;
                du_next[l] = du;
            }
            (end_u, end_syn) = ([0.0; L], [0.0; L]);
            if spec.static_input {
                for l in 0..L {
                    g_static[l] += g_in[l];
                }
            } else {
                // SAFETY: the input-gradient row of (t, b) is written by this task alone.
                let row = unsafe { self.g_input.row(t * b_n + self.b, n) };
                row[i..i + L].copy_from_slice(&g_in);
            }
            u_t = u_prev;
        }
        if spec.static_input {
            // SAFETY: row b of the static input gradient belongs to this task alone.
            let row = unsafe { self.g_input.row(self.b, n) };
            row[i..i + L].copy_from_slice(&g_static);
        }
        if spec.init {
            // ∂L/∂U[−1] = c[0]·δ[0] (and ∂L/∂I_syn[−1] = α·δ_syn[0]).
            let u_row = if SYN { 1 } else { 0 };
            // SAFETY: this batch row's lanes of the initial-state gradient are this task's.
            let dst = unsafe { self.state.g_init.row(u_row * b_n + self.b, n) };
            for l in 0..L {
                dst[i + l] = carry[l] * du_next[l];
            }
            if SYN {
                // SAFETY: as above.
                let dst = unsafe { self.state.g_init.row(self.b, n) };
                for l in 0..L {
                    dst[i + l] = alpha[l] * dsyn_next[l];
                }
            }
        }
        for (acc, part) in [(g_beta, gb), (g_theta, gt)] {
            acc.iter_mut().zip(part).for_each(|(a, v)| *a += v);
        }
        if SYN {
            g_alpha.iter_mut().zip(ga).for_each(|(a, v)| *a += v);
        }
    }
}

#[inline(always)]
fn lanes<const L: usize>(s: &[f32]) -> [f32; L] {
    let mut a = [0.0f32; L];
    a.copy_from_slice(&s[..L]);
    a
}
