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
//! lanes (ten vectors, two chains) cost about 12 % less than blocks of one 64-lane field
//! row summed into a field buffer first, and a little less than 128 lanes; 96 lanes cost
//! more (measured on tutorial 6's second convolution, 2026-12-03).

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
    /// Where each conv position's winners start in `order` (counting sort).
    start: Vec<u32>,
    /// The counting sort's cursors.
    next: Vec<u32>,
    /// The winners `(o, gradient)`, grouped by conv position.
    order: Vec<(u32, f32)>,
}

multiversion! {
    /// One image's input gradient `dxi` (`[C, H, W]`, overwritten) from its pooled output
    /// gradient `g` (`[O, PH, PW]`) and the conv-plane position `arg` each pooled value came
    /// from; `wcl` holds the filters channel-last.
    ///
    /// The winners are grouped by conv position. Per block of the field (at most 160 lanes
    /// of its padded rows) and position, the winners' filters, scaled by their gradients,
    /// are summed in registers and added straight onto the image rows the block covers: a
    /// field row is one contiguous run of `KW·C` values in the channel-last image. Each sum
    /// runs over the winners in a fixed order, so nothing depends on the threads.
    /// `FMA`: multiply-adds fused (where the CPU has them: see [`has_fma`]).
    pub(super) fn winner_input_grad<FMA: bool>(s: &ConvSpec, g: &[f32], arg: &[u32], wcl: &[f32], sc: &mut WinnerScratch, dxi: &mut [f32]) {
        let (oh, ow) = s.out_hw();
        let [py, px] = s.padding;
        let (c_n, wp, rp) = (s.c, s.w + 2 * px, padded_row(s));
        let per_channel = g.len() / s.o;
        // Counting sort of the non-zero winners by position.
        let start = grown(&mut sc.start, oh * ow + 1);
        start.fill(0);
        for (&v, &pos) in g.iter().zip(arg) {
            start[pos as usize + 1] += (v != 0.0) as u32;
        }
        for p in 1..start.len() {
            start[p] += start[p - 1];
        }
        let order = grown(&mut sc.order, start[oh * ow] as usize);
        let next = grown(&mut sc.next, oh * ow);
        next.copy_from_slice(&start[..oh * ow]);
        for (o, (gs, args)) in g.chunks(per_channel).zip(arg.chunks(per_channel)).enumerate() {
            for (&v, &pos) in gs.iter().zip(args) {
                if v != 0.0 {
                    let at = &mut next[pos as usize];
                    order[*at as usize] = (o as u32, v);
                    *at += 1;
                }
            }
        }
        let buf = grown(&mut sc.buf, (s.h + 2 * py) * wp * c_n);
        buf.fill(0.0);
        let fields = Fields { s, start, order, wcl, rp };
        // Block-outer, so that one block of every filter (at most O·160 values) stays near
        // while the positions go by.
        let fp = s.kh * rp;
        for b0 in (0..fp).step_by(BLOCK) {
            match fp - b0 {
                16 => fields.add::<16, FMA>(b0, buf),
                32 => fields.add::<32, FMA>(b0, buf),
                48 => fields.add::<48, FMA>(b0, buf),
                64 => fields.add::<64, FMA>(b0, buf),
                80 => fields.add::<80, FMA>(b0, buf),
                96 => fields.add::<96, FMA>(b0, buf),
                112 => fields.add::<112, FMA>(b0, buf),
                128 => fields.add::<128, FMA>(b0, buf),
                144 => fields.add::<144, FMA>(b0, buf),
                _ => fields.add::<BLOCK, FMA>(b0, buf),
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

/// One image's winners grouped by position, and the filters channel-last.
struct Fields<'a> {
    s: &'a ConvSpec,
    /// Where each position's winners start in `order`.
    start: &'a [u32],
    /// The winners `(o, gradient)`, grouped by position.
    order: &'a [(u32, f32)],
    /// The filters channel-last ([`channel_last_filters`]).
    wcl: &'a [f32],
    /// A padded field row's length.
    rp: usize,
}

impl Fields<'_> {
    /// Adds lanes `b0..b0 + L` of every position's field gradient (`[KH, rp]`, flat) onto
    /// `buf`, row by row.
    #[inline(always)]
    fn add<const L: usize, const FMA: bool>(&self, b0: usize, buf: &mut [f32]) {
        let s = self.s;
        let (_, ow) = s.out_hw();
        let [sy, sx] = s.stride;
        let (c_n, wp, rp) = (s.c, s.w + 2 * s.padding[1], self.rp);
        let (row, fp) = (s.kw * c_n, s.kh * rp);
        let madd = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
        let w = |o: u32| -> &[f32; L] {
            (&self.wcl[o as usize * fp + b0..][..L])
                .try_into()
                .expect("a block of L lanes")
        };
        let mut sum = [0.0f32; L];
        for (pos, bounds) in self.start.windows(2).enumerate() {
            let winners = &self.order[bounds[0] as usize..bounds[1] as usize];
            // Two chains of sums (even and odd winners), so that twice the multiply-adds
            // are in flight.
            let (mut even, mut odd) = ([0.0f32; L], [0.0f32; L]);
            let mut pairs = winners.chunks_exact(2);
            for p in &mut pairs {
                let ((o0, v0), (o1, v1)) = (p[0], p[1]);
                let (w0, w1) = (w(o0), w(o1));
                for i in 0..L {
                    even[i] = madd(v0, w0[i], even[i]);
                    odd[i] = madd(v1, w1[i], odd[i]);
                }
            }
            for &(o, v) in pairs.remainder() {
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

/// Whether the CPU fuses multiply-adds in the kernel clone that [`winner_input_grad`] runs
/// (the AVX-512 one; the others would call a slow software `fma`).
pub(super) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
