//! The backward pass's inner loops for one lane group (a lane block of 16 neurons, or one
//! lane of a narrower last block): recompute a chunk, then walk back through it.

use std::ops::Range;

use super::columns::ChunkColumns;
use super::{current, lane_bits, params_of, LaneMajor, SpikeLifSpec, Weights, LANE_BLOCK};
use crate::kernel::buffer::Shared;
use crate::kernel::lif::{back_step, lanes, step_row, LaneParams, Lanes, Params, StepIn};
use crate::surrogate::DerivativeRef;

/// Where the tasks write: each owns its block of neurons in every one of these.
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub(super) b_in: Shared,
    pub(super) params: Shared,
    pub(super) init: Shared,
    /// `∂L/∂W_out`, `[N, M]`.
    pub(super) w_out: Shared,
    /// `∂L/∂(input current)`, `[T·B, N]`, when the input gradient is wanted.
    pub(super) delta: Option<Shared>,
}

/// What every task reads.
pub(super) struct Task<'a> {
    pub(super) spec: &'a SpikeLifSpec,
    pub(super) w: &'a Weights<'a>,
    pub(super) p: Params<'a>,
    /// `W_in` lane block by lane block.
    pub(super) lanes: &'a LaneMajor,
    /// `W_outᵀ` (`[M, N]`) lane block by lane block.
    pub(super) w_out_t: &'a LaneMajor,
    pub(super) ckpt: &'a [f32],
    pub(super) grad: &'a [f32],
    pub(super) sg: ([f32; 2], DerivativeRef<'a>),
    /// The spike index by input column, for the full lane blocks' `∂L/∂W_in`.
    pub(super) columns: &'a ChunkColumns,
    pub(super) out: Out,
}

/// One task's working memory.
pub(super) struct Scratch<'a> {
    /// One lane group's recomputed `U[t0 − 1], U[t0], …, U[t1 − 1]` per batch row,
    /// `(chunk + 1)·L` each, then one slot of [`LANE_BLOCK`] zeros. A full lane block's walk
    /// leaves each step's `δ[t, b]` in the slot of `U[t]` once it is done with it, for
    /// [`super::columns::add_columns`].
    pub(super) us: &'a mut [f32],
    /// The same for `I_syn` (Synaptic).
    pub(super) syns: &'a mut [f32],
    /// Per batch row, the walk's carried `δ`, `δ_syn`, `∂U[t+1]/∂U[t]`, `[B, w]` each.
    pub(super) du: &'a mut [f32],
    pub(super) dsyn: &'a mut [f32],
    pub(super) carry: &'a mut [f32],
    /// Summed `∂L/∂β`, `∂L/∂θ`, `∂L/∂α`, `∂L/∂b_in`, `[w]` each.
    pub(super) acc: &'a mut [f32],
    /// The block's columns of `∂L/∂W_in` as [`LaneMajor`] lays out `W_in`: lane `l` of the
    /// lane block at `n0` (of width `c`), input `k`, at `(n0 − r.start)·K + k·c + l`.
    pub(super) dw: &'a mut [f32],
    /// The block's rows of `∂L/∂W_out`, `[w, M]`.
    pub(super) dwo: &'a mut [f32],
}

/// Where a lane group is: the task's neurons, the lane block's first neuron, the group's
/// first lane in it, the chunk.
pub(super) type At<'a> = (&'a Range<usize>, usize, usize, usize);

/// Recomputes chunk `c` for the `L` neurons from `n0 + l0` from its checkpoint: membranes
/// (and currents) for every batch row.
#[inline(always)]
pub(super) fn recompute<const L: usize, const SYN: bool, const RESET: u8>(
    task: &Task,
    (_, n0, l0, c): At,
    sc: &mut Scratch,
) {
    let (spec, lif) = (task.spec, &task.spec.lif);
    let (b_n, n) = (lif.batch, lif.features);
    let per_b = spec.per_b();
    let rows = lif.kind.state_rows();
    let j = n0 + l0;
    let p = params_of(task.p, &(j..j + L));
    let lanes = task.lanes.lanes(n0, l0);
    for b in 0..b_n {
        let plane = |k: usize| &task.ckpt[((c * rows + k) * b_n + b) * n + j..][..L];
        let (mut u, mut syn, mut cur) = ([0.0f32; L], [0.0f32; L], [0.0f32; L]);
        u.copy_from_slice(plane(rows - 1));
        let us = &mut sc.us[b * per_b..][..per_b];
        us[..L].copy_from_slice(&u);
        if SYN {
            syn.copy_from_slice(plane(0));
            sc.syns[b * per_b..][..L].copy_from_slice(&syn);
        }
        for (i, t) in spec.chunk(c).enumerate() {
            current::<L>(spec, lanes, (task.w.b_in, j), t * b_n + b, &mut cur);
            step_row::<SYN, RESET>(p, &cur, &mut u, &mut syn);
            us[(i + 1) * L..][..L].copy_from_slice(&u);
            if SYN {
                sc.syns[b * per_b + (i + 1) * L..][..L].copy_from_slice(&syn);
            }
        }
    }
}

/// The last chunk's states of the full lane block at `n0`, kept by the forward pass
/// ([`SpikeLifSpec::tail_len`]), copied into the scratch instead of recomputed.
pub(super) fn restore<const SYN: bool>(task: &Task, n0: usize, sc: &mut Scratch) {
    let spec = task.spec;
    let (b_n, len, row) = (spec.lif.batch, spec.tail_block_len(), spec.tail_row());
    let tail = &task.ckpt[task.ckpt.len() - spec.tail_len()..];
    let (u, syn) = tail[n0 / LANE_BLOCK * len..][..len].split_at(b_n * row);
    let per_b = spec.per_b();
    for b in 0..b_n {
        sc.us[b * per_b..][..row].copy_from_slice(&u[b * row..][..row]);
        if SYN {
            sc.syns[b * per_b..][..row].copy_from_slice(&syn[b * row..][..row]);
        }
    }
}

/// The walk back through chunk `c` for the `L` neurons from `n0 + l0`, every batch row:
/// `∂L/∂S` from the output layer (or the spikes' upstream gradient), the surrogate
/// recursion carried across chunks, and each step's input gradient added to the weight rows
/// of the inputs that fired then.
#[inline(always)]
pub(super) fn walk<const L: usize, const SYN: bool, const RESET: u8, const SG: u8>(
    task: &Task,
    (r, n0, l0, c): At,
    sc: &mut Scratch,
) {
    let (spec, lif) = (task.spec, &task.spec.lif);
    let (t_n, b_n, n, w) = (lif.steps, lif.batch, lif.features, r.len());
    let (m, k_n) = (spec.outputs.unwrap_or(0), spec.index.cols());
    let per_b = spec.per_b();
    let steps = spec.chunk(c);
    let j = n0 + l0;
    // The lane group's place in the task's arrays, and in its ∂L/∂W_in columns.
    let (i, width) = (j - r.start, lane_width(n0, r));
    let dw_at = ((n0 - r.start) * k_n, width, l0);
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
    let zero = [0.0f32; L];
    // The final state's gradient joins the last step's (state rows: [U] or [I_syn, U]).
    let end = |k: usize, b: usize| -> [f32; L] {
        let base = match spec.outputs {
            Some(m) => t_n * b_n * m,
            None => (lif.output_planes() - lif.kind.state_rows()) * b_n * n,
        };
        lanes::<L>(&task.grad[base + (k * b_n + b) * n + j..])
    };
    for b in 0..b_n {
        let at = |v: &[f32], k: usize| lanes::<L>(&v[k * w + i..]);
        let mut run = Lanes {
            du_next: at(sc.du, b),
            dsyn_next: at(sc.dsyn, b),
            carry: at(sc.carry, b),
            gb: at(sc.acc, 0),
            gt: at(sc.acc, 1),
            ga: at(sc.acc, 2),
        };
        let mut db = at(sc.acc, 3);
        let us = &mut sc.us[b * per_b..][..per_b];
        let syns = if SYN {
            &sc.syns[b * per_b..][..per_b]
        } else {
            &sc.syns[..0]
        };
        let mut u_t = lanes::<L>(&us[steps.len() * L..]);
        for (ii, t) in steps.clone().enumerate().rev() {
            let row = t * b_n + b;
            let (end_u, end_syn) = match (lif.final_state && t + 1 == t_n, SYN) {
                (true, true) => (end(1, b), end(0, b)),
                (true, false) => (end(0, b), zero),
                _ => (zero, zero),
            };
            let (g_s, g_u) = if m > 0 {
                let dwo = &mut sc.dwo[i * m..];
                (
                    output_grads::<L>(task, (row, n0, l0), &u_t, &lp.theta, dwo),
                    zero,
                )
            } else {
                let g_u = if lif.mems {
                    lanes::<L>(&task.grad[((t_n + t) * b_n + b) * n + j..])
                } else {
                    zero
                };
                (lanes::<L>(&task.grad[row * n + j..]), g_u)
            };
            let u_prev = lanes::<L>(&us[ii * L..]);
            let step_in = StepIn {
                u_t,
                u_prev,
                syn_prev: if SYN {
                    lanes::<L>(&syns[ii * L..])
                } else {
                    zero
                },
                g_s,
                g_u,
                end_u,
                end_syn,
            };
            let mut g_in = back_step::<SYN, RESET, SG, L>(&mut run, &lp, task.sg, &step_in);
            if let Some(gain) = spec.gain {
                g_in.iter_mut().for_each(|g| *g *= gain);
            }
            for (d, g) in db.iter_mut().zip(&g_in) {
                *d += g;
            }
            if L == LANE_BLOCK {
                // U[t] is done with: its slot keeps δ[t, b] for the column sums.
                us[(ii + 1) * L..][..L].copy_from_slice(&g_in);
            } else {
                add_to_rows(sc.dw, dw_at, spec.index.row(row), &g_in);
            }
            if let Some(delta) = task.out.delta {
                // SAFETY: lanes j.. of every row of ∂L/∂(input current) are this task's.
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
}

/// The width of the lane block that starts at `n0` within the task's neurons `r`.
#[inline(always)]
pub(super) fn lane_width(n0: usize, r: &Range<usize>) -> usize {
    LANE_BLOCK.min(r.end - n0)
}

/// With an output layer, for the `L` neurons from lane `l0` of the lane block at `n0`, at
/// `row`: `∂L/∂S = ∂L/∂I'·W_outᵀ`, and for each of them that fired (`U > θ`),
/// `∂L/∂W_out[n] += ∂L/∂I'[row]` (into `dwo`, the task's rows of `∂L/∂W_out` from the
/// group's first neuron on, `M` each). Per spike, one row: a few percent of the neurons
/// fire, and an update of all `M` outputs for every lane of a block where one fired cost
/// a fifth of the walk.
#[inline(always)]
fn output_grads<const L: usize>(
    task: &Task,
    (row, n0, l0): (usize, usize, usize),
    u: &[f32; L],
    theta: &[f32; L],
    dwo: &mut [f32],
) -> [f32; L] {
    let m = task.spec.outputs.unwrap_or(0);
    let g_out = &task.grad[row * m..][..m];
    let wo = task.w_out_t.lanes(n0, l0);
    let g_s = out_dot::<L>(g_out, wo);
    let mut bits = lane_bits::<L, false>(u, theta, wo.avx512());
    while bits != 0 {
        let l = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        for (d, &g) in dwo[l * m..][..m].iter_mut().zip(g_out) {
            *d += g;
        }
    }
    g_s
}

/// `Σ_m g_out[m]·W_outᵀ[m, lanes]` for the `L` lanes of `wo`, summed as `(s₀ + s₁) + (s₂ +
/// s₃)` where `s_i` adds the outputs `i, i + 4, …` in order: four independent chains, since
/// one chain of `M` dependent additions would cost `M` latencies per row and step.
#[inline(always)]
fn out_dot<const L: usize>(g_out: &[f32], wo: super::Lanes) -> [f32; L] {
    #[cfg(target_arch = "x86_64")]
    if L == LANE_BLOCK && wo.width() == LANE_BLOCK && wo.avx512() {
        let mut g_s = [0.0f32; L];
        // SAFETY: the CPU has AVX-512F (`LaneMajor::avx512`); the block holds one row of
        // `LANE_BLOCK` floats per output (it is built from `W_outᵀ`, `[M, N]`, with M =
        // `g_out.len()`); `g_s` holds `LANE_BLOCK` floats.
        unsafe { x86::dot16(wo.as_ptr(), g_out, g_s.as_mut_ptr()) };
        return g_s;
    }
    let mut acc = [[0.0f32; L]; 4];
    for (mm, &g) in g_out.iter().enumerate() {
        for (a, w) in acc[mm % 4].iter_mut().zip(wo.row::<L>(mm)) {
            *a += g * w;
        }
    }
    std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]))
}

/// Adds a step's input gradient `g` to the task's `∂L/∂W_in` columns (`dw`, laid out as
/// [`Scratch::dw`] says; `(base, width, l0)` places the lane group) at the rows of the
/// inputs that fired: the narrow lanes' way (full lane blocks sum by column instead).
#[inline(always)]
fn add_to_rows<const L: usize>(
    dw: &mut [f32],
    (base, width, l0): (usize, usize, usize),
    rows: &[u32],
    g: &[f32; L],
) {
    let dw = &mut dw[base..];
    for &k in rows {
        let dst = &mut dw[k as usize * width + l0..][..L];
        for (d, v) in dst.iter_mut().zip(g) {
            *d += v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    // The register sums are indexed by constant loop counters, which unroll.
    #![allow(clippy::needless_range_loop)]

    use std::arch::x86_64::*;

    /// `out = Σ_m g[m]·w[m·16..(m + 1)·16]`, in four chains (see [`super::out_dot`]).
    ///
    /// # Safety
    /// The CPU has AVX-512F, `w` points at `16·g.len()` floats, `out` at 16.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn dot16(w: *const f32, g: &[f32], out: *mut f32) {
        let mut acc = [_mm512_setzero_ps(); 4];
        // A product then a sum, as the other lanes' path rounds (no fused multiply-add).
        // SAFETY (the closure's read): row mm of `w` is readable (the caller's contract).
        let term = |mm: usize, x: f32| unsafe {
            _mm512_mul_ps(_mm512_set1_ps(x), _mm512_loadu_ps(w.add(mm * 16)))
        };
        let quads = g.chunks_exact(4);
        let rest = quads.remainder();
        for (q, quad) in quads.enumerate() {
            for i in 0..4 {
                acc[i] = _mm512_add_ps(acc[i], term(4 * q + i, quad[i]));
            }
        }
        // (Constant indices, so that the sums stay in registers.)
        let full = g.len() - rest.len();
        for i in 0..3 {
            if i < rest.len() {
                acc[i] = _mm512_add_ps(acc[i], term(full + i, rest[i]));
            }
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        // SAFETY: `out` holds 16 floats.
        unsafe { _mm512_storeu_ps(out, s) };
    }
}
