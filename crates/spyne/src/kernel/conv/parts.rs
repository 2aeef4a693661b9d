//! The pieces of the convolution kernel: im2col and col2im, the GEMM call, the spike-driven
//! passes and the output write (with the fused max pool).

use super::input_bits::{spikes, InputBits};
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

/// The input as bits when it is binary spikes sparse enough for the spike-driven passes
/// under `path` (one pass over the values; `None` at once for [`ConvPath::Dense`]).
pub(super) fn spiking_input(x: &[f32], image: usize, path: ConvPath) -> Option<InputBits> {
    if path == ConvPath::Dense {
        return None;
    }
    let bits = InputBits::of(x, image);
    (bits.binary() && (path == ConvPath::Sparse || bits.density() <= SPARSE_FORWARD_DENSITY))
        .then_some(bits)
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

multiversion! {
    /// One image of binary input (its bitset, [`InputBits::image`]): each spike adds its
    /// weight rows (of `wt`, `[K, O]`) to the outputs it reaches, in a position-major
    /// `[OH·OW, O]` buffer `acc` (without the bias).
    pub(super) fn spike_forward_image<>(s: &ConvSpec, bits: &[u64], wt: &[f32], acc: &mut [f32], list: &mut Vec<(usize, usize, usize)>) {
        let o_n = s.o;
        acc.fill(0.0);
        spikes(s, bits, list);
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
        #[cfg(target_arch = "x86_64")]
        if so == 1 && o_n.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { x86::pool_position_major(s, buf, sp, b, y, arg) };
            return;
        }
        // Sixteen channels at a time, so that the running maxima and their positions stay
        // in registers while a window's positions go by.
        const L: usize = 16;
        for o0 in (0..o_n).step_by(L) {
            let n = L.min(o_n - o0);
            let mut biases = [0.0f32; L];
            for (i, bo) in biases[..n].iter_mut().enumerate() {
                *bo = bias(o0 + i);
            }
            // The value of channel o0 + i at position `pos` (lanes past `n` read channel
            // o0 again: they are never written out).
            let at_pos = |pos: usize, i: usize| buf[(o0 + if i < n { i } else { 0 }) * so + pos * sp];
            for py in 0..ph {
                for px in 0..pw {
                    let (mut best, mut at) = ([0.0f32; L], [0u32; L]);
                    for dy in 0..kh {
                        for dx in 0..kw {
                            let pos = (py * kh + dy) * ow + px * kw + dx;
                            let mut vals = [0.0f32; L];
                            // Position-major input (the spike path) is read as one slice.
                            if so == 1 && n == L {
                                vals.copy_from_slice(&buf[pos * sp + o0..][..L]);
                            } else {
                                for (i, v) in vals.iter_mut().enumerate() {
                                    *v = at_pos(pos, i);
                                }
                            }
                            let p = pos as u32;
                            if dy == 0 && dx == 0 {
                                for i in 0..L {
                                    (best[i], at[i]) = (vals[i] + biases[i], p);
                                }
                            } else {
                                // Branch-free selects, so that the loop runs across lanes.
                                for i in 0..L {
                                    let v = vals[i] + biases[i];
                                    let take = v > best[i] || v.is_nan();
                                    best[i] = if take { v } else { best[i] };
                                    at[i] = if take { p } else { at[i] };
                                }
                            }
                        }
                    }
                    let j = (o0 * ph + py) * pw + px;
                    for i in 0..n {
                        y[j + i * ph * pw] = best[i];
                        arg[j + i * ph * pw] = at[i];
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::ConvSpec;

    /// [`super::write_out`]'s max pool for position-major input (`buf[pos·sp + o]`) on
    /// AVX-512, sixteen channels to a register: written with intrinsics because the
    /// portable loop kept the running maxima in memory, each window's masked stores then
    /// stalling the next load. `b`: the bias (read only when `s.bias`).
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pool_position_major(
        s: &ConvSpec,
        buf: &[f32],
        sp: usize,
        b: &[f32],
        y: &mut [f32],
        arg: &mut [u32],
    ) {
        let (oh, ow) = s.out_hw();
        let [kh, kw] = s.pool.expect("a pooled call");
        let (ph, pw, o_n) = (oh / kh, ow / kw, s.o);
        assert!(o_n.is_multiple_of(16) && (!s.bias || b.len() >= o_n) && oh * ow > 0);
        assert!(buf.len() >= (oh * ow - 1) * sp + o_n && sp >= o_n);
        assert!(y.len() >= o_n * ph * pw && arg.len() >= o_n * ph * pw);
        let plane = (ph * pw) as i32;
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(plane),
        );
        for o0 in (0..o_n).step_by(16) {
            // SAFETY (all loads and scatters below): the asserts above bound every
            // position's 16 channels in `buf` and every pooled value's index in `y`, `arg`.
            let bv = if s.bias {
                unsafe { _mm512_loadu_ps(b.as_ptr().add(o0)) }
            } else {
                _mm512_setzero_ps()
            };
            let at_pos = |pos: usize| unsafe {
                _mm512_add_ps(_mm512_loadu_ps(buf.as_ptr().add(pos * sp + o0)), bv)
            };
            for py in 0..ph {
                for px in 0..pw {
                    let first = py * kh * ow + px * kw;
                    let (mut best, mut at) = (at_pos(first), _mm512_set1_epi32(first as i32));
                    for dy in 0..kh {
                        for dx in 0..kw {
                            if dy == 0 && dx == 0 {
                                continue;
                            }
                            let pos = first + dy * ow + dx;
                            let v = at_pos(pos);
                            // The first maximum in row-major order, and a NaN wins.
                            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                                | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                            best = _mm512_mask_mov_ps(best, take, v);
                            at = _mm512_mask_mov_epi32(at, take, _mm512_set1_epi32(pos as i32));
                        }
                    }
                    let j = (o0 * ph + py) * pw + px;
                    unsafe {
                        _mm512_i32scatter_ps::<4>(y.as_mut_ptr().add(j).cast(), idx, best);
                        _mm512_i32scatter_epi32::<4>(arg.as_mut_ptr().add(j).cast(), idx, at);
                    }
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
