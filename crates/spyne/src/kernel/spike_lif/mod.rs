//! Binary spikes through a Linear layer into a Leaky or Synaptic layer (and, optionally, the
//! Linear layer after it), as one op whose cost follows the spikes and whose memory does not
//! grow with the number of steps.
//!
//! The layer's input current at `(t, b)` is the sum of the input weight rows of the inputs
//! that fired ([`SpikeIndex`]), plus the bias: no product over the zeros, and the currents
//! `[T, B, N]` never exist. Forward, per block of batch rows, chunk of steps by chunk: the
//! currents, the neuron update, the spikes kept in cache and, with an output Linear layer,
//! one small product per chunk. The state at the start of every chunk is kept (1/chunk of
//! the membrane history) so that the backward pass can recompute any chunk alone.
//!
//! Backward, per block of neurons (every weight gradient column then belongs to one task:
//! no partial sums to add, the same result on any number of threads), chunk by chunk from
//! the last: recompute the chunk from its checkpoint, form `∂L/∂S` (one small product with
//! the output weights, or the spikes' upstream gradient), walk back through the chunk with
//! the surrogate (the same per-step arithmetic as [`super::lif`]), and add each step's input
//! gradient `δ[t, b]` to the weight rows of the inputs that fired then:
//! `∂L/∂W_in[k] += δ[t, b]` for every active `k`. Scratch is a chunk for one neuron block.

mod backward;

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

pub use backward::backward;

use super::dense::matmul;
use super::lif::{
    monomorphize, multiversion, reset_code, spike, split_params, step_row, Params, Shared,
    Unfilled, NONE, SUB, ZERO, ZTI,
};
use super::spike_index::SpikeIndex;
use super::{LifKind, LifSpec};

/// Neurons per task of both passes.
const BLOCK: usize = 64;

/// Neurons per block of the lane-major weights (one AVX-512 register).
const LANE_BLOCK: usize = 16;

/// Hidden spikes at most this dense drive the output layer's product and weight gradient
/// spike by spike; denser ones take a GEMM.
const SPARSE_OUTPUT_DENSITY: f32 = 0.15;

/// Floats of backward scratch per chunk (membranes, currents, spikes and their gradients for
/// the batch and one block of neurons): about 1 MB, so a chunk stays in L2.
const CHUNK_FLOATS: usize = 1 << 18;

/// One call of the op.
#[derive(Debug, Clone)]
pub struct SpikeLifSpec {
    /// The neuron layer: `steps`, `batch`, `features` (`N`), kind, reset, surrogate; `mems`,
    /// `init`, `final_state` as for [`super::fused_sequence`]. `static_input` must be false.
    pub lif: LifSpec,
    /// The active inputs, `[T·B, K]` (row `t·B + b`).
    pub index: Arc<SpikeIndex>,
    /// The input Linear layer has a bias.
    pub bias: bool,
    /// A factor on the input current (Lapicque's `Δt/C`).
    pub gain: Option<f32>,
    /// `M` when a Linear layer `[N, M]` without bias follows: the op then returns its input
    /// currents `[T, B, M]` instead of the spikes.
    pub outputs: Option<usize>,
    /// Steps per chunk (0: chosen from the sizes).
    pub chunk: usize,
}

impl SpikeLifSpec {
    /// Length of the flat output: the next layer's currents `[T, B, M]` (with `outputs`) or
    /// [`LifSpec::output_planes`] planes `[B, N]` (spikes, membranes when `lif.mems`); then
    /// the final state `[S, B, N]` when `lif.final_state`.
    pub fn output_len(&self) -> usize {
        let l = &self.lif;
        match self.outputs {
            Some(m) => {
                let state = if l.final_state {
                    l.kind.state_rows() * l.batch * l.features
                } else {
                    0
                };
                l.steps * l.batch * m + state
            }
            None => l.output_planes() * l.batch * l.features,
        }
    }

    /// Steps per chunk.
    pub(super) fn chunk_len(&self) -> usize {
        let steps = self.lif.steps.max(1);
        if self.chunk > 0 {
            return self.chunk.min(steps);
        }
        let per_step = 4 * self.lif.batch * BLOCK.min(self.lif.features);
        (CHUNK_FLOATS / per_step.max(1)).clamp(8, 256).min(steps)
    }

    /// Chunks of steps.
    pub(super) fn chunks(&self) -> usize {
        self.lif.steps.div_ceil(self.chunk_len())
    }

    /// Floats of the checkpoints the forward pass keeps for the backward pass: the state at
    /// the start of every chunk, `[chunks, S, B, N]`.
    pub fn checkpoint_len(&self) -> usize {
        let l = &self.lif;
        self.chunks() * l.kind.state_rows() * l.batch * l.features
    }

    /// The steps of chunk `c`.
    pub(super) fn chunk(&self, c: usize) -> Range<usize> {
        let len = self.chunk_len();
        c * len..((c + 1) * len).min(self.lif.steps)
    }
}

/// The op's weights and parameters, as slices.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    /// `[K, N]`.
    pub w_in: &'a [f32],
    /// `[N]` (empty without a bias).
    pub b_in: &'a [f32],
    /// `[rows, N]` (`[β, θ]` or `[α, β, θ]`).
    pub params: &'a [f32],
    /// The initial state `[S, B, N]` when `lif.init`.
    pub init: &'a [f32],
    /// `[N, M]` when `outputs` (else empty).
    pub w_out: &'a [f32],
}

/// The input weights as the passes read them: rows of `stride` floats, of which the
/// neurons of interest start at column `r0`.
#[derive(Clone, Copy)]
pub(super) struct InputRows<'a> {
    pub(super) w: &'a [f32],
    pub(super) stride: usize,
    pub(super) r0: usize,
}

/// `W_in` (`[K, N]`) rearranged block of [`LANE_BLOCK`] neurons by block: the block of
/// neurons `n0..` is `[K, width]` and contiguous. A pass runs one block over every step and
/// row while its columns (45 KB for K = 700) stay in L1; read in place, `W_in`'s rows are a
/// power of two apart for common widths, and a few columns of each thrash the cache sets.
pub(super) struct LaneMajor {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl LaneMajor {
    pub(super) fn new(w_in: &[f32], k: usize, n: usize) -> LaneMajor {
        let mut data = vec![0.0f32; k * n];
        data.par_chunks_mut(k * LANE_BLOCK)
            .enumerate()
            .for_each(|(j, dst)| {
                let (n0, width) = (j * LANE_BLOCK, LANE_BLOCK.min(n - j * LANE_BLOCK));
                for (kk, row) in dst.chunks_exact_mut(width).enumerate() {
                    row.copy_from_slice(&w_in[kk * n + n0..][..width]);
                }
            });
        LaneMajor { data, k, n }
    }

    /// The input rows of the block that starts at neuron `n0` (a multiple of
    /// [`LANE_BLOCK`]), and its width.
    #[inline(always)]
    pub(super) fn block(&self, n0: usize) -> (InputRows<'_>, usize) {
        let width = LANE_BLOCK.min(self.n - n0);
        let w = &self.data[n0 * self.k..][..self.k * width];
        (
            InputRows {
                w,
                stride: width,
                r0: 0,
            },
            width,
        )
    }
}

/// `cur[j] = (Σ_{k active in `row`} W_in[k, r0 + j] + b_in[b0 + j])·gain`: the input current
/// of `cur.len()` neurons (the sum ordered as [`sum_lanes`] orders it, the same in both
/// passes).
#[inline(always)]
pub(super) fn current(
    spec: &SpikeLifSpec,
    rows: InputRows,
    (b_in, b0): (&[f32], usize),
    row: usize,
    cur: &mut [f32],
) {
    let width = cur.len();
    let active = spec.index.row(row);
    if width == LANE_BLOCK && rows.stride == LANE_BLOCK && rows.r0 == 0 {
        sum_block(rows.w, active, cur.try_into().unwrap());
    } else {
        let c0 = sum_lanes::<4>(rows, active, 0, cur);
        sum_lanes::<1>(rows, active, c0, cur);
    }
    if spec.bias {
        for (c, &v) in cur.iter_mut().zip(&b_in[b0..b0 + width]) {
            *c += v;
        }
    }
    if let Some(g) = spec.gain {
        for c in cur.iter_mut() {
            *c *= g;
        }
    }
}

/// `cur[c..c + L] = Σ_{k in active} W[k, r0 + c..][..L]` for blocks of `L` lanes from `c0`
/// while whole blocks fit, as `(s₀ + s₁) + (s₂ + s₃)` where `s_j` sums the inputs `j, j + 4,
/// …` of `active` in order (four independent additions hide their latency); returns where
/// it stopped.
#[inline(always)]
fn sum_lanes<const L: usize>(
    rows: InputRows,
    active: &[u32],
    mut c0: usize,
    cur: &mut [f32],
) -> usize {
    let at = |k: u32, c0: usize| -> &[f32; L] {
        rows.w[k as usize * rows.stride + rows.r0 + c0..][..L]
            .try_into()
            .unwrap()
    };
    while c0 + L <= cur.len() {
        let mut acc = [[0.0f32; L]; 4];
        let quads = active.chunks_exact(4);
        let rest = quads.remainder();
        for q in quads {
            for (j, &k) in q.iter().enumerate() {
                for (a, v) in acc[j].iter_mut().zip(at(k, c0)) {
                    *a += v;
                }
            }
        }
        for (j, &k) in rest.iter().enumerate() {
            for (a, v) in acc[j].iter_mut().zip(at(k, c0)) {
                *a += v;
            }
        }
        for (l, c) in cur[c0..c0 + L].iter_mut().enumerate() {
            *c = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
        }
        c0 += L;
    }
    c0
}

/// [`sum_lanes`] for one whole block of [`LANE_BLOCK`] lanes whose rows are `LANE_BLOCK`
/// apart (the hot loop of both passes).
#[inline(always)]
fn sum_block(w: &[f32], active: &[u32], cur: &mut [f32; LANE_BLOCK]) {
    const L: usize = LANE_BLOCK;
    let at = |k: u32| -> &[f32; L] {
        debug_assert!((k as usize + 1) * L <= w.len());
        // SAFETY: the index's columns are below its width (it is built so), which is the
        // weights' row count (both passes check it), so k's L lanes lie inside `w`.
        unsafe { &*(w.as_ptr().add(k as usize * L) as *const [f32; L]) }
    };
    let mut acc = [[0.0f32; L]; 4];
    let quads = active.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        for (j, &k) in q.iter().enumerate() {
            for (a, v) in acc[j].iter_mut().zip(at(k)) {
                *a += v;
            }
        }
    }
    for (j, &k) in rest.iter().enumerate() {
        for (a, v) in acc[j].iter_mut().zip(at(k)) {
            *a += v;
        }
    }
    for (l, c) in cur.iter_mut().enumerate() {
        *c = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
}

/// The blocks of neurons the tasks of both passes take.
pub(super) fn neuron_blocks(n: usize) -> Vec<Range<usize>> {
    (0..n)
        .step_by(BLOCK)
        .map(|r0| r0..(r0 + BLOCK).min(n))
        .collect()
}

/// Forward: the flat output ([`SpikeLifSpec::output_len`]) and, when `checkpoints`, the
/// state at the start of every chunk ([`SpikeLifSpec::checkpoint_len`]) for the backward
/// pass. Chunk by chunk: every block of neurons over the chunk's steps and rows in
/// parallel, then (with an output layer) the chunk's currents.
pub fn forward(spec: &SpikeLifSpec, w: &Weights, checkpoints: bool) -> (Vec<f32>, Vec<f32>) {
    let lif = &spec.lif;
    let (b_n, n) = (lif.batch, lif.features);
    let rows = lif.kind.state_rows();
    let plane = rows * b_n * n;
    let lanes = LaneMajor::new(w.w_in, spec.index.cols(), n);
    assert_eq!(
        w.w_in.len(),
        spec.index.cols() * n,
        "input weights vs spike index width"
    );
    let mut out = Unfilled::new(spec.output_len());
    let out_ptr = Shared(out.as_mut_ptr());
    let mut ckpt = vec![
        0.0f32;
        if checkpoints {
            spec.checkpoint_len()
        } else {
            0
        }
    ];
    // The state between chunks, `[S, B, N]` (`[U]` or `[I_syn, U]`).
    let mut state = if lif.init {
        w.init[..plane].to_vec()
    } else {
        vec![0.0; plane]
    };
    let m = spec.outputs.unwrap_or(0);
    let mut s = vec![0.0f32; if m > 0 { spec.chunk_len() * b_n * n } else { 0 }];
    let blocks = neuron_blocks(n);
    for c in 0..spec.chunks() {
        if checkpoints {
            ckpt[c * plane..][..plane].copy_from_slice(&state);
        }
        let steps = spec.chunk(c);
        let ptrs = (Shared(state.as_mut_ptr()), Shared(s.as_mut_ptr()), out_ptr);
        blocks.par_iter().for_each(|r| {
            let block = (r.clone(), steps.clone());
            monomorphize!(lif, forward_block(spec, (&lanes, w), block, ptrs));
        });
        if m > 0 {
            write_currents(spec, w.w_out, &s, steps, out_ptr);
        }
    }
    if lif.final_state {
        // The state planes follow the currents, or the spike and membrane planes.
        let at = match spec.outputs {
            Some(m) => lif.steps * b_n * m,
            None => (lif.output_planes() - rows) * b_n * n,
        };
        // SAFETY: the state planes are the output's last `plane` values.
        unsafe { out_ptr.at(at, plane) }.copy_from_slice(&state);
    }
    // SAFETY: every chunk wrote every row of its steps (currents, or spikes and
    // membranes), and the final state was written just above.
    (unsafe { out.assume_filled() }, ckpt)
}

multiversion! {
    /// Neurons `r` over one chunk of steps, block of 16 by block, row by row: the input
    /// current from the active inputs, the update, the spikes (into the chunk's spike
    /// buffer when an output layer follows, else the output), the membranes when asked.
    fn forward_block<SYN: bool, RESET: u8>(
        spec: &SpikeLifSpec,
        weights: (&LaneMajor, &Weights),
        block: (Range<usize>, Range<usize>),
        ptrs: (Shared, Shared, Shared),
    ) {
        let ((lanes, w), (r, steps), (state, s, out)) = (weights, block, ptrs);
        let lif = &spec.lif;
        let (b_n, n) = (lif.batch, lif.features);
        let p = split_params(lif, w.params);
        let m = spec.outputs.unwrap_or(0);
        let mut n0 = r.start;
        while n0 < r.end {
            let (rows_in, width) = lanes.block(n0);
            let pb = params_of(p, &(n0..n0 + width));
            let (mut cur, mut u, mut syn) = ([0.0f32; LANE_BLOCK], [0.0f32; LANE_BLOCK], [0.0f32; LANE_BLOCK]);
            let (cur, u, syn) = (&mut cur[..width], &mut u[..width], &mut syn[..width]);
            // State rows: [U], or [I_syn, U].
            let at = |k: usize, b: usize| ((k * b_n + b) * n + n0, width);
            let u_row = if SYN { 1 } else { 0 };
            for b in 0..b_n {
                // SAFETY: lanes n0.. of every state row belong to this task alone.
                unsafe {
                    let (i, l) = at(u_row, b);
                    u.copy_from_slice(state.at(i, l));
                    if SYN {
                        let (i, l) = at(0, b);
                        syn.copy_from_slice(state.at(i, l));
                    }
                }
                for t in steps.clone() {
                    current(spec, rows_in, (w.b_in, n0), t * b_n + b, cur);
                    step_row::<SYN, RESET>(pb, cur, u, syn);
                    // SAFETY: lanes n0.. of row (t, b) belong to this task alone.
                    let spikes = unsafe {
                        if m > 0 {
                            s.at(((t - steps.start) * b_n + b) * n + n0, width)
                        } else {
                            out.at((t * b_n + b) * n + n0, width)
                        }
                    };
                    for ((s, &u), &th) in spikes.iter_mut().zip(&*u).zip(pb.theta) {
                        *s = spike(u - th);
                    }
                    if m == 0 && lif.mems {
                        // SAFETY: as above, in the membrane planes.
                        unsafe { out.at(((lif.steps + t) * b_n + b) * n + n0, width) }.copy_from_slice(u);
                    }
                }
                // SAFETY: as above.
                unsafe {
                    let (i, l) = at(u_row, b);
                    state.at(i, l).copy_from_slice(u);
                    if SYN {
                        let (i, l) = at(0, b);
                        state.at(i, l).copy_from_slice(syn);
                    }
                }
            }
            n0 += width;
        }
    }
}

/// The output layer's currents for one chunk: `I'[t, b] = S[t, b]·W_out` from the chunk's
/// spikes `s` (`[(t − t0)·B + b, N]`), written to the output rows of the chunk's steps, in
/// parallel groups of rows. Sparse spikes add the output weight rows of the neurons that
/// fired; denser ones (or NaN spikes) take one product.
fn write_currents(spec: &SpikeLifSpec, w_out: &[f32], s: &[f32], steps: Range<usize>, out: Shared) {
    let (b_n, n) = (spec.lif.batch, spec.lif.features);
    let m = spec.outputs.unwrap_or(0);
    let group = (256 / b_n).max(1);
    let first = steps.start * b_n;
    (0..steps.len())
        .step_by(group)
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|t0| {
            let rows = t0 * b_n..((t0 + group).min(steps.len())) * b_n;
            let s = &s[rows.start * n..rows.end * n];
            // SAFETY: these output rows belong to this task alone.
            let dst = unsafe { out.at((first + rows.start) * m, rows.len() * m) };
            match SpikeIndex::build(s, n, SPARSE_OUTPUT_DENSITY) {
                Some(fired) => {
                    for (r, dst) in dst.chunks_exact_mut(m).enumerate() {
                        dst.fill(0.0);
                        for &k in fired.row(r) {
                            for (d, &w) in dst.iter_mut().zip(&w_out[k as usize * m..][..m]) {
                                *d += w;
                            }
                        }
                    }
                }
                None => matmul(
                    (dst, (m, 1)),
                    false,
                    (s, (n, 1)),
                    (w_out, (m, 1)),
                    [rows.len(), m, n],
                ),
            }
        });
}

/// The parameter rows of neurons `r`.
pub(super) fn params_of<'a>(p: Params<'a>, r: &Range<usize>) -> Params<'a> {
    Params {
        alpha: if p.alpha.is_empty() {
            p.alpha
        } else {
            &p.alpha[r.clone()]
        },
        beta: &p.beta[r.clone()],
        theta: &p.theta[r.clone()],
    }
}
