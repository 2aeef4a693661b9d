//! A spiking layer followed by a Linear layer, fused: the spikes never leave the cache.
//!
//! Forward: for every batch row, the neuron update over time, and at each step the next
//! layer's current `I'[t] = S[t]·W` (M dot products of length N, on the spikes still in
//! cache). Backward: per row, recompute the membranes, then walk time backwards with
//! `∂L/∂S[t] = ∂L/∂I'[t]·Wᵀ` and `∂L/∂Wᵀ += ∂L/∂I'[t] ⊗ S[t]`. Nothing of size `T × B × N`
//! is ever stored. The loops are dense and branch-free: with ~15 % of neurons firing at
//! random, a sparse "add the rows that fired" loop costs more in mispredicted branches than
//! the multiply-adds it saves.

use rayon::prelude::*;

use super::lif::{
    back_step, input_row, monomorphize, multiversion, reset_code, spike, split_params, step,
    step_row, tasks, Params, Shared, NONE, SUB, ZERO,
};
use super::{LifKind, LifSpec};
use crate::surrogate::{with_surrogate_code, DerivativeRef};

/// Forward: the next layer's input currents `[T, B, M]` (without bias) for weights `w`,
/// `[N, M]` row-major.
pub fn forward(spec: &LifSpec, input: &[f32], params: &[f32], w: &[f32], m: usize) -> Vec<f32> {
    let p = split_params(spec, params);
    let wt = transpose(w, spec.features, m);
    let mut out = vec![0.0f32; spec.steps * spec.batch * m];
    let ptr = Shared(out.as_mut_ptr());
    tasks(spec.batch).into_par_iter().for_each(|rows| {
        monomorphize!(spec, forward_rows(spec, input, p, &wt, m, rows, ptr));
    });
    out
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

multiversion! {
    /// Forward over the batch rows `rows`; `wt` is Wᵀ, `[M, N]`.
    fn forward_rows<SYN: bool, RESET: u8>(
        spec: &LifSpec,
        input: &[f32],
        p: Params,
        wt: &[f32],
        m: usize,
        rows: std::ops::Range<usize>,
        out: Shared,
    ) {
        let n = spec.features;
        let (mut u, mut syn, mut s) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        for b in rows {
            u.fill(0.0);
            syn.fill(0.0);
            for t in 0..spec.steps {
                step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut u, &mut syn);
                // A NaN membrane gives a NaN spike, which then reaches the output.
                for ((s, &u), &th) in s.iter_mut().zip(&u).zip(&p.theta[..n]) {
                    *s = spike(u - th);
                }
                // SAFETY: row (t, b) of the output belongs to this task alone.
                let o = unsafe { std::slice::from_raw_parts_mut(out.0.add((t * spec.batch + b) * m), m) };
                for (k, o) in o.iter_mut().enumerate() {
                    *o = dot(&s, &wt[k * n..(k + 1) * n]);
                }
            }
        }
    }
}

/// `a·b` with sixteen independent partial sums (vectorisable; a single running sum is not).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let n = a.len().min(b.len());
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a[..n].chunks_exact(L), b[..n].chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// Gradients of a fused layer + Linear call.
pub struct LifLinearGrads {
    /// `∂L/∂input`, the input's shape.
    pub input: Vec<f32>,
    /// `∂L/∂params`.
    pub params: Vec<f32>,
    /// `∂L/∂W`, `[N, M]`.
    pub weight: Vec<f32>,
}

/// Backward from `grad = ∂L/∂I'`, `[T, B, M]`.
pub fn backward(
    spec: &LifSpec,
    input: &[f32],
    params: &[f32],
    w: &[f32],
    m: usize,
    grad: &[f32],
) -> LifLinearGrads {
    let n = spec.features;
    let p = split_params(spec, params);
    // Wᵀ, `[M, N]`: the mat-vec ∂L/∂S = ∂L/∂I'·Wᵀ then runs as M vector updates of length N.
    let mut wt = vec![0.0f32; n * m];
    for j in 0..n {
        for k in 0..m {
            wt[k * n + j] = w[j * m + k];
        }
    }
    let mut g_input = vec![0.0f32; input.len()];
    let task = Task {
        spec,
        input,
        p,
        wt: &wt,
        m,
        grad,
        k: spec.surrogate.code().1,
        custom: spec.surrogate.custom_derivative(),
        g_input: Shared(g_input.as_mut_ptr()),
    };
    let rows = spec.kind.param_rows() * n;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks(spec.batch)
        .into_par_iter()
        .map(|r| {
            let (mut g_params, mut g_wt) = (vec![0.0f32; rows], vec![0.0f32; n * m]);
            monomorphize!(spec, backward_task(&task, r, &mut g_params, &mut g_wt));
            (g_params, g_wt)
        })
        .collect();
    // Partial sums in task order: the same on any number of threads.
    let (mut g_params, mut g_wt) = (vec![0.0f32; rows], vec![0.0f32; n * m]);
    for (gp, gw) in partials {
        g_params.iter_mut().zip(gp).for_each(|(a, b)| *a += b);
        g_wt.iter_mut().zip(gw).for_each(|(a, b)| *a += b);
    }
    LifLinearGrads {
        input: g_input,
        params: g_params,
        weight: transpose(&g_wt, m, n),
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
    /// Backward over the batch rows `rows`: recompute, then walk time backwards.
    fn backward_rows<SYN: bool, RESET: u8, SG: u8>(task: &Task, rows: std::ops::Range<usize>, g_params: &mut [f32], g_wt: &mut [f32]) {
        let Task { spec, input, p, wt, m, grad, k, custom, g_input } = *task;
        let (t_n, b_n, n) = (spec.steps, spec.batch, spec.features);
        let (g_alpha, rest) = g_params.split_at_mut(if SYN { n } else { 0 });
        let (g_beta, g_theta) = rest.split_at_mut(n);
        let mut us = vec![0.0f32; (t_n + 1) * n];
        let mut syns = vec![0.0f32; if SYN { (t_n + 1) * n } else { n }];
        let mut syn = vec![0.0f32; n];
        let (mut du_next, mut dsyn_next, mut carry) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let (mut g_in_static, mut g_s, mut s) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let zeros = vec![0.0f32; n];
        for b in rows {
            syn.fill(0.0);
            for t in 0..t_n {
                let (done, next) = us.split_at_mut((t + 1) * n);
                next[..n].copy_from_slice(&done[t * n..]);
                step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut next[..n], &mut syn);
                if SYN {
                    syns[(t + 1) * n..(t + 2) * n].copy_from_slice(&syn);
                }
            }
            du_next.fill(0.0);
            dsyn_next.fill(0.0);
            carry.fill(0.0);
            g_in_static.fill(0.0);
            for t in (0..t_n).rev() {
                let g_out = &grad[(t * b_n + b) * m..(t * b_n + b + 1) * m];
                let u_t = &us[(t + 1) * n..(t + 2) * n];
                for ((s, &u), &th) in s.iter_mut().zip(u_t).zip(&p.theta[..n]) {
                    *s = step(u - th);
                }
                // ∂L/∂S[t] = ∂L/∂I'[t]·Wᵀ and ∂L/∂Wᵀ[k, :] += ∂L/∂I'[t, k]·S[t].
                g_s.fill(0.0);
                for (kk, &g) in g_out.iter().enumerate() {
                    axpy2(g, &wt[kk * n..(kk + 1) * n], &mut g_s, &s, &mut g_wt[kk * n..(kk + 1) * n]);
                }
                let at = (t * b_n + b) * n;
                let g_in = if spec.static_input {
                    &mut g_in_static[..]
                } else {
                    // SAFETY: the input-gradient row of (t, b) is visited by this task alone.
                    unsafe { std::slice::from_raw_parts_mut(g_input.0.add(at), n) }
                };
                back_step::<SYN, RESET, SG>(
                    p,
                    (k, custom),
                    &g_s,
                    &zeros,
                    &us[t * n..(t + 2) * n],
                    if SYN { &syns[t * n..(t + 1) * n] } else { &zeros },
                    [&mut du_next, &mut dsyn_next, &mut carry],
                    [&mut *g_alpha, &mut *g_beta, &mut *g_theta],
                    g_in,
                );
            }
            if spec.static_input {
                // SAFETY: row b of the static input gradient belongs to this task alone.
                unsafe { std::slice::from_raw_parts_mut(g_input.0.add(b * n), n) }.copy_from_slice(&g_in_static);
            }
        }
    }
}

/// `y += g·x` and `z += g·s` in one pass (the two updates share `g` and the loop).
#[inline(always)]
fn axpy2(g: f32, x: &[f32], y: &mut [f32], s: &[f32], z: &mut [f32]) {
    let n = y.len();
    let (x, s, z) = (&x[..n], &s[..n], &mut z[..n]);
    for j in 0..n {
        y[j] += g * x[j];
        z[j] += g * s[j];
    }
}
