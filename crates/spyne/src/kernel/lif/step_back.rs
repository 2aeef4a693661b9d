//! One step of the backward walk through time for a block of neurons: the arithmetic every
//! Leaky/Synaptic kernel's backward pass shares (see [`super::backward`] for the recursion).

use super::{step, SUB, ZERO, ZTI};
use crate::surrogate::{eval, DerivativeRef};

/// The running state of the backward walk over a block of `L` neurons: what step `t + 1`
/// hands to step `t`, and the parameter gradients summed so far.
#[derive(Clone, Copy)]
pub(in crate::kernel) struct Lanes<const L: usize> {
    /// `δ[t+1] = ∂L/∂U[t+1]`.
    pub(in crate::kernel) du_next: [f32; L],
    /// `δ_syn[t+1]` (Synaptic).
    pub(in crate::kernel) dsyn_next: [f32; L],
    /// `∂U[t+1]/∂U[t]`.
    pub(in crate::kernel) carry: [f32; L],
    /// `Σ ∂L/∂β`, `Σ ∂L/∂θ`, `Σ ∂L/∂α` so far.
    pub(in crate::kernel) gb: [f32; L],
    pub(in crate::kernel) gt: [f32; L],
    pub(in crate::kernel) ga: [f32; L],
}

impl<const L: usize> Default for Lanes<L> {
    fn default() -> Self {
        let z = [0.0; L];
        Lanes {
            du_next: z,
            dsyn_next: z,
            carry: z,
            gb: z,
            gt: z,
            ga: z,
        }
    }
}

/// The block's neuron parameters (`alpha` zeros for Leaky).
pub(in crate::kernel) struct LaneParams<const L: usize> {
    pub(in crate::kernel) alpha: [f32; L],
    pub(in crate::kernel) beta: [f32; L],
    pub(in crate::kernel) theta: [f32; L],
}

/// What one step of the walk reads for the block.
pub(in crate::kernel) struct StepIn<const L: usize> {
    /// `U[t]`, `U[t−1]`, `I_syn[t−1]`.
    pub(in crate::kernel) u_t: [f32; L],
    pub(in crate::kernel) u_prev: [f32; L],
    pub(in crate::kernel) syn_prev: [f32; L],
    /// Upstream `∂L/∂S[t]` and `∂L/∂U[t]`.
    pub(in crate::kernel) g_s: [f32; L],
    pub(in crate::kernel) g_u: [f32; L],
    /// The final state's gradient, at the last step only (zeros elsewhere).
    pub(in crate::kernel) end_u: [f32; L],
    pub(in crate::kernel) end_syn: [f32; L],
}

/// One step back in time for a block of neurons (see [`super::backward`] for the recursion):
/// updates the running state and returns `∂L/∂I[t]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // one lane of a dozen arrays at a time
pub(in crate::kernel) fn back_step<
    const SYN: bool,
    const RESET: u8,
    const SG: u8,
    const L: usize,
>(
    run: &mut Lanes<L>,
    p: &LaneParams<L>,
    (k, custom): ([f32; 2], DerivativeRef),
    s: &StepIn<L>,
) -> [f32; L] {
    let mut g_in = [0.0f32; L];
    for l in 0..L {
        let d = eval::<SG>(k, custom, s.u_t[l] - p.theta[l]);
        let r = step(s.u_prev[l] - p.theta[l]);
        // How much of U[t−1] and of the step's input reach U[t].
        let keep = if RESET == ZERO || RESET == ZTI {
            1.0 - r
        } else {
            1.0
        };
        let keep_in = if RESET == ZERO { keep } else { 1.0 };
        let du = s.g_u[l] + s.end_u[l] + s.g_s[l] * d + run.carry[l] * run.du_next[l];
        g_in[l] = if SYN {
            let dsyn = du * keep_in + p.alpha[l] * run.dsyn_next[l] + s.end_syn[l];
            run.ga[l] += dsyn * s.syn_prev[l];
            run.dsyn_next[l] = dsyn;
            dsyn
        } else {
            du
        };
        run.gb[l] += du * keep * s.u_prev[l];
        run.gt[l] -= s.g_s[l] * d + if RESET == SUB { du * r } else { 0.0 };
        // ∂U[t]/∂U[t−1], used one step earlier in time.
        run.carry[l] = p.beta[l] * keep;
        run.du_next[l] = du;
    }
    g_in
}

#[inline(always)]
pub(in crate::kernel) fn lanes<const L: usize>(s: &[f32]) -> [f32; L] {
    let mut a = [0.0f32; L];
    a.copy_from_slice(&s[..L]);
    a
}
