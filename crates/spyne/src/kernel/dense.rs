//! Dense helpers shared by the fused kernels: small single-threaded GEMMs, transposes, and
//! per-thread scratch buffers.

use rayon::prelude::*;

/// `[rows, cols]` → `[cols, rows]`.
pub(super) fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

/// A matrix's (row, column) strides.
pub(super) type Strides = (usize, usize);

/// `dst (+)= lhs·rhs` for `[rows, cols, inner]`, every matrix given with its (row, column)
/// strides. Single-threaded: it runs inside a parallel task. (gemm vectorises along the
/// destination's contiguous dimension: make that the long one.)
pub(super) fn matmul(
    (dst, dst_s): (&mut [f32], Strides),
    accumulate: bool,
    (lhs, lhs_s): (&[f32], Strides),
    (rhs, rhs_s): (&[f32], Strides),
    [rows, cols, inner]: [usize; 3],
) {
    let last = |s: (usize, usize), r: usize, c: usize| {
        r.saturating_sub(1) * s.0 + c.saturating_sub(1) * s.1
    };
    assert!(
        dst.len() > last(dst_s, rows, cols),
        "matmul destination too small"
    );
    assert!(
        lhs.len() > last(lhs_s, rows, inner) && rhs.len() > last(rhs_s, inner, cols),
        "matmul operand too small"
    );
    // SAFETY: every index the product reads or writes is within the slices (checked above).
    unsafe {
        gemm::gemm(
            rows,
            cols,
            inner,
            dst.as_mut_ptr(),
            dst_s.1 as isize,
            dst_s.0 as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_s.1 as isize,
            lhs_s.0 as isize,
            rhs.as_ptr(),
            rhs_s.1 as isize,
            rhs_s.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `a·wᵀ`, `[rows, k]`, for `a` `[rows, n]` and `w` `[k, n]`, in parallel blocks of rows (the
/// input gradient of a layer whose weight is `w`).
pub(super) fn times_transposed(a: &[f32], w: &[f32], n: usize, k: usize) -> Vec<f32> {
    const ROWS: usize = 256;
    let rows = a.len() / n.max(1);
    let mut out = vec![0.0f32; rows * k];
    if out.is_empty() {
        return out; // chunks of no elements would panic
    }
    out.par_chunks_mut(ROWS * k)
        .zip(a.par_chunks(ROWS * n))
        .for_each(|(dst, a)| {
            let r = a.len() / n;
            matmul((dst, (k, 1)), false, (a, (n, 1)), (w, (1, n)), [r, k, n]);
        });
    out
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's scratch buffer, at least `len` floats long, with arbitrary contents: the
/// fused kernels' large per-task buffers are reused instead of allocated and zeroed on every
/// call (that was tens of MB of page faults and memset per iteration). Hand it back with
/// [`give_back_scratch`]. (A buffer, not a closure: a closure would be compiled outside the
/// AVX-512/AVX2 versions of the kernels that call it.)
pub(super) fn take_scratch(len: usize) -> Vec<f32> {
    let mut buf = SCRATCH.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    buf
}

/// Returns a buffer from [`take_scratch`] for the next call on this thread.
pub(super) fn give_back_scratch(buf: Vec<f32>) {
    SCRATCH.with(|cell| *cell.borrow_mut() = buf);
}
