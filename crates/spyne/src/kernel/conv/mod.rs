//! 2-D convolution over many images (time folded into the batch), forward and backward,
//! with the work skipped where the operands are zero.
//!
//! Spiking layers feed convolutions binary, mostly-zero spikes, and a max pool after a
//! convolution sends gradient to one position in each window. So, per image:
//! - forward and weight gradient, binary input below a density: every input spike adds its
//!   weight rows to the outputs whose window holds it (forward), or those outputs' gradients
//!   to its weight rows (weight gradient): work in proportion to the spikes, not a GEMM over
//!   zeros (over bit masks of the input rows for stride 1, `spike_bits.rs`; spike by spike
//!   otherwise, `parts.rs`);
//! - a max pool fused after the convolution: the full convolution output is never stored,
//!   and each pooled gradient goes back to its window's winner only;
//! - otherwise im2col and GEMMs (the `gemm` crate, as burn's CPU backend); the input
//!   gradient is always one GEMM per task of images.
//!
//! The backward pass is in `grads.rs`. Both paths compute the same sums; they differ only in
//! float rounding order.

use rayon::prelude::*;

mod grads;
mod input_bits;
mod input_grad;
mod parts;
mod spike_bits;

pub use grads::{backward, ConvInput};
pub use input_bits::InputBits;
use parts::{gemm, im2col, spike_forward_image, spiking_input, transpose, write_out};
use spike_bits::{column_filters, forward_bits, RowBits};

use super::buffer::{Aligned, Shared, Unfilled};

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
}

/// Images per parallel task of the forward pass.
const FORWARD_IMAGES_PER_TASK: usize = 8;

/// Images per parallel task of the backward pass: fixed, so that the tasks' partial weight
/// gradients add in the same order on any pool, and large enough that those partials (one
/// weight-sized buffer per task) stay few.
const BACKWARD_IMAGES_PER_TASK: usize = 32;

fn tasks(n: usize, per_task: usize) -> Vec<std::ops::Range<usize>> {
    (0..n)
        .step_by(per_task)
        .map(|i| i..(i + per_task).min(n))
        .collect()
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
    /// The image's rows of spikes as bit masks (the spike-driven passes, stride 1).
    bits: RowBits,
}

/// The first `len` elements of scratch `v`, grown as needed (the contents are stale: callers
/// overwrite or clear them).
fn grown<T: Clone + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// One image's output `yi` (and pooling winners `arg`): the convolution spike-driven on
/// binary input (`bits`: the image's bitset; `wt`: the bit-mask pass's `column_filters`
/// where it applies, else `Wᵀ`), else im2col and a GEMM; then bias and pooling.
#[allow(clippy::too_many_arguments)]
fn forward_image(
    s: &ConvSpec,
    bits: Option<&[u64]>,
    xi: &[f32],
    w: &[f32],
    wt: &[f32],
    b: &[f32],
    sc: &mut Scratch,
    yi: &mut [f32],
    arg: &mut [u32],
) {
    let (oh, ow) = s.out_hw();
    let (k, ohw) = (s.k(), oh * ow);
    if let Some(bits) = bits {
        let acc = grown(&mut sc.acc, ohw * s.o);
        if spike_bits::applies(s) {
            forward_bits(s, &mut sc.bits, bits, wt, acc);
        } else {
            spike_forward_image(s, bits, wt, acc, &mut sc.list);
        }
        write_out(s, acc, (1, s.o), b, yi, arg);
        return;
    }
    im2col(s, xi, grown(&mut sc.p, ohw * k));
    let full = grown(&mut sc.full, ohw * s.o);
    // Y [O, OHW] = W [O, K] · Pᵀ.
    gemm(
        full,
        (ohw, 1),
        false,
        w,
        (k, 1),
        &sc.p,
        (1, k),
        [s.o, ohw, k],
    );
    write_out(s, full, (ohw, 1), b, yi, arg);
}

/// What [`forward`] returns.
pub struct ConvOut {
    /// `[N, O, OH, OW]`, or the max-pooled `[N, O, PH, PW]`.
    pub y: Vec<f32>,
    /// Each pooled value's position in its conv plane (empty without a pool).
    pub arg: Vec<u32>,
    /// The input as bits, where it took the spike-driven pass (binary and sparse enough):
    /// all that the backward pass needs of it.
    pub spikes: Option<InputBits>,
}

/// Forward: `y` `[N, O, OH, OW]` from `x` `[N, C, H, W]`, `w` `[O, C, KH, KW]`, `b` `[O]`
/// (ignored unless `spec.bias`). With `spec.pool`, returns the max-pooled `[N, O, PH, PW]` and
/// each pooled value's position in its conv plane; the full conv output never exists.
pub fn forward(s: &ConvSpec, x: &[f32], w: &[f32], b: &[f32]) -> ConvOut {
    let pool = s.pool;
    let spikes = spiking_input(x, s.image(), s.forward);
    let sparse = spikes.is_some();
    // (On cache lines: the passes read its rows of 64 floats as vectors.)
    let wt = Aligned::from(&*if sparse && spike_bits::applies(s) {
        column_filters(s, w)
    } else if sparse {
        transpose(w, s.o, s.k())
    } else {
        Vec::new()
    });
    let [_, o, ph, pw] = s.output_shape();
    let out_image = o * ph * pw;
    let mut y = Unfilled::new(s.n * out_image);
    let mut arg = Unfilled::new(if pool.is_some() { s.n * out_image } else { 0 });
    let (out, args) = (Shared(y.as_mut_ptr()), SharedU32(arg.as_mut_ptr()));
    tasks(s.n, FORWARD_IMAGES_PER_TASK)
        .into_par_iter()
        .for_each(|images| {
            let mut sc = Scratch::default();
            for i in images {
                let xi = &x[i * s.image()..][..s.image()];
                // SAFETY: image i of the output belongs to this task alone.
                let yi = unsafe { out.row(i, out_image) };
                // SAFETY: as above, for the pooling winners (empty without a pool).
                let ai = if pool.is_some() {
                    unsafe { args.row(i, out_image) }
                } else {
                    &mut [][..]
                };
                let bits = spikes.as_ref().map(|b| b.image(i));
                forward_image(s, bits, xi, w, &wt, b, &mut sc, yi, ai);
            }
        });
    // SAFETY: the tasks cover every image, and `write_out` writes each image's every output
    // (and pooling winner).
    let (y, arg) = unsafe { (y.assume_filled(), arg.assume_filled()) };
    ConvOut { y, arg, spikes }
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
