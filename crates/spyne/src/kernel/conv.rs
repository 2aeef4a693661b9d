//! 2-D convolution over many images (time folded into the batch), forward and backward,
//! with the work skipped where the operands are zero.
//!
//! Spiking layers feed convolutions binary, mostly-zero spikes, and a max pool after a
//! convolution sends gradient to one position in each window. So, per image:
//! - forward and weight gradient, binary input below a density: every input spike adds its
//!   weight rows to the outputs whose window holds it (forward), or those outputs' gradients
//!   to its weight rows (weight gradient): work in proportion to the spikes, not a GEMM over
//!   zeros;
//! - a max pool fused after the convolution: the full convolution output is never stored,
//!   and each pooled gradient goes back to its window's winner only;
//! - otherwise im2col and GEMMs (the `gemm` crate, as burn's CPU backend); the input
//!   gradient is always one GEMM per task of images.
//!
//! Both paths compute the same sums; they differ only in float rounding order.

use rayon::prelude::*;

use super::lif::{multiversion, sum_in_order, Shared};

/// Which algorithm a pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// Choose from the measured density of the operand.
    Auto,
    /// im2col and GEMMs.
    Dense,
    /// Skip zeros (forward: binary input only; otherwise dense).
    Sparse,
}

/// The shape and settings of one convolution call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Images.
    pub n: usize,
    /// Input channels, height, width.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height and width.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (rows, columns).
    pub stride: [usize; 2],
    /// Zero padding per side (rows, columns).
    pub padding: [usize; 2],
    /// With a bias.
    pub bias: bool,
    /// Forward algorithm.
    pub forward: ConvPath,
    /// Backward algorithm.
    pub backward: ConvPath,
    /// A max pool over non-overlapping windows of this size fused after the convolution
    /// (`OH`, `OW` must be multiples of it).
    pub pool: Option<[usize; 2]>,
}

/// Binary inputs at most this dense take the spike-driven forward and weight gradient.
pub const SPARSE_FORWARD_DENSITY: f32 = 0.3;

impl ConvSpec {
    /// The call's output shape, `[N, O, OH, OW]` (pooled when `pool`).
    pub fn output_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.out_hw();
        let [ph, pw] = self.pool.unwrap_or([1, 1]);
        [self.n, self.o, oh / ph, ow / pw]
    }

    /// The convolution's output height and width (before pooling).
    pub fn out_hw(&self) -> (usize, usize) {
        let oh = (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1;
        let ow = (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1;
        (oh, ow)
    }

    /// `C·KH·KW`, the length of one patch.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_image(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.o * oh * ow
    }
}

/// Images per parallel task: fixed, so sums over tasks add in the same order on any pool.
const IMAGES_PER_TASK: usize = 8;

fn tasks(n: usize) -> Vec<std::ops::Range<usize>> {
    (0..n)
        .step_by(IMAGES_PER_TASK)
        .map(|i| i..(i + IMAGES_PER_TASK).min(n))
        .collect()
}

/// The patches of image `x` (`[C, H, W]`) as rows: `p[pos·K + (c·KH + ky)·KW + kx]`.
fn im2col(s: &ConvSpec, x: &[f32], p: &mut [f32]) {
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
fn valid_cols(s: &ConvSpec, kx: usize, ow: usize) -> std::ops::Range<usize> {
    let (sx, px) = (s.stride[1], s.padding[1]);
    let lo = px.saturating_sub(kx).div_ceil(sx);
    let hi = if s.w + px > kx { ((s.w + px - kx - 1) / sx + 1).min(ow) } else { 0 };
    lo..hi.max(lo)
}

multiversion! {
    /// Adds the patch gradients `dpt` (`[K, OH·OW]`: one row per patch element, rows
    /// `stride` apart) back onto the image gradient `dx` (`[C, H, W]`): for each element and
    /// output row, one contiguous add across the output columns (with stride 1).
    fn col2im<>(s: &ConvSpec, dpt: &[f32], stride: usize, dx: &mut [f32]) {
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
fn gemm(
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
    assert!(dst.len() > last((dr, dc), m, n), "gemm destination too small");
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

/// The fraction of non-zero values, and whether every value is 0 or 1.
fn density(v: &[f32]) -> (f32, bool) {
    let (nonzero, binary) = v
        .par_chunks(1 << 16)
        .map(|c| {
            let nz = c.iter().filter(|&&x| x != 0.0).count();
            let bin = c.iter().all(|&x| x == 0.0 || x == 1.0);
            (nz, bin)
        })
        .reduce(|| (0, true), |a, b| (a.0 + b.0, a.1 && b.1));
    (nonzero as f32 / v.len().max(1) as f32, binary)
}

/// Whether `x` is binary spikes sparse enough for the spike-driven passes.
fn spiking_input(x: &[f32], path: ConvPath) -> bool {
    if path == ConvPath::Dense {
        return false;
    }
    let (d, binary) = density(x);
    binary && (path == ConvPath::Sparse || d <= SPARSE_FORWARD_DENSITY)
}

/// Calls `f(k, pos)` for every (patch element `k`, output position `pos`) pair that input
/// spike `(c, y, x)` takes part in.
#[inline(always)]
fn spike_targets(s: &ConvSpec, (c, y, x): (usize, usize, usize), mut f: impl FnMut(usize, usize)) {
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
fn spikes(s: &ConvSpec, x: &[f32], out: &mut Vec<(usize, usize, usize)>) {
    out.clear();
    for (i, _) in x.iter().enumerate().filter(|(_, &v)| v != 0.0) {
        out.push((i / (s.h * s.w), i / s.w % s.h, i % s.w));
    }
}

multiversion! {
    /// One image of binary input: each spike adds its weight rows (of `wt`, `[K, O]`) to the
    /// outputs it reaches, in a position-major `[OH·OW, O]` buffer `acc` (without the bias).
    fn spike_forward_image<>(s: &ConvSpec, x: &[f32], wt: &[f32], acc: &mut [f32], list: &mut Vec<(usize, usize, usize)>) {
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
    fn write_out<>(s: &ConvSpec, buf: &[f32], strides: (usize, usize), b: &[f32], y: &mut [f32], arg: &mut [u32]) {
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
    fn spike_weight_grad<>(s: &ConvSpec, list: &[(usize, usize, usize)], gt: &[f32], dwt: &mut [f32]) {
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


/// Working buffers of one task, reused for each of its images.
#[derive(Default)]
struct Scratch {
    /// Patches `[OH·OW, K]`.
    p: Vec<f32>,
    /// Outputs or output gradients position-major, `[OH·OW, O]`.
    acc: Vec<f32>,
    /// One image's conv output or output gradient `[O, OH·OW]` (pooled calls).
    full: Vec<f32>,
    list: Vec<(usize, usize, usize)>,
}

fn grown(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// One image's output `yi` (and pooling winners `arg`): the convolution spike-driven on
/// binary input (`wt` is `Wᵀ`), else im2col and a GEMM; then bias and pooling.
#[allow(clippy::too_many_arguments)]
fn forward_image(s: &ConvSpec, sparse: bool, xi: &[f32], w: &[f32], wt: &[f32], b: &[f32], sc: &mut Scratch, yi: &mut [f32], arg: &mut [u32]) {
    let (oh, ow) = s.out_hw();
    let (k, ohw) = (s.k(), oh * ow);
    if sparse {
        let acc = grown(&mut sc.acc, ohw * s.o);
        spike_forward_image(s, xi, wt, acc, &mut sc.list);
        write_out(s, acc, (1, s.o), b, yi, arg);
        return;
    }
    im2col(s, xi, grown(&mut sc.p, ohw * k));
    let full = grown(&mut sc.full, ohw * s.o);
    // Y [O, OHW] = W [O, K] · Pᵀ.
    gemm(full, (ohw, 1), false, w, (k, 1), &sc.p, (1, k), [s.o, ohw, k]);
    write_out(s, full, (ohw, 1), b, yi, arg);
}

/// One image's output gradient: the full `[O, OH·OW]`, or a pooled `[O, PH·PW]` with the
/// position in the conv plane that each pooled value came from.
#[derive(Clone, Copy)]
enum GradImage<'a> {
    Dense(&'a [f32]),
    Pooled { g: &'a [f32], arg: &'a [u32] },
}

impl GradImage<'_> {
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
                let per = g.len() / o_n;
                for (j, (&v, &pos)) in g.iter().zip(arg).enumerate() {
                    f(j / per, pos as usize, v);
                }
            }
        }
    }
}

/// Forward: `y` `[N, O, OH, OW]` from `x` `[N, C, H, W]`, `w` `[O, C, KH, KW]`, `b` `[O]`
/// (ignored unless `spec.bias`). With `spec.pool`, returns the max-pooled `[N, O, PH, PW]` and
/// each pooled value's position in its conv plane; the full conv output never exists.
pub fn forward(s: &ConvSpec, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let pool = s.pool;
    let sparse = spiking_input(x, s.forward);
    let wt = if sparse { transpose(w, s.o, s.k()) } else { Vec::new() };
    let [_, o, ph, pw] = s.output_shape();
    let out_image = o * ph * pw;
    let mut y = vec![0.0f32; s.n * out_image];
    let mut arg = vec![0u32; if pool.is_some() { y.len() } else { 0 }];
    let (out, args) = (Shared(y.as_mut_ptr()), SharedU32(arg.as_mut_ptr()));
    tasks(s.n).into_par_iter().for_each(|images| {
        let mut sc = Scratch::default();
        for i in images {
            let xi = &x[i * s.image()..][..s.image()];
            // SAFETY: image i of the output belongs to this task alone.
            let yi = unsafe { out.row(i, out_image) };
            // SAFETY: as above, for the pooling winners (empty without a pool).
            let ai = if pool.is_some() { unsafe { args.row(i, out_image) } } else { &mut [][..] };
            forward_image(s, sparse, xi, w, &wt, b, &mut sc, yi, ai);
        }
    });
    (y, arg)
}

/// A raw `u32` pointer that may cross threads (each task writes its own rows).
#[derive(Clone, Copy)]
struct SharedU32(*mut u32);
unsafe impl Send for SharedU32 {}
unsafe impl Sync for SharedU32 {}

impl SharedU32 {
    /// # Safety
    /// The row lies inside the array and belongs to the caller alone.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, row: usize, n: usize) -> &mut [u32] {
        std::slice::from_raw_parts_mut(self.0.add(row * n), n)
    }
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
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
/// Per task of images: the output gradients side by side (`[O, images·OH·OW]`, a pooled one
/// scattered to its winners), the weight gradient spike-driven on binary input (else a GEMM
/// with the patches per image), and the input gradient as one GEMM `Wᵀ·G` for all the
/// task's images, added back image by image. (A sparse version of that product, skipping
/// the zeros a pool leaves, measured slower than the GEMM.)
pub fn backward(s: &ConvSpec, arg: &[u32], x: &[f32], w: &[f32], g: &[f32], want_input: bool) -> ConvGrads {
    let k = s.k();
    let spiking = spiking_input(x, s.backward);
    let [_, o, ph, pw] = s.output_shape();
    let g_image = o * ph * pw;
    let mut dx = vec![0.0f32; if want_input { x.len() } else { 0 }];
    let dxp = Shared(dx.as_mut_ptr());
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks(s.n)
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
            backward_task(s, spiking, images, x, w, grad, want_input.then_some(dxp))
        })
        .collect();
    let (dws, dbs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    let dw = sum_in_order(dws, s.o * k);
    ConvGrads {
        input: dx,
        weight: if spiking { transpose(&dw, k, s.o) } else { dw },
        bias: sum_in_order(dbs, s.o),
    }
}

/// The gradients of one task's images: returns its weight (`[K, O]` when `spiking`, else
/// `[O, K]`) and bias gradients, and writes their input gradients into `dx`.
fn backward_task<'a>(
    s: &ConvSpec,
    spiking: bool,
    images: std::ops::Range<usize>,
    x: &[f32],
    w: &[f32],
    grad: impl Fn(usize) -> GradImage<'a>,
    dx: Option<Shared>,
) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = s.out_hw();
    let (k, ohw, o_n, nb) = (s.k(), oh * ow, s.o, images.len());
    let cols = nb * ohw;
    let (mut dw, mut db) = (vec![0.0f32; o_n * k], vec![0.0f32; o_n]);
    // G of the task's images side by side, [O, nb·OHW]; position-major per image for the
    // spike-driven weight gradient.
    let mut g_block = vec![0.0f32; o_n * cols];
    let mut gt = vec![0.0f32; if spiking { ohw * o_n } else { 0 }];
    let mut sc = Scratch::default();
    for (li, i) in images.clone().enumerate() {
        let xi = &x[i * s.image()..][..s.image()];
        gt.fill(0.0);
        grad(i).each(o_n, ohw, |o, pos, v| {
            db[o] += v;
            g_block[o * cols + li * ohw + pos] += v;
            if spiking {
                gt[pos * o_n + o] += v;
            }
        });
        if spiking {
            spikes(s, xi, &mut sc.list);
            spike_weight_grad(s, &sc.list, &gt, &mut dw);
        } else {
            im2col(s, xi, grown(&mut sc.p, ohw * k));
            // dW [O, K] += G_i [O, OHW] · P [OHW, K].
            let gi = &g_block[li * ohw..];
            gemm(&mut dw, (k, 1), true, gi, (cols, 1), &sc.p, (k, 1), [o_n, k, ohw]);
        }
    }
    if let Some(dx) = dx {
        // dPᵀ [K, nb·OHW] = Wᵀ · G, then each image's columns back onto its pixels.
        let mut dpt = vec![0.0f32; k * cols];
        gemm(&mut dpt, (cols, 1), false, w, (1, k), &g_block, (cols, 1), [k, cols, o_n]);
        for (li, i) in images.enumerate() {
            // SAFETY: image i of the input gradient belongs to this task alone.
            let dxi = unsafe { dx.row(i, s.image()) };
            col2im(s, &dpt[li * ohw..], cols, dxi);
        }
    }
    (dw, db)
}
