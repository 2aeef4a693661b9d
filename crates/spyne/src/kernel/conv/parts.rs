//! The pieces of the convolution kernel: im2col and col2im, the GEMM call, the spike-driven
//! passes and the output write (with the fused max pool).

use rayon::prelude::*;

use super::{ConvPath, ConvSpec, SPARSE_FORWARD_DENSITY};
use crate::kernel::lif::multiversion;

/// The patches of image `x` (`[C, H, W]`) as rows: `p[pos·K + (c·KH + ky)·KW + kx]`.
pub(super) fn im2col(s: &ConvSpec, x: &[f32], p: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let (k, [sy, sx], [py, px]) = (s.k(), s.stride, s.padding);
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &mut p[(oy * ow + ox) * k..][..k];
            for c in 0..s.c {
                for ky in 0..s.kh {
                    let dst = &mut row[(c * s.kh + ky) * s.kw..][..s.kw];
                    let y = (oy * sy + ky) as isize - py as isize;
                    if y < 0 || y >= s.h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &x[(c * s.h + y as usize) * s.w..][..s.w];
                    for (kx, d) in dst.iter_mut().enumerate() {
                        let xx = (ox * sx + kx) as isize - px as isize;
                        *d = if xx < 0 || xx >= s.w as isize {
                            0.0
                        } else {
                            src[xx as usize]
                        };
                    }
                }
            }
        }
    }
}

/// The output columns `ox` whose window column `kx` falls inside the image: `x = ox·sx +
/// kx − px` in `0..w`.
pub(super) fn valid_cols(s: &ConvSpec, kx: usize, ow: usize) -> std::ops::Range<usize> {
    let (sx, px) = (s.stride[1], s.padding[1]);
    let lo = px.saturating_sub(kx).div_ceil(sx);
    let hi = if s.w + px > kx {
        ((s.w + px - kx - 1) / sx + 1).min(ow)
    } else {
        0
    };
    lo..hi.max(lo)
}

multiversion! {
    /// Adds the patch gradients `dpt` (`[K, OH·OW]`: one row per patch element, rows
    /// `stride` apart) back onto the image gradient `dx` (`[C, H, W]`): for each element and
    /// output row, one contiguous add across the output columns (with stride 1).
    pub(super) fn col2im<>(s: &ConvSpec, dpt: &[f32], stride: usize, dx: &mut [f32]) {
        let (oh, ow) = s.out_hw();
        let ([sy, sx], [py, px]) = (s.stride, s.padding);
        for c in 0..s.c {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let j = (c * s.kh + ky) * s.kw + kx;
                    let cols = valid_cols(s, kx, ow);
                    if cols.is_empty() {
                        continue;
                    }
                    for oy in 0..oh {
                        let y = (oy * sy + ky) as isize - py as isize;
                        if y < 0 || y >= s.h as isize {
                            continue;
                        }
                        let dst = &mut dx[(c * s.h + y as usize) * s.w..][..s.w];
                        let src = &dpt[j * stride + oy * ow..][..ow];
                        if sx == 1 {
                            let x0 = cols.start + kx - px;
                            let n = cols.len();
                            for (d, &g) in dst[x0..x0 + n].iter_mut().zip(&src[cols.start..cols.end]) {
                                *d += g;
                            }
                        } else {
                            for ox in cols.clone() {
                                dst[ox * sx + kx - px] += src[ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst (+)= lhs·rhs` for `[m, n, k]`, each matrix with its (row, column) strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    dst: &mut [f32],
    (dr, dc): (usize, usize),
    acc: bool,
    lhs: &[f32],
    (lr, lc): (usize, usize),
    rhs: &[f32],
    (rr, rc): (usize, usize),
    [m, n, k]: [usize; 3],
) {
    let last = |(r, c): (usize, usize), rows: usize, cols: usize| (rows - 1) * r + (cols - 1) * c;
    assert!(
        dst.len() > last((dr, dc), m, n),
        "gemm destination too small"
    );
    assert!(lhs.len() > last((lr, lc), m, k) && rhs.len() > last((rr, rc), k, n));
    // SAFETY: every index the product touches is inside the slices (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dc as isize,
            dr as isize,
            acc,
            lhs.as_ptr(),
            lc as isize,
            lr as isize,
            rhs.as_ptr(),
            rc as isize,
            rr as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The fraction of non-zero values, and whether every value is 0 or 1 (one pass).
pub(super) fn density(v: &[f32]) -> (f32, bool) {
    let (nonzero, binary) = v
        .par_chunks(1 << 16)
        .map(|c| {
            // Integer lanes, so that the loop vectorises.
            let (mut nz, mut other) = (0u32, 0u32);
            for &x in c {
                nz += (x != 0.0) as u32;
                other |= (x != 0.0 && x != 1.0) as u32;
            }
            (nz as usize, other == 0)
        })
        .reduce(|| (0, true), |a, b| (a.0 + b.0, a.1 && b.1));
    (nonzero as f32 / v.len().max(1) as f32, binary)
}

/// Whether `x` is binary spikes sparse enough for the spike-driven passes.
pub fn spiking_input(x: &[f32], path: ConvPath) -> bool {
    if path == ConvPath::Dense {
        return false;
    }
    let (d, binary) = density(x);
    binary && (path == ConvPath::Sparse || d <= SPARSE_FORWARD_DENSITY)
}

/// Calls `f(k, pos)` for every (patch element `k`, output position `pos`) pair that input
/// spike `(c, y, x)` takes part in.
#[inline(always)]
pub(super) fn spike_targets(
    s: &ConvSpec,
    (c, y, x): (usize, usize, usize),
    mut f: impl FnMut(usize, usize),
) {
    let (oh, ow) = s.out_hw();
    let ([sy, sx], [py, px]) = (s.stride, s.padding);
    let (yp, xp) = (y + py, x + px);
    for ky in 0..s.kh.min(yp + 1) {
        let oy = yp - ky;
        if oy % sy != 0 || oy / sy >= oh {
            continue;
        }
        for kx in 0..s.kw.min(xp + 1) {
            let ox = xp - kx;
            if ox % sx != 0 || ox / sx >= ow {
                continue;
            }
            f((c * s.kh + ky) * s.kw + kx, (oy / sy) * ow + ox / sx);
        }
    }
}

/// The spikes of image `x` (`[C, H, W]`) as `(c, y, x)`.
pub(super) fn spikes(s: &ConvSpec, x: &[f32], out: &mut Vec<(usize, usize, usize)>) {
    out.clear();
    for (r, row) in x.chunks_exact(s.w).enumerate() {
        // Most rows of sparse spikes are empty or nearly: test a whole row first (an OR of
        // the bits vectorises; a -0.0 only sends the row to the exact test below).
        if row.iter().fold(0u32, |a, &v| a | v.to_bits()) == 0 {
            continue;
        }
        let (c, y) = (r / s.h, r % s.h);
        for (xx, &v) in row.iter().enumerate() {
            if v != 0.0 {
                out.push((c, y, xx));
            }
        }
    }
}

multiversion! {
    /// One image of binary input: each spike adds its weight rows (of `wt`, `[K, O]`) to the
    /// outputs it reaches, in a position-major `[OH·OW, O]` buffer `acc` (without the bias).
    pub(super) fn spike_forward_image<>(s: &ConvSpec, x: &[f32], wt: &[f32], acc: &mut [f32], list: &mut Vec<(usize, usize, usize)>) {
        let o_n = s.o;
        acc.fill(0.0);
        spikes(s, x, list);
        for &spike in list.iter() {
            spike_targets(s, spike, |k, pos| {
                let (dst, row) = (&mut acc[pos * o_n..][..o_n], &wt[k * o_n..][..o_n]);
                for o in 0..o_n {
                    dst[o] += row[o];
                }
            });
        }
    }
}

multiversion! {
    /// Writes one image's output (`[O, OH·OW]`, or max-pooled `[O, PH·PW]` with each
    /// window's winning position in `arg`) from its convolution before the bias, read as
    /// `buf[o·so + pos·sp]`. The pool keeps the first maximum in row-major order, and a NaN
    /// wins, as in PyTorch; the bias is added before pooling, as the layers apart would.
    pub(super) fn write_out<>(s: &ConvSpec, buf: &[f32], strides: (usize, usize), b: &[f32], y: &mut [f32], arg: &mut [u32]) {
        let (oh, ow) = s.out_hw();
        let (so, sp) = strides;
        let o_n = s.o;
        let bias = |o: usize| if s.bias { b[o] } else { 0.0 };
        let Some([kh, kw]) = s.pool else {
            for o in 0..o_n {
                let bo = bias(o);
                for pos in 0..oh * ow {
                    y[o * oh * ow + pos] = buf[o * so + pos * sp] + bo;
                }
            }
            return;
        };
        let (ph, pw) = (oh / kh, ow / kw);
        let mut best = vec![0.0f32; o_n];
        let mut at = vec![0u32; o_n];
        let mut vals = vec![0.0f32; o_n];
        let bias: Vec<f32> = (0..o_n).map(bias).collect();
        for py in 0..ph {
            for px in 0..pw {
                for dy in 0..kh {
                    for dx in 0..kw {
                        let pos = (py * kh + dy) * ow + px * kw + dx;
                        // Position-major input (the spike path) is read as one slice.
                        if so == 1 {
                            vals.copy_from_slice(&buf[pos * sp..][..o_n]);
                        } else {
                            for (o, v) in vals.iter_mut().enumerate() {
                                *v = buf[o * so + pos * sp];
                            }
                        }
                        let p = pos as u32;
                        let lanes = best.iter_mut().zip(at.iter_mut()).zip(&vals).zip(&bias);
                        if dy == 0 && dx == 0 {
                            for (((m, a), &v), &bo) in lanes {
                                (*m, *a) = (v + bo, p);
                            }
                        } else {
                            // Branch-free selects, so that the loop runs across lanes.
                            for (((m, a), &v), &bo) in lanes {
                                let v = v + bo;
                                let take = v > *m || v.is_nan();
                                *m = if take { v } else { *m };
                                *a = if take { p } else { *a };
                            }
                        }
                    }
                }
                for o in 0..o_n {
                    let j = (o * ph + py) * pw + px;
                    y[j] = best[o];
                    arg[j] = at[o];
                }
            }
        }
    }
}

multiversion! {
    /// The weight gradient of one image of binary input: each spike adds the gradients
    /// (`gt`, `[OH·OW, O]`) of the outputs it reaches to its weight rows (`dwt`, `[K, O]`).
    pub(super) fn spike_weight_grad<>(s: &ConvSpec, list: &[(usize, usize, usize)], gt: &[f32], dwt: &mut [f32]) {
        let o_n = s.o;
        for &spike in list {
            spike_targets(s, spike, |k, pos| {
                let (dst, row) = (&mut dwt[k * o_n..][..o_n], &gt[pos * o_n..][..o_n]);
                for o in 0..o_n {
                    dst[o] += row[o];
                }
            });
        }
    }
}

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
