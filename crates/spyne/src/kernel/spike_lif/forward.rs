//! The forward pass of the spike-input op (see [`super`]).

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::{
    current, lane_bits, lane_groups, neuron_blocks, params_of, LaneMajor, Saved, SpikeLifSpec,
    Weights, LANE_BLOCK, SPARSE_OUTPUT_DENSITY,
};
use crate::kernel::buffer::{Shared, Unfilled};
use crate::kernel::dense::matmul;
use crate::kernel::lif::{
    monomorphize, multiversion, reset_code, spike, split_params, step_row, Params, NONE, SUB, ZERO,
    ZTI,
};
use crate::kernel::LifKind;

/// A neuron that fired (or whose spike is NaN) at row `(t − t0)·B + b` of a chunk.
#[derive(Clone, Copy)]
struct Fired {
    row: u32,
    neuron: u32,
    /// 1, or NaN (which then reaches the output).
    value: f32,
}

/// What every task of one chunk reads and writes.
#[derive(Clone, Copy)]
struct Chunk<'a> {
    spec: &'a SpikeLifSpec,
    lanes: &'a LaneMajor,
    w: &'a Weights<'a>,
    p: Params<'a>,
    steps: &'a Range<usize>,
    /// The state between chunks, `[S, B, N]`.
    state: Shared,
    out: Shared,
    /// In the last chunk, where its states are kept for the backward pass
    /// ([`SpikeLifSpec::tail_len`]).
    tail: Option<Shared>,
}

/// Forward: the flat output ([`SpikeLifSpec::output_len`]) and, when `checkpoints`, the
/// state at the start of every chunk and the last chunk's states
/// ([`SpikeLifSpec::checkpoint_len`]) for the backward pass. Chunk by chunk: every block of
/// neurons over the chunk's steps and rows in parallel, and meanwhile (with an output
/// layer) the previous chunk's currents.
pub fn forward(spec: &SpikeLifSpec, w: &Weights, checkpoints: bool) -> (Vec<f32>, Saved) {
    let lif = &spec.lif;
    let (b_n, n) = (lif.batch, lif.features);
    let rows = lif.kind.state_rows();
    let plane = rows * b_n * n;
    let lanes = LaneMajor::new(w.w_in, spec.index.cols(), n);
    let mut out = Unfilled::new(spec.output_len());
    let out_ptr = Shared(out.as_mut_ptr());
    // (Every value is written: each chunk's checkpoint, and every slot of the kept states.)
    let mut ckpt = Unfilled::new(if checkpoints {
        spec.checkpoint_len()
    } else {
        0
    });
    let ckpt_ptr = Shared(ckpt.as_mut_ptr());
    let mut state = if lif.init {
        w.init[..plane].to_vec()
    } else {
        vec![0.0; plane]
    };
    let blocks = neuron_blocks(n);
    let p = split_params(lif, w.params);
    // The previous chunk's spikes, whose output currents are written while this chunk runs
    // (alone, that sum would keep one thread idle).
    let mut pending: Option<(Vec<Vec<Fired>>, Range<usize>)> = None;
    let write = |pending: Option<(Vec<Vec<Fired>>, Range<usize>)>| {
        if let Some((fired, steps)) = pending {
            write_currents(spec, w.w_out, &fired, steps, out_ptr);
        }
    };
    let chunks = spec.chunks();
    // SAFETY: the checkpoints are `chunks` planes, then the kept states.
    let tail = (checkpoints && spec.tail_len() > 0)
        .then(|| Shared(unsafe { ckpt_ptr.at(chunks * plane, spec.tail_len()) }.as_mut_ptr()));
    for c in 0..chunks {
        if checkpoints {
            // SAFETY: plane `c` of the checkpoints; no task runs.
            unsafe { ckpt_ptr.at(c * plane, plane) }.copy_from_slice(&state);
        }
        let steps = spec.chunk(c);
        let chunk = Chunk {
            spec,
            lanes: &lanes,
            w,
            p,
            steps: &steps,
            state: Shared(state.as_mut_ptr()),
            out: out_ptr,
            tail: if c + 1 == chunks { tail } else { None },
        };
        let run = || -> Vec<Vec<Fired>> {
            blocks
                .par_iter()
                .map(|r| {
                    let mut fired = Vec::new();
                    for (n0, l0, width) in lane_groups(r.clone()) {
                        let at = (n0, l0, &mut fired);
                        if width == LANE_BLOCK {
                            // (The macro takes literals: 16 is `LANE_BLOCK`, asserted with it.)
                            monomorphize!(lif, forward_lanes::<16>(&chunk, at));
                        } else {
                            monomorphize!(lif, forward_lanes::<1>(&chunk, at));
                        }
                    }
                    fired
                })
                .collect()
        };
        // (Without an output layer the tasks write the output themselves: nothing pends.)
        let ((), fired) = rayon::join(|| write(pending.take()), run);
        if spec.outputs.is_some() {
            pending = Some((fired, steps));
        }
    }
    write(pending);
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
    let lanes = Arc::new(lanes);
    // SAFETY: every value of both buffers has been written (see above).
    let (out, ckpt) = unsafe { (out.assume_filled(), ckpt.assume_filled()) };
    (out, Saved { ckpt, lanes })
}

/// `L` lanes (from lane `l0` of the lane block at `n0`) over the chunk, row by row: the
/// input current from the active inputs, the update, and the spikes: into `fired` when an
/// output layer follows, else into the output (with the membranes when asked).
fn forward_lanes<const L: usize, const SYN: bool, const RESET: u8>(
    chunk: &Chunk,
    (n0, l0, fired): (usize, usize, &mut Vec<Fired>),
) {
    forward_body::<L, SYN, RESET>(chunk, n0, l0, fired)
}

multiversion! {
    fn forward_body<L: usize, SYN: bool, RESET: u8>(chunk: &Chunk, n0: usize, l0: usize, fired: &mut Vec<Fired>) {
        let Chunk { spec, lanes, w, p, steps, state, out, tail } = *chunk;
        let lif = &spec.lif;
        let (b_n, n) = (lif.batch, lif.features);
        let j = n0 + l0;
        let pb = params_of(p, &(j..j + L));
        let lanes = lanes.lanes(n0, l0);
        let u_row = if SYN { 1 } else { 0 };
        // Lanes j.. of state row k, batch row b (state rows: [U], or [I_syn, U]).
        let at = |k: usize, b: usize| (k * b_n + b) * n + j;
        // A full lane block's kept states: its membranes' slots for every batch row, then
        // its synaptic currents'.
        let kept: &mut [f32] = match &tail {
            Some(tail) if L == LANE_BLOCK => {
                let len = spec.tail_block_len();
                // SAFETY: the lane block's share of the kept states belongs to this task.
                unsafe { tail.at(n0 / LANE_BLOCK * len, len) }
            }
            _ => &mut [],
        };
        let row_len = if kept.is_empty() { 0 } else { spec.tail_row() };
        let (kept_u, kept_syn) = kept.split_at_mut(b_n * row_len);
        for b in 0..b_n {
            let (mut u, mut syn, mut cur) = ([0.0f32; L], [0.0f32; L], [0.0f32; L]);
            // SAFETY: lanes j.. of every state row belong to this task alone.
            unsafe {
                u.copy_from_slice(state.at(at(u_row, b), L));
                if SYN {
                    syn.copy_from_slice(state.at(at(0, b), L));
                }
            }
            let keep_u = &mut kept_u[b * row_len..][..row_len];
            let keep_syn = if SYN { &mut kept_syn[b * row_len..][..row_len] } else { &mut [][..] };
            keep(keep_u, 0, &u);
            if SYN {
                keep(keep_syn, 0, &syn);
            }
            for t in steps.clone() {
                current::<L>(spec, lanes, (w.b_in, j), t * b_n + b, &mut cur);
                step_row::<SYN, RESET>(pb, &cur, &mut u, &mut syn);
                let i = t - steps.start + 1;
                keep(keep_u, i, &u);
                if SYN {
                    keep(keep_syn, i, &syn);
                }
                if spec.outputs.is_some() {
                    // The lanes that fired (or hold NaN) as bits, then one pass over the set
                    // bits: a test per lane would mispredict on every row that fires.
                    let mut bits = lane_bits::<L, true>(&u, pb.theta, lanes.avx512());
                    if bits != 0 {
                        let row = ((t - steps.start) * b_n + b) as u32;
                        while bits != 0 {
                            let l = bits.trailing_zeros() as usize;
                            bits &= bits - 1;
                            let value = spike(u[l] - pb.theta[l]);
                            fired.push(Fired { row, neuron: (j + l) as u32, value });
                        }
                    }
                    continue;
                }
                let mut s = [0.0f32; L];
                for ((s, &u), &th) in s.iter_mut().zip(&u).zip(pb.theta) {
                    *s = spike(u - th);
                }
                // SAFETY: lanes j.. of row (t, b) of the spike and membrane planes belong to
                // this task alone.
                unsafe {
                    out.at((t * b_n + b) * n + j, L).copy_from_slice(&s);
                    if lif.mems {
                        out.at(((lif.steps + t) * b_n + b) * n + j, L).copy_from_slice(&u);
                    }
                }
            }
            // SAFETY: as above.
            unsafe {
                state.at(at(u_row, b), L).copy_from_slice(&u);
                if SYN {
                    state.at(at(0, b), L).copy_from_slice(&syn);
                }
            }
        }
    }
}

/// Slot `i` of a batch row's kept states (`slots` empty: none kept).
#[inline(always)]
fn keep<const L: usize>(slots: &mut [f32], i: usize, x: &[f32; L]) {
    if !slots.is_empty() {
        slots[i * L..][..L].copy_from_slice(x);
    }
}

/// The output layer's currents for one chunk, `I'[t, b] = S[t, b]·W_out`: the output weight
/// rows of the neurons that fired (`fired`, one list per block of neurons, added in block
/// order so that the sums do not depend on the threads); when more than
/// [`SPARSE_OUTPUT_DENSITY`] of a wide layer fired, one product over the spikes instead.
fn write_currents(
    spec: &SpikeLifSpec,
    w_out: &[f32],
    fired: &[Vec<Fired>],
    steps: Range<usize>,
    out: Shared,
) {
    let (b_n, n) = (spec.lif.batch, spec.lif.features);
    let m = spec.outputs.unwrap_or(0);
    let rows = steps.len() * b_n;
    // SAFETY: the output rows of this chunk's steps; no task runs meanwhile.
    let dst = unsafe { out.at(steps.start * b_n * m, rows * m) };
    let count: usize = fired.iter().map(Vec::len).sum();
    if m >= 64 && count as f32 > SPARSE_OUTPUT_DENSITY * (rows * n) as f32 {
        let mut s = vec![0.0f32; rows * n];
        for f in fired.iter().flatten() {
            s[f.row as usize * n + f.neuron as usize] = f.value;
        }
        matmul(
            (dst, (m, 1)),
            false,
            (&s, (n, 1)),
            (w_out, (m, 1)),
            [rows, m, n],
        );
        return;
    }
    dst.fill(0.0);
    for f in fired.iter().flatten() {
        let d = &mut dst[f.row as usize * m..][..m];
        for (d, &w) in d.iter_mut().zip(&w_out[f.neuron as usize * m..][..m]) {
            *d += f.value * w;
        }
    }
}
