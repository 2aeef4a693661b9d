//! Fused multi-step neuron kernels for the CPU (burn's Flex backend).
//!
//! [`fused_sequence`] runs a Leaky or Synaptic layer over a whole sequence as one burn op with
//! a hand-written backward, instead of ~10 tensor ops per time step. The composed path (plain
//! tensor ops, any backend) stays the reference: the neurons use the fused op only on Flex
//! devices, and tests check that both agree, values and gradients.

mod adam;
mod lif;
mod lif_linear;
mod op;

pub use adam::AdamStep;
pub use lif::{LifKind, LifSpec};
pub use op::{FusedAdamBackend, FusedLifBackend};

use burn::backend::Dispatch;
use burn::tensor::{Device, Tensor};

/// Whether the fused kernels can run on `device` (the Flex CPU backend, with or without
/// autodiff).
pub fn supports(device: &Device) -> bool {
    // Device equality compares the hardware and ignores autodiff.
    *device == Device::flex()
}

/// Spikes (and membranes when `spec.mems`) of a layer over `spec.steps` steps, through the
/// fused op. `input` is `[T, B, N]`, or `[1, B, N]` holding one current for every step when
/// `spec.static_input`; `params` is `[rows, N]` as [`LifKind::param_rows`] says.
pub fn fused_sequence(
    input: Tensor<3>,
    params: Tensor<2>,
    spec: LifSpec,
) -> (Tensor<3>, Option<Tensor<3>>) {
    let [steps, batch, features] = (spec.steps, spec.batch, spec.features).into();
    let input = if spec.static_input {
        input.reshape([1, batch, features])
    } else {
        input
    };
    let mems = spec.mems;
    let out = Tensor::<3>::from_dispatch(<Dispatch as FusedLifBackend>::fused_lif(
        input.into_dispatch(),
        params.into_dispatch(),
        spec,
    ));
    if mems {
        (
            out.clone().narrow(0, 0, steps),
            Some(out.narrow(0, steps, steps)),
        )
    } else {
        (out, None)
    }
}

/// A Leaky or Synaptic layer followed by a Linear layer (`weight` `[N, M]`, no bias), as one
/// op: returns the next layer's input currents `[T, B, M]`; the layer's own spikes are never
/// materialised. `input` and `params` as for [`fused_sequence`] (`spec.mems` is ignored).
pub fn fused_sequence_linear(
    input: Tensor<3>,
    params: Tensor<2>,
    weight: Tensor<2>,
    spec: LifSpec,
) -> Tensor<3> {
    let input = if spec.static_input {
        input.reshape([1, spec.batch, spec.features])
    } else {
        input
    };
    Tensor::<3>::from_dispatch(<Dispatch as FusedLifBackend>::fused_lif_linear(
        input.into_dispatch(),
        params.into_dispatch(),
        weight.into_dispatch(),
        LifSpec {
            mems: false,
            ..spec
        },
    ))
}

/// One Adam step of a parameter through the fused op (Flex devices only; see
/// [`crate::optim::Adam`]): returns the new parameter and moments.
pub fn fused_adam<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <Dispatch as FusedAdamBackend>::fused_adam(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}
