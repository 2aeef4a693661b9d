//! A convolution's input as one bitset per image, read once.
//!
//! The spike-driven passes need to know whether the input is binary and how dense it is,
//! and then which inputs spike. One parallel pass over the values answers all three, and
//! the bitset (1/32 of the values' bytes) then serves the forward pass and is kept for the
//! backward pass instead of the values: on tutorial 6's second convolution the values
//! were read three times per iteration (44 MB each), once to measure them and once per
//! pass to find the spikes.

use rayon::prelude::*;

use super::ConvSpec;

/// Images per parallel task of the pass.
const IMAGES_PER_TASK: usize = 64;

/// Every image's values as bits: bit `i % 64` of word `i / 64` of image `n`'s words is set
/// where its value `i` (flat `[C, H, W]`) is non-zero.
#[derive(Clone, Debug)]
pub struct InputBits {
    words: Vec<u64>,
    /// Words per image: its bits and a spare zero word (readers may load one word past
    /// the last bit).
    per_image: usize,
    /// Non-zero values in all.
    nonzero: usize,
    /// Values in all.
    len: usize,
    /// Whether every value is 0 or 1.
    binary: bool,
}

impl InputBits {
    /// Reads `x`, images of `image` values each.
    pub(super) fn of(x: &[f32], image: usize) -> InputBits {
        let per_image = image.div_ceil(64) + 1;
        let n = x.len().checked_div(image).unwrap_or(0);
        let mut words = vec![0u64; n * per_image];
        let (nonzero, binary) = if n == 0 {
            (0, true)
        } else {
            words
                .par_chunks_mut(per_image * IMAGES_PER_TASK)
                .zip(x.par_chunks(image * IMAGES_PER_TASK))
                .map(|(out, xs)| {
                    let (mut nonzero, mut binary) = (0usize, true);
                    for (out, xi) in out.chunks_exact_mut(per_image).zip(xs.chunks_exact(image)) {
                        binary &= nonzero_bits(xi, out);
                        nonzero += out.iter().map(|w| w.count_ones() as usize).sum::<usize>();
                    }
                    (nonzero, binary)
                })
                .reduce(|| (0, true), |a, b| (a.0 + b.0, a.1 && b.1))
        };
        InputBits {
            words,
            per_image,
            nonzero,
            len: x.len(),
            binary,
        }
    }

    /// Image `i`'s words (with the spare zero word).
    #[inline]
    pub(super) fn image(&self, i: usize) -> &[u64] {
        &self.words[i * self.per_image..][..self.per_image]
    }

    /// The fraction of non-zero values.
    pub(super) fn density(&self) -> f32 {
        self.nonzero as f32 / self.len.max(1) as f32
    }

    /// Whether every value is 0 or 1.
    pub(super) fn binary(&self) -> bool {
        self.binary
    }
}

/// The spikes of one image (its words from [`InputBits::image`]) as `(c, y, x)`, in order.
pub(super) fn spikes(s: &ConvSpec, bits: &[u64], out: &mut Vec<(usize, usize, usize)>) {
    out.clear();
    let (plane, image) = (s.h * s.w, s.c * s.h * s.w);
    for (j, &word) in bits.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            let i = j * 64 + m.trailing_zeros() as usize;
            m &= m - 1;
            if i >= image {
                return;
            }
            out.push((i / plane, i % plane / s.w, i % s.w));
        }
    }
}

/// Sets bit `i % 64` of `out[i / 64]` where `x[i]` is non-zero (`out` starts zeroed), and
/// returns whether every value is 0 or 1 (a NaN is neither: it counts as non-zero and not
/// binary).
pub(super) fn nonzero_bits(x: &[f32], out: &mut [u64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { nonzero_bits_avx512(x, out) };
    }
    let mut other = false;
    for (i, &v) in x.iter().enumerate() {
        out[i / 64] |= ((v != 0.0) as u64) << (i % 64);
        other |= v != 0.0 && v != 1.0;
    }
    !other
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn nonzero_bits_avx512(x: &[f32], out: &mut [u64]) -> bool {
    use std::arch::x86_64::{
        _mm512_cmp_ps_mask, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _CMP_NEQ_UQ,
    };
    let mut chunks = x.chunks_exact(16);
    let mut other = 0u16;
    for (q, chunk) in (&mut chunks).enumerate() {
        // SAFETY: the chunk holds 16 floats.
        let v = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
        // Unordered not-equal: a NaN counts as non-zero, as `v != 0.0` has it.
        let k = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
        other |= k & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_set1_ps(1.0));
        out[q / 4] |= (k as u64) << ((q % 4) * 16);
    }
    let done = x.len() - chunks.remainder().len();
    for (j, &v) in chunks.remainder().iter().enumerate() {
        let i = done + j;
        out[i / 64] |= ((v != 0.0) as u64) << (i % 64);
        other |= (v != 0.0 && v != 1.0) as u16;
    }
    other == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_and_binary_flag_follow_the_values() {
        // Two images of 70 values: a word and a bit past it, on both paths (16 at a time
        // and the remainder).
        let mut x = vec![0.0f32; 140];
        for i in [0, 15, 16, 63, 64, 69, 70, 139] {
            x[i] = 1.0;
        }
        let b = InputBits::of(&x, 70);
        assert!(b.binary());
        assert_eq!(b.density(), 8.0 / 140.0);
        assert_eq!(
            b.image(0),
            &[1 | 1 << 15 | 1 << 16 | 1 << 63, 1 | 1 << 5, 0]
        );
        assert_eq!(b.image(1), &[1, 1 << 5, 0]);
        for odd in [0.5, f32::NAN, -1.0] {
            let mut y = x.clone();
            y[68] = odd;
            assert!(!InputBits::of(&y, 70).binary(), "{odd}");
        }
    }

    #[test]
    fn spikes_come_from_the_bits_in_order() {
        let s = ConvSpec {
            n: 1,
            c: 2,
            h: 3,
            w: 5,
            o: 1,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            padding: [0, 0],
            bias: false,
            forward: super::super::ConvPath::Auto,
            backward: super::super::ConvPath::Auto,
            pool: None,
        };
        let mut x = vec![0.0f32; 30];
        for i in [1, 7, 15, 29] {
            x[i] = 1.0;
        }
        let b = InputBits::of(&x, 30);
        let mut list = Vec::new();
        spikes(&s, b.image(0), &mut list);
        assert_eq!(list, [(0, 0, 1), (0, 1, 2), (1, 0, 0), (1, 2, 4)]);
    }
}
