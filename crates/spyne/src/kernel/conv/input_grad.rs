//! The input gradient of a convolution with a fused max pool, driven by the pool's winners.
//!
//! A max pool sends each window's gradient to one position of the conv plane, so of the
//! `O·OH·OW` output gradients only `O·PH·PW` are non-zero (a quarter for 2×2 windows). The
//! dense route (`Wᵀ·G` as a GEMM, then col2im) spends most of its time on those zeros and
//! on col2im's short rows. Here, per conv position, the winners' filters scaled by their
//! gradients are summed in registers, a block of the receptive field at a time, and added
//! straight onto the image rows the block covers. Images and filters are channel-last
//! (`[H, W, C]`, `[O, KH, KW, C]`), so a field row is one contiguous run of `KW·C` values
//! (60 for tutorial 6), and padding lives in the image buffer's border. With it (and fewer
//! serial memsets) a tutorial-6 iteration went from 0.29 s to 0.20 s on a 2-core AVX-512
//! Xeon; the same sums as one GEMM per image over the zeros measured 0.22 s. Blocks of 160
//! lanes (ten vectors) cost about 12 % less than blocks of one 64-lane field row summed into
//! a field buffer first, and a little less than 128 lanes; 96 lanes cost more (measured on
//! tutorial 6's second convolution, 2026-12-03, with the portable two-chain sums). With the
//! AVX-512 blocks (one chain, masked row adds), 64 to 320 lanes measured the same.

use super::{grown, ConvSpec};
use crate::kernel::lif::multiversion;

/// Lanes of one vector; a field row is padded to whole vectors.
const LANES: usize = 16;

/// Most lanes of one block of a field's gradient (ten AVX-512 vectors).
const BLOCK: usize = 160;

/// One field row's length in [`channel_last_filters`]: `KW·C`, padded to whole vectors.
fn padded_row(s: &ConvSpec) -> usize {
    (s.kw * s.c).div_ceil(LANES) * LANES
}

/// The filters `w` (`[O, C, KH, KW]`) channel-last, `[O, KH, KW·C]`, each row padded with
/// zeros to whole vectors.
pub(super) fn channel_last_filters(s: &ConvSpec, w: &[f32]) -> Vec<f32> {
    let (c_n, kh, kw, rp) = (s.c, s.kh, s.kw, padded_row(s));
    let mut out = vec![0.0f32; s.o * kh * rp];
    for o in 0..s.o {
        for c in 0..c_n {
            for ky in 0..kh {
                for kx in 0..kw {
                    out[(o * kh + ky) * rp + kx * c_n + c] = w[((o * c_n + c) * kh + ky) * kw + kx];
                }
            }
        }
    }
    out
}

/// Working buffers of [`winner_input_grad`], reused for every image of a task.
#[derive(Default)]
pub(super) struct WinnerScratch {
    /// The image gradient, padded and channel-last: `[H + 2·py, W + 2·px, C]`.
    buf: Vec<f32>,
    /// Where each conv position's winners start in `os` and `vs`.
    start: Vec<u32>,
    /// The winners' channels, grouped by conv position.
    os: Vec<u32>,
    /// The winners' gradients, alongside `os`.
    vs: Vec<f32>,
}

multiversion! {
    /// One image's input gradient `dxi` (`[C, H, W]`, overwritten) from its output
    /// gradient position-major, `gt` (`[OH·OW, O]`: after a max pool, non-zero at each
    /// window's winners only); `wcl` holds the filters channel-last.
    ///
    /// The winners (the non-zero gradients) are gathered position by position, in channel
    /// order. Per block of the field (at most 160 lanes of its padded rows) and position,
    /// the winners' filters, scaled by their gradients, are summed in registers and added
    /// straight onto the image rows the block covers: a field row is one contiguous run of
    /// `KW·C` values in the channel-last image. Each sum runs over the winners in a fixed
    /// order, so nothing depends on the threads. `avx512f`: the CPU has AVX-512F (see
    /// [`has_avx512`]); the winners are then gathered with compress-stores, and the blocks
    /// run as [`x86::add_block`], with fused multiply-adds and masked adds onto the rows.
    pub(super) fn winner_input_grad<>(s: &ConvSpec, gt: &[f32], wcl: &[f32], sc: &mut WinnerScratch, dxi: &mut [f32], avx512f: bool) {
        let (oh, ow) = s.out_hw();
        let [py, px] = s.padding;
        let (c_n, wp, rp) = (s.c, s.w + 2 * px, padded_row(s));
        assert_eq!(gt.len(), oh * ow * s.o, "a gradient per position and channel");
        let start = grown(&mut sc.start, oh * ow + 1);
        let (os, vs) = (grown(&mut sc.os, gt.len()), grown(&mut sc.vs, gt.len()));
        gather_winners(gt, s.o, start, os, vs, avx512f);
        let (os, vs) = (&sc.os[..], &sc.vs[..]);
        let buf = grown(&mut sc.buf, (s.h + 2 * py) * wp * c_n);
        buf.fill(0.0);
        let fields = Fields { s, start: &sc.start, os, vs, wcl, rp };
        // Block-outer, so that one block of every filter (at most O·160 values) stays near
        // while the positions go by.
        let fp = s.kh * rp;
        for b0 in (0..fp).step_by(BLOCK) {
            #[cfg(target_arch = "x86_64")]
            if avx512f {
                // SAFETY: the CPU has AVX-512F (the caller's word).
                unsafe { x86::add_block(&fields, b0, BLOCK.min(fp - b0), buf) };
                continue;
            }
            let _ = avx512f;
            match fp - b0 {
                16 => fields.add::<16>(b0, buf),
                32 => fields.add::<32>(b0, buf),
                48 => fields.add::<48>(b0, buf),
                64 => fields.add::<64>(b0, buf),
                80 => fields.add::<80>(b0, buf),
                96 => fields.add::<96>(b0, buf),
                112 => fields.add::<112>(b0, buf),
                128 => fields.add::<128>(b0, buf),
                144 => fields.add::<144>(b0, buf),
                _ => fields.add::<BLOCK>(b0, buf),
            }
        }
        // The interior of the padded channel-last buffer, back to [C, H, W], written in
        // order.
        for (c, plane) in dxi.chunks_exact_mut(s.h * s.w).enumerate() {
            for (y, out) in plane.chunks_exact_mut(s.w).enumerate() {
                let src = &buf[((y + py) * wp + px) * c_n + c..];
                for (x, d) in out.iter_mut().enumerate() {
                    *d = src[x * c_n];
                }
            }
        }
    }
}

/// Gathers the non-zero gradients of `gt` (`[positions, o_n]`) position by position, in
/// channel order: their channels into `os`, their values into `vs`, and where each
/// position's start into `start` (one more than the positions, the last the count). `os`
/// and `vs` hold `gt.len()` each. `avx512f`: with compress-stores ([`x86::winners`]).
fn gather_winners(
    gt: &[f32],
    o_n: usize,
    start: &mut [u32],
    os: &mut [u32],
    vs: &mut [f32],
    avx512f: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512f {
        // SAFETY: the CPU has AVX-512F (the caller's word).
        unsafe { x86::winners(gt, o_n, start, os, vs) };
        return;
    }
    let _ = avx512f;
    let mut count = 0;
    for (pos, row) in gt.chunks_exact(o_n).enumerate() {
        start[pos] = count as u32;
        for (o, &v) in row.iter().enumerate() {
            if v != 0.0 {
                (os[count], vs[count]) = (o as u32, v);
                count += 1;
            }
        }
    }
    start[gt.len() / o_n] = count as u32;
}

/// One image's winners grouped by position, and the filters channel-last.
struct Fields<'a> {
    s: &'a ConvSpec,
    /// Where each position's winners start in `os` and `vs`.
    start: &'a [u32],
    /// The winners' channels, grouped by position.
    os: &'a [u32],
    /// The winners' gradients, alongside `os`.
    vs: &'a [f32],
    /// The filters channel-last ([`channel_last_filters`]).
    wcl: &'a [f32],
    /// A padded field row's length.
    rp: usize,
}

impl Fields<'_> {
    /// Adds lanes `b0..b0 + L` of every position's field gradient (`[KH, rp]`, flat) onto
    /// `buf`, row by row.
    #[inline(always)]
    fn add<const L: usize>(&self, b0: usize, buf: &mut [f32]) {
        let s = self.s;
        let (_, ow) = s.out_hw();
        let [sy, sx] = s.stride;
        let (c_n, wp, rp) = (s.c, s.w + 2 * s.padding[1], self.rp);
        let (row, fp) = (s.kw * c_n, s.kh * rp);
        let madd = |a: f32, b: f32, c: f32| a * b + c;
        let w = |o: u32| -> &[f32; L] {
            (&self.wcl[o as usize * fp + b0..][..L])
                .try_into()
                .expect("a block of L lanes")
        };
        let mut sum = [0.0f32; L];
        for (pos, bounds) in self.start.windows(2).enumerate() {
            let at = bounds[0] as usize..bounds[1] as usize;
            let (os, vs) = (&self.os[at.clone()], &self.vs[at]);
            // Two chains of sums (even and odd winners), so that twice the multiply-adds
            // are in flight.
            let (mut even, mut odd) = ([0.0f32; L], [0.0f32; L]);
            let (mut o_pairs, mut v_pairs) = (os.chunks_exact(2), vs.chunks_exact(2));
            for (o, v) in (&mut o_pairs).zip(&mut v_pairs) {
                let (w0, w1) = (w(o[0]), w(o[1]));
                for i in 0..L {
                    even[i] = madd(v[0], w0[i], even[i]);
                    odd[i] = madd(v[1], w1[i], odd[i]);
                }
            }
            for (&o, &v) in o_pairs.remainder().iter().zip(v_pairs.remainder()) {
                for (a, &w) in even.iter_mut().zip(w(o)) {
                    *a = madd(v, w, *a);
                }
            }
            for i in 0..L {
                sum[i] = even[i] + odd[i];
            }
            // The block's rows, each onto the image row it covers. Only the real lanes:
            // the padding lanes hold zeros, but a non-finite gradient times zero is not
            // zero.
            let (oy, ox) = (pos / ow, pos % ow);
            let mut lane = 0;
            while lane < L {
                let (ky, kx) = ((b0 + lane) / rp, (b0 + lane) % rp);
                let at = ((oy * sy + ky) * wp + ox * sx) * c_n + kx;
                let n = (row.saturating_sub(kx)).min(L - lane);
                for (d, &v) in buf[at..][..n].iter_mut().zip(&sum[lane..]) {
                    *d += v;
                }
                lane += rp - kx;
            }
        }
    }
}

/// Whether the CPU has AVX-512F, for [`winner_input_grad`].
pub(super) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::conv::ConvPath;

    /// Both block passes (the portable one, and AVX-512 where the CPU has it) against the
    /// input gradient summed winner by winner: padding, a field row of 3·5 = 15 lanes (one
    /// padded vector), stride 1 and 2.
    #[test]
    fn winner_input_grad_equals_the_sum_over_winners() {
        for stride in [1, 2] {
            let s = ConvSpec {
                n: 1,
                c: 5,
                h: 9,
                w: 9,
                o: 7,
                kh: 3,
                kw: 3,
                stride: [stride, stride],
                padding: [1, 1],
                bias: false,
                forward: ConvPath::Auto,
                backward: ConvPath::Auto,
                pool: Some([2, 2]),
            };
            let (oh, ow) = s.out_hw();
            let (ph, pw) = (oh / 2, ow / 2);
            let mut seed = 7u32;
            let mut next = || {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32
            };
            let w: Vec<f32> = (0..s.o * s.c * 9).map(|_| next() - 0.5).collect();
            let (mut g, mut arg) = (Vec::new(), Vec::new());
            for _ in 0..s.o {
                for py in 0..ph {
                    for px in 0..pw {
                        // Every fifth gradient zero: skipped, as a winner with nothing to add.
                        let v = if next() < 0.2 { 0.0 } else { next() - 0.5 };
                        let (dy, dx) = ((next() * 2.0) as usize, (next() * 2.0) as usize);
                        g.push(v);
                        arg.push(((2 * py + dy) * ow + 2 * px + dx) as u32);
                    }
                }
            }
            let mut want = vec![0.0f32; s.c * s.h * s.w];
            for (j, (&v, &pos)) in g.iter().zip(&arg).enumerate() {
                let (o, pos) = (j / (ph * pw), pos as usize);
                let (oy, ox) = (pos / ow, pos % ow);
                for c in 0..s.c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (y, x) = (oy * stride + ky, ox * stride + kx);
                            if (1..=s.h).contains(&y) && (1..=s.w).contains(&x) {
                                want[(c * s.h + y - 1) * s.w + x - 1] +=
                                    v * w[((o * s.c + c) * 3 + ky) * 3 + kx];
                            }
                        }
                    }
                }
            }
            let wcl = channel_last_filters(&s, &w);
            let mut gt = vec![0.0f32; oh * ow * s.o];
            for (j, (&v, &pos)) in g.iter().zip(&arg).enumerate() {
                gt[pos as usize * s.o + j / (ph * pw)] = v;
            }
            for avx512f in [false, has_avx512()] {
                let mut got = vec![f32::NAN; want.len()];
                let mut sc = WinnerScratch::default();
                winner_input_grad(&s, &gt, &wcl, &mut sc, &mut got, avx512f);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "stride {stride} avx512 {avx512f} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
