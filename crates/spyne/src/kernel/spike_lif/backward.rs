//! The backward pass of the spike-input op: per block of neurons, chunk by chunk from the last
//! (see the module docs of [`super`]).

use std::ops::Range;

use rayon::prelude::*;

use super::{
    current, neuron_blocks, params_of, LaneMajor, SpikeLifSpec, Weights, LANE_BLOCK,
    SPARSE_OUTPUT_DENSITY,
};
use crate::kernel::dense::{give_back_scratch, matmul, take_scratch, times_transposed};
use crate::kernel::lif::{
    back_step, lanes, monomorphize, multiversion, reset_code, split_params, step, step_row,
    LaneParams, Lanes, Params, Shared, StepIn, NONE, SUB, ZERO, ZTI,
};
use crate::kernel::spike_index::SpikeIndex;
use crate::kernel::LifKind;
use crate::surrogate::{with_surrogate_code, DerivativeRef};

/// Gradients of one call.
#[derive(Debug, Clone)]
pub struct SpikeLifGrads {
    /// `∂L/∂W_in`, `[K, N]`.
    pub w_in: Vec<f32>,
    /// `∂L/∂b_in`, `[N]` (empty without a bias).
    pub b_in: Vec<f32>,
    /// `∂L/∂params`, rows as in the parameters.
    pub params: Vec<f32>,
    /// `∂L/∂init`, `[S, B, N]` (empty when the call started from rest).
    pub init: Vec<f32>,
    /// `∂L/∂W_out`, `[N, M]` (empty without an output layer).
    pub w_out: Vec<f32>,
    /// `∂L/∂input`, `[T·B, K]`, when asked for (the spikes come from a layer that learns).
    pub input: Option<Vec<f32>>,
}

/// Where the tasks write: each owns its block of neurons in every one of these.
#[derive(Clone, Copy)]
struct Out {
    w_in: Shared,
    b_in: Shared,
    params: Shared,
    init: Shared,
    w_out: Shared,
    /// `∂L/∂(input current)`, `[T·B, N]`, when the input gradient is wanted.
    delta: Option<Shared>,
}

/// What every task reads.
struct Task<'a> {
    spec: &'a SpikeLifSpec,
    w: &'a Weights<'a>,
    p: Params<'a>,
    ckpt: &'a [f32],
    grad: &'a [f32],
    sg: ([f32; 2], DerivativeRef<'a>),
    out: Out,
    /// `W_in` block by block ([`LaneMajor`]).
    lanes: &'a LaneMajor,
    /// The CPU has AVX-512 (see [`add_to_rows`]).
    avx512: bool,
}

/// Backward from `grad` = ∂L/∂(the flat output), with the forward pass's checkpoints.
pub fn backward(
    spec: &SpikeLifSpec,
    w: &Weights,
    ckpt: &[f32],
    grad: &[f32],
    input_grad: bool,
) -> SpikeLifGrads {
    let lif = &spec.lif;
    let (t_n, b_n, n) = (lif.steps, lif.batch, lif.features);
    let (k_n, m) = (spec.index.cols(), spec.outputs.unwrap_or(0));
    assert_eq!(
        ckpt.len(),
        spec.checkpoint_len(),
        "checkpoints of another call"
    );
    let mut g = SpikeLifGrads {
        w_in: vec![0.0; k_n * n],
        b_in: vec![0.0; if spec.bias { n } else { 0 }],
        params: vec![0.0; lif.kind.param_rows() * n],
        init: vec![
            0.0;
            if lif.init {
                lif.kind.state_rows() * b_n * n
            } else {
                0
            }
        ],
        w_out: vec![0.0; n * m],
        input: None,
    };
    let mut delta = vec![0.0f32; if input_grad { t_n * b_n * n } else { 0 }];
    let out = Out {
        w_in: Shared(g.w_in.as_mut_ptr()),
        b_in: Shared(g.b_in.as_mut_ptr()),
        params: Shared(g.params.as_mut_ptr()),
        init: Shared(g.init.as_mut_ptr()),
        w_out: Shared(g.w_out.as_mut_ptr()),
        delta: input_grad.then_some(Shared(delta.as_mut_ptr())),
    };
    assert_eq!(w.w_in.len(), k_n * n, "input weights vs spike index width");
    let lanes = LaneMajor::new(w.w_in, k_n, n);
    let task = Task {
        spec,
        w,
        lanes: &lanes,
        p: split_params(lif, w.params),
        ckpt,
        grad,
        sg: (lif.surrogate.code().1, lif.surrogate.custom_derivative()),
        out,
        avx512: has_avx512(),
    };
    neuron_blocks(n).into_par_iter().for_each(|r| {
        monomorphize!(lif, backward_task(&task, r));
    });
    if input_grad {
        g.input = Some(times_transposed(&delta, w.w_in, n, k_n));
    }
    g
}

/// Picks the surrogate's instance of [`backward_block`].
fn backward_task<const SYN: bool, const RESET: u8>(task: &Task, r: Range<usize>) {
    with_surrogate_code!(
        task.spec.lif.surrogate,
        backward_block::<SYN, RESET>(task, r)
    )
}

/// A chunk's recomputed values for one block of neurons (`w` wide), and the running state
/// of the walk between chunks.
struct Scratch<'a> {
    /// Per batch row: `U[t0 − 1], U[t0], …, U[t1 − 1]`, `(chunk + 1)·w` each.
    us: &'a mut [f32],
    /// The same for `I_syn` (Synaptic).
    syns: &'a mut [f32],
    /// Spikes and their gradients, `[(t − t0)·B + b, w]` (with an output layer).
    s: &'a mut [f32],
    g_s: &'a mut [f32],
    /// Per batch row, the walk's carried `δ`, `δ_syn`, `∂U[t+1]/∂U[t]`, `[B, w]` each.
    du: &'a mut [f32],
    dsyn: &'a mut [f32],
    carry: &'a mut [f32],
    /// Summed `∂L/∂β`, `∂L/∂θ`, `∂L/∂α`, `∂L/∂b_in`, `[w]` each.
    acc: &'a mut [f32],
    /// The block's columns of `∂L/∂W_in`, lanes `i..i + L` (as the walk splits them) of
    /// input `k` at `i·K + k·L`: each walk adds to one contiguous `[K, L]` region.
    dw: &'a mut [f32],
}

multiversion! {
    /// The backward pass for neurons `r`.
    fn backward_block<SYN: bool, RESET: u8, SG: u8>(task: &Task, r: Range<usize>) {
        let spec = task.spec;
        let lif = &spec.lif;
        let (b_n, w) = (lif.batch, r.len());
        let c_len = spec.chunk_len();
        let per_b = (c_len + 1) * w;
        let syn_len = if SYN { b_n * per_b } else { 0 };
        let s_len = if spec.outputs.is_some() { c_len * b_n * w } else { 0 };
        let k_n = spec.index.cols();
        let len = b_n * per_b + syn_len + 2 * s_len + 3 * b_n * w + 4 * w + k_n * w;
        let mut buffer = take_scratch(len);
        {
            let rest = &mut buffer[..len];
            let (us, rest) = rest.split_at_mut(b_n * per_b);
            let (syns, rest) = rest.split_at_mut(syn_len);
            let (s, rest) = rest.split_at_mut(s_len);
            let (g_s, rest) = rest.split_at_mut(s_len);
            let (du, rest) = rest.split_at_mut(b_n * w);
            let (dsyn, rest) = rest.split_at_mut(b_n * w);
            let (carry, rest) = rest.split_at_mut(b_n * w);
            let (acc, dw) = rest.split_at_mut(4 * w);
            for v in [&mut *du, &mut *dsyn, &mut *carry, &mut *acc, &mut *dw] {
                v.fill(0.0);
            }
            let mut sc = Scratch { us, syns, s, g_s, du, dsyn, carry, acc, dw };
            for c in (0..spec.chunks()).rev() {
                let steps = spec.chunk(c);
                recompute::<SYN, RESET>(task, &r, c, &mut sc);
                spike_grads(task, &r, steps.clone(), &mut sc);
                // Lanes outer: one lane block's ∂L/∂W_in columns stay in L1 for every row.
                let mut i = 0;
                while i < w {
                    if i + 16 <= w {
                        for b in 0..b_n {
                            walk::<SYN, RESET, SG, 16>(task, &r, (b, i), steps.clone(), &mut sc);
                        }
                        i += 16;
                    } else {
                        for b in 0..b_n {
                            walk::<SYN, RESET, SG, 1>(task, &r, (b, i), steps.clone(), &mut sc);
                        }
                        i += 1;
                    }
                }
            }
            finish::<SYN>(task, &r, &sc);
        }
        give_back_scratch(buffer);
    }
}

/// Recomputes chunk `c` for neurons `r` from its checkpoint: membranes (and currents) for
/// every batch row, and the spikes when an output layer needs them.
#[inline(always)]
fn recompute<const SYN: bool, const RESET: u8>(
    task: &Task,
    r: &Range<usize>,
    c: usize,
    sc: &mut Scratch,
) {
    let (spec, lif) = (task.spec, &task.spec.lif);
    let (b_n, n, w) = (lif.batch, lif.features, r.len());
    let per_b = (spec.chunk_len() + 1) * w;
    let rows = lif.kind.state_rows();
    let mut n0 = r.start;
    // Block of 16 by block, so that its input weights stay in L1 for every row and step.
    while n0 < r.end {
        let (rows_in, width) = task.lanes.block(n0);
        let p = params_of(task.p, &(n0..n0 + width));
        let j = n0 - r.start;
        let (mut cur, mut u, mut syn) = (
            [0.0f32; LANE_BLOCK],
            [0.0f32; LANE_BLOCK],
            [0.0f32; LANE_BLOCK],
        );
        let (cur, u, syn) = (&mut cur[..width], &mut u[..width], &mut syn[..width]);
        for b in 0..b_n {
            let plane = |k: usize| &task.ckpt[((c * rows + k) * b_n + b) * n + n0..][..width];
            let us = &mut sc.us[b * per_b..][..per_b];
            u.copy_from_slice(plane(rows - 1));
            us[j..j + width].copy_from_slice(u);
            if SYN {
                syn.copy_from_slice(plane(0));
                sc.syns[b * per_b + j..][..width].copy_from_slice(syn);
            }
            for (i, t) in spec.chunk(c).enumerate() {
                current(spec, rows_in, (task.w.b_in, n0), t * b_n + b, cur);
                step_row::<SYN, RESET>(p, cur, u, syn);
                us[(i + 1) * w + j..][..width].copy_from_slice(u);
                if SYN {
                    sc.syns[b * per_b + (i + 1) * w + j..][..width].copy_from_slice(syn);
                }
                if spec.outputs.is_some() {
                    let s = &mut sc.s[(i * b_n + b) * w + j..][..width];
                    for ((s, &u), &th) in s.iter_mut().zip(&*u).zip(p.theta) {
                        *s = step(u - th);
                    }
                }
            }
        }
        n0 += width;
    }
}

/// With an output layer: `∂L/∂S = ∂L/∂I'·W_outᵀ` for the chunk, and `∂L/∂W_out += Sᵀ·∂L/∂I'`
/// for this block's rows of `W_out`.
fn spike_grads(task: &Task, r: &Range<usize>, steps: Range<usize>, sc: &mut Scratch) {
    let Some(m) = task.spec.outputs else {
        return;
    };
    let (b_n, w) = (task.spec.lif.batch, r.len());
    let rows = steps.len() * b_n;
    let g_out = &task.grad[steps.start * b_n * m..][..rows * m];
    let w_out = &task.w.w_out[r.start * m..];
    let g_s = &mut sc.g_s[..rows * w];
    matmul(
        (g_s, (w, 1)),
        false,
        (g_out, (m, 1)),
        (w_out, (1, m)),
        [rows, w, m],
    );
    // SAFETY: rows `r` of ∂L/∂W_out belong to this task alone.
    let dw = unsafe { task.out.w_out.at(r.start * m, w * m) };
    let s = &sc.s[..rows * w];
    match SpikeIndex::build(s, w, SPARSE_OUTPUT_DENSITY) {
        // Sparse spikes: each adds its row's upstream gradient to its neuron's weights.
        Some(fired) => {
            for row in 0..rows {
                let g = &g_out[row * m..][..m];
                for &j in fired.row(row) {
                    for (d, &v) in dw[j as usize * m..][..m].iter_mut().zip(g) {
                        *d += v;
                    }
                }
            }
        }
        None => matmul(
            (dw, (m, 1)),
            true,
            (s, (1, w)),
            (g_out, (m, 1)),
            [w, m, rows],
        ),
    }
}

/// The walk back through one chunk for batch row `b`, neurons `r.start + i ..+ L`: carries
/// the running gradients across chunks, adds each step's input gradient to the weight rows
/// of the inputs that fired then.
#[inline(always)]
fn walk<const SYN: bool, const RESET: u8, const SG: u8, const L: usize>(
    task: &Task,
    r: &Range<usize>,
    (b, i): (usize, usize),
    steps: Range<usize>,
    sc: &mut Scratch,
) {
    let avx512 = task.avx512;
    let (spec, lif) = (task.spec, &task.spec.lif);
    let (t_n, b_n, n, w) = (lif.steps, lif.batch, lif.features, r.len());
    let (m, k_n) = (spec.outputs.unwrap_or(0), spec.index.cols());
    let per_b = (spec.chunk_len() + 1) * w;
    let j = r.start + i;
    let p = task.p;
    let lp = LaneParams {
        alpha: if SYN {
            lanes::<L>(&p.alpha[j..])
        } else {
            [0.0; L]
        },
        beta: lanes::<L>(&p.beta[j..]),
        theta: lanes::<L>(&p.theta[j..]),
    };
    let at = |v: &[f32], k: usize| lanes::<L>(&v[k * w + i..]);
    let acc = |k: usize| lanes::<L>(&sc.acc[k * w + i..]);
    let mut run = Lanes {
        du_next: at(sc.du, b),
        dsyn_next: at(sc.dsyn, b),
        carry: at(sc.carry, b),
        gb: acc(0),
        gt: acc(1),
        ga: acc(2),
    };
    let mut db = acc(3);
    let us = &sc.us[b * per_b..][..per_b];
    let syns = if SYN {
        &sc.syns[b * per_b..][..per_b]
    } else {
        &sc.syns[..0]
    };
    // The final state's gradient joins the last step's (state rows: [U] or [I_syn, U]).
    let end = |k: usize| -> [f32; L] {
        let base = match spec.outputs {
            Some(m) => t_n * b_n * m,
            None => (lif.output_planes() - lif.kind.state_rows()) * b_n * n,
        };
        lanes::<L>(&task.grad[base + (k * b_n + b) * n + j..])
    };
    let zero = [0.0f32; L];
    let mut u_t = at(us, steps.len());
    for (ii, t) in steps.clone().enumerate().rev() {
        let (end_u, end_syn) = match (lif.final_state && t + 1 == t_n, SYN) {
            (true, true) => (end(1), end(0)),
            (true, false) => (end(0), zero),
            _ => (zero, zero),
        };
        let (g_s, g_u) = if m > 0 {
            (lanes::<L>(&sc.g_s[(ii * b_n + b) * w + i..]), zero)
        } else {
            let g_u = if lif.mems {
                lanes::<L>(&task.grad[((t_n + t) * b_n + b) * n + j..])
            } else {
                zero
            };
            (lanes::<L>(&task.grad[(t * b_n + b) * n + j..]), g_u)
        };
        let u_prev = at(us, ii);
        let step_in = StepIn {
            u_t,
            u_prev,
            syn_prev: if SYN { at(syns, ii) } else { zero },
            g_s,
            g_u,
            end_u,
            end_syn,
        };
        let mut g_in = back_step::<SYN, RESET, SG, L>(&mut run, &lp, task.sg, &step_in);
        if let Some(gain) = spec.gain {
            g_in.iter_mut().for_each(|g| *g *= gain);
        }
        for l in 0..L {
            db[l] += g_in[l];
        }
        let row = t * b_n + b;
        add_to_rows(
            &mut sc.dw[i * k_n..][..k_n * L],
            spec.index.row(row),
            &g_in,
            avx512,
        );
        if let Some(delta) = task.out.delta {
            // SAFETY: as above, in ∂L/∂(input current).
            unsafe { delta.at(row * n + j, L) }.copy_from_slice(&g_in);
        }
        u_t = u_prev;
    }
    let put = |v: &mut [f32], k: usize, x: [f32; L]| v[k * w + i..][..L].copy_from_slice(&x);
    put(sc.du, b, run.du_next);
    put(sc.dsyn, b, run.dsyn_next);
    put(sc.carry, b, run.carry);
    for (k, x) in [run.gb, run.gt, run.ga, db].into_iter().enumerate() {
        put(sc.acc, k, x);
    }
}

/// After the first chunk: the initial state's gradient and the block's parameter and bias
/// gradients.
fn finish<const SYN: bool>(task: &Task, r: &Range<usize>, sc: &Scratch) {
    let lif = &task.spec.lif;
    let (b_n, n, w) = (lif.batch, lif.features, r.len());
    if lif.init {
        // ∂L/∂U[−1] = c[0]·δ[0] (and ∂L/∂I_syn[−1] = α·δ_syn[0]).
        let u_row = if SYN { 1 } else { 0 };
        for b in 0..b_n {
            // SAFETY: lanes r of every state row belong to this task alone.
            let dst = unsafe { task.out.init.at((u_row * b_n + b) * n + r.start, w) };
            for (j, d) in dst.iter_mut().enumerate() {
                *d = sc.carry[b * w + j] * sc.du[b * w + j];
            }
            if SYN {
                // SAFETY: as above.
                let dst = unsafe { task.out.init.at(b * n + r.start, w) };
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = task.p.alpha[r.start + j] * sc.dsyn[b * w + j];
                }
            }
        }
    }
    // Parameter rows: [β, θ] or [α, β, θ].
    let (beta_row, theta_row) = if SYN { (1, 2) } else { (0, 1) };
    let mut rows = vec![(beta_row, 0), (theta_row, 1)];
    if SYN {
        rows.push((0, 2));
    }
    for (row, k) in rows {
        // SAFETY: lanes r of every parameter row belong to this task alone.
        unsafe { task.out.params.at(row * n + r.start, w) }.copy_from_slice(&sc.acc[k * w..][..w]);
    }
    if task.spec.bias {
        // SAFETY: as above.
        unsafe { task.out.b_in.at(r.start, w) }.copy_from_slice(&sc.acc[3 * w..][..w]);
    }
    // ∂L/∂W_in from its lane-block layout (see `Scratch::dw`).
    let k_n = task.spec.index.cols();
    let mut i = 0;
    while i < w {
        let l = if i + 16 <= w { 16 } else { 1 };
        for k in 0..k_n {
            // SAFETY: columns r of ∂L/∂W_in belong to this task alone.
            unsafe { task.out.w_in.at(k * n + r.start + i, l) }
                .copy_from_slice(&sc.dw[i * k_n + k * l..][..l]);
        }
        i += l;
    }
}

/// Whether the CPU has AVX-512F.
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dw[k·L..(k + 1)·L] += g` for every `k` in `rows`: a step's input gradient added to the
/// weight rows of the inputs that fired. (With 16 lanes on AVX-512, one vector add per row:
/// left to itself the compiler rebuilds `g` from scalar pieces at every row.)
#[inline(always)]
fn add_to_rows<const L: usize>(dw: &mut [f32], rows: &[u32], g: &[f32; L], avx512: bool) {
    #[cfg(target_arch = "x86_64")]
    if L == 16 && avx512 {
        // SAFETY: the CPU has AVX-512F (`avx512` comes from `has_avx512`), and `g` is 16 long.
        unsafe { x86::add_to_rows16(dw, rows, g.as_ptr()) };
        return;
    }
    let _ = avx512;
    for &k in rows {
        let dst: &mut [f32; L] = (&mut dw[k as usize * L..][..L]).try_into().unwrap();
        for (d, v) in dst.iter_mut().zip(g) {
            *d += v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::add_to_rows`] for 16 lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512F, and `g` points at 16 floats.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn add_to_rows16(dw: &mut [f32], rows: &[u32], g: *const f32) {
        // SAFETY: `g` points at 16 floats.
        let g = unsafe { _mm512_loadu_ps(g) };
        for &k in rows {
            let dst = &mut dw[k as usize * 16..][..16];
            // SAFETY: `dst` holds 16 floats.
            unsafe {
                let sum = _mm512_add_ps(_mm512_loadu_ps(dst.as_ptr()), g);
                _mm512_storeu_ps(dst.as_mut_ptr(), sum);
            }
        }
    }
}
