//! The backward pass of the convolution kernel: per task of images, the weight and bias
//! gradients (spike-driven on binary input, else GEMMs over the patches) and the input
//! gradient (driven by the pool's winners, else one GEMM `Wᵀ·G` and col2im).

use rayon::prelude::*;

use super::input_bits::{spikes, InputBits};
use super::input_grad::{channel_last_filters, has_avx512, winner_input_grad, WinnerScratch};
use super::parts::{col2im, gemm, im2col, spike_weight_grad, spiking_input, transpose};
use super::spike_bits::{self, weight_grad_bits};
use super::{grown, tasks, ConvSpec, Scratch, BACKWARD_IMAGES_PER_TASK};
use crate::kernel::buffer::{Aligned, Shared, Unfilled};
use crate::kernel::lif::sum_in_order;

/// One image's output gradient: the full `[O, OH·OW]`, or a pooled `[O, PH·PW]` with the
/// position in the conv plane that each pooled value came from.
#[derive(Clone, Copy)]
enum GradImage<'a> {
    Dense(&'a [f32]),
    Pooled { g: &'a [f32], arg: &'a [u32] },
}

impl GradImage<'_> {
    /// Adds each channel's gradients onto `db[o]` (the bias gradient), summed in eight
    /// lanes first: adding them onto `db[o]` one by one chained every add to the last
    /// store.
    fn add_channel_sums(&self, db: &mut [f32]) {
        let g = match *self {
            GradImage::Dense(g) | GradImage::Pooled { g, .. } => g,
        };
        let per = g.len() / db.len().max(1);
        for (d, gs) in db.iter_mut().zip(g.chunks(per)) {
            let mut lanes = [0.0f32; 8];
            let mut chunks = gs.chunks_exact(8);
            for c in &mut chunks {
                for (a, &v) in lanes.iter_mut().zip(c) {
                    *a += v;
                }
            }
            *d += lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
        }
    }

    /// Calls `f(o, pos, g)` for every gradient (only the winners of a pooled one).
    #[inline(always)]
    fn each(&self, o_n: usize, ohw: usize, mut f: impl FnMut(usize, usize, f32)) {
        match *self {
            GradImage::Dense(g) => {
                for (o, row) in g.chunks(ohw).enumerate() {
                    for (pos, &v) in row.iter().enumerate() {
                        f(o, pos, v);
                    }
                }
            }
            GradImage::Pooled { g, arg } => {
                // Channel by channel: a division per value cost more than the rest.
                let per = g.len() / o_n;
                for (o, (gs, args)) in g.chunks(per).zip(arg.chunks(per)).enumerate() {
                    for (&v, &pos) in gs.iter().zip(args) {
                        f(o, pos as usize, v);
                    }
                }
            }
        }
    }
}

/// Writes a pooled output gradient (`g` `[O, PH·PW]`, each value's conv position in `arg`)
/// position-major into `gt` (`[OH·OW, O]`, zeros): each value at its winner. A max pool's
/// windows do not overlap, so no two values meet. `avx512f`: with scatter stores
/// ([`x86::scatter_winners`]); channel by channel, scalar, this loop took 5 % of a
/// tutorial-6 iteration.
fn winners_position_major(g: &[f32], arg: &[u32], o_n: usize, gt: &mut [f32], avx512f: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx512f {
        // SAFETY: the CPU has AVX-512F (the caller's word).
        unsafe { x86::scatter_winners(g, arg, o_n, gt) };
        return;
    }
    let _ = avx512f;
    let per = g.len() / o_n;
    for (o, (gs, args)) in g.chunks(per).zip(arg.chunks(per)).enumerate() {
        for (&v, &pos) in gs.iter().zip(args) {
            gt[pos as usize * o_n + o] = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::winners_position_major`] with AVX-512 scatter stores, sixteen values of a
    /// channel at a time.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scatter_winners(g: &[f32], arg: &[u32], o_n: usize, gt: &mut [f32]) {
        let positions = gt.len() / o_n;
        assert!(g.len() == arg.len() && g.len() % o_n == 0 && gt.len() <= i32::MAX as usize);
        let per = g.len() / o_n;
        let (o_v, positions_v) = (
            _mm512_set1_epi32(o_n as i32),
            _mm512_set1_epi32(positions as i32),
        );
        for o in 0..o_n {
            let channel = _mm512_set1_epi32(o as i32);
            for j in (0..per).step_by(16) {
                let n = (per - j).min(16);
                let m = (u32::MAX >> (32 - n)) as __mmask16;
                let at = o * per + j;
                let v = _mm512_maskz_loadu_ps(m, g.as_ptr().add(at));
                let pos = _mm512_maskz_loadu_epi32(m, arg.as_ptr().add(at).cast());
                // Every store stays inside `gt`: each position is in the conv plane.
                assert_eq!(
                    _mm512_mask_cmplt_epu32_mask(m, pos, positions_v),
                    m,
                    "a pooling winner outside the conv plane"
                );
                let idx = _mm512_add_epi32(_mm512_mullo_epi32(pos, o_v), channel);
                _mm512_mask_i32scatter_ps::<4>(gt.as_mut_ptr(), m, idx, v);
            }
        }
    }
}

/// What the backward pass knows of a convolution's input.
#[derive(Clone, Copy)]
pub enum ConvInput<'a> {
    /// The values, `[N, C, H, W]`: the backward pass takes them as spikes where
    /// `ConvSpec::backward` says so.
    Values(&'a [f32]),
    /// Binary spikes, as the forward pass's bits ([`super::ConvOut::spikes`]): the backward
    /// pass is spike-driven.
    Spikes(&'a InputBits),
}

/// Gradients of one convolution call.
pub struct ConvGrads {
    /// `∂L/∂x`, `[N, C, H, W]`.
    pub input: Vec<f32>,
    /// `∂L/∂w`, `[O, C, KH, KW]`.
    pub weight: Vec<f32>,
    /// `∂L/∂b`, `[O]` (zeros without a bias).
    pub bias: Vec<f32>,
}

/// Backward from `g` = `∂L/∂y` (`[N, O, OH, OW]`, or the pooled `[N, O, PH, PW]` with the
/// arg-max positions `arg` the forward pass returned); `want_input` skips the input gradient
/// when no one needs it.
///
/// Per task of images: the weight gradient spike-driven on binary input (else a GEMM with
/// the patches per image). The input gradient of a pooled call is driven by the pool's
/// winners ([`super::input_grad`]); without a pool it is one GEMM `Wᵀ·G` for all the task's
/// images (their output gradients side by side), added back image by image.
pub fn backward(
    s: &ConvSpec,
    arg: &[u32],
    input: ConvInput,
    w: &[f32],
    g: &[f32],
    want_input: bool,
) -> ConvGrads {
    let measured;
    let (x, bits) = match input {
        ConvInput::Spikes(bits) => (&[][..], Some(bits)),
        ConvInput::Values(x) => {
            measured = spiking_input(x, s.image(), s.backward);
            (x, measured.as_ref())
        }
    };
    let spiking = bits.is_some();
    let k = s.k();
    let [_, o, ph, pw] = s.output_shape();
    let g_image = o * ph * pw;
    let mut dx = Unfilled::new(if want_input { s.n * s.image() } else { 0 });
    let dxp = Shared(dx.as_mut_ptr());
    // (On cache lines: the winners' pass reads its rows as vectors.)
    let wcl = Aligned::from(&*if want_input && s.pool.is_some() {
        channel_last_filters(s, w)
    } else {
        Vec::new()
    });
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks(s.n, BACKWARD_IMAGES_PER_TASK)
        .into_par_iter()
        .map(|images| {
            let grad = |i: usize| {
                let gi = &g[i * g_image..][..g_image];
                match s.pool {
                    None => GradImage::Dense(gi),
                    Some(_) => GradImage::Pooled {
                        g: gi,
                        arg: &arg[i * g_image..][..g_image],
                    },
                }
            };
            let dx = want_input.then_some(dxp);
            backward_task(s, bits, images, x, w, &wcl, grad, dx)
        })
        .collect();
    let (dws, dbs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    let dw = sum_in_order(dws, s.o * k);
    ConvGrads {
        // SAFETY: the tasks cover every image, and each writes its image's whole input
        // gradient (the pooled path overwrites it; col2im adds onto a zeroed one).
        input: unsafe { dx.assume_filled() },
        weight: if spiking { transpose(&dw, k, s.o) } else { dw },
        bias: sum_in_order(dbs, s.o),
    }
}

/// The gradients of one task's images: returns its weight (`[K, O]` when spike-driven, on
/// `bits`; else `[O, K]`, from the values `x`) and bias gradients, and writes their input
/// gradients into `dx` (`wcl`: the filters channel-last, for a pooled call).
#[allow(clippy::too_many_arguments)]
fn backward_task<'a>(
    s: &ConvSpec,
    bits: Option<&InputBits>,
    images: std::ops::Range<usize>,
    x: &[f32],
    w: &[f32],
    wcl: &[f32],
    grad: impl Fn(usize) -> GradImage<'a>,
    dx: Option<Shared>,
) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = s.out_hw();
    let (k, ohw, o_n, nb) = (s.k(), oh * ow, s.o, images.len());
    let spiking = bits.is_some();
    let cols = nb * ohw;
    let (mut dw, mut db) = (vec![0.0f32; o_n * k], vec![0.0f32; o_n]);
    let pooled_dx = dx.is_some() && s.pool.is_some();
    // G of the task's images side by side, [O, nb·OHW], for the GEMMs (the dense weight
    // gradient, the unpooled input gradient); position-major per image, [OHW, O], for the
    // spike-driven weight gradient and the winners' input gradient.
    let side_by_side = !spiking || (dx.is_some() && !pooled_dx);
    let mut g_block = vec![0.0f32; if side_by_side { o_n * cols } else { 0 }];
    let position_major = spiking || pooled_dx;
    let mut gt = vec![0.0f32; if position_major { ohw * o_n } else { 0 }];
    let mut winners = WinnerScratch::default();
    let avx512 = has_avx512();
    let mut sc = Scratch::default();
    for (li, i) in images.clone().enumerate() {
        gt.fill(0.0);
        let gi = grad(i);
        gi.add_channel_sums(&mut db);
        match gi {
            GradImage::Pooled { g, arg } if !side_by_side => {
                winners_position_major(g, arg, o_n, &mut gt, avx512)
            }
            _ => gi.each(o_n, ohw, |o, pos, v| {
                if side_by_side {
                    g_block[o * cols + li * ohw + pos] += v;
                }
                if position_major {
                    gt[pos * o_n + o] += v;
                }
            }),
        }
        if let Some(dx) = dx.filter(|_| pooled_dx) {
            // SAFETY: image i of the input gradient belongs to this task alone.
            let dxi = unsafe { dx.row(i, s.image()) };
            winner_input_grad(s, &gt, wcl, &mut winners, dxi, avx512);
        }
        if let Some(bits) = bits {
            if spike_bits::applies(s) {
                sc.bits.read_rows(s, bits.image(i));
                weight_grad_bits(s, &sc.bits, &gt, &mut dw);
            } else {
                spikes(s, bits.image(i), &mut sc.list);
                spike_weight_grad(s, &sc.list, &gt, &mut dw);
            }
        } else {
            im2col(
                s,
                &x[i * s.image()..][..s.image()],
                grown(&mut sc.p, ohw * k),
            );
            // dW [O, K] += G_i [O, OHW] · P [OHW, K].
            let gi = &g_block[li * ohw..];
            gemm(
                &mut dw,
                (k, 1),
                true,
                gi,
                (cols, 1),
                &sc.p,
                (k, 1),
                [o_n, k, ohw],
            );
        }
    }
    if let Some(dx) = dx.filter(|_| !pooled_dx) {
        // dPᵀ [K, nb·OHW] = Wᵀ · G, then each image's columns back onto its pixels.
        let mut dpt = vec![0.0f32; k * cols];
        gemm(
            &mut dpt,
            (cols, 1),
            false,
            w,
            (1, k),
            &g_block,
            (cols, 1),
            [k, cols, o_n],
        );
        for (li, i) in images.enumerate() {
            // SAFETY: image i of the input gradient belongs to this task alone.
            let dxi = unsafe { dx.row(i, s.image()) };
            dxi.fill(0.0);
            col2im(s, &dpt[li * ohw..], cols, dxi);
        }
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both routes put every pooled value at its winner and leave the rest zero, for a
    /// channel of 20 values (one full vector and a masked tail).
    #[test]
    fn winners_land_at_their_positions_on_both_routes() {
        let (o_n, per, positions) = (3, 20, 80);
        let g: Vec<f32> = (0..o_n * per).map(|i| i as f32 - 7.5).collect();
        // Window j of a channel has its winner at 4·j plus a channel- and j-dependent offset.
        let arg: Vec<u32> = (0..o_n * per)
            .map(|i| (4 * (i % per) + (i * 7 + i / per) % 4) as u32)
            .collect();
        let mut want = vec![0.0f32; positions * o_n];
        for (i, (&v, &pos)) in g.iter().zip(&arg).enumerate() {
            want[pos as usize * o_n + i / per] = v;
        }
        for avx512f in [false, has_avx512()] {
            let mut gt = vec![0.0f32; positions * o_n];
            winners_position_major(&g, &arg, o_n, &mut gt, avx512f);
            assert_eq!(gt, want, "avx512f: {avx512f}");
        }
    }
}
