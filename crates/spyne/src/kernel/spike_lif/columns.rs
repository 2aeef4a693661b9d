//! The input weight gradient of the spike-input op by input column: `∂L/∂W_in[k] = Σ δ[t, b]`
//! over the rows of the chunk where input `k` fired, summed in registers.
//!
//! Adding each step's `δ[t, b]` to the weight rows of the inputs that fired then (a load, an
//! add and a store per spike, to random rows of a 45 KB block) cost about three cycles per
//! spike. Here the walk leaves the chunk's `δ` in the slots of the recomputed membranes it no
//! longer needs, and each input's column sums its slots with loads alone: one store per input
//! and chunk.

use super::{SpikeLifSpec, LANE_BLOCK};

/// One chunk of the spike index transposed: for every input, where the rows at which it
/// fired keep their `δ` in a full lane block's [`super::walk::Scratch::us`].
pub(super) struct ChunkColumns {
    k: usize,
    /// `starts[k]..starts[k + 1]` are the entries of input `k`.
    starts: Vec<u32>,
    /// Float offsets into `us`: `b·per_b + (t − t0 + 1)·LANE_BLOCK` for row `(t, b)` of the
    /// chunk `t0..`.
    slots: Vec<u32>,
}

impl ChunkColumns {
    /// Transposes chunk `c` of `spec.index`.
    pub(super) fn new(spec: &SpikeLifSpec, c: usize) -> ChunkColumns {
        let (k_n, b_n) = (spec.index.cols(), spec.lif.batch);
        let per_b = spec.per_b();
        assert!(
            b_n * per_b <= u32::MAX as usize,
            "a chunk's slots fit in u32 offsets"
        );
        let steps = spec.chunk(c);
        let rows = steps.start * b_n..steps.end * b_n;
        let mut starts = vec![0u32; k_n + 1];
        for r in rows.clone() {
            for &k in spec.index.row(r) {
                starts[k as usize + 1] += 1;
            }
        }
        for k in 0..k_n {
            starts[k + 1] += starts[k];
        }
        let mut next = starts[..k_n].to_vec();
        let mut slots = vec![0u32; starts[k_n] as usize];
        for r in rows {
            let (t, b) = (r / b_n, r % b_n);
            let slot = (b * per_b + (t - steps.start + 1) * LANE_BLOCK) as u32;
            for &k in spec.index.row(r) {
                let at = &mut next[k as usize];
                slots[*at as usize] = slot;
                *at += 1;
            }
        }
        ChunkColumns {
            k: k_n,
            starts,
            slots,
        }
    }

    /// The slots of input `k`, in row order.
    #[inline(always)]
    fn column(&self, k: usize) -> &[u32] {
        &self.slots[self.starts[k] as usize..self.starts[k + 1] as usize]
    }
}

/// `dw[k·L..(k + 1)·L] += Σ us[slot..slot + L]` over the slots of input `k` in the chunk,
/// for every input (`L` = [`LANE_BLOCK`]): `dw` is one full lane block's `[K, L]` columns of
/// `∂L/∂W_in`, and `us` holds the lane block's `δ` of the chunk in its slots, then `L`
/// zeros. Each sum runs as `(s₀ + s₁) + (s₂ + s₃)`, `s_i` adding the slots `i, i + 4, …` in
/// order.
pub(super) fn add_columns(cols: &ChunkColumns, us: &[f32], dw: &mut [f32], avx512: bool) {
    const L: usize = LANE_BLOCK;
    assert!(dw.len() >= cols.k * L, "one lane block of weight rows");
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        let zero = us.len() - L;
        assert!(us[zero..].iter().all(|&v| v.to_bits() == 0), "a slot of +0");
        debug_assert!(cols.slots.iter().all(|&s| s as usize + L <= us.len()));
        // SAFETY: the CPU has AVX-512F (the caller checked); every slot's `L` floats lie in
        // `us` (the slots are built for the scratch's layout, which holds every batch row's
        // chunk), and so does the slot of zeros at `zero` (checked above); `dw` holds K rows
        // of `L` floats (asserted above).
        unsafe { x86::add_columns(cols, us.as_ptr(), zero as u32, dw.as_mut_ptr()) };
        return;
    }
    let _ = avx512;
    for k in 0..cols.k {
        let slots = cols.column(k);
        if slots.is_empty() {
            continue;
        }
        let mut acc = [[0.0f32; L]; 4];
        let quads = slots.chunks_exact(4);
        let rest = quads.remainder();
        for quad in quads {
            for (a, &s) in acc.iter_mut().zip(quad) {
                for (a, v) in a.iter_mut().zip(&us[s as usize..][..L]) {
                    *a += v;
                }
            }
        }
        for (a, &s) in acc.iter_mut().zip(rest) {
            for (a, v) in a.iter_mut().zip(&us[s as usize..][..L]) {
                *a += v;
            }
        }
        for (l, d) in dw[k * L..][..L].iter_mut().enumerate() {
            *d += (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::x86::gather_sum;
    use super::ChunkColumns;

    /// [`super::add_columns`] on AVX-512 (one function, so that the per-input sums inline).
    ///
    /// # Safety
    /// The CPU has AVX-512F; 16 floats are readable from `us` at every slot of `cols` and at
    /// `zero`, those at `zero` +0; `dw` holds K rows of 16 floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn add_columns(cols: &ChunkColumns, us: *const f32, zero: u32, dw: *mut f32) {
        for k in 0..cols.k {
            let slots = cols.column(k);
            if slots.is_empty() {
                continue;
            }
            // SAFETY: every slot's floats are readable, and row k of `dw` holds 16 floats
            // (the caller's contract).
            unsafe {
                let s = gather_sum(us, slots, zero, 1);
                let dst = dw.add(k * 16);
                _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), s));
            }
        }
    }
}
