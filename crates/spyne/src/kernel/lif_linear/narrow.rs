//! The fused layer + Linear for a narrow Linear, on AVX-512: at most [`MAX_OUT`] outputs, as a
//! classifier's last layer (tutorial 5's 1000 → 10).
//!
//! The general path ([`super`]) gathers a task's spikes over time and runs two GEMMs with the
//! Linear's width as one of their sizes. At 10 outputs gemm spends as long packing as
//! multiplying, and the `[T·rows, N]` spikes and spike gradients are written whole and read
//! back. Here a row of W (M ≤ 16 floats) is one register, and every product runs on one
//! batch row at a time:
//! - forward, after each step's neuron update: `I'[t] = Σ_{j fired} W[j]`, one vector add per
//!   spike (the spikes are never stored; a fifth of the neurons fire);
//! - backward, per block of 16 neurons: `∂L/∂S[t] = ∂L/∂I'[t]·Wᵀ` with the block's M vectors
//!   of Wᵀ in registers, into a `[T, 16]` buffer that the walk back in time then reads from
//!   L1; and `∂L/∂Wᵀ[k] += Σ_t ∂L/∂I'[t][k]·S[t]` with the block's M sums in registers over
//!   the steps, one masked add each per step (adding `∂L/∂I'[t]` to a row per spike, as the
//!   forward does, measured slower: each is a load, an add and a store).

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::buffer::{Aligned, Shared};
use super::super::dense::{give_back_scratch, take_scratch};
use super::super::lif::{
    input_row, load_state, recompute_row, step_row, store_state, Params, Rows, Walk,
};
use super::super::LifSpec;
use super::Task;
use crate::surrogate::with_surrogate_code;

/// The widest Linear this path takes: a row of its weights is one register.
pub(super) const MAX_OUT: usize = 16;

/// Floats per AVX-512 register.
const LANES: usize = 16;

/// Whether this path runs a Linear of `m` outputs on this CPU.
pub(super) fn applies(m: usize) -> bool {
    (1..=MAX_OUT).contains(&m)
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// W, `[N, M]` row-major, as N rows padded with zeros to a register, each on its own cache
/// line (`[N, 16]`).
pub(super) fn padded_rows(w: &[f32], m: usize) -> Aligned {
    let mut rows = Aligned::zeroed(w.len() / m * LANES);
    for (dst, src) in rows.chunks_exact_mut(LANES).zip(w.chunks_exact(m)) {
        dst[..m].copy_from_slice(src);
    }
    rows
}

/// Calls `$go::<M>(…)` with the Linear's width `$m` (1 to [`MAX_OUT`]) as a constant, so that
/// its per-output registers are a fixed set.
macro_rules! by_width {
    ($m:expr, $go:ident ( $($arg:expr),* )) => {
        match $m {
            1 => $go::<1>($($arg),*),
            2 => $go::<2>($($arg),*),
            3 => $go::<3>($($arg),*),
            4 => $go::<4>($($arg),*),
            5 => $go::<5>($($arg),*),
            6 => $go::<6>($($arg),*),
            7 => $go::<7>($($arg),*),
            8 => $go::<8>($($arg),*),
            9 => $go::<9>($($arg),*),
            10 => $go::<10>($($arg),*),
            11 => $go::<11>($($arg),*),
            12 => $go::<12>($($arg),*),
            13 => $go::<13>($($arg),*),
            14 => $go::<14>($($arg),*),
            15 => $go::<15>($($arg),*),
            16 => $go::<16>($($arg),*),
            m => unreachable!("the narrow path takes 1 to {MAX_OUT} outputs, not {m}"),
        }
    };
}

/// The mask of the real lanes of the block of neurons starting at `j` (of `n`).
#[inline(always)]
fn lanes(n: usize, j: usize) -> __mmask16 {
    first((n - j).min(LANES))
}

/// The mask of a row's first `m` lanes.
#[inline(always)]
fn first(m: usize) -> __mmask16 {
    (u32::MAX >> (32 - m)) as u16
}

/// Writes the indices of the neurons that fire (`u[j] − θ[j] > 0`) into `idx`, in order
/// (`idx` has room for 16 more than the neurons); returns how many, and whether some
/// `u[j] − θ[j]` is NaN.
#[inline(always)]
fn firing(u: &[f32], theta: &[f32], idx: &mut [u32]) -> (usize, bool) {
    let n = theta.len();
    assert!(u.len() == n && idx.len() >= n + LANES && n <= i32::MAX as usize);
    let (mut count, mut nan) = (0usize, 0u16);
    // SAFETY: the CPU has AVX-512F (the callers' target features); the masked lanes lie inside
    // `u` and `theta`, and each store of 16 indices starts at `count ≤ j`, inside `idx`'s
    // `n + 16`.
    unsafe {
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for j in (0..n).step_by(LANES) {
            let real = lanes(n, j);
            let x = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(real, u.as_ptr().add(j)),
                _mm512_maskz_loadu_ps(real, theta.as_ptr().add(j)),
            );
            // A lane outside `real` compares 0 > 0.
            let fired = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_setzero_ps());
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            let ids = _mm512_maskz_compress_epi32(
                fired,
                _mm512_add_epi32(iota, _mm512_set1_epi32(j as i32)),
            );
            _mm512_storeu_si512(idx.as_mut_ptr().add(count).cast(), ids);
            count += fired.count_ones() as usize;
        }
    }
    (count, nan != 0)
}

/// [`super::forward`] over the batch rows `rows`, with W as padded rows.
#[target_feature(enable = "avx512f,popcnt")]
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_rows<const SYN: bool, const RESET: u8>(
    spec: &LifSpec,
    input: &[f32],
    p: Params,
    init: &[f32],
    (w, m): (&[f32], usize),
    rows: Range<usize>,
    out: Shared,
) {
    let (b_n, n) = (spec.batch, spec.features);
    let theta = &p.theta[..n];
    let (mut u, mut syn) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut idx = vec![0u32; n + LANES];
    for b in rows {
        load_state::<SYN>(spec, init, b, &mut u, &mut syn);
        for t in 0..spec.steps {
            step_row::<SYN, RESET>(p, input_row(spec, input, t, b), &mut u, &mut syn);
            // SAFETY: row (t, b) of the currents belongs to this task alone.
            let dst = unsafe { out.row(t * b_n + b, m) };
            currents(&u, theta, w, &mut idx, dst);
        }
        if spec.final_state {
            // SAFETY: the state follows the T·B·M currents in `out`; its row b belongs to
            // this task alone.
            unsafe {
                let state = Shared(out.0.add(spec.steps * b_n * m));
                store_state::<SYN>(spec, state, 0, b, &u, &syn);
            }
        }
    }
}

/// `dst = Σ_{j fired} W[j]` for the spikes `H(u − θ)` of one row at one step, W as
/// [`padded_rows`]. A NaN membrane makes every output NaN, as its NaN spike does in the dense
/// product.
#[inline]
#[target_feature(enable = "avx512f,popcnt")]
fn currents(u: &[f32], theta: &[f32], w: &[f32], idx: &mut [u32], dst: &mut [f32]) {
    assert!(w.len() == theta.len() * LANES && (1..=LANES).contains(&dst.len()));
    assert!(
        (w.as_ptr() as usize).is_multiple_of(64),
        "padded rows start on a cache line"
    );
    let (count, nan) = firing(u, theta, idx);
    let row = |q: usize| {
        // SAFETY: `firing` wrote `count` indices of neurons, each below `theta.len()`, so
        // each row lies inside `w`, on a cache line (asserted above).
        unsafe { _mm512_load_ps(w.as_ptr().add(*idx.get_unchecked(q) as usize * LANES)) }
    };
    // Four sums, so that the adds do not wait on each other.
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut q = 0;
    while q + 4 <= count {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm512_add_ps(*a, row(q + k));
        }
        q += 4;
    }
    for q in q..count {
        acc[0] = _mm512_add_ps(acc[0], row(q));
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    // SAFETY: the first `dst.len()` lanes lie inside `dst`.
    unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), first(dst.len()), sum) };
    if nan {
        dst.fill(f32::NAN);
    }
}

/// Picks the surrogate's instance of [`backward_rows`].
///
/// # Safety
/// The CPU has AVX-512F and POPCNT.
pub(super) unsafe fn backward_task<const SYN: bool, const RESET: u8>(
    task: &Task,
    rows: Range<usize>,
    g_params: &mut [f32],
    g_wt: &mut [f32],
) {
    // SAFETY: the caller's.
    unsafe {
        with_surrogate_code!(
            task.spec.surrogate,
            backward_rows::<SYN, RESET>(task, rows, g_params, g_wt)
        )
    }
}

/// [`super::backward`] over the batch rows `rows`, row by row: recompute the membranes, then
/// block by block of 16 neurons the weight and spike gradients and the walk back in time
/// (the block's `[T, 16]` spike gradients stay in L1 between the two).
#[target_feature(enable = "avx512f,popcnt")]
fn backward_rows<const SYN: bool, const RESET: u8, const SG: u8>(
    task: &Task,
    rows: Range<usize>,
    g_params: &mut [f32],
    g_wt: &mut [f32],
) {
    let Task {
        spec,
        input,
        p,
        wt,
        m,
        grad,
        k,
        custom,
        g_input,
        state,
    } = *task;
    let (t_n, b_n, n) = (spec.steps, spec.batch, spec.features);
    let per_row = (t_n + 1) * n;
    let syn_len = if SYN { per_row } else { 0 };
    let len = per_row + syn_len + t_n * LANES;
    let mut syn = vec![0.0f32; n];
    // Every scratch element is written before it is read: `recompute_row` sets U[−1] (and
    // I_syn[−1]), `block_grads` the block's spike gradients.
    let mut buffer = take_scratch(len);
    {
        let (us, rest) = buffer[..len].split_at_mut(per_row); // U[−1], U[0], …, U[T−1]
        let (syns, g_s) = rest.split_at_mut(syn_len); // g_s: [T, 16], one block's
        for b in rows {
            // Row by row, not block by block: a block's recompute is one chain of T steps.
            recompute_row::<SYN, RESET>(spec, p, input, state.init, b, us, syns, &mut syn);
            let go = Rows::new(grad, b_n * m, b * m);
            for j in (0..n).step_by(LANES) {
                by_width!(m, block_grads(us, &p.theta[..n], go, wt, j, g_wt, g_s));
                let walk = Walk {
                    spec,
                    p,
                    sg: (k, custom),
                    b,
                    us,
                    syns,
                    g_s: Rows {
                        data: g_s,
                        stride: LANES,
                        offset: 0,
                        lane0: j,
                    },
                    g_u: None,
                    g_input,
                    state,
                };
                walk.neurons::<SYN, RESET, SG>(j..(j + LANES).min(n), g_params);
            }
        }
    }
    give_back_scratch(buffer);
}

/// For the block of neurons from `j` of one batch row: the weight gradient
/// `∂L/∂Wᵀ[k] += Σ_t ∂L/∂I'[t][k]·S[t]` (`g_wt`, `[M, N]`), with the block's M sums in
/// registers and its spikes `S[t] = H(U[t] − θ)` from the row's recomputed membranes `us`
/// (`U[−1], U[0], …`); then its spike gradients (see [`spike_grads`]). `go.row(t)` is the
/// row's `∂L/∂I'[t]`.
#[inline]
#[target_feature(enable = "avx512f,popcnt")]
#[allow(clippy::too_many_arguments)]
fn block_grads<const M: usize>(
    us: &[f32],
    theta: &[f32],
    go: Rows,
    wt: &[f32],
    j: usize,
    g_wt: &mut [f32],
    g_s: &mut [f32],
) {
    let n = theta.len();
    let t_n = g_s.len() / LANES;
    assert!(us.len() == (t_n + 1) * n && wt.len() == M * n && g_wt.len() == M * n && j < n);
    let real = lanes(n, j);
    let zero = _mm512_setzero_ps();
    // SAFETY: the masked lanes lie inside `theta`, every row of `us` and row k of `g_wt`.
    unsafe {
        let th = _mm512_maskz_loadu_ps(real, theta.as_ptr().add(j));
        let mut acc = [zero; M];
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm512_maskz_loadu_ps(real, g_wt.as_ptr().add(k * n + j));
        }
        for t in 0..t_n {
            let u = _mm512_maskz_loadu_ps(real, us.as_ptr().add((t + 1) * n + j));
            let s = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_sub_ps(u, th), zero);
            for (a, &g) in acc.iter_mut().zip(go.row(t, M)) {
                *a = _mm512_mask_add_ps(*a, s, *a, _mm512_set1_ps(g));
            }
        }
        for (k, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(g_wt.as_mut_ptr().add(k * n + j), real, *a);
        }
    }
    spike_grads::<M>(go, wt, j, g_s);
}

/// The spike gradients `g_s[t] = ∂L/∂I'[t]·Wᵀ` of the block of neurons from `j` of one batch
/// row, `[T, 16]`, with the block's M vectors of Wᵀ (`[M, N]`) in registers; `go.row(t)` is
/// the row's `∂L/∂I'[t]`.
#[inline]
#[target_feature(enable = "avx512f,popcnt")]
fn spike_grads<const M: usize>(go: Rows, wt: &[f32], j: usize, g_s: &mut [f32]) {
    let n = wt.len() / M;
    let t_n = g_s.len() / LANES;
    assert!(wt.len() == M * n && j < n && g_s.len() == t_n * LANES);
    let real = lanes(n, j);
    let zero = _mm512_setzero_ps();
    // SAFETY: the masked lanes lie inside row k of `wt`, and row t of `g_s` is 16 floats.
    unsafe {
        let mut w = [zero; M];
        for (k, w) in w.iter_mut().enumerate() {
            *w = _mm512_maskz_loadu_ps(real, wt.as_ptr().add(k * n + j));
        }
        for t in 0..t_n {
            let g = go.row(t, M);
            // Two chains of multiply-adds, to halve the wait on each one's latency.
            let (mut even, mut odd) = (_mm512_mul_ps(_mm512_set1_ps(g[0]), w[0]), zero);
            for k in 1..M {
                let acc = if k % 2 == 0 { &mut even } else { &mut odd };
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(g[k]), w[k], *acc);
            }
            _mm512_storeu_ps(g_s.as_mut_ptr().add(t * LANES), _mm512_add_ps(even, odd));
        }
    }
}
