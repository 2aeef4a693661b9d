//! Adam's update of one parameter in a single pass: moments in place, new values out.
//!
//! burn's Adam runs about a dozen tensor ops per parameter, each a full pass over memory with
//! a fresh allocation; for the reference network's 795 k weights that was a fifth of a
//! training iteration. The arithmetic is PyTorch's (`torch.optim.Adam`, single-tensor path).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::lif::multiversion;

/// Adam's scalars for one step, from the hyper-parameters and the step number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// `1 − β₁`: the first moment moves this far towards the gradient.
    pub(crate) w1: f32,
    /// `β₂`.
    pub(crate) beta2: f32,
    /// `1 − β₂`.
    pub(crate) w2: f32,
    /// `√(1 − β₂ᵗ)`.
    pub(crate) bc2_sqrt: f32,
    /// `ε`.
    pub(crate) eps: f32,
    /// `lr / (1 − β₁ᵗ)`.
    pub(crate) step_size: f32,
}

impl AdamStep {
    /// The scalars of step `time` (from 1), computed in `f64` as PyTorch computes them.
    pub fn new(lr: f64, betas: (f64, f64), eps: f64, time: usize) -> Self {
        let t = time as i32;
        AdamStep {
            w1: (1.0 - betas.0) as f32,
            beta2: betas.1 as f32,
            w2: (1.0 - betas.1) as f32,
            bc2_sqrt: (1.0 - betas.1.powi(t)).sqrt() as f32,
            eps: eps as f32,
            step_size: (lr / (1.0 - betas.0.powi(t))) as f32,
        }
    }

    /// One element: updates `m` and `v`, returns the new parameter value.
    #[inline(always)]
    pub(crate) fn apply(&self, p: f32, g: f32, m: &mut f32, v: &mut f32) -> f32 {
        *m += self.w1 * (g - *m);
        *v = *v * self.beta2 + self.w2 * g * g;
        let denom = v.sqrt() / self.bc2_sqrt + self.eps;
        p - self.step_size * (*m / denom)
    }
}

/// Elements per parallel task (64 KiB of each array).
const CHUNK: usize = 1 << 14;

/// Updates the moments `m` and `v` in place and returns the new parameter values.
pub fn update(param: &[f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) -> Vec<f32> {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam: parameter, gradient and moments differ in length"
    );
    let mut out = Vec::with_capacity(n);
    out.spare_capacity_mut()
        .par_chunks_mut(CHUNK)
        .zip(param.par_chunks(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|((((o, p), g), m), v)| chunk(o, p, g, m, v, &s));
    // SAFETY: the chunks cover all `n` elements and `chunk` wrote every one of them.
    unsafe { out.set_len(n) };
    out
}

multiversion! {
    fn chunk<>(
        out: &mut [MaybeUninit<f32>],
        param: &[f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        s: &AdamStep,
    ) {
        let n = out.len();
        let (param, grad, m, v) = (&param[..n], &grad[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            out[i].write(s.apply(param[i], grad[i], &mut m[i], &mut v[i]));
        }
    }
}
