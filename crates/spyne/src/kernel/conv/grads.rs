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
        gi.each(o_n, ohw, |o, pos, v| {
            if side_by_side {
                g_block[o * cols + li * ohw + pos] += v;
            }
            if position_major {
                gt[pos * o_n + o] += v;
            }
        });
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
