//! The backward pass of the recurrent kernel: recompute a row, then walk time backwards
//! through the neurons and the feedback.

use rayon::prelude::*;

use super::*;
use crate::kernel::buffer::Shared;
use crate::kernel::lif::{multiversion, step, sum_in_order};
use crate::neuron::Reset;
use crate::surrogate::{eval, with_surrogate_code, DerivativeRef};

/// Gradients of one recurrent call.
pub struct RlifGrads {
    /// `∂L/∂input`.
    pub input: Vec<f32>,
    /// `∂L/∂params`, `[5, N]`.
    pub params: Vec<f32>,
    /// `∂L/∂W`, `[N, N]` (zeros one-to-one).
    pub weight: Vec<f32>,
    /// `∂L/∂init` (empty from rest).
    pub init: Vec<f32>,
}

/// Backward from `grad` (laid out as the output).
pub fn backward(
    spec: &RlifSpec,
    input: &[f32],
    params: &[f32],
    w: &[f32],
    init: &[f32],
    grad: &[f32],
) -> RlifGrads {
    let (n, b_n) = (spec.features, spec.batch);
    let p = split(params, n);
    let mut g_input = vec![0.0f32; input.len()];
    let mut g_init = vec![
        0.0f32;
        if spec.init {
            spec.state_rows() * b_n * n
        } else {
            0
        }
    ];
    let (gi, g0) = (Shared(g_input.as_mut_ptr()), Shared(g_init.as_mut_ptr()));
    let k_sg = spec.surrogate.code().1;
    let custom = spec.surrogate.custom_derivative();
    let parts: Vec<(Vec<f32>, Vec<f32>)> = tasks(b_n)
        .into_par_iter()
        .map(|rows| {
            let mut gp = vec![0.0f32; PARAM_ROWS * n];
            let mut gw = vec![0.0f32; if spec.all_to_all { n * n } else { 0 }];
            let ctx = Back {
                spec,
                input,
                p,
                w,
                init,
                grad,
                k: k_sg,
                custom,
                gi,
                g0,
            };
            with_surrogate_code!(spec.surrogate, back_rows(&ctx, rows, &mut gp, &mut gw));
            (gp, gw)
        })
        .collect();
    let (gps, gws): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    RlifGrads {
        input: g_input,
        params: sum_in_order(gps, PARAM_ROWS * n),
        weight: if spec.all_to_all {
            sum_in_order(gws, n * n)
        } else {
            vec![0.0; 1]
        },
        init: g_init,
    }
}

struct Back<'a> {
    spec: &'a RlifSpec,
    input: &'a [f32],
    p: P<'a>,
    w: &'a [f32],
    init: &'a [f32],
    grad: &'a [f32],
    k: [f32; 2],
    custom: DerivativeRef<'a>,
    gi: Shared,
    g0: Shared,
}

/// `Σ a·b` in 8 interleaved partial sums (so that the loop vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

multiversion! {
/// The backward walk of one task's rows (each row on its own; time outermost).
fn back_rows<SG: u8>(c: &Back, rows: std::ops::Range<usize>, gp: &mut [f32], gw: &mut [f32]) {
    let Back { spec, input, p, w, init, grad, k, custom, gi, g0 } = *c;
    let (n, b_n, t_n) = (spec.features, spec.batch, spec.steps);
    let plane = b_n * n;
    let zero = spec.reset == Reset::Zero;
    let zero_prev = spec.reset == Reset::ZeroThenIntegrate;
    let sub = spec.reset == Reset::Subtract;
    let (ga, rest) = gp.split_at_mut(n);
    let (gb, rest) = rest.split_at_mut(n);
    let (gt, rest) = rest.split_at_mut(n);
    let (gv, gbias) = rest.split_at_mut(n);
    let mut rec = vec![0.0f32; n];
    for b in rows {
        // Recompute: U[−1..T−1], I_syn, S[−1..T−1].
        let mut st = load(spec, init, b);
        let mut us = Vec::with_capacity((t_n + 1) * n);
        let mut syns = Vec::with_capacity((t_n + 1) * n);
        let mut ss = Vec::with_capacity((t_n + 1) * n);
        us.extend_from_slice(&st.u);
        syns.extend_from_slice(&st.syn);
        ss.extend_from_slice(&st.s);
        for t in 0..t_n {
            feedback(spec, p, w, &st.s, &mut rec);
            by_kind!(spec, step_row(p, input_row(spec, input, t, b), &rec, &mut st));
            us.extend_from_slice(&st.u);
            syns.extend_from_slice(&st.syn);
            ss.extend_from_slice(&st.s);
        }
        let at = |v: &[f32], t: usize| -> std::ops::Range<usize> {
            let _ = v;
            t * n..(t + 1) * n
        };
        // Running gradients from step t + 1: ∂L/∂base, ∂L/∂I_syn, and the feedback's ∂L/∂S.
        let (mut dbase_next, mut dsyn_next) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut ds_fb = vec![0.0f32; n];
        let (mut du, mut dbase, mut dsyn, mut e) =
            (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let end = |k: usize| -> Option<&[f32]> {
            spec.final_state.then(|| {
                let first = spec.output_planes() - spec.state_rows();
                &grad[((first + k) * b_n + b) * n..][..n]
            })
        };
        for t in (0..t_n).rev() {
            let (u_t, u_prev) = (&us[at(&us, t + 1)], &us[at(&us, t)]);
            let s_prev = &ss[at(&ss, t)];
            let g_s = &grad[(t * b_n + b) * n..][..n];
            let g_u = spec.mems.then(|| &grad[((t_n + t) * b_n + b) * n..][..n]);
            let last = t == t_n - 1;
            for j in 0..n {
                let d = eval::<SG>(k, custom, u_t[j] - p.theta[j]);
                let mut gs = g_s[j] + ds_fb[j];
                let mut gu = g_u.map_or(0.0, |g| g[j]);
                if last {
                    gs += end(0).map_or(0.0, |g| g[j]);
                    gu += end(spec.state_rows() - 1).map_or(0.0, |g| g[j]);
                }
                let r = step(u_prev[j] - p.theta[j]);
                let keep = if zero || zero_prev { 1.0 - r } else { 1.0 };
                du[j] = gu + gs * d + p.beta[j] * dbase_next[j];
                // dbase: what flows to β·U[t−1]; d_in: to the step's input.
                dbase[j] = du[j] * keep;
                let d_in = if zero_prev { du[j] } else { dbase[j] };
                gt[j] -= gs * d + if sub { du[j] * r } else { 0.0 };
                gb[j] += dbase[j] * u_prev[j];
                e[j] = if spec.synaptic {
                    let end_syn = if last { end(1).map_or(0.0, |g| g[j]) } else { 0.0 };
                    dsyn[j] = d_in + p.alpha[j] * dsyn_next[j] + end_syn;
                    ga[j] += dsyn[j] * syns[t * n + j];
                    dsyn[j]
                } else {
                    d_in
                };
            }
            // The input's gradient is e[t].
            if spec.static_input {
                // SAFETY: row b of the input gradient belongs to this task alone.
                let row = unsafe { gi.row(b, n) };
                row.iter_mut().zip(&e).for_each(|(a, &x)| *a += x);
            } else {
                // SAFETY: as above, row (t, b).
                unsafe { gi.row(t * b_n + b, n) }.copy_from_slice(&e);
            }
            // Through the feedback: ∂L/∂S[t−1] = e·Wᵀ (or e ⊙ V); ∂W += S[t−1]ᵀ·e.
            if spec.all_to_all {
                for (i, ds) in ds_fb.iter_mut().enumerate() {
                    let wi = &w[i * n..(i + 1) * n];
                    *ds = dot(wi, &e);
                }
                for (i, &si) in s_prev.iter().enumerate() {
                    if si != 0.0 {
                        gw[i * n..(i + 1) * n].iter_mut().zip(&e).for_each(|(g, &x)| *g += si * x);
                    }
                }
                gbias.iter_mut().zip(&e).for_each(|(g, &x)| *g += x);
            } else {
                for j in 0..n {
                    ds_fb[j] = e[j] * p.v[j];
                    gv[j] += e[j] * s_prev[j];
                }
            }
            std::mem::swap(&mut dbase_next, &mut dbase);
            std::mem::swap(&mut dsyn_next, &mut dsyn);
        }
        if spec.init {
            // ∂L/∂S[−1] = the feedback's; ∂L/∂U[−1] = β·∂L/∂base[0]; ∂L/∂I_syn[−1] = α·∂L/∂I_syn[0].
            let rows_out: Vec<(usize, Vec<f32>)> = {
                let du0: Vec<f32> = (0..n).map(|j| p.beta[j] * dbase_next[j]).collect();
                if spec.synaptic {
                    let dsyn0: Vec<f32> = (0..n).map(|j| p.alpha[j] * dsyn_next[j]).collect();
                    vec![(0, ds_fb.clone()), (1, dsyn0), (2, du0)]
                } else {
                    vec![(0, ds_fb.clone()), (1, du0)]
                }
            };
            for (k, vals) in rows_out {
                // SAFETY: row b of each initial-state plane belongs to this task alone.
                unsafe { g0.row(k * b_n + b, n) }.copy_from_slice(&vals);
            }
        }
        let _ = plane;
    }
}
}
