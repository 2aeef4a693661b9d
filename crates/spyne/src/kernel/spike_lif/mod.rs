//! Binary spikes through a Linear layer into a Leaky or Synaptic layer (and, optionally, the
//! Linear layer after it), as one op whose cost follows the spikes and whose memory does not
//! grow with the number of steps.
//!
//! The layer's input current at `(t, b)` is the sum of the input weight rows of the inputs
//! that fired ([`SpikeIndex`]), plus the bias: no product over the zeros, and the currents
//! `[T, B, N]` never exist. Both passes run chunk of steps by chunk; their tasks are blocks
//! of 64 neurons (every gradient column then belongs to one task: no partial sums to add,
//! the same result on any number of threads), and within a task, lane blocks of 16 neurons
//! whose input weights (`[K, 16]`, [`LaneMajor`]) stay in L1 while the block runs over every
//! row and step: the sums are random reads of weight rows, and from L2 they cost twice as
//! much.
//!
//! Forward: the currents, the neuron update, and the spikes; with an output Linear layer,
//! the neurons that fired add their output weight rows to the next layer's currents. The
//! state at the start of every chunk is kept (a chunk's share of the membrane history), so
//! that the backward pass can recompute any chunk alone.
//!
//! Backward, chunk by chunk from the last, lane block by lane block: recompute the chunk
//! from its checkpoint, then walk back through it with the surrogate (the per-step
//! arithmetic of [`super::lif`]), forming `∂L/∂S = ∂L/∂I'·W_outᵀ` on the way, adding
//! `∂L/∂I'[t, b]` to the output weight gradient of the neurons that fired, and each step's
//! input gradient `δ[t, b]` to the weight rows of the inputs that fired then:
//! `∂L/∂W_in[k] += δ[t, b]` for every active `k`; for full lane blocks, once per chunk and
//! input, from the index transposed ([`columns`]).

mod backward;
mod columns;
mod forward;
mod walk;

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

pub use backward::backward;
pub use forward::forward;

use super::buffer::Aligned;
use super::lif::Params;
use super::spike_index::SpikeIndex;
use super::LifSpec;

/// Neurons per task of both passes.
const BLOCK: usize = 64;

/// Neurons per block of the lane-major weights: one AVX-512 register. (Two registers, so
/// that each index entry read serves two vector reads, ran no faster in the shd-like job,
/// and leave wider remainders to the one-lane path.)
const LANE_BLOCK: usize = 16;

// The AVX-512 paths ([`x86`]) and the forward pass's instance list assume one register.
const _: () = assert!(LANE_BLOCK == 16);

/// Hidden spikes at most this dense add the output weight rows of the neurons that fired to
/// the next layer's currents; denser ones take a GEMM when the output layer is wide (adding
/// fewer than 64 weights per spike beats packing a GEMM at any density).
const SPARSE_OUTPUT_DENSITY: f32 = 0.15;

/// Floats of the backward pass's recomputed membranes (and currents) per lane block and
/// chunk, for the whole batch: 256 KB, so that a chunk stays in L2.
const CHUNK_FLOATS: usize = 1 << 16;

/// At most this many floats (16 MB) of the last chunk's membranes (and synaptic currents)
/// are kept by the forward pass, so that the backward pass, which starts there, need not
/// recompute that chunk: a quarter of the recomputation at 500 steps, all of it within one
/// chunk. Wider layers recompute it.
const TAIL_FLOATS: usize = 1 << 22;

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
        let per_step = 2 * self.lif.batch * LANE_BLOCK;
        (CHUNK_FLOATS / per_step.max(1)).clamp(8, 256).min(steps)
    }

    /// Chunks of steps.
    pub(super) fn chunks(&self) -> usize {
        self.lif.steps.div_ceil(self.chunk_len())
    }

    /// Floats of the checkpoints the forward pass keeps for the backward pass: the state at
    /// the start of every chunk, `[chunks, S, B, N]`, then the last chunk's membranes (and
    /// synaptic currents) of every full lane block, at most 4 M floats.
    pub fn checkpoint_len(&self) -> usize {
        let l = &self.lif;
        self.chunks() * l.kind.state_rows() * l.batch * l.features + self.tail_len()
    }

    /// Floats per batch row of a lane block's slots for one chunk: the state before it, then
    /// after each of its steps, `LANE_BLOCK` each.
    pub(super) fn per_b(&self) -> usize {
        (self.chunk_len() + 1) * LANE_BLOCK
    }

    /// Floats per batch row of a lane block's kept states of the last chunk: its slots,
    /// `(steps + 1)·LANE_BLOCK` (0 without steps).
    pub(super) fn tail_row(&self) -> usize {
        match self.chunks() {
            0 => 0,
            c => (self.chunk(c - 1).len() + 1) * LANE_BLOCK,
        }
    }

    /// Floats the forward pass keeps of the last chunk per full lane block: its membranes'
    /// slots for every batch row, `[B, tail_row]` (then its synaptic currents', the same).
    /// 0 when they are not kept ([`TAIL_FLOATS`]).
    pub(super) fn tail_block_len(&self) -> usize {
        let l = &self.lif;
        let block = l.kind.state_rows() * l.batch * self.tail_row();
        if block * (l.features / LANE_BLOCK) > TAIL_FLOATS {
            0
        } else {
            block
        }
    }

    /// Floats of the last chunk's states kept for every full lane block (the narrow last
    /// lanes recompute theirs): `[N / LANE_BLOCK, tail_block_len]`.
    pub(super) fn tail_len(&self) -> usize {
        self.tail_block_len() * (self.lif.features / LANE_BLOCK)
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

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The checkpoints ([`SpikeLifSpec::checkpoint_len`]; empty when not asked for).
    ckpt: Vec<f32>,
    /// `W_in` as the forward pass laid it out (the weights do not change before the
    /// backward pass, and the layout costs a pass over them).
    lanes: Arc<LaneMajor>,
}

/// `W_in` (`[K, N]`) rearranged lane block by lane block: the block of neurons `n0..` (`n0`
/// a multiple of [`LANE_BLOCK`]) is `[K + 1, width]` and contiguous, 45 KB for K = 700. Read
/// in place, `W_in`'s rows are a power of two apart for common widths, and a few columns of
/// each would thrash the cache sets. Row `K` of every block is zeros: the sums pad their
/// last few terms with it instead of branching on how many are left.
pub(super) struct LaneMajor {
    data: Aligned,
    k: usize,
    n: usize,
    /// The CPU has AVX-512F (the sums then run on explicit vector registers).
    pub(super) avx512: bool,
}

impl std::fmt::Debug for LaneMajor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LaneMajor {{ k: {}, n: {} }}", self.k, self.n)
    }
}

impl LaneMajor {
    pub(super) fn new(w_in: &[f32], k: usize, n: usize) -> LaneMajor {
        assert_eq!(w_in.len(), k * n, "input weights vs spike index width");
        let mut data = Aligned::zeroed((k + 1) * n);
        // (No neurons, as for an absent output layer: nothing to lay out.)
        data.par_chunks_mut((k + 1) * LANE_BLOCK)
            .enumerate()
            .for_each(|(j, dst)| {
                let (n0, width) = (j * LANE_BLOCK, LANE_BLOCK.min(n - j * LANE_BLOCK));
                // (The last row stays zero.)
                for (kk, row) in dst.chunks_exact_mut(width).take(k).enumerate() {
                    row.copy_from_slice(&w_in[kk * n + n0..][..width]);
                }
            });
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        LaneMajor { data, k, n, avx512 }
    }

    /// The weights of lane `l0` on of the lane block that starts at neuron `n0`: rows of the
    /// block's width.
    #[inline(always)]
    pub(super) fn lanes(&self, n0: usize, l0: usize) -> Lanes<'_> {
        let width = LANE_BLOCK.min(self.n - n0);
        Lanes {
            w: &self.data[n0 * (self.k + 1)..][..(self.k + 1) * width],
            stride: width,
            l0,
            avx512: self.avx512,
        }
    }
}

/// Some lanes of one lane block of [`LaneMajor`]: row `k` of lane `l` at `k·stride + l0 + l`
/// (row `K` zeros).
#[derive(Clone, Copy)]
pub(super) struct Lanes<'a> {
    w: &'a [f32],
    stride: usize,
    l0: usize,
    avx512: bool,
}

impl<'a> Lanes<'a> {
    /// Row `k` of the `L` lanes.
    #[inline(always)]
    pub(super) fn row<const L: usize>(&self, k: usize) -> &'a [f32; L] {
        self.w[k * self.stride + self.l0..][..L].try_into().unwrap()
    }

    /// The lane block's width.
    pub(super) fn width(&self) -> usize {
        self.stride
    }

    /// The CPU has AVX-512F.
    pub(super) fn avx512(&self) -> bool {
        self.avx512
    }

    /// Row 0 of the lanes, from which the block's other rows follow `width` floats apart.
    pub(super) fn as_ptr(&self) -> *const f32 {
        self.w[self.l0..].as_ptr()
    }
}

/// Lanes worked on together: a whole lane block, or one lane of a narrower last block.
pub(super) fn lane_groups(r: Range<usize>) -> Vec<(usize, usize, usize)> {
    let mut groups = Vec::new();
    let mut n0 = r.start;
    while n0 < r.end {
        let width = LANE_BLOCK.min(r.end - n0);
        if width == LANE_BLOCK {
            groups.push((n0, 0, LANE_BLOCK));
        } else {
            groups.extend((0..width).map(|l| (n0, l, 1)));
        }
        n0 += width;
    }
    groups
}

/// `cur = (Σ_{k active in row} W_in[k, lanes] + b_in[j..j + L])·gain`: the input current of
/// the `L` neurons from `j`, summed as `(s₀ + s₁) + (s₂ + s₃)` where `s_i` adds the active
/// inputs `i, i + 4, …` in order (four independent additions hide their latency): the same
/// in both passes, whatever the lanes are grouped with.
#[inline(always)]
pub(super) fn current<const L: usize>(
    spec: &SpikeLifSpec,
    lanes: Lanes,
    (b_in, j): (&[f32], usize),
    row: usize,
    cur: &mut [f32; L],
) {
    let active = spec.index.row(row);
    sum_rows::<L>(lanes, active, cur);
    if spec.bias {
        for (c, &v) in cur.iter_mut().zip(&b_in[j..j + L]) {
            *c += v;
        }
    }
    if let Some(g) = spec.gain {
        for c in cur.iter_mut() {
            *c *= g;
        }
    }
}

/// The sum of [`current`] without bias and gain.
#[inline(always)]
fn sum_rows<const L: usize>(lanes: Lanes, active: &[u32], cur: &mut [f32; L]) {
    debug_assert!(lanes.l0 + L <= lanes.stride);
    #[cfg(target_arch = "x86_64")]
    if L == LANE_BLOCK && lanes.stride == LANE_BLOCK && lanes.avx512 {
        let zero = lanes.w.len() / LANE_BLOCK - 1;
        debug_assert!(active.iter().all(|&k| (k as usize) < zero));
        // SAFETY: the CPU has AVX-512F (`LaneMajor::avx512`). The index's entries are below
        // its width (it is built so), and the block has one more row of `LANE_BLOCK` floats
        // (both passes build `LaneMajor` with the index's width), the last of them zeros, so
        // every read is inside `w`; `cur` holds `LANE_BLOCK` floats.
        unsafe { x86::sum16(lanes.w.as_ptr(), active, zero as u32, cur.as_mut_ptr()) };
        return;
    }
    let at = |k: u32| -> &[f32; L] {
        lanes.w[k as usize * lanes.stride + lanes.l0..][..L]
            .try_into()
            .unwrap()
    };
    let mut acc = [[0.0f32; L]; 4];
    let quads = active.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        for (i, &k) in q.iter().enumerate() {
            for (a, v) in acc[i].iter_mut().zip(at(k)) {
                *a += v;
            }
        }
    }
    for (i, &k) in rest.iter().enumerate() {
        for (a, v) in acc[i].iter_mut().zip(at(k)) {
            *a += v;
        }
    }
    for (l, c) in cur.iter_mut().enumerate() {
        *c = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
}

/// Bit `l` set where lane `l` fired (`U − θ > 0`), or also where its membrane is NaN when
/// `NAN` (`U − θ` not `≤ 0`).
#[inline(always)]
pub(super) fn lane_bits<const L: usize, const NAN: bool>(
    u: &[f32; L],
    theta: &[f32],
    avx512: bool,
) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if L == LANE_BLOCK && avx512 {
        // SAFETY: the CPU has AVX-512F (`LaneMajor::avx512`); `u` and `theta` hold 16
        // floats.
        return unsafe { x86::lane_bits16::<NAN>(u.as_ptr(), theta[..L].as_ptr()) };
    }
    let _ = avx512;
    let mut bits = 0u32;
    for (l, (&u, &th)) in u.iter().zip(theta).enumerate() {
        let x = u - th;
        bits |= u32::from(x > 0.0 || (NAN && x.is_nan())) << l;
    }
    bits
}

/// The blocks of neurons the tasks of both passes take.
pub(super) fn neuron_blocks(n: usize) -> Vec<Range<usize>> {
    (0..n)
        .step_by(BLOCK)
        .map(|r0| r0..(r0 + BLOCK).min(n))
        .collect()
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

/// `W_out` (`[N, M]`) transposed, `[M, N]`: both passes read one lane block of it per output.
pub(super) fn transposed(w_out: &[f32], n: usize, m: usize) -> Vec<f32> {
    super::dense::transpose(w_out, n, m)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    // The register sums are indexed by constant loop counters, which unroll.
    #![allow(clippy::needless_range_loop)]

    use std::arch::x86_64::*;

    /// `Σ base[x·scale..x·scale + 16]` over `at`, summed as `(s₀ + s₁) + (s₂ + s₃)` where
    /// `s_i` adds the entries `i, i + 4, …` in order (the order of the portable sums in both
    /// passes). The remainder of up to three terms is padded to three with the zeros at
    /// `zero` (no sum is −0, so adding +0 changes nothing): a branch on how many are left
    /// would mispredict on most calls.
    ///
    /// # Safety
    /// The CPU has AVX-512F; 16 floats are readable from `base` at `x·scale` for every `x`
    /// in `at` and for `zero`, and those at `zero` are +0.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn gather_sum(
        base: *const f32,
        at: &[u32],
        zero: u32,
        scale: usize,
    ) -> __m512 {
        // SAFETY (the closure's read): the row is readable (the caller's contract).
        let row = |x: u32| unsafe { _mm512_loadu_ps(base.add(x as usize * scale)) };
        let mut acc = [_mm512_setzero_ps(); 4];
        let quads = at.chunks_exact(4);
        let rest = quads.remainder();
        for q in quads {
            for i in 0..4 {
                acc[i] = _mm512_add_ps(acc[i], row(q[i]));
            }
        }
        // (Constant indices, so that the sums stay in registers; the selects are
        // conditional moves.)
        for i in 0..3 {
            let x = if i < rest.len() { rest[i] } else { zero };
            acc[i] = _mm512_add_ps(acc[i], row(x));
        }
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))
    }

    /// [`super::lane_bits`] for 16 lanes: one compare into a mask register. (Two 8-lane
    /// compares and sign masks read the membranes, which the compiler holds in one 16-lane
    /// register, back from memory in halves.)
    ///
    /// # Safety
    /// The CPU has AVX-512F; `u` and `theta` point at 16 floats each.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn lane_bits16<const NAN: bool>(u: *const f32, theta: *const f32) -> u32 {
        // SAFETY: both hold 16 floats (the caller's contract).
        let (u, th) = unsafe { (_mm512_loadu_ps(u), _mm512_loadu_ps(theta)) };
        let x = _mm512_sub_ps(u, th);
        let zero = _mm512_setzero_ps();
        // Not (x ≤ 0), unordered included; or x > 0, ordered.
        let above = if NAN {
            _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(x, zero)
        } else {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero)
        };
        u32::from(above)
    }

    /// [`super::sum_rows`] for one lane block: rows 16 floats apart from `w`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; row `k` (16 floats) is readable for every `k` in `active` and
    /// for `zero`, which is zeros; `cur` holds 16 floats.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn sum16(w: *const f32, active: &[u32], zero: u32, cur: *mut f32) {
        // SAFETY: the rows are readable, and `cur` holds 16 floats (the caller's contract).
        unsafe { _mm512_storeu_ps(cur, gather_sum(w, active, zero, 16)) };
    }
}
