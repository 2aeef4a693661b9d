//! Adam as PyTorch computes it, one fused pass per parameter on the CPU.

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::kernel::{self, AdamStep};

/// Adam (Kingma & Ba) with `torch.optim.Adam`'s arithmetic. With gradient `g` at step `t`:
///
/// ```text
/// m ← m + (1 − β₁)·(g − m)
/// v ← β₂·v + (1 − β₂)·g²
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// On the Flex CPU backend each parameter is updated in one multi-threaded pass (moments in
/// place); elsewhere the same formula runs as tensor ops. The state is burn's [`AdamState`],
/// so optimizer records are interchangeable with burn's own Adam.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    /// `(β₁, β₂)`: decay of the first and second moments.
    pub betas: (f32, f32),
    /// `ε`, added to the denominator.
    pub eps: f32,
}

impl Default for Adam {
    /// PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8.
    fn default() -> Self {
        Adam {
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }
}

impl Adam {
    /// Adam with these moment decays and `ε`.
    pub fn new(betas: (f32, f32), eps: f32) -> Self {
        Adam { betas, eps }
    }

    /// burn's module optimizer, stepping every parameter of a module with this Adam.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let betas = (f64::from(self.betas.0), f64::from(self.betas.1));
        let step = AdamStep::new(lr, betas, f64::from(self.eps), time);
        let (tensor, m, v) = if kernel::supports(&tensor.device()) {
            kernel::fused_adam(tensor, grad, m, v, step)
        } else {
            composed(tensor, grad, m, v, &step)
        };
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// The same update as tensor ops, in the fused kernel's order of operations.
fn composed<const D: usize>(
    p: Tensor<D>,
    g: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    s: &AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let m = m.clone() + (g.clone() - m).mul_scalar(s.w1);
    let v = v.mul_scalar(s.beta2) + g.clone().mul_scalar(s.w2).mul(g);
    let denom = v.clone().sqrt().div_scalar(s.bc2_sqrt).add_scalar(s.eps);
    let p = p - m.clone().div(denom).mul_scalar(s.step_size);
    (p, m, v)
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    fn tensor(values: Vec<f32>, device: &Device) -> Tensor<1> {
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [n]), device)
    }

    #[test]
    fn fused_update_equals_composed_bit_for_bit() {
        let dev = Device::flex();
        // Several parallel chunks and a ragged tail.
        let n = 3 * (1 << 14) + 123;
        let wave = |k: f32| (0..n).map(|i| ((i as f32) * k).sin()).collect::<Vec<_>>();
        let (mut pf, mut pc) = (tensor(wave(0.37), &dev), tensor(wave(0.37), &dev));
        let [mut mf, mut vf, mut mc, mut vc] = [0; 4].map(|_| tensor(vec![0.0; n], &dev));
        for time in 1..=3 {
            let g = tensor(wave(0.11 * time as f32), &dev);
            let s = AdamStep::new(1e-3, (0.9, 0.999), 1e-8, time);
            (pf, mf, vf) = kernel::fused_adam(pf, g.clone(), mf, vf, s);
            (pc, mc, vc) = composed(pc, g, mc, vc, &s);
        }
        let bits = |t: Tensor<1>| -> Vec<u32> {
            t.into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(pf), bits(pc));
        assert_eq!(bits(mf), bits(mc));
        assert_eq!(bits(vf), bits(vc));
    }
}
