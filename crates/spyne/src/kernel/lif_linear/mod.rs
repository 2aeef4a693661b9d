//! A spiking layer followed by a Linear layer, fused: the spikes never leave the cache.
//!
//! Forward: for every batch row, the neuron update over time, and at each step the next
//! layer's current `I'[t] = S[t]·W` (M dot products of length N, on the spikes still in
//! cache). Backward: per row, recompute the membranes, then walk time backwards with
//! `∂L/∂S[t] = ∂L/∂I'[t]·Wᵀ` and `∂L/∂Wᵀ += ∂L/∂I'[t] ⊗ S[t]`. Nothing of size `T × B × N`
//! is ever stored.
//!
//! Here a task's products run as GEMMs over all its rows and steps. A Linear of at most 16
//! outputs (a classifier's last layer) takes [`narrow`] instead on AVX-512, where a row of W
//! is one register.

#[cfg(target_arch = "x86_64")]
mod narrow;

use rayon::prelude::*;

use super::buffer::Shared;
use super::dense::{give_back_scratch, matmul, take_scratch, transpose};
use super::lif::{
    input_row, load_state, monomorphize, multiversion, recompute_row, reset_code, spike,
    split_params, step, step_row, store_state, sum_in_order, tasks, Params, Rows, StateGrads, Walk,
    NONE, SUB, ZERO, ZTI,
};
use super::{LifKind, LifSpec};
use crate::surrogate::{with_surrogate_code, DerivativeRef};

/// Length of the op's flat output: the currents `[T, B, M]`, then the layer's final state
/// `[S, B, N]` when `spec.final_state`.
pub fn output_len(spec: &LifSpec, m: usize) -> usize {
    let state = if spec.final_state {
        spec.kind.state_rows() * spec.batch * spec.features
    } else {
        0
    };
    spec.steps * spec.batch * m + state
}

/// Forward: the next layer's input currents `[T, B, M]` (without bias) for weights `w`,
/// `[N, M]` row-major, followed by the final state when `spec.final_state` (see
/// [`output_len`]). `init` is the initial state when `spec.init`.
pub fn forward(
    spec: &LifSpec,
    input: &[f32],
    params: &[f32],
    init: &[f32],
    w: &[f32],
    m: usize,
) -> Vec<f32> {
    let p = split_params(spec, params);
    let mut out = vec![0.0f32; output_len(spec, m)];
    let ptr = Shared(out.as_mut_ptr());
    #[cfg(target_arch = "x86_64")]
    if narrow::applies(m) {
        let w = narrow::padded_rows(w, m);
        tasks(spec.batch).into_par_iter().for_each(|rows| {
            use narrow::forward_rows as narrow_rows;
            // SAFETY: `applies` checked that the CPU has AVX-512F and POPCNT.
            unsafe {
                monomorphize!(
                    spec,
                    narrow_rows(spec, input, p, init, (&w[..], m), rows, ptr)
                )
            }
        });
        return out;
    }
    tasks(spec.batch).into_par_iter().for_each(|rows| {
        monomorphize!(spec, forward_rows(spec, input, p, init, (w, m), rows, ptr));
    });
    out
}

multiversion! {
    /// Forward over the batch rows `rows`: their spikes over time (`[T·rows, N]`, kept in
    /// cache), then one product with `w` for all of them.
    fn forward_rows<SYN: bool, RESET: u8>(
        spec: &LifSpec,
        input: &[f32],
        p: Params,
        init: &[f32],
        wm: (&[f32], usize),
        rows: std::ops::Range<usize>,
        out: Shared,
    ) {
        let (w, m) = wm;
        let (n, rn) = (spec.features, rows.len());
        let (mut u, mut syn) = (vec![0.0f32; n], vec![0.0f32; n]);
        let len = spec.steps * rn * (n + m);
        let mut buffer = take_scratch(len);
        {
            let scratch = &mut buffer[..len];
            let (s, o) = scratch.split_at_mut(spec.steps * rn * n);
            for (r, b) in rows.clone().enumerate() {
                load_state::<SYN>(spec, init, b, &mut u, &mut syn);
                for t in 0..spec.steps {
                    step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut u, &mut syn);
                    // A NaN membrane gives a NaN spike, which then reaches the output.
                    let s = &mut s[(t * rn + r) * n..(t * rn + r + 1) * n];
                    for ((s, &u), &th) in s.iter_mut().zip(&u).zip(&p.theta[..n]) {
                        *s = spike(u - th);
                    }
                }
                if spec.final_state {
                    // SAFETY: the state follows the T·B·M currents in `out`; its row b
                    // belongs to this task alone.
                    unsafe {
                        let state = Shared(out.0.add(spec.steps * spec.batch * m));
                        store_state::<SYN>(spec, state, 0, b, &u, &syn);
                    }
                }
            }
            // Column-major `[T·rows, M]`: the long dimension is the contiguous one.
            let tr = spec.steps * rn;
            matmul((o, (1, tr)), false, (s, (n, 1)), (w, (m, 1)), [tr, m, n]);
            for t in 0..spec.steps {
                for (r, b) in rows.clone().enumerate() {
                    // SAFETY: row (t, b) of the output belongs to this task alone.
                    let dst = unsafe { out.row(t * spec.batch + b, m) };
                    for (k, d) in dst.iter_mut().enumerate() {
                        *d = o[k * tr + t * rn + r];
                    }
                }
            }
        }
        give_back_scratch(buffer);
    }
}

/// Gradients of a fused layer + Linear call.
pub struct LifLinearGrads {
    /// `∂L/∂input`, the input's shape.
    pub input: Vec<f32>,
    /// `∂L/∂params`.
    pub params: Vec<f32>,
    /// `∂L/∂W`, `[N, M]`.
    pub weight: Vec<f32>,
    /// `∂L/∂init`, `[S, B, N]` (empty when the call started from rest).
    pub init: Vec<f32>,
}

/// Backward from `grad` = ∂L/∂(the flat output): the currents `∂L/∂I'`, `[T, B, M]`, then
/// the final state's gradient when `spec.final_state`.
pub fn backward(
    spec: &LifSpec,
    input: &[f32],
    params: &[f32],
    init: &[f32],
    (w, m): (&[f32], usize),
    grad: &[f32],
) -> LifLinearGrads {
    let n = spec.features;
    let p = split_params(spec, params);
    // Wᵀ, `[M, N]`: the mat-vec ∂L/∂S = ∂L/∂I'·Wᵀ then runs as M vector updates of length N.
    let wt = transpose(w, n, m);
    let mut g_input = vec![0.0f32; input.len()];
    let currents = spec.steps * spec.batch * m;
    let state_len = spec.kind.state_rows() * spec.batch * n;
    let mut g_init = vec![0.0f32; if spec.init { state_len } else { 0 }];
    let task = Task {
        spec,
        input,
        p,
        wt: &wt,
        m,
        grad: &grad[..currents],
        k: spec.surrogate.code().1,
        custom: spec.surrogate.custom_derivative(),
        g_input: Shared(g_input.as_mut_ptr()),
        state: StateGrads {
            init,
            g_init: Shared(g_init.as_mut_ptr()),
            g_end: spec.final_state.then(|| &grad[currents..]),
        },
    };
    let rows = spec.kind.param_rows() * n;
    #[cfg(target_arch = "x86_64")]
    let narrow_path = narrow::applies(m);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks(spec.batch)
        .into_par_iter()
        .map(|r| {
            let (mut g_params, mut g_wt) = (vec![0.0f32; rows], vec![0.0f32; n * m]);
            #[cfg(target_arch = "x86_64")]
            if narrow_path {
                use narrow::backward_task as narrow_task;
                // SAFETY: `applies` checked that the CPU has AVX-512F and POPCNT.
                unsafe { monomorphize!(spec, narrow_task(&task, r, &mut g_params, &mut g_wt)) };
                return (g_params, g_wt);
            }
            monomorphize!(spec, backward_task(&task, r, &mut g_params, &mut g_wt));
            (g_params, g_wt)
        })
        .collect();
    let (g_params, g_wt): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    LifLinearGrads {
        input: g_input,
        params: sum_in_order(g_params, rows),
        weight: transpose(&sum_in_order(g_wt, n * m), m, n),
        init: g_init,
    }
}

/// What every backward task reads.
struct Task<'a> {
    spec: &'a LifSpec,
    input: &'a [f32],
    p: Params<'a>,
    wt: &'a [f32],
    m: usize,
    grad: &'a [f32],
    k: [f32; 2],
    custom: DerivativeRef<'a>,
    g_input: Shared,
    state: StateGrads<'a>,
}

fn backward_task<const SYN: bool, const RESET: u8>(
    task: &Task,
    rows: std::ops::Range<usize>,
    g_params: &mut [f32],
    g_w: &mut [f32],
) {
    with_surrogate_code!(
        task.spec.surrogate,
        backward_rows::<SYN, RESET>(task, rows, g_params, g_w)
    )
}

multiversion! {
    /// Backward over the batch rows `rows`: recompute their membranes and spikes, take
    /// `∂L/∂S = ∂L/∂I'·Wᵀ` and `∂L/∂Wᵀ += ∂L/∂I'ᵀ·S` as two products for all of them, then
    /// walk time backwards row by row.
    fn backward_rows<SYN: bool, RESET: u8, SG: u8>(task: &Task, rows: std::ops::Range<usize>, g_params: &mut [f32], g_wt: &mut [f32]) {
        let Task { spec, input, p, wt, m, grad, k, custom, g_input, state } = *task;
        let (t_n, b_n, n, rn) = (spec.steps, spec.batch, spec.features, rows.len());
        let per_row = (t_n + 1) * n;
        let tr = t_n * rn;
        let syn_len = if SYN { rn * per_row } else { 0 };
        let mut syn = vec![0.0f32; n];
        // Every scratch element is written before it is read (`recompute_row` sets U[−1] and
        // I_syn[−1]).
        let len = rn * per_row + syn_len + 2 * tr * n + tr * m;
        let mut buffer = take_scratch(len);
        {
            let scratch = &mut buffer[..len];
            let (us, rest) = scratch.split_at_mut(rn * per_row); // per row: U[−1], U[0], …, U[T−1]
            let (syns, rest) = rest.split_at_mut(syn_len);
            let (s, rest) = rest.split_at_mut(tr * n); // [t][row][n]
            let (g_s, g_out) = rest.split_at_mut(tr * n);
            for (r, b) in rows.clone().enumerate() {
                let us = &mut us[r * per_row..(r + 1) * per_row];
                let syns = if SYN { &mut syns[r * per_row..(r + 1) * per_row] } else { &mut syns[..0] };
                recompute_row::<SYN, RESET>(spec, p, input, state.init, b, us, syns, &mut syn);
                for t in 0..t_n {
                    let s = &mut s[(t * rn + r) * n..(t * rn + r + 1) * n];
                    for ((s, &u), &th) in s.iter_mut().zip(&us[(t + 1) * n..(t + 2) * n]).zip(&p.theta[..n]) {
                        *s = step(u - th);
                    }
                    g_out[(t * rn + r) * m..(t * rn + r + 1) * m]
                        .copy_from_slice(&grad[(t * b_n + b) * m..(t * b_n + b + 1) * m]);
                }
            }
            matmul((g_s, (n, 1)), false, (g_out, (m, 1)), (wt, (n, 1)), [tr, n, m]);
            matmul((g_wt, (n, 1)), true, (g_out, (1, m)), (s, (n, 1)), [m, n, tr]);
            for (r, b) in rows.enumerate() {
                let g_s = Rows::new(g_s, rn * n, r * n);
                let syns = if SYN { &syns[r * per_row..(r + 1) * per_row] } else { &syns[..0] };
                let us = &us[r * per_row..(r + 1) * per_row];
                let walk = Walk { spec, p, sg: (k, custom), b, us, syns, g_s, g_u: None, g_input, state };
                walk.row::<SYN, RESET, SG>(g_params);
            }
        }
        give_back_scratch(buffer);
    }
}
