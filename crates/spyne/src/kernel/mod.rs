//! Fused multi-step neuron kernels for the CPU (burn's Flex backend).
//!
//! [`fused_sequence`] runs a Leaky or Synaptic layer over a whole sequence as one burn op with
//! a hand-written backward, instead of ~10 tensor ops per time step. The composed path (plain
//! tensor ops, any backend) stays the reference: the neurons use the fused op only on Flex
//! devices, and tests check that both agree, values and gradients.

mod adam;
mod buffer;
mod conv;
mod conv_op;
mod cross_entropy;
mod dense;
mod dense_linear;
mod lif;
mod lif_linear;
mod linear_op;
mod loss_op;
mod op;
mod rlif;
mod rlif_op;
mod spike_index;
mod spike_lif;
mod spike_linear;
mod spike_op;

pub use adam::AdamStep;
pub use conv::{ConvPath, ConvSpec, SPARSE_FORWARD_DENSITY};
pub use conv_op::ConvBackend;
pub use lif::{LifKind, LifSpec};
pub use linear_op::LinearBackend;
pub use loss_op::{CrossEntropySpec, LossBackend};
pub use op::{FusedAdamBackend, FusedLifBackend};
pub use rlif::{RlifSpec, PARAM_ROWS as RLIF_PARAM_ROWS};
pub use rlif_op::FusedRlifBackend;
pub use spike_index::SpikeIndex;
pub use spike_lif::SpikeLifSpec;
pub use spike_linear::SpikeLinearSpec;
pub use spike_op::SpikeBackend;

use std::sync::Arc;

use burn::backend::Dispatch;
use burn::tensor::{Device, Tensor};

/// Binary inputs at most this dense take the spike-driven Linear layer (forward and weight
/// gradient from the active inputs); denser ones the dense product. `spyne bench
/// --crossover` measured the crossover at about 0.18 for the Linear layer alone and 0.25 for
/// it fused into the neuron layer after it (BENCHMARKS.md).
pub const SPARSE_LINEAR_DENSITY: f32 = 0.15;

/// Whether the fused kernels can run on `device` (the Flex CPU backend, with or without
/// autodiff).
pub fn supports(device: &Device) -> bool {
    // Device equality compares the hardware and ignores autodiff.
    *device == Device::flex()
}

/// What a fused sequence call returns, each `[·, B, N]`.
#[derive(Debug, Clone)]
pub struct FusedOutput {
    /// Spikes, `[T, B, N]`.
    pub spikes: Tensor<3>,
    /// Membranes, `[T, B, N]`, when `spec.mems`.
    pub mems: Option<Tensor<3>>,
    /// The state after the last step, `[S, B, N]` ([`LifKind::state_rows`]), when
    /// `spec.final_state`.
    pub state: Option<Tensor<3>>,
}

/// A zero-element stand-in for an absent initial state.
fn no_state(device: &Device) -> Tensor<3> {
    Tensor::zeros([1, 1, 1], device)
}

/// A Leaky or Synaptic layer over `spec.steps` steps through the fused op. `input` is
/// `[T, B, N]`, or `[1, B, N]` holding one current for every step when `spec.static_input`;
/// `params` is `[rows, N]` as [`LifKind::param_rows`] says; `init` is the state to start
/// from (`[S, B, N]`; rest when `None`). `spec.init` is set from `init`.
pub fn fused_sequence(
    input: Tensor<3>,
    params: Tensor<2>,
    init: Option<Tensor<3>>,
    spec: LifSpec,
) -> FusedOutput {
    let (steps, batch, features) = (spec.steps, spec.batch, spec.features);
    let input = if spec.static_input {
        input.reshape([1, batch, features])
    } else {
        input
    };
    let spec = LifSpec {
        init: init.is_some(),
        ..spec
    };
    let init = init.unwrap_or_else(|| no_state(&input.device()));
    let (mems, final_state, planes) = (spec.mems, spec.final_state, spec.output_planes());
    let out = Tensor::<3>::from_dispatch(<Dispatch as FusedLifBackend>::fused_lif(
        input.into_dispatch(),
        params.into_dispatch(),
        init.into_dispatch(),
        spec.clone(),
    ));
    let state_rows = spec.kind.state_rows();
    FusedOutput {
        spikes: if planes == steps {
            out.clone()
        } else {
            out.clone().narrow(0, 0, steps)
        },
        mems: mems.then(|| out.clone().narrow(0, steps, steps)),
        state: final_state.then(|| out.narrow(0, planes - state_rows, state_rows)),
    }
}

/// A Leaky or Synaptic layer followed by a Linear layer (`weight` `[N, M]`, no bias), as one
/// op: returns the next layer's input currents `[T, B, M]` and, when `spec.final_state`, the
/// layer's final state `[S, B, N]`; the layer's own spikes are never materialised. `input`,
/// `params` and `init` as for [`fused_sequence`] (`spec.mems` is ignored).
pub fn fused_sequence_linear(
    input: Tensor<3>,
    params: Tensor<2>,
    init: Option<Tensor<3>>,
    weight: Tensor<2>,
    spec: LifSpec,
) -> (Tensor<3>, Option<Tensor<3>>) {
    let (steps, batch, n) = (spec.steps, spec.batch, spec.features);
    let m = weight.dims()[1];
    let input = if spec.static_input {
        input.reshape([1, batch, n])
    } else {
        input
    };
    let spec = LifSpec {
        mems: false,
        init: init.is_some(),
        ..spec
    };
    let init = init.unwrap_or_else(|| no_state(&input.device()));
    let final_state = spec.final_state;
    let state_rows = spec.kind.state_rows();
    let out = Tensor::<1>::from_dispatch(<Dispatch as FusedLifBackend>::fused_lif_linear(
        input.into_dispatch(),
        params.into_dispatch(),
        init.into_dispatch(),
        weight.into_dispatch(),
        spec,
    ));
    let currents = steps * batch * m;
    if !final_state {
        return (out.reshape([steps, batch, m]), None);
    }
    let state = out
        .clone()
        .narrow(0, currents, state_rows * batch * n)
        .reshape([state_rows, batch, n]);
    (
        out.narrow(0, 0, currents).reshape([steps, batch, m]),
        Some(state),
    )
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

/// A 2-D convolution through spyne's kernel (Flex devices; it skips zero spikes and zero
/// gradients where they are few enough to pay): `x`
/// `[N, C, H, W]`, `weight` `[O, C, KH, KW]`, `bias` `[O]`; the shapes in `spec` must match.
/// Returns `[N, O, OH, OW]`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    spec: ConvSpec,
) -> Tensor<4> {
    let device = x.device();
    let spec = ConvSpec {
        bias: bias.is_some(),
        ..spec
    };
    let bias = bias.unwrap_or_else(|| Tensor::zeros([1], &device));
    Tensor::from_dispatch(<Dispatch as ConvBackend>::conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        spec,
    ))
}

/// An RLeaky or RSynaptic layer over `spec.steps` steps through the fused op: `input`
/// `[T, B, N]` (or `[1, B, N]` static), `params` `[5, N]` (`[α, β, θ, V, b]`), `weight`
/// `[N, N]` (all-to-all), `init` `[S, B, N]` (`[spikes, U]` or `[spikes, I_syn, U]`; rest
/// when `None`). Returns spikes, membranes (when `spec.mems`) and the final state (when
/// `spec.final_state`).
pub fn fused_recurrent(
    input: Tensor<3>,
    params: Tensor<2>,
    weight: Option<Tensor<2>>,
    init: Option<Tensor<3>>,
    spec: RlifSpec,
) -> FusedOutput {
    let device = input.device();
    let (steps, rows) = (spec.steps, spec.state_rows());
    let spec = RlifSpec {
        init: init.is_some(),
        ..spec
    };
    let init = init.unwrap_or_else(|| no_state(&device));
    let weight = weight.unwrap_or_else(|| Tensor::zeros([1, 1], &device));
    let (mems, final_state, planes) = (spec.mems, spec.final_state, spec.output_planes());
    let out = Tensor::<3>::from_dispatch(<Dispatch as FusedRlifBackend>::fused_rlif(
        input.into_dispatch(),
        params.into_dispatch(),
        weight.into_dispatch(),
        init.into_dispatch(),
        spec,
    ));
    FusedOutput {
        spikes: out.clone().narrow(0, 0, steps),
        mems: mems.then(|| out.clone().narrow(0, steps, steps)),
        state: final_state.then(|| out.narrow(0, planes - rows, rows)),
    }
}

/// `−scale·Σ_r log softmax(logits_r)[y_r]` for `logits` `[rows, C]`, where row `r`'s target
/// is `targets[r % targets.len()]` (each below `C`), as one op (Flex devices only): one pass
/// forward, which keeps the softmax, and one backward. Returns `[1]`.
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize], scale: f32) -> Tensor<1> {
    let spec = CrossEntropySpec {
        targets: targets.into(),
        scale,
    };
    Tensor::from_dispatch(<Dispatch as LossBackend>::cross_entropy(
        logits.into_dispatch(),
        spec,
    ))
}

/// A Linear layer on a dense input `x` (`[rows, K]`): `weight` `[K, N]`, `bias` `[N]`.
/// Returns `x·W + b`, `[rows, N]`, as burn's `Linear` does, through one op whose products
/// write into buffers of their own, split by columns over the threads
/// (see `kernel/dense_linear.rs`).
pub fn dense_linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let has_bias = bias.is_some();
    let bias = bias.unwrap_or_else(|| Tensor::zeros([1], &x.device()));
    Tensor::from_dispatch(<Dispatch as LinearBackend>::dense_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        has_bias,
    ))
}

/// A Linear layer over binary spikes `x` (`[rows, K]`; `index` lists its active entries, see
/// [`SpikeIndex::of`]): `weight` `[K, N]`, `bias` `[N]`. Returns `[rows, N]`, computed (and
/// its weight gradient) from the active inputs only.
pub fn spike_linear(
    x: Tensor<2>,
    index: Arc<SpikeIndex>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<2> {
    let device = x.device();
    let spec = SpikeLinearSpec {
        index,
        bias: bias.is_some(),
    };
    let bias = bias.unwrap_or_else(|| Tensor::zeros([1], &device));
    Tensor::from_dispatch(<Dispatch as SpikeBackend>::spike_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        spec,
    ))
}

/// The input of a fused neuron layer given as binary spikes through a Linear layer: the
/// layer's currents are computed inside the op from the active inputs.
#[derive(Debug, Clone)]
pub struct SpikeInput {
    /// The active entries of the spikes, `[T·B, K]`.
    pub index: Arc<SpikeIndex>,
    /// `[K, N]`.
    pub weight: Tensor<2>,
    /// `[N]`.
    pub bias: Option<Tensor<1>>,
    /// Steps per chunk of the op's passes (0: chosen from the sizes). The result does not
    /// depend on it beyond float rounding; tests set it to exercise the chunking.
    pub chunk: usize,
}

/// A Leaky or Synaptic layer whose input is `spikes` (`[T, B, K]`) through the Linear layer
/// `input`, as one op: the currents never exist, and the backward pass keeps only the index
/// and a checkpoint of the state every few dozen steps. `spec` describes the neuron layer
/// (`features` is `N`; `static_input` must be false); `gain` scales the currents
/// (Lapicque). Returns what [`fused_sequence`] returns.
pub fn fused_spike_sequence(
    spikes: Tensor<3>,
    input: SpikeInput,
    (params, init): (Tensor<2>, Option<Tensor<3>>),
    spec: LifSpec,
    gain: Option<f32>,
) -> FusedOutput {
    let (steps, batch, n) = (spec.steps, spec.batch, spec.features);
    let (head, state, spec) = spike_call(spikes, input, (params, init), None, spec, gain);
    if !spec.lif.mems {
        // The spikes alone: no slice, whose backward would write into a zero copy of them.
        return FusedOutput {
            spikes: head.reshape([steps, batch, n]),
            mems: None,
            state,
        };
    }
    let planes = head.reshape([2 * steps, batch, n]);
    FusedOutput {
        spikes: planes.clone().narrow(0, 0, steps),
        mems: Some(planes.narrow(0, steps, steps)),
        state,
    }
}

/// [`fused_spike_sequence`] followed by a Linear layer `out` (`[N, M]`, no bias) in the same
/// op: returns the next layer's currents `[T, B, M]` and, when `spec.final_state`, the
/// layer's final state, as [`fused_sequence_linear`] does.
pub fn fused_spike_sequence_linear(
    spikes: Tensor<3>,
    input: SpikeInput,
    (params, init): (Tensor<2>, Option<Tensor<3>>),
    out: Tensor<2>,
    spec: LifSpec,
    gain: Option<f32>,
) -> (Tensor<3>, Option<Tensor<3>>) {
    let (steps, batch, m) = (spec.steps, spec.batch, out.dims()[1]);
    let (head, state, _) = spike_call(spikes, input, (params, init), Some(out), spec, gain);
    (head.reshape([steps, batch, m]), state)
}

/// The spike-input op: its flat output before the final state, the final state, the spec.
fn spike_call(
    spikes: Tensor<3>,
    input: SpikeInput,
    (params, init): (Tensor<2>, Option<Tensor<3>>),
    out: Option<Tensor<2>>,
    spec: LifSpec,
    gain: Option<f32>,
) -> (Tensor<1>, Option<Tensor<3>>, SpikeLifSpec) {
    let device = spikes.device();
    let [t, b, k] = spikes.dims();
    let (batch, n) = (spec.batch, spec.features);
    let lif = LifSpec {
        init: init.is_some(),
        static_input: false,
        mems: spec.mems && out.is_none(),
        ..spec
    };
    let spec = SpikeLifSpec {
        index: input.index,
        bias: input.bias.is_some(),
        gain,
        outputs: out.as_ref().map(|w| w.dims()[1]),
        chunk: input.chunk,
        lif,
    };
    let zero = || Tensor::<1>::zeros([1], &device);
    let flat = Tensor::<1>::from_dispatch(<Dispatch as SpikeBackend>::spike_lif(
        spikes.reshape([t * b, k]).into_dispatch(),
        input.weight.into_dispatch(),
        input.bias.unwrap_or_else(zero).into_dispatch(),
        params.into_dispatch(),
        init.unwrap_or_else(|| no_state(&device)).into_dispatch(),
        out.unwrap_or_else(|| zero().reshape([1, 1]))
            .into_dispatch(),
        spec.clone(),
    ));
    if !spec.lif.final_state {
        return (flat, None, spec);
    }
    let rows = spec.lif.kind.state_rows();
    let (len, state_len) = (flat.dims()[0], rows * batch * n);
    let state = flat
        .clone()
        .narrow(0, len - state_len, state_len)
        .reshape([rows, batch, n]);
    (flat.narrow(0, 0, len - state_len), Some(state), spec)
}
