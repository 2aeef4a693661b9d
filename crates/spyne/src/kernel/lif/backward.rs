//! The backward pass of the Leaky/Synaptic kernel: recompute each row's membranes, then walk
//! time backwards.

use rayon::prelude::*;

use super::*;
use crate::surrogate::{with_surrogate_code, DerivativeRef};

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
pub(in crate::kernel) struct StateGrads<'a> {
    /// The initial state, `[S, B, N]` (ignored unless `spec.init`).
    pub(in crate::kernel) init: &'a [f32],
    /// `∂L/∂init`, `[S, B, N]` (written only when `spec.init`).
    pub(in crate::kernel) g_init: Shared,
    /// `∂L/∂(final state)`, `[S, B, N]`, when `spec.final_state`.
    pub(in crate::kernel) g_end: Option<&'a [f32]>,
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
pub(in crate::kernel) fn sum_in_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
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
            let g_s = Rows::new(grad, b_n * n, b * n);
            let g_u = spec.mems.then_some(Rows::new(grad, b_n * n, t_n * b_n * n + b * n));
            let walk = Walk { spec, p, sg: (k, custom), b, us: &us, syns: &syns, g_s, g_u, g_input, state };
            walk.row::<SYN, RESET, SG>(g_params);
        }
    }
}

/// Rows `t = 0, 1, …` of a time-major array: row `t` starts at `offset + t·stride`. The rows
/// may hold only the neurons from `lane0` on (a block's rows, kept compact in L1).
#[derive(Clone, Copy)]
pub(in crate::kernel) struct Rows<'a> {
    pub(in crate::kernel) data: &'a [f32],
    pub(in crate::kernel) stride: usize,
    pub(in crate::kernel) offset: usize,
    /// The neuron that element 0 of a row belongs to.
    pub(in crate::kernel) lane0: usize,
}

impl<'a> Rows<'a> {
    /// Time-major rows of whole layers (`lane0` 0).
    #[inline(always)]
    pub(in crate::kernel) fn new(data: &'a [f32], stride: usize, offset: usize) -> Self {
        Rows {
            data,
            stride,
            offset,
            lane0: 0,
        }
    }

    /// The first `n` elements of row `t`.
    #[inline(always)]
    pub(in crate::kernel) fn row(&self, t: usize, n: usize) -> &'a [f32] {
        &self.data[self.offset + t * self.stride..][..n]
    }

    /// Neurons `i..i + L` of row `t`.
    #[inline(always)]
    fn lanes<const L: usize>(&self, t: usize, i: usize) -> [f32; L] {
        lanes::<L>(&self.data[self.offset + t * self.stride + i - self.lane0..])
    }

    /// Neuron `i` of row `t`, for a prefetch: `None` past a block's compact rows or the data.
    #[inline(always)]
    fn at(&self, t: usize, i: usize) -> Option<&'a f32> {
        let lane = i.checked_sub(self.lane0).filter(|&l| l < self.stride)?;
        self.data.get(self.offset + t * self.stride + lane)
    }
}

/// Recomputes batch row `b` forward: `us` gets `U[−1], U[0], …, U[T−1]` and, for Synaptic,
/// `syns` the currents likewise (`(T + 1)·n` each); `syn` is working space. `U[−1]` is the
/// initial state (`init`, when `spec.init`) or rest.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(in crate::kernel) fn recompute_row<const SYN: bool, const RESET: u8>(
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

/// Asks the CPU to bring the cache line holding `v` into L1 (a hint; it does nothing
/// elsewhere).
#[inline(always)]
pub(in crate::kernel) fn prefetch(v: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, and `v` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((v as *const f32).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Neurons per block of the backward walk: one AVX-512 register.
const LANES: usize = 16;

/// What the backward walk of one batch row reads (see [`Walk::row`]).
pub(in crate::kernel) struct Walk<'a> {
    pub(in crate::kernel) spec: &'a LifSpec,
    pub(in crate::kernel) p: Params<'a>,
    pub(in crate::kernel) sg: ([f32; 2], DerivativeRef<'a>),
    /// The batch row.
    pub(in crate::kernel) b: usize,
    /// The row's recomputed membranes and currents (see [`recompute_row`]).
    pub(in crate::kernel) us: &'a [f32],
    pub(in crate::kernel) syns: &'a [f32],
    /// Upstream gradients of the spikes and (`None`: zero) the membranes.
    pub(in crate::kernel) g_s: Rows<'a>,
    pub(in crate::kernel) g_u: Option<Rows<'a>>,
    pub(in crate::kernel) g_input: Shared,
    pub(in crate::kernel) state: StateGrads<'a>,
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
    pub(in crate::kernel) fn row<const SYN: bool, const RESET: u8, const SG: u8>(
        &self,
        g_params: &mut [f32],
    ) {
        self.neurons::<SYN, RESET, SG>(0..self.spec.features, g_params);
    }

    /// [`Walk::row`] for the neurons `range` only: blocks of [`LANES`], then one by one.
    #[inline(always)]
    pub(in crate::kernel) fn neurons<const SYN: bool, const RESET: u8, const SG: u8>(
        &self,
        range: std::ops::Range<usize>,
        g_params: &mut [f32],
    ) {
        let n = self.spec.features;
        let (g_alpha, rest) = g_params.split_at_mut(if SYN { n } else { 0 });
        let (g_beta, g_theta) = rest.split_at_mut(n);
        let mut i = range.start;
        while i < range.end {
            let lanes = if i + LANES <= range.end { LANES } else { 1 };
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
        let lp = LaneParams { alpha, beta, theta };
        let mut run = Lanes::<L>::default();
        let mut g_static = [0.0f32; L];
        // The final state's gradient joins the last step's (state rows: [U] or [I_syn, U]).
        let (mut end_u, mut end_syn) = match self.state.g_end {
            Some(g) if SYN => (
                self.state_lanes::<L>(g, 1, i),
                self.state_lanes::<L>(g, 0, i),
            ),
            Some(g) => (self.state_lanes::<L>(g, 0, i), [0.0; L]),
            None => ([0.0; L], [0.0; L]),
        };
        // `us` holds U[−1], U[0], …: U[t] is its row t + 1.
        let mut u_t = at(self.us, t_n);
        // Each step reads one line of a time-major array whose rows are far apart (a page
        // or more for wide layers), which no hardware prefetcher follows: fetch the next
        // block's line of the same row while this block walks.
        let ahead = i + L < n;
        for t in (0..t_n).rev() {
            if ahead {
                if let Some(next) = self.g_s.at(t, i + L) {
                    prefetch(next);
                }
                if let Some(next) = self.g_u.and_then(|rows| rows.at(t, i + L)) {
                    prefetch(next);
                }
                if !spec.static_input {
                    // A store to a line not in cache waits for the line too.
                    // SAFETY: only the address is taken; the row is this task's.
                    prefetch(unsafe { &self.g_input.row(t * b_n + self.b, n)[i + L] });
                }
            }
            let u_prev = at(self.us, t);
            let step_in = StepIn {
                u_t,
                u_prev,
                syn_prev: if SYN { at(self.syns, t) } else { [0.0; L] },
                g_s: self.g_s.lanes::<L>(t, i),
                g_u: match &self.g_u {
                    Some(rows) => rows.lanes::<L>(t, i),
                    None => [0.0; L],
                },
                end_u,
                end_syn,
            };
            let g_in = back_step::<SYN, RESET, SG, L>(&mut run, &lp, (k, custom), &step_in);
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
        let Lanes {
            du_next,
            dsyn_next,
            carry,
            gb,
            gt,
            ga,
        } = run;
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
