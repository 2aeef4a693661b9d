//! The backward pass of the spike-input op: per block of neurons, chunk by chunk from the last,
//! lane block by lane block (see [`super`]).

use std::ops::Range;

use rayon::prelude::*;

use super::columns::{add_columns, ChunkColumns};
use super::walk::{lane_width, recompute, restore, walk, Out, Scratch, Task};
use super::{
    lane_groups, neuron_blocks, transposed, LaneMajor, Saved, SpikeLifSpec, Weights, BLOCK,
    LANE_BLOCK,
};
use crate::kernel::buffer::{Shared, Unfilled};
use crate::kernel::dense::{give_back_scratch, take_scratch, times_transposed};
use crate::kernel::lif::{
    monomorphize, multiversion, reset_code, split_params, NONE, SUB, ZERO, ZTI,
};
use crate::kernel::LifKind;
use crate::surrogate::with_surrogate_code;

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

/// Backward from `grad` = ∂L/∂(the flat output), with what the forward pass kept (with its
/// checkpoints).
pub fn backward(
    spec: &SpikeLifSpec,
    w: &Weights,
    saved: &Saved,
    grad: &[f32],
    input_grad: bool,
) -> SpikeLifGrads {
    let lif = &spec.lif;
    let (t_n, b_n, n) = (lif.steps, lif.batch, lif.features);
    let (k_n, m) = (spec.index.cols(), spec.outputs.unwrap_or(0));
    let (ckpt, lanes) = (&saved.ckpt[..], &*saved.lanes);
    assert_eq!(
        (lanes.k, lanes.n),
        (k_n, n),
        "the forward pass's input weights"
    );
    assert_eq!(
        ckpt.len(),
        spec.checkpoint_len(),
        "checkpoints of another call"
    );
    // ∂L/∂W_in is written whole after the first chunk (zeros when there is none).
    let mut w_in = Unfilled::new(k_n * n);
    let w_in_ptr = Shared(w_in.as_mut_ptr());
    if spec.chunks() == 0 {
        // SAFETY: the buffer holds `k_n·n` floats, and no task runs.
        unsafe { w_in_ptr.at(0, k_n * n) }.fill(0.0);
    }
    let mut g = SpikeLifGrads {
        w_in: Vec::new(),
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
        w_out: Vec::new(),
        input: None,
    };
    let mut w_out_grad = vec![0.0f32; n * m];
    let mut delta = vec![0.0f32; if input_grad { t_n * b_n * n } else { 0 }];
    let out = Out {
        b_in: Shared(g.b_in.as_mut_ptr()),
        params: Shared(g.params.as_mut_ptr()),
        init: Shared(g.init.as_mut_ptr()),
        w_out: Shared(w_out_grad.as_mut_ptr()),
        delta: input_grad.then_some(Shared(delta.as_mut_ptr())),
    };
    let w_out_t = LaneMajor::new(&transposed(w.w_out, n, m), m, n);
    let blocks = neuron_blocks(n);
    // Each block's walk state (δ, δ_syn, carry, sums, weight-gradient columns), carried
    // from chunk to chunk.
    let mut states: Vec<Vec<f32>> = blocks
        .par_iter()
        .map(|r| vec![0.0; state_len(spec, r.len())])
        .collect();
    // Chunk by chunk from the last, every block in parallel: the index is transposed for
    // one chunk at a time, so that its copy does not grow with T; the next chunk's while
    // this one runs (alone, the transposition would keep one thread idle).
    let mut next = spec
        .chunks()
        .checked_sub(1)
        .map(|c| ChunkColumns::new(spec, c));
    for c in (0..spec.chunks()).rev() {
        let columns = next
            .take()
            .expect("each chunk's columns are built before it");
        let task = Task {
            spec,
            w,
            p: split_params(lif, w.params),
            lanes,
            w_out_t: &w_out_t,
            ckpt,
            grad,
            sg: (lif.surrogate.code().1, lif.surrogate.custom_derivative()),
            columns: &columns,
            out,
        };
        let run = || {
            blocks
                .par_iter()
                .zip(states.par_iter_mut())
                .for_each(|(r, state)| {
                    monomorphize!(lif, backward_task(&task, r.clone(), c, state));
                })
        };
        next = rayon::join(|| c.checked_sub(1).map(|c| ChunkColumns::new(spec, c)), run).0;
    }
    if spec.chunks() > 0 {
        gather_w_in(spec, &blocks, &states, w_in_ptr);
    }
    g.w_out = w_out_grad;
    // SAFETY: `gather_w_in` wrote every row (or there were no chunks, and the zeros above).
    g.w_in = unsafe { w_in.assume_filled() };
    if input_grad {
        g.input = Some(times_transposed(&delta, w.w_in, n, k_n));
    }
    g
}

/// Floats of the walk state of a block of `w` neurons: `δ`, `δ_syn` and the carry (`[B, w]`
/// each), the four sums (`[4, w]`), and the block's columns of `∂L/∂W_in` (from
/// [`dw_start`]) and `∂L/∂W_outᵀ`.
fn state_len(spec: &SpikeLifSpec, w: usize) -> usize {
    let m = spec.outputs.unwrap_or(0);
    dw_start(spec, w) + (spec.index.cols() + m) * w
}

/// Where a block's columns of `∂L/∂W_in` start in its walk state (see [`state_len`]).
fn dw_start(spec: &SpikeLifSpec, w: usize) -> usize {
    (3 * spec.lif.batch + 4) * w
}

/// Input rows per task of [`gather_w_in`].
const GATHER_ROWS: usize = 32;

/// `∂L/∂W_in` (`[K, N]`, at `dst`) from every block's columns in its walk state, row by row
/// in parallel: each row is written whole and in order. (Each block writing its own
/// columns, 64 bytes per row and rows `4·N` bytes apart, into a buffer that is new each
/// call, took 4 % of the shd-like iteration's CPU time in one `memcpy` per row.)
fn gather_w_in(spec: &SpikeLifSpec, blocks: &[Range<usize>], states: &[Vec<f32>], dst: Shared) {
    let (k_n, n) = (spec.index.cols(), spec.lif.features);
    (0..k_n.div_ceil(GATHER_ROWS))
        .into_par_iter()
        .for_each(|g| {
            for k in g * GATHER_ROWS..((g + 1) * GATHER_ROWS).min(k_n) {
                // SAFETY: row k of ∂L/∂W_in belongs to this task alone.
                let row = unsafe { dst.at(k * n, n) };
                for (r, state) in blocks.iter().zip(states) {
                    let dw = &state[dw_start(spec, r.len())..][..k_n * r.len()];
                    for n0 in (r.start..r.end).step_by(LANE_BLOCK) {
                        let width = lane_width(n0, r);
                        row[n0..n0 + width]
                            .copy_from_slice(&dw[(n0 - r.start) * k_n + k * width..][..width]);
                    }
                }
            }
        });
}

/// Picks the surrogate's instance of [`backward_block`].
fn backward_task<const SYN: bool, const RESET: u8>(
    task: &Task,
    r: Range<usize>,
    c: usize,
    state: &mut [f32],
) {
    with_surrogate_code!(
        task.spec.lif.surrogate,
        backward_block::<SYN, RESET>(task, r, c, state)
    )
}

multiversion! {
    /// The backward pass through chunk `c` for neurons `r`, lane group by lane group:
    /// recompute, then walk back (`state`: the block's walk state, [`state_len`]); after
    /// chunk 0, the block's gradients.
    fn backward_block<SYN: bool, RESET: u8, SG: u8>(task: &Task, r: Range<usize>, c: usize, state: &mut [f32]) {
        let spec = task.spec;
        let lif = &spec.lif;
        let (b_n, w) = (lif.batch, r.len());
        let k_n = spec.index.cols();
        let per_b = spec.per_b();
        let syn_len = if SYN { b_n * per_b } else { 0 };
        // The membranes' slots, then one slot of zeros for the column sums, then `I_syn`'s.
        let us_len = b_n * per_b + LANE_BLOCK;
        let len = us_len + syn_len;
        // (From a cache line on: the sums read the membranes' slots as whole lines.)
        let mut buffer = take_scratch(len + 15);
        {
            let skip = buffer.as_ptr().align_offset(64);
            let (us, syns) = buffer[skip..][..len].split_at_mut(us_len);
            us[b_n * per_b..].fill(0.0);
            let (du, rest) = state.split_at_mut(b_n * w);
            let (dsyn, rest) = rest.split_at_mut(b_n * w);
            let (carry, rest) = rest.split_at_mut(b_n * w);
            let (acc, rest) = rest.split_at_mut(4 * w);
            let (dw, dwo) = rest.split_at_mut(k_n * w);
            let mut sc = Scratch { us, syns, du, dsyn, carry, acc, dw, dwo };
            for (n0, l0, width) in lane_groups(r.clone()) {
                let at = (&r, n0, l0, c);
                if width == LANE_BLOCK {
                    if c + 1 == spec.chunks() && spec.tail_len() > 0 {
                        restore::<SYN>(task, n0, &mut sc);
                    } else {
                        recompute::<LANE_BLOCK, SYN, RESET>(task, at, &mut sc);
                    }
                    walk::<LANE_BLOCK, SYN, RESET, SG>(task, at, &mut sc);
                    let dw = &mut sc.dw[(n0 - r.start) * k_n..][..LANE_BLOCK * k_n];
                    add_columns(task.columns, sc.us, dw, task.lanes.avx512);
                } else {
                    recompute::<1, SYN, RESET>(task, at, &mut sc);
                    walk::<1, SYN, RESET, SG>(task, at, &mut sc);
                }
            }
            if c == 0 {
                finish::<SYN>(task, &r, &sc);
            }
        }
        give_back_scratch(buffer);
    }
}

/// After the first chunk: the initial state's gradient, the block's parameter, bias and
/// output weight gradients.
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
    // Parameter rows: [β, θ] or [α, β, θ]; the accumulators: [β, θ, α, b_in].
    let rows: &[(usize, usize)] = if SYN {
        &[(1, 0), (2, 1), (0, 2)]
    } else {
        &[(0, 0), (1, 1)]
    };
    for &(row, k) in rows {
        // SAFETY: lanes r of every parameter row belong to this task alone.
        unsafe { task.out.params.at(row * n + r.start, w) }.copy_from_slice(&sc.acc[k * w..][..w]);
    }
    if task.spec.bias {
        // SAFETY: as above.
        unsafe { task.out.b_in.at(r.start, w) }.copy_from_slice(&sc.acc[3 * w..][..w]);
    }
    // The block's rows of ∂L/∂W_out (its columns of ∂L/∂W_in stay in its walk state for
    // `gather_w_in`).
    let m = task.spec.outputs.unwrap_or(0);
    // SAFETY: rows r of ∂L/∂W_out belong to this task alone.
    unsafe { task.out.w_out.at(r.start * m, w * m) }.copy_from_slice(&sc.dwo[..w * m]);
}

// Tasks are whole lane blocks: the lane groups and the ∂L/∂W_in layout rely on it.
const _: () = assert!(BLOCK.is_multiple_of(LANE_BLOCK));
