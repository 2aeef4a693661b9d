//! The neurons that the Leaky/Synaptic kernel covers: their fused calls checked, packed for
//! the kernel and unpacked again.

use burn::tensor::Tensor;

use super::{Fused, FusedCall, Neuron, SpikeCore};
use crate::error::{Error, Result};
use crate::kernel::{self, LifKind, LifSpec, SpikeInput};

/// The neurons that the Leaky/Synaptic kernel covers: which kernel, their parameter rows,
/// and their state as the kernel's planes.
pub(super) trait FusedKind: Neuron {
    /// The kernel's neuron model.
    const KIND: LifKind;
    /// Threshold, surrogate and reset.
    fn core(&self) -> &SpikeCore;
    /// The kernel's parameter rows for width `n` (`[β, θ]` or `[α, β, θ]`), each `[1, n]`
    /// or `[1, 1]`.
    fn param_rows(&self, n: usize) -> Result<Vec<Tensor<2>>>;
    /// A scale applied to the input before the kernel (Lapicque's `Δt/C`).
    fn input_gain(&self) -> Option<f32> {
        None
    }
    /// The state as the kernel's planes, `[S, batch, features]` (`[U]` or `[I_syn, U]`).
    fn planes(&self, state: Self::State) -> Tensor<3>;
    /// The kernel's final-state planes as a state.
    fn state_of(&self, planes: Tensor<3>) -> Self::State;
}

/// The fused methods of [`Neuron`] for a neuron that implements [`FusedKind`].
macro_rules! fused_methods {
    () => {
        fn fused(
            &self,
            call: super::FusedCall<Self::State>,
        ) -> Option<Result<super::Fused<Self::State>>> {
            super::fused::fused_lif(self, call, None)
        }

        fn fused_linear(
            &self,
            call: super::FusedCall<Self::State>,
            weight: Tensor<2>,
        ) -> Option<Result<(Tensor<3>, Option<Self::State>)>> {
            super::fused::fused_lif_linear(self, call, None, weight)
        }

        fn fused_spiking(
            &self,
            call: super::FusedCall<Self::State>,
            input: crate::kernel::SpikeInput,
        ) -> Option<Result<super::Fused<Self::State>>> {
            super::fused::fused_lif(self, call, Some(input))
        }

        fn fused_spiking_linear(
            &self,
            call: super::FusedCall<Self::State>,
            input: crate::kernel::SpikeInput,
            weight: Tensor<2>,
        ) -> Option<Result<(Tensor<3>, Option<Self::State>)>> {
            super::fused::fused_lif_linear(self, call, Some(input), weight)
        }
    };
}
pub(super) use fused_methods;

/// A fused call checked and packed for the kernel.
struct Packed {
    input: Tensor<3>,
    params: Tensor<2>,
    init: Option<Tensor<3>>,
    spec: LifSpec,
    /// The input as spikes through a Linear layer (then `input` holds the spikes).
    spiking: Option<SpikeInput>,
}

/// Checks shapes and packs the parameter rows (`[1, N]` each, broadcast from scalars and
/// channels) and initial state of a fused call whose input is currents, or spikes through
/// the Linear layer `spiking`. `None` off the Flex backend.
fn pack<L: FusedKind>(
    layer: &L,
    call: FusedCall<L::State>,
    spiking: Option<SpikeInput>,
) -> Option<Result<Packed>> {
    if !kernel::supports(&call.input.device()) {
        return None;
    }
    let FusedCall {
        input,
        static_input,
        steps,
        state,
        mems,
        final_state,
    } = call;
    let [t, batch, width] = input.dims();
    if steps == 0 || (static_input && t != 1) || (!static_input && t != steps) {
        return Some(Err(Error::Shape {
            context: "fused sequence input steps",
            expected: vec![if static_input { 1 } else { steps }, batch, width],
            got: vec![t, batch, width],
        }));
    }
    let features = match &spiking {
        None => width,
        Some(s) => match check_spiking(s, [t, batch, width], static_input) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        },
    };
    let params = match layer.param_rows(features) {
        Ok(rows) => Tensor::cat(
            rows.into_iter().map(|r| r.expand([1, features])).collect(),
            0,
        ),
        Err(e) => return Some(Err(e)),
    };
    let init = state.map(|s| layer.planes(s));
    if let Some(planes) = &init {
        let expected = [L::KIND.state_rows(), batch, features];
        if planes.dims() != expected {
            return Some(Err(Error::Shape {
                context: "fused sequence initial state",
                expected: expected.to_vec(),
                got: planes.dims().to_vec(),
            }));
        }
    }
    // The spike path applies the gain inside the kernel, to the currents it computes.
    let input = match (layer.input_gain(), &spiking) {
        (Some(g), None) => input.mul_scalar(g),
        _ => input,
    };
    let core = layer.core();
    let spec = LifSpec {
        kind: L::KIND,
        reset: core.reset,
        surrogate: core.surrogate.clone(),
        steps,
        batch,
        features,
        static_input,
        mems,
        init: init.is_some(),
        final_state,
    };
    Some(Ok(Packed {
        input,
        params,
        init,
        spec,
        spiking,
    }))
}

/// Checks a spike input against its spikes `[T, B, K]`; returns the layer width `N`.
fn check_spiking(s: &SpikeInput, [t, batch, k]: [usize; 3], static_input: bool) -> Result<usize> {
    let [k_w, n] = s.weight.dims();
    if static_input || k_w != k || s.index.cols() != k || s.index.rows() != t * batch {
        return Err(Error::Shape {
            context: "spikes through a Linear layer (spikes vs weight rows and index)",
            expected: vec![t, batch, k_w],
            got: vec![s.index.rows(), s.index.cols(), k],
        });
    }
    if let Some(b) = &s.bias {
        if b.dims() != [n] {
            return Err(Error::Shape {
                context: "Linear layer bias",
                expected: vec![n],
                got: b.dims().to_vec(),
            });
        }
    }
    Ok(n)
}

/// [`Neuron::fused`] (and [`Neuron::fused_spiking`]) for the neurons that have a kernel.
pub(super) fn fused_lif<L: FusedKind>(
    layer: &L,
    call: FusedCall<L::State>,
    spiking: Option<SpikeInput>,
) -> Option<Result<Fused<L::State>>> {
    Some(pack(layer, call, spiking)?.map(|p| {
        let out = match p.spiking {
            None => kernel::fused_sequence(p.input, p.params, p.init, p.spec),
            Some(s) => {
                let gain = layer.input_gain();
                kernel::fused_spike_sequence(p.input, s, (p.params, p.init), p.spec, gain)
            }
        };
        Fused {
            spikes: out.spikes,
            mems: out.mems,
            state: out.state.map(|s| layer.state_of(s)),
        }
    }))
}

/// [`Neuron::fused_linear`] (and [`Neuron::fused_spiking_linear`]) for the neurons that
/// have a kernel.
pub(super) fn fused_lif_linear<L: FusedKind>(
    layer: &L,
    call: FusedCall<L::State>,
    spiking: Option<SpikeInput>,
    weight: Tensor<2>,
) -> Option<Result<(Tensor<3>, Option<L::State>)>> {
    Some(pack(layer, call, spiking)?.and_then(|p| {
        let [n, _] = weight.dims();
        if n != p.spec.features {
            return Err(Error::Shape {
                context: "fused Linear weight rows vs layer width",
                expected: vec![p.spec.features],
                got: vec![n],
            });
        }
        let (current, state) = match p.spiking {
            None => kernel::fused_sequence_linear(p.input, p.params, p.init, weight, p.spec),
            Some(s) => {
                let gain = layer.input_gain();
                let pi = (p.params, p.init);
                kernel::fused_spike_sequence_linear(p.input, s, pi, weight, p.spec, gain)
            }
        };
        Ok((current, state.map(|s| layer.state_of(s))))
    }))
}
