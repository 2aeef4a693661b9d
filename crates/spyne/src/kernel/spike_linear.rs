//! A Linear layer over binary spikes: `y = x·W + b` as the sum of the weight rows of the
//! inputs that fired, and `∂L/∂W[k] = Σ_{rows where x[k] = 1} ∂L/∂y` the same way, from a
//! [`SpikeIndex`]; no product over the zeros. The input gradient (wanted only when the spikes
//! come from a layer that learns) is the dense `∂L/∂y·Wᵀ`.

use rayon::prelude::*;

use super::buffer::{Shared, Unfilled};
use super::dense::{give_back_scratch, take_scratch, times_transposed};
use super::dense_linear::LinearGrads;
use super::lif::multiversion;
use super::spike_index::SpikeIndex;

/// Rows per forward task.
const ROWS: usize = 64;
/// Output columns per weight-gradient task (each task owns its columns of `∂L/∂W`).
const COLS: usize = 64;

/// `[rows, N]`: `y[r] = Σ_{k active in r} W[k] (+ b)`, summed in input order as a dense
/// product of 0/1 values would be. `w` is `[K, N]`, `b` `[N]` or empty.
pub fn forward(index: &SpikeIndex, w: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let rows = index.rows();
    let mut out = Unfilled::new(rows * n);
    let ptr = Shared(out.as_mut_ptr());
    (0..rows.div_ceil(ROWS)).into_par_iter().for_each(|task| {
        let r = task * ROWS..((task + 1) * ROWS).min(rows);
        forward_rows(index, (w, b, n), r, ptr);
    });
    // SAFETY: the tasks cover every row, and each writes its rows whole.
    unsafe { out.assume_filled() }
}

multiversion! {
    fn forward_rows<>(index: &SpikeIndex, wbn: (&[f32], &[f32], usize), rows: std::ops::Range<usize>, out: Shared) {
        let (w, b, n) = wbn;
        for r in rows {
            // SAFETY: row r of the output belongs to this task alone.
            let y = unsafe { out.row(r, n) };
            y.fill(0.0);
            for &k in index.row(r) {
                for (y, &v) in y.iter_mut().zip(&w[k as usize * n..][..n]) {
                    *y += v;
                }
            }
            if !b.is_empty() {
                for (y, &v) in y.iter_mut().zip(b) {
                    *y += v;
                }
            }
        }
    }
}

/// Backward from `grad` = ∂L/∂y, `[rows, N]`.
pub fn backward(
    index: &SpikeIndex,
    w: &[f32],
    grad: &[f32],
    n: usize,
    (bias, input_grad): (bool, bool),
) -> LinearGrads {
    let k_n = index.cols();
    let mut weight = vec![0.0f32; k_n * n];
    let mut b = vec![0.0f32; if bias { n } else { 0 }];
    let (pw, pb) = (Shared(weight.as_mut_ptr()), Shared(b.as_mut_ptr()));
    (0..n.div_ceil(COLS)).into_par_iter().for_each(|task| {
        let c = task * COLS..((task + 1) * COLS).min(n);
        weight_columns(index, grad, n, c, (pw, bias.then_some(pb)));
    });
    LinearGrads {
        weight,
        bias: b,
        input: input_grad.then(|| times_transposed(grad, w, n, k_n)),
    }
}

multiversion! {
    /// Columns `c` of `∂L/∂W` (and of `∂L/∂b`), summed in a contiguous `[K, width]` buffer
    /// first: the weight's rows are often a power of two apart, and adding into a few
    /// columns of each would thrash the cache sets.
    fn weight_columns<>(index: &SpikeIndex, grad: &[f32], n: usize, c: std::ops::Range<usize>, dst: (Shared, Option<Shared>)) {
        let (pw, pb) = dst;
        let (width, k_n) = (c.len(), index.cols());
        let mut buffer = take_scratch(k_n * width);
        let dw = &mut buffer[..k_n * width];
        dw.fill(0.0);
        let mut db = [0.0f32; COLS];
        for r in 0..index.rows() {
            let g = &grad[r * n + c.start..][..width];
            for &k in index.row(r) {
                for (d, &v) in dw[k as usize * width..][..width].iter_mut().zip(g) {
                    *d += v;
                }
            }
            for (d, &v) in db.iter_mut().zip(g) {
                *d += v;
            }
        }
        for (k, row) in dw.chunks_exact(width).enumerate() {
            // SAFETY: columns c of ∂L/∂W belong to this task alone.
            unsafe { pw.at(k * n + c.start, width) }.copy_from_slice(row);
        }
        give_back_scratch(buffer);
        if let Some(pb) = pb {
            // SAFETY: as above, in ∂L/∂b.
            unsafe { pb.at(c.start, width) }.copy_from_slice(&db[..width]);
        }
    }
}

/// One spike Linear call: the active inputs and whether the layer has a bias.
#[derive(Debug, Clone)]
pub struct SpikeLinearSpec {
    /// The active inputs, `[rows, K]`.
    pub index: std::sync::Arc<SpikeIndex>,
    /// The layer has a bias.
    pub bias: bool,
}
