//! Where binary spike inputs are active: the index that spike-driven layers walk instead of
//! a dense product over zeros.
//!
//! A layer whose input is spikes (0 or 1) computes `y = x·W` as the sum of the weight rows of
//! the inputs that fired, and its weight gradient `∂L/∂W[k] = Σ_{rows where x[k] = 1} ∂L/∂y`
//! the same way: work in proportion to the spikes. Building the index is one vectorised pass
//! over the input; it gives up as soon as it meets a value that is not 0 or 1, or more ones
//! than the layer's crossover density, so a dense input costs little to reject.

use std::sync::Arc;

use burn::backend::Flex;
use burn::tensor::Tensor;
use rayon::prelude::*;

/// Rows per parallel task of the scan.
const SCAN_ROWS: usize = 256;

/// The active inputs of a `[rows, cols]` binary tensor, row by row (compressed sparse rows
/// without values: every stored entry is a 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpikeIndex {
    rows: usize,
    cols: usize,
    /// `starts[r]..starts[r + 1]` are row `r`'s entries of `active`.
    starts: Vec<u32>,
    /// Column of each active entry, ascending within a row.
    active: Vec<u32>,
}

impl SpikeIndex {
    /// The index of `values` (`[rows, cols]`, row-major), or `None` when a value is neither 0
    /// nor 1 (NaN included; −0 counts as 0), or when more than `max_density` of the values
    /// are ones (a block of rows may hold up to twice that, so the scan can stop early).
    pub fn build(values: &[f32], cols: usize, max_density: f32) -> Option<SpikeIndex> {
        if cols == 0 || values.is_empty() || !values.len().is_multiple_of(cols) {
            return None;
        }
        let rows = values.len() / cols;
        // Entries are u32: a tensor with more ones than that is not worth indexing.
        if (values.len() as f64 * f64::from(max_density)) >= f64::from(u32::MAX) || cols > 1 << 31 {
            return None;
        }
        let local_limit = |n: usize| (2.0 * f64::from(max_density) * n as f64).ceil() as usize;
        let blocks: Option<Vec<(Vec<u32>, Vec<u32>)>> = values
            .par_chunks(SCAN_ROWS * cols)
            .map(|block| {
                let limit = local_limit(block.len());
                let mut counts = Vec::with_capacity(block.len() / cols);
                let mut active = Vec::new();
                for row in block.chunks_exact(cols) {
                    let before = active.len();
                    if !scan_row(row, &mut active) || active.len() > limit {
                        return None;
                    }
                    counts.push((active.len() - before) as u32);
                }
                Some((counts, active))
            })
            .collect();
        let blocks = blocks?;
        let total: usize = blocks.iter().map(|(_, a)| a.len()).sum();
        if total as f64 > f64::from(max_density) * values.len() as f64 {
            return None;
        }
        let mut starts = Vec::with_capacity(rows + 1);
        let mut active = Vec::with_capacity(total);
        starts.push(0u32);
        for (counts, cols_of) in blocks {
            for c in counts {
                starts.push(starts.last().copied().unwrap_or(0) + c);
            }
            active.extend_from_slice(&cols_of);
        }
        Some(SpikeIndex {
            rows,
            cols,
            starts,
            active,
        })
    }

    /// [`SpikeIndex::build`] over a tensor's values, folded to `[rows, last dim]`. `None` off
    /// the Flex CPU backend as well.
    pub fn of<const D: usize>(x: &Tensor<D>, max_density: f32) -> Option<Arc<SpikeIndex>> {
        let cols = *x.dims().last()?;
        let flex = x.clone().inner().try_into_primitive::<Flex>().ok()?;
        let (flex, _) = super::op::values(flex);
        SpikeIndex::build(flex.storage::<f32>(), cols, max_density).map(Arc::new)
    }

    /// The index of rows `rows` alone.
    pub fn rows_range(&self, rows: std::ops::Range<usize>) -> SpikeIndex {
        let (a, b) = (self.starts[rows.start], self.starts[rows.end]);
        SpikeIndex {
            rows: rows.len(),
            cols: self.cols,
            starts: self.starts[rows]
                .iter()
                .chain([&b])
                .map(|s| s - a)
                .collect(),
            active: self.active[a as usize..b as usize].to_vec(),
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs per row).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The active columns of row `r`, ascending.
    #[inline(always)]
    pub fn row(&self, r: usize) -> &[u32] {
        &self.active[self.starts[r] as usize..self.starts[r + 1] as usize]
    }

    /// Active entries in all.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Whether no input is active.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The fraction of entries that are ones.
    pub fn density(&self) -> f32 {
        self.active.len() as f32 / (self.rows * self.cols).max(1) as f32
    }

    /// Bytes the index holds.
    pub fn bytes(&self) -> usize {
        4 * (self.starts.len() + self.active.len())
    }
}

/// Appends the columns of `row` that hold a 1 to `out`; false when a value is neither 0 nor 1.
fn scan_row(row: &[f32], out: &mut Vec<u32>) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { x86::scan_avx512(row, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::scan_avx2(row, out) };
        }
    }
    scan_tail(row, 0, out)
}

/// The scalar scan of `row[from..]` (columns numbered from 0 of `row`).
#[inline(always)]
fn scan_tail(row: &[f32], from: usize, out: &mut Vec<u32>) -> bool {
    for (k, &v) in row.iter().enumerate().skip(from) {
        if v == 1.0 {
            out.push(k as u32);
        } else if v != 0.0 {
            return false;
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::scan_tail;

    /// Pushes `base + i` for every set bit `i` of `mask`.
    #[inline(always)]
    fn push_bits(mut mask: u32, base: usize, out: &mut Vec<u32>) {
        while mask != 0 {
            out.push((base + mask.trailing_zeros() as usize) as u32);
            mask &= mask - 1;
        }
    }

    /// 16 lanes at a time: one compare for "not zero" (NaN included), one for "is one".
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scan_avx512(row: &[f32], out: &mut Vec<u32>) -> bool {
        let (zero, one) = (_mm512_setzero_ps(), _mm512_set1_ps(1.0));
        let full = row.len() / 16 * 16;
        let mut k = 0;
        while k < full {
            // SAFETY: k + 16 <= row.len().
            let v = unsafe { _mm512_loadu_ps(row.as_ptr().add(k)) };
            let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, zero);
            if nonzero != 0 {
                let ones = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(v, one);
                if nonzero & !ones != 0 {
                    return false;
                }
                push_bits(u32::from(ones), k, out);
            }
            k += 16;
        }
        scan_tail(row, full, out)
    }

    /// 8 lanes at a time, as [`scan_avx512`].
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan_avx2(row: &[f32], out: &mut Vec<u32>) -> bool {
        let (zero, one) = (_mm256_setzero_ps(), _mm256_set1_ps(1.0));
        let full = row.len() / 8 * 8;
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= row.len().
            let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(k)) };
            let nonzero = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero)) as u32;
            if nonzero != 0 {
                let ones = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(v, one)) as u32;
                if nonzero & !ones != 0 {
                    return false;
                }
                push_bits(ones, k, out);
            }
            k += 8;
        }
        scan_tail(row, full, out)
    }
}
