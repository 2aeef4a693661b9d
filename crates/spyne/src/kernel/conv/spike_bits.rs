//! The spike-driven forward and weight gradient of a stride-1 convolution, over bit masks
//! of the input rows.
//!
//! An input row of binary spikes is one `u64` (its padding included), cut from the image's
//! bitset (`input_bits.rs`). Then:
//! - weight gradient: the output positions that patch element `k = (c, ky, kx)` reaches
//!   with a spike are bits of the rows `c, oy + ky` shifted by `kx` (one word per 64
//!   positions, walked with `trailing_zeros`); per patch element, the gradients of those
//!   positions are summed in registers and added to its weight row once;
//! - forward: per output row and input column, the spikes of that window column are one
//!   word over `(c, ky)`; per output position, the weight rows of the spikes in its window
//!   (`KW` such words) are summed in registers and written once.
//!
//! The per-spike passes in `parts.rs` load and store a 64-lane row for every (spike,
//! position) pair; on tutorial 6's second convolution (8 % of the inputs spiking) they took
//! about 45 % of a steady-state iteration, these passes about 36 % of a 19 % shorter one.

use super::ConvSpec;
use crate::kernel::lif::multiversion;

/// Most output channels of one register block (four AVX-512 vectors).
const BLOCK: usize = 64;

/// Whether the bit-mask passes apply to `s`: stride 1, a padded row within 64 bits, and
/// output channels in whole 16-lane vectors.
pub(super) fn applies(s: &ConvSpec) -> bool {
    s.stride == [1, 1] && s.w + 2 * s.padding[1] <= 64 && s.o.is_multiple_of(16)
}

/// One image's binary input as bit masks, cut from its bitset
/// ([`super::input_bits::InputBits::image`]): its rows (padding included: bit `x + px` of
/// `rows[c·(H + 2·py) + y + py]` is set where input `(c, y, x)` is non-zero) and its window
/// columns.
#[derive(Default)]
pub(super) struct RowBits {
    /// The padded rows, `[C, H + 2·py]` (filled by [`RowBits::read_rows`] only).
    rows: Vec<u64>,
    /// Per output row `oy` and padded input column `xp`, the spikes of that window column:
    /// bit `q % 64` of word `q / 64` of `cols[(oy·(W + 2·px) + xp)·G ..][..G]` is set where
    /// input `(c, oy + ky − py, xp − px)` spikes, `q = c·KH + ky` (see [`groups`]).
    cols: Vec<u64>,
}

/// Words `G` of one window column's bits, `⌈C·KH / 64⌉`.
fn groups(s: &ConvSpec) -> usize {
    (s.c * s.kh).div_ceil(64)
}

/// The weights `w` (`[O, C, KH, KW]`) as rows of [`forward_bits`]'s gather,
/// `[KW, G, 64, O]`: row `(kx·G + q / 64)·64 + q % 64` is `w[:, c, ky, kx]`, `q = c·KH + ky`
/// (the rows past `C·KH` are zeros).
pub(super) fn column_filters(s: &ConvSpec, w: &[f32]) -> Vec<f32> {
    let (o_n, g_n) = (s.o, groups(s));
    let mut out = vec![0.0f32; s.kw * g_n * 64 * o_n];
    for o in 0..o_n {
        for c in 0..s.c {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let q = c * s.kh + ky;
                    out[((kx * g_n) * 64 + q) * o_n + o] =
                        w[((o * s.c + c) * s.kh + ky) * s.kw + kx];
                }
            }
        }
    }
    out
}

/// Calls `f(c, y, row)` for every input row of the image's bitset `flat` (the image's words
/// and a spare zero word): bit `x` of `row` is input `(c, y, x)`. (No divisions: a spike's
/// coordinates from its flat index cost two, and were a third of the column pass.)
#[inline(always)]
fn each_row(s: &ConvSpec, flat: &[u64], mut f: impl FnMut(usize, usize, u64)) {
    debug_assert!(flat.len() > (s.c * s.h * s.w).div_ceil(64));
    let cols = u64::MAX >> (64 - s.w);
    let mut at = 0;
    for c in 0..s.c {
        for y in 0..s.h {
            let (i, sh) = (at / 64, at % 64);
            let spill = if sh == 0 { 0 } else { flat[i + 1] << (64 - sh) };
            f(c, y, ((flat[i] >> sh) | spill) & cols);
            at += s.w;
        }
    }
}

impl RowBits {
    /// Cuts the image's padded rows out of its bitset `flat` (the image's words and a
    /// spare zero word): what [`weight_grad_bits`] needs.
    pub(super) fn read_rows(&mut self, s: &ConvSpec, flat: &[u64]) {
        let [py, px] = s.padding;
        let hp = s.h + 2 * py;
        self.rows.clear();
        self.rows.resize(s.c * hp, 0);
        let rows = &mut self.rows;
        each_row(s, flat, |c, y, row| rows[c * hp + y + py] = row << px);
    }

    /// Fills the window columns from the image's bitset `flat` (the rows are read too where
    /// the AVX-512 route applies).
    fn columns(&mut self, s: &ConvSpec, flat: &[u64]) {
        #[cfg(target_arch = "x86_64")]
        if x86::columns_apply(s) && std::arch::is_x86_feature_detected!("avx512f") {
            self.read_rows(s, flat);
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { x86::columns(s, &self.rows, &mut self.cols) };
            return;
        }
        self.columns_by_spike(s, flat);
    }

    /// [`RowBits::columns`], spike by spike.
    fn columns_by_spike(&mut self, s: &ConvSpec, flat: &[u64]) {
        let (oh, _) = s.out_hw();
        let ([py, px], g_n) = (s.padding, groups(s));
        let wp = s.w + 2 * px;
        self.cols.clear();
        self.cols.resize(oh * wp * g_n, 0);
        let cols = &mut self.cols;
        each_row(s, flat, |c, y, mut row| {
            // The output rows whose window holds input row y: oy = y + py − ky.
            let kys = (y + py + 1).saturating_sub(oh)..s.kh.min(y + py + 1);
            while row != 0 {
                let x = row.trailing_zeros() as usize;
                row &= row - 1;
                for ky in kys.clone() {
                    let (oy, q) = (y + py - ky, c * s.kh + ky);
                    cols[(oy * wp + x + px) * g_n + q / 64] |= 1 << (q % 64);
                }
            }
        });
    }

    /// The output positions (`oy·OW + ox`) whose window holds a spike at patch element
    /// `(c, ky, kx)`, as words of bits: bit `i` of word `j` is position `j·base + i` (see
    /// [`Words`]).
    #[inline(always)]
    fn words(&self, s: &ConvSpec, (c, ky, kx): (usize, usize, usize)) -> Words<'_> {
        let (oh, ow) = s.out_hw();
        let hp = s.h + 2 * s.padding[0];
        Words {
            rows: &self.rows[c * hp + ky..][..oh],
            shift: kx,
            ow,
            per_word: 64 / ow,
            cols: if ow == 64 { u64::MAX } else { (1u64 << ow) - 1 },
        }
    }
}

/// The rows of one patch element's output positions, packed `per_word` rows to a word.
struct Words<'a> {
    rows: &'a [u64],
    shift: usize,
    ow: usize,
    per_word: usize,
    cols: u64,
}

impl Words<'_> {
    /// Positions per word (whole output rows).
    #[inline(always)]
    fn base(&self) -> usize {
        self.per_word * self.ow
    }

    /// Words in all.
    #[inline(always)]
    fn len(&self) -> usize {
        self.rows.len().div_ceil(self.per_word)
    }

    /// Word `j`.
    #[inline(always)]
    fn get(&self, j: usize) -> u64 {
        let rows = &self.rows[j * self.per_word..];
        let mut m = 0u64;
        for (i, &r) in rows.iter().take(self.per_word).enumerate() {
            m |= ((r >> self.shift) & self.cols) << (i * self.ow);
        }
        m
    }
}

/// The rows `base + i` for the set bits `i` of `m`.
struct Rows {
    m: u64,
    base: usize,
}

impl Rows {
    /// Adds lanes `o0..o0 + L` of the rows (of `values`, `stride` apart) onto `sum`. (Two
    /// chains of sums, even and odd bits apart, measured slower on tutorial 6, with and
    /// without a row of zeros standing in for a missing odd one.)
    #[inline(always)]
    fn add<const L: usize>(&self, values: &[f32], stride: usize, o0: usize, sum: &mut [f32; L]) {
        let mut m = self.m;
        while m != 0 {
            let r = self.base + m.trailing_zeros() as usize;
            m &= m - 1;
            let row: &[f32; L] = (&values[r * stride + o0..][..L])
                .try_into()
                .expect("L lanes");
            for i in 0..L {
                sum[i] += row[i];
            }
        }
    }
}

multiversion! {
    /// One image's convolution without the bias, position-major `[OH·OW, O]` in `acc`,
    /// from its bitset `flat` (see [`RowBits::read_rows`]) and `wc` ([`column_filters`]):
    /// per output position, the weight rows of the spikes in its window are summed in
    /// registers. Requires [`applies`]. `bits`: scratch.
    pub(super) fn forward_bits<>(s: &ConvSpec, bits: &mut RowBits, flat: &[u64], wc: &[f32], acc: &mut [f32]) {
        bits.columns(s, flat);
        for o0 in (0..s.o).step_by(BLOCK) {
            match s.o - o0 {
                16 => forward_block::<16>(s, bits, wc, acc, o0),
                32 => forward_block::<32>(s, bits, wc, acc, o0),
                48 => forward_block::<48>(s, bits, wc, acc, o0),
                _ => forward_block::<BLOCK>(s, bits, wc, acc, o0),
            }
        }
    }
}

#[inline(always)]
fn forward_block<const L: usize>(
    s: &ConvSpec,
    bits: &RowBits,
    wc: &[f32],
    acc: &mut [f32],
    o0: usize,
) {
    let (oh, ow) = s.out_hw();
    let (o_n, g_n, wp) = (s.o, groups(s), s.w + 2 * s.padding[1]);
    for oy in 0..oh {
        for ox in 0..ow {
            let mut sum = [0.0f32; L];
            let cols = &bits.cols[(oy * wp + ox) * g_n..][..s.kw * g_n];
            for (r, &m) in cols.iter().enumerate() {
                Rows { m, base: r * 64 }.add(wc, o_n, o0, &mut sum);
            }
            acc[(oy * ow + ox) * o_n + o0..][..L].copy_from_slice(&sum);
        }
    }
}

multiversion! {
    /// Adds one image's weight gradient to `dwt` (`[K, O]`), from its row masks (read by
    /// [`RowBits::read_rows`]) and its output gradients `gt` (position-major, `[OH·OW, O]`):
    /// each patch element's row is the sum of the gradients of the outputs it reaches with
    /// a spike. Requires [`applies`].
    pub(super) fn weight_grad_bits<>(s: &ConvSpec, bits: &RowBits, gt: &[f32], dwt: &mut [f32]) {
        for o0 in (0..s.o).step_by(BLOCK) {
            match s.o - o0 {
                16 => weight_grad_block::<16>(s, bits, gt, dwt, o0),
                32 => weight_grad_block::<32>(s, bits, gt, dwt, o0),
                48 => weight_grad_block::<48>(s, bits, gt, dwt, o0),
                _ => weight_grad_block::<BLOCK>(s, bits, gt, dwt, o0),
            }
        }
    }
}

#[inline(always)]
fn weight_grad_block<const L: usize>(
    s: &ConvSpec,
    bits: &RowBits,
    gt: &[f32],
    dwt: &mut [f32],
    o0: usize,
) {
    let o_n = s.o;
    for c in 0..s.c {
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let k = (c * s.kh + ky) * s.kw + kx;
                let mut sum = [0.0f32; L];
                let words = bits.words(s, (c, ky, kx));
                for j in 0..words.len() {
                    let rows = Rows {
                        m: words.get(j),
                        base: j * words.base(),
                    };
                    rows.add(gt, o_n, o0, &mut sum);
                }
                let d = &mut dwt[k * o_n + o0..][..L];
                for (d, &v) in d.iter_mut().zip(&sum) {
                    *d += v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{groups, ConvSpec};

    /// Whether [`columns`] applies: a window column's bits in one word, and a padded row
    /// in two vectors of eight words.
    pub(super) fn columns_apply(s: &ConvSpec) -> bool {
        groups(s) == 1 && s.w + 2 * s.padding[1] <= 16
    }

    /// [`super::RowBits::columns`] from the padded rows `rows` ([`super::RowBits::read_rows`]):
    /// per output row, the bit of every `(c, ky)` is OR-ed into the words of the padded
    /// columns where row `(c, oy + ky)` spikes, under that row as a mask, in two registers of
    /// eight words. Spike by spike, each spike's bits cost a short loop with an
    /// unpredictable exit.
    ///
    /// # Safety
    /// The CPU has AVX-512F, and [`columns_apply`] holds.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn columns(s: &ConvSpec, rows: &[u64], cols: &mut Vec<u64>) {
        debug_assert!(columns_apply(s));
        let (oh, _) = s.out_hw();
        let (hp, wp) = (s.h + 2 * s.padding[0], s.w + 2 * s.padding[1]);
        assert!(
            rows.len() >= s.c * hp && oh + s.kh <= hp + 1,
            "the image's padded rows"
        );
        // Each output row stores two whole vectors; the lanes past its `wp` words land on
        // the next row's, which that row then overwrites (and on spare words after the last).
        let need = oh * wp + 16;
        if cols.len() < need {
            cols.resize(need, 0);
        }
        let out = cols.as_mut_ptr();
        for oy in 0..oh {
            let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for c in 0..s.c {
                for (ky, &row) in rows[c * hp + oy..][..s.kh].iter().enumerate() {
                    let bit = _mm512_set1_epi64((1u64 << (c * s.kh + ky)) as i64);
                    lo = _mm512_mask_or_epi64(lo, row as __mmask8, lo, bit);
                    hi = _mm512_mask_or_epi64(hi, (row >> 8) as __mmask8, hi, bit);
                }
            }
            _mm512_storeu_si512(out.add(oy * wp).cast(), lo);
            _mm512_storeu_si512(out.add(oy * wp + 8).cast(), hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::conv::ConvPath;

    /// The AVX-512 window columns equal the spike-by-spike ones, with padding (a 14-word
    /// padded row: a partly used second vector).
    #[test]
    fn window_columns_agree_on_both_routes() {
        let s = ConvSpec {
            n: 1,
            c: 12,
            h: 12,
            w: 12,
            o: 16,
            kh: 5,
            kw: 5,
            stride: [1, 1],
            padding: [1, 1],
            bias: false,
            forward: ConvPath::Sparse,
            backward: ConvPath::Sparse,
            pool: None,
        };
        // A spare zero word after the image's 1728 bits, as the bitset keeps.
        let mut flat = vec![0u64; 12 * 12 * 12 / 64 + 1];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for w in flat.iter_mut().take(27) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = x & (x >> 3) & (x >> 5);
        }
        let (oh, _) = s.out_hw();
        let len = oh * (s.w + 2) * groups(&s);
        let mut want = RowBits::default();
        want.columns_by_spike(&s, &flat);
        assert!(want.cols.iter().any(|&w| w != 0), "some spikes");
        let mut got = RowBits::default();
        got.columns(&s, &flat);
        assert_eq!(got.cols[..len], want.cols[..len]);
    }
}
