//! A Linear layer on dense inputs: `y = x·W + b` and its gradients, three GEMMs that write
//! into buffers of their own.
//!
//! burn's matmul gives the same products, but every output it makes is a zeroed byte vector
//! copied into an aligned one (two serial passes over, for tutorial 5's weight gradient,
//! 3.1 MB), and gemm's own threading left one of the two threads idle for part of each
//! product. Here each product is split by columns of its output into a few blocks per thread,
//! each block one single-threaded GEMM on an unzeroed buffer, with the bias added (or
//! summed) in the same task; the input gradient, wanted only below a first layer, is
//! [`super::dense::times_transposed`]. Columns of the input that are zero in every row (an
//! image's empty border) are left out of the forward product and of the weight gradient.

use rayon::prelude::*;

use super::buffer::{Shared, Unfilled};
use super::dense::{give_back_scratch, take_scratch, times_transposed};

/// A GEMM's (row, column) strides.
type Strides = (usize, usize);

/// Columns of an output per block are a multiple of this (gemm's widest register tile).
const COLUMN_STEP: usize = 16;

/// Column blocks per thread of each product. With one block per thread, one thread idled
/// while the other finished for an eighth of the forward product (the blocks differ in width,
/// and a woken thread starts late); four let the first one done take more. Tutorial 5: 5.16
/// → 4.92 ms (two per thread: 5.08; eight: as four).
const BLOCKS_PER_THREAD: usize = 4;

/// An input whose columns are zero in every row for at least this share of them leaves
/// those columns out of the forward product and the weight gradient. (MNIST's borders: a
/// batch of 128 images has about 530 of its 784 pixels nonzero somewhere.)
const MIN_ZERO_SHARE: f64 = 0.125;

/// The right-hand side of one of [`products`]' GEMMs.
enum Right<'a> {
    /// A matrix read through its strides.
    Strided(&'a [f32], Strides),
    /// Rows `rows` of a row-major matrix of `cols` columns, gathered by each block.
    Rows(&'a [f32], usize, &'a [usize]),
}

/// `dst = lhs·rhs` for `[rows, cols, inner]`, `dst` row-major with `cols` columns, split by
/// columns into [`BLOCKS_PER_THREAD`] blocks per thread; then `finish(c0, c1)` in each
/// block's task, for its columns.
/// With `spread = Some((at, total))` the `rows` products are rows `at` (ascending) of a
/// `dst` of `total` rows, the others zero.
///
/// # Safety
/// `dst` holds `total·cols` floats (`rows·cols` without `spread`); `lhs` reaches
/// `(rows − 1, inner − 1)` and `rhs` `(inner − 1, cols − 1)`.
unsafe fn products(
    dst: Shared,
    (lhs, lhs_s): (&[f32], Strides),
    rhs: Right,
    [rows, cols, inner]: [usize; 3],
    spread: Option<(&[usize], usize)>,
    finish: impl Fn(usize, usize) + Sync,
) {
    let blocks = (BLOCKS_PER_THREAD * rayon::current_num_threads())
        .min(cols.div_ceil(COLUMN_STEP))
        .max(1);
    let width = cols.div_ceil(blocks).next_multiple_of(COLUMN_STEP);
    (0..blocks).into_par_iter().for_each(|block| {
        let (c0, c1) = ((block * width).min(cols), ((block + 1) * width).min(cols));
        if c0 == c1 {
            return;
        }
        let w = c1 - c0;
        let mut gathered = None;
        let (rhs, rhs_s) = match rhs {
            // SAFETY: column c0 is inside the caller's `rhs`.
            Right::Strided(r, s) => (unsafe { r.as_ptr().add(c0 * s.1) }, s),
            Right::Rows(r, n, at) => {
                let mut buf = take_scratch(at.len() * w);
                for (dst, &i) in buf.chunks_exact_mut(w).zip(at) {
                    dst.copy_from_slice(&r[i * n + c0..i * n + c1]);
                }
                let p = buf.as_ptr();
                gathered = Some(buf);
                (p, (w, 1))
            }
        };
        // SAFETY: the caller's bounds; block `block` writes only its columns `c0..c1`.
        unsafe {
            if inner == 0 {
                // An input with every column zero: gemm would leave `dst` unwritten.
                for r in 0..rows {
                    dst.at(r * cols + c0, w).fill(0.0);
                }
            } else {
                gemm::gemm(
                    rows,
                    w,
                    inner,
                    dst.ptr_at(c0),
                    1,
                    cols as isize,
                    false,
                    lhs.as_ptr(),
                    lhs_s.1 as isize,
                    lhs_s.0 as isize,
                    rhs,
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
        }
        if let Some(buf) = gathered {
            give_back_scratch(buf);
        }
        if let Some((at, total)) = spread {
            // Row j goes to row at[j] ≥ j: from the last, so that no row is overwritten
            // before it moves; then the rows in no `at` are zeroed.
            for (j, &i) in at.iter().enumerate().rev() {
                if i != j {
                    // SAFETY: columns c0..c1 of rows j ≠ i are this block's, and disjoint.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            dst.ptr_at(j * cols + c0),
                            dst.ptr_at(i * cols + c0),
                            w,
                        );
                    }
                }
            }
            let mut next = at.iter().copied().peekable();
            for i in 0..total {
                if next.peek() == Some(&i) {
                    next.next();
                } else {
                    // SAFETY: as above.
                    unsafe { dst.at(i * cols + c0, w) }.fill(0.0);
                }
            }
        }
        finish(c0, c1);
    });
}

/// The columns of an input `x` (`[rows, k]`) that are not zero in some row (a NaN is not
/// zero), and `x` restricted to them (`[rows, kept]`). Found once per call: the forward
/// product and the weight gradient both use them.
#[derive(Debug, Clone)]
pub struct Columns {
    at: Vec<usize>,
    kept: Vec<f32>,
}

impl Columns {
    /// `x`'s nonzero columns, when at least [`MIN_ZERO_SHARE`] of its columns are zero in
    /// every row (else the products run on `x` whole).
    pub fn of(x: &[f32], rows: usize, k: usize) -> Option<Columns> {
        if k == 0 {
            return None;
        }
        let mut any = vec![false; k];
        for row in x.chunks_exact(k) {
            for (a, &v) in any.iter_mut().zip(row) {
                *a |= v != 0.0;
            }
        }
        let at: Vec<usize> = (0..k).filter(|&i| any[i]).collect();
        if ((k - at.len()) as f64) < MIN_ZERO_SHARE * k as f64 {
            return None;
        }
        let mut kept = Vec::with_capacity(rows * at.len());
        for row in x.chunks_exact(k) {
            kept.extend(at.iter().map(|&i| row[i]));
        }
        Some(Columns { at, kept })
    }
}

/// `[rows, N]`: `y = x·W (+ b)`, for `x` `[rows, K]`, `w` `[K, N]` and `b` `[N]` or empty;
/// `cols` is [`Columns::of`] `x`.
pub fn forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    [rows, k, n]: [usize; 3],
    cols: Option<&Columns>,
) -> Vec<f32> {
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
        match cols {
            // x·W over the columns of x that are not all zero and the rows of W they meet.
            Some(Columns { at, kept }) => products(
                y,
                (kept, (at.len(), 1)),
                Right::Rows(w, n, at),
                [rows, n, at.len()],
                None,
                add_bias,
            ),
            None => products(
                y,
                (x, (k, 1)),
                Right::Strided(w, (n, 1)),
                [rows, n, k],
                None,
                add_bias,
            ),
        }
        out.assume_filled()
    }
}

/// Gradients of a Linear call, dense or over spikes ([`super::spike_linear`]).
#[derive(Debug, Clone)]
pub struct LinearGrads {
    /// `∂L/∂W = xᵀ·∂L/∂y`, `[K, N]`.
    pub weight: Vec<f32>,
    /// `∂L/∂b = Σ_rows ∂L/∂y`, `[N]` (empty without a bias).
    pub bias: Vec<f32>,
    /// `∂L/∂x = ∂L/∂y·Wᵀ`, `[rows, K]`, when asked for.
    pub input: Option<Vec<f32>>,
}

/// The gradients of [`forward`] from `g` = `∂L/∂y` (`[rows, N]`), with the forward's
/// `cols`; `∂L/∂b` when `bias`, `∂L/∂x` when `want_x`. The bias gradient sums the rows in
/// order.
pub fn backward(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    [rows, k, n]: [usize; 3],
    cols: Option<&Columns>,
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
    // xᵀ is x read with its strides swapped; the rows of `∂L/∂W` for the columns of x that
    // are zero in every row are zero.
    // SAFETY: the sizes are asserted above; the blocks write every element of `g_w`.
    let weight = unsafe {
        let g = Right::Strided(g, (n, 1));
        match cols {
            Some(Columns { at, kept }) => {
                let dims = [at.len(), n, rows];
                let spread = Some((&at[..], k));
                products(gw, (kept, (1, at.len())), g, dims, spread, sum_rows)
            }
            None => products(gw, (x, (1, k)), g, [k, n, rows], None, sum_rows),
        }
        g_w.assume_filled()
    };
    let input = want_x.then(|| times_transposed(g, w, n, k));
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

    /// [`forward`] with `x`'s own [`Columns`].
    fn fwd(x: &[f32], w: &[f32], b: &[f32], [rows, k, n]: [usize; 3]) -> Vec<f32> {
        forward(x, w, b, [rows, k, n], Columns::of(x, rows, k).as_ref())
    }

    /// [`backward`] with `x`'s own [`Columns`].
    fn bwd(x: &[f32], w: &[f32], g: &[f32], dims: [usize; 3], flags: (bool, bool)) -> LinearGrads {
        backward(
            x,
            w,
            g,
            dims,
            Columns::of(x, dims[0], dims[1]).as_ref(),
            flags,
        )
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
        // With `zeros`, every third column of x is zero in every row (and column 1 where
        // k > 1): those columns leave the products, and their rows of ∂L/∂W are zero.
        let shapes = [(5, 7, 37), (1, 1, 1), (33, 20, 16), (3, 50, 100)];
        for ((rows, k, n), zeros) in shapes.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let (mut x, w, b) = (values(rows * k, 1), values(k * n, 2), values(n, 3));
            let zeroed = |i: usize| zeros && (i.is_multiple_of(3) || i == 1);
            for (i, v) in x.iter_mut().enumerate() {
                if zeroed(i % k) {
                    *v = if i.is_multiple_of(2) { 0.0 } else { -0.0 };
                }
            }
            assert_eq!(
                Columns::of(&x, rows, k).is_some(),
                zeros,
                "the zero columns are found"
            );
            let y = fwd(&x, &w, &b, [rows, k, n]);
            let mut want = reference(&x, &w, [rows, k, n]);
            for (i, v) in want.iter_mut().enumerate() {
                *v += b[i % n];
            }
            close(&y, &want);
            close(
                &fwd(&x, &w, &[], [rows, k, n]),
                &reference(&x, &w, [rows, k, n]),
            );

            let g = values(rows * n, 4);
            let grads = bwd(&x, &w, &g, [rows, k, n], (true, true));
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

            for i in (0..k).filter(|&i| zeroed(i)) {
                assert!(grads.weight[i * n..(i + 1) * n].iter().all(|&v| v == 0.0));
            }
            let plain = bwd(&x, &w, &g, [rows, k, n], (false, false));
            assert!(plain.bias.is_empty() && plain.input.is_none());
            assert_eq!(plain.weight, grads.weight);
        }
    }

    #[test]
    fn empty_sizes_give_the_bias_or_nothing() {
        // No inputs: every output is the bias, every gradient but the bias's empty.
        let (b, g) = (values(5, 8), values(3 * 5, 9));
        let y = fwd(&[], &[], &b, [3, 0, 5]);
        assert_eq!(y, [b.clone(), b.clone(), b.clone()].concat());
        let grads = bwd(&[], &[], &g, [3, 0, 5], (true, true));
        assert!(grads.weight.is_empty() && grads.input.unwrap().is_empty());
        assert_eq!(grads.bias.len(), 5);
        // No rows.
        assert!(fwd(&[], &values(4 * 5, 10), &b, [0, 4, 5]).is_empty());
        let grads = bwd(&[], &values(4 * 5, 10), &[], [0, 4, 5], (true, true));
        assert_eq!(grads.weight, vec![0.0; 20]);
    }

    #[test]
    fn a_nan_input_reaches_its_row_only() {
        // Column 0 is zero in every row, so the product runs on the others (as it does
        // without one: a NaN is not zero).
        let (rows, k, n) = (4, 3, 20);
        let mut x = values(rows * k, 5);
        for r in 0..rows {
            x[r * k] = 0.0;
        }
        x[k + 1] = f32::NAN;
        assert_eq!(Columns::of(&x, rows, k).unwrap().at, [1, 2]);
        let y = fwd(&x, &values(k * n, 6), &values(n, 7), [rows, k, n]);
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
