//! The AVX-512 parts of the winners' input gradient ([`super::winner_input_grad`]).

use std::arch::x86_64::*;

use super::{Fields, LANES};

/// [`super::Fields::add`] on AVX-512 for the block of lanes `b0..` (at most
/// [`super::BLOCK`]): one chain of sums, a register per vector of the block, over a
/// position's winners in order; then each vector is added onto its image row under the
/// mask of its real lanes (a field row's padding lanes hold zeros, but a non-finite
/// gradient times zero is not zero). Positions without winners are skipped.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn add_block(f: &Fields, b0: usize, len: usize, buf: &mut [f32]) {
    match len / LANES {
        1 => add::<1>(f, b0, buf),
        2 => add::<2>(f, b0, buf),
        3 => add::<3>(f, b0, buf),
        4 => add::<4>(f, b0, buf),
        5 => add::<5>(f, b0, buf),
        6 => add::<6>(f, b0, buf),
        7 => add::<7>(f, b0, buf),
        8 => add::<8>(f, b0, buf),
        9 => add::<9>(f, b0, buf),
        _ => add::<10>(f, b0, buf),
    }
}

/// [`super::gather_winners`] with compress-stores, sixteen channels at a time.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn winners(
    gt: &[f32],
    o_n: usize,
    start: &mut [u32],
    os: &mut [u32],
    vs: &mut [f32],
) {
    assert!(os.len() >= gt.len() && vs.len() >= gt.len());
    assert_eq!(start.len() * o_n, gt.len() + o_n);
    let mut count = 0usize;
    for (pos, row) in gt.chunks_exact(o_n).enumerate() {
        start[pos] = count as u32;
        for o0 in (0..o_n).step_by(LANES) {
            let m = (u32::MAX >> (32 - LANES.min(o_n - o0))) as u16;
            // SAFETY: the masked lanes lie in the row; `count` plus the lanes kept
            // never passes `gt.len()`, so the compress-stores stay in `os` and `vs`
            // (asserted above).
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, row.as_ptr().add(o0));
                // Unordered not-equal: a NaN is a winner, as `v != 0.0` has it.
                let keep = m & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
                let o = _mm512_add_epi32(
                    _mm512_set1_epi32(o0 as i32),
                    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                );
                _mm512_mask_compressstoreu_epi32(os.as_mut_ptr().add(count).cast(), keep, o);
                _mm512_mask_compressstoreu_ps(vs.as_mut_ptr().add(count).cast(), keep, v);
                count += keep.count_ones() as usize;
            }
        }
    }
    start[gt.len() / o_n] = count as u32;
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add<const V: usize>(f: &Fields, b0: usize, buf: &mut [f32]) {
    let s = f.s;
    let (_, ow) = s.out_hw();
    let [sy, sx] = s.stride;
    let (c_n, wp, rp) = (s.c, s.w + 2 * s.padding[1], f.rp);
    let (row, fp) = (s.kw * c_n, s.kh * rp);
    // Each vector lies inside one padded field row (rows are whole vectors): its
    // offset from the position's corner in the image, and its real lanes.
    let (mut off, mut mask) = ([0usize; V], [0u16; V]);
    for j in 0..V {
        let (ky, kx) = ((b0 + j * LANES) / rp, (b0 + j * LANES) % rp);
        off[j] = ky * wp * c_n + kx;
        mask[j] = ((1u32 << row.saturating_sub(kx).min(LANES)) - 1) as u16;
    }
    let last = |pos: usize| ((pos / ow * sy + s.kh - 1) * wp + pos % ow * sx) * c_n + row;
    assert!(f.start.len() < 2 || last(f.start.len() - 2) <= buf.len());
    assert!(s.o * fp <= f.wcl.len());
    assert!(b0 + V * LANES <= fp);
    for (pos, bounds) in f.start.windows(2).enumerate() {
        let at = bounds[0] as usize..bounds[1] as usize;
        if at.is_empty() {
            continue;
        }
        let mut acc = [_mm512_setzero_ps(); V];
        for (&o, &v) in f.os[at.clone()].iter().zip(&f.vs[at]) {
            let v = _mm512_set1_ps(v);
            // SAFETY: filter o's lanes b0..b0 + 16·V lie in `wcl` (asserted above).
            let w = unsafe { f.wcl.as_ptr().add(o as usize * fp + b0) };
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                *a = _mm512_fmadd_ps(v, unsafe { _mm512_loadu_ps(w.add(j * LANES)) }, *a);
            }
        }
        let corner = ((pos / ow * sy) * wp + pos % ow * sx) * c_n;
        for j in 0..V {
            // SAFETY: the real lanes of the position's field lie in `buf` (asserted
            // above for the last position, whose field ends furthest); the masked-off
            // lanes are neither read nor written.
            unsafe {
                let p = buf.as_mut_ptr().add(corner + off[j]);
                let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[j], p), acc[j]);
                _mm512_mask_storeu_ps(p, mask[j], sum);
            }
        }
    }
}
