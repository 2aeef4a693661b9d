//! A Linear layer on dense inputs: `y = x·W + b` and its gradients, three GEMMs that write
//! into buffers of their own.
//!
//! burn's matmul gives the same products, but every output it makes is a zeroed byte vector
//! copied into an aligned one (two serial passes over, for tutorial 5's weight gradient,
//! 3.1 MB), and gemm's own threading left one of the two threads idle for part of each
//! product. Here each product is split by columns of its output into one block per thread,
//! each block one single-threaded GEMM on an unzeroed buffer, with the bias added (or
//! summed) in the same task.

use rayon::prelude::*;

use super::buffer::{Shared, Unfilled};

/// A GEMM's (row, column) strides.
type Strides = (usize, usize);

/// Columns of an output per block are a multiple of this (gemm's widest register tile).
const COLUMN_STEP: usize = 16;

/// `dst = lhs·rhs` for `[rows, cols, inner]`, `dst` row-major with `cols` columns, split by
/// columns over the threads; then `finish(c0, c1)` in each block's task, for its columns.
///
/// # Safety
/// `dst` holds `rows·cols` floats; `lhs` reaches `(rows − 1, inner − 1)` and `rhs`
/// `(inner − 1, cols − 1)` through their strides.
unsafe fn products(
    dst: Shared,
    (lhs, lhs_s): (&[f32], Strides),
    (rhs, rhs_s): (&[f32], Strides),
    [rows, cols, inner]: [usize; 3],
    finish: impl Fn(usize, usize) + Sync,
) {
    let blocks = rayon::current_num_threads()
        .min(cols.div_ceil(COLUMN_STEP))
        .max(1);
    let width = cols.div_ceil(blocks).next_multiple_of(COLUMN_STEP);
    (0..blocks).into_par_iter().for_each(|block| {
        let (c0, c1) = ((block * width).min(cols), ((block + 1) * width).min(cols));
        if c0 == c1 {
            return;
        }
        // SAFETY: the caller's bounds; block `block` writes only its columns `c0..c1`.
        unsafe {
            gemm::gemm(
                rows,
                c1 - c0,
                inner,
                dst.ptr_at(c0),
                1,
                cols as isize,
                false,
                lhs.as_ptr(),
                lhs_s.1 as isize,
                lhs_s.0 as isize,
                rhs.as_ptr().add(c0 * rhs_s.1),
                rhs_s.1 as isize,
                rhs_s.0 as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        finish(c0, c1);
    });
}

/// `[rows, N]`: `y = x·W (+ b)`, for `x` `[rows, K]`, `w` `[K, N]` and `b` `[N]` or empty.
pub fn forward(x: &[f32], w: &[f32], b: &[f32], [rows, k, n]: [usize; 3]) -> Vec<f32> {
    assert!(x.len() == rows * k && w.len() == k * n && (b.is_empty() || b.len() == n));
    let mut out = Unfilled::new(rows * n);
    let y = Shared(out.as_mut_ptr());
    let add_bias = |c0: usize, c1: usize| {
        if b.is_empty() {
            return;
        }
        for r in 0..rows {
            // SAFETY: columns `c0..c1` of every row belong to this block's task.
            let row = unsafe { y.at(r * n + c0, c1 - c0) };
            for (y, &b) in row.iter_mut().zip(&b[c0..c1]) {
                *y += b;
            }
        }
    };
    // SAFETY: the sizes are asserted above; the blocks write every element.
    unsafe {
        products(y, (x, (k, 1)), (w, (n, 1)), [rows, n, k], add_bias);
        out.assume_filled()
    }
}

/// Gradients of a dense Linear call.
#[derive(Debug, Clone)]
pub struct LinearGrads {
    /// `∂L/∂W = xᵀ·∂L/∂y`, `[K, N]`.
    pub weight: Vec<f32>,
    /// `∂L/∂b = Σ_rows ∂L/∂y`, `[N]` (empty without a bias).
    pub bias: Vec<f32>,
    /// `∂L/∂x = ∂L/∂y·Wᵀ`, `[rows, K]`, when asked for.
    pub input: Option<Vec<f32>>,
}

/// The gradients of [`forward`] from `g` = `∂L/∂y` (`[rows, N]`); `∂L/∂b` when `bias`,
/// `∂L/∂x` when `want_x`. The bias gradient sums the rows in order.
pub fn backward(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    [rows, k, n]: [usize; 3],
    (bias, want_x): (bool, bool),
) -> LinearGrads {
    assert!(x.len() == rows * k && w.len() == k * n && g.len() == rows * n);
    let mut g_w = Unfilled::new(k * n);
    let mut g_b = vec![0.0f32; if bias { n } else { 0 }];
    let (gw, gb) = (Shared(g_w.as_mut_ptr()), Shared(g_b.as_mut_ptr()));
    let sum_rows = |c0: usize, c1: usize| {
        if !bias {
            return;
        }
        // SAFETY: columns `c0..c1` of the bias gradient belong to this block's task.
        let sums = unsafe { gb.at(c0, c1 - c0) };
        for r in 0..rows {
            for (s, &g) in sums.iter_mut().zip(&g[r * n + c0..r * n + c1]) {
                *s += g;
            }
        }
    };
    // xᵀ is x read with its strides swapped.
    // SAFETY: the sizes are asserted above; the blocks write every element of `g_w`.
    let weight = unsafe {
        products(gw, (x, (1, k)), (g, (n, 1)), [k, n, rows], sum_rows);
        g_w.assume_filled()
    };
    let input = want_x.then(|| {
        let mut g_x = Unfilled::new(rows * k);
        // Wᵀ likewise: `[N, K]` with strides (1, N).
        // SAFETY: as above, for `[rows, K]`.
        unsafe {
            products(
                Shared(g_x.as_mut_ptr()),
                (g, (n, 1)),
                (w, (1, n)),
                [rows, k, n],
                |_, _| {},
            );
            g_x.assume_filled()
        }
    });
    LinearGrads {
        weight,
        bias: g_b,
        input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[rows, k] · [k, n]` by the definition, in f64.
    fn reference(a: &[f32], b: &[f32], [rows, k, n]: [usize; 3]) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let s: f64 = (0..k)
                    .map(|i| a[r * k + i] as f64 * b[i * n + c] as f64)
                    .sum();
                out[r * n + c] = s as f32;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| a[(i % rows) * cols + i / rows])
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{i}: {x} vs {y}");
        }
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        // 37 columns: blocks that end inside a register tile, and a last block narrower
        // than the others.
        for (rows, k, n) in [(5, 7, 37), (1, 1, 1), (33, 20, 16), (3, 50, 100)] {
            let (x, w, b) = (values(rows * k, 1), values(k * n, 2), values(n, 3));
            let y = forward(&x, &w, &b, [rows, k, n]);
            let mut want = reference(&x, &w, [rows, k, n]);
            for (i, v) in want.iter_mut().enumerate() {
                *v += b[i % n];
            }
            close(&y, &want);
            close(
                &forward(&x, &w, &[], [rows, k, n]),
                &reference(&x, &w, [rows, k, n]),
            );

            let g = values(rows * n, 4);
            let grads = backward(&x, &w, &g, [rows, k, n], (true, true));
            close(
                &grads.weight,
                &reference(&transpose(&x, rows, k), &g, [k, rows, n]),
            );
            close(
                &grads.input.unwrap(),
                &reference(&g, &transpose(&w, k, n), [rows, n, k]),
            );
            let sums: Vec<f32> = (0..n)
                .map(|c| (0..rows).fold(0.0, |s, r| s + g[r * n + c]))
                .collect();
            assert_eq!(grads.bias, sums, "bias gradient summed row by row");

            let plain = backward(&x, &w, &g, [rows, k, n], (false, false));
            assert!(plain.bias.is_empty() && plain.input.is_none());
            assert_eq!(plain.weight, grads.weight);
        }
    }

    #[test]
    fn a_nan_input_reaches_its_row_only() {
        let (rows, k, n) = (4, 3, 20);
        let mut x = values(rows * k, 5);
        x[k + 1] = f32::NAN;
        let y = forward(&x, &values(k * n, 6), &values(n, 7), [rows, k, n]);
        for r in 0..rows {
            assert_eq!(
                y[r * n..(r + 1) * n].iter().all(|v| v.is_nan()),
                r == 1,
                "row {r}"
            );
            assert!(r == 1 || y[r * n..(r + 1) * n].iter().all(|v| v.is_finite()));
        }
    }
}
