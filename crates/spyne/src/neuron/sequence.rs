//! Running a neuron over a whole sequence, with optional truncated BPTT.

use burn::tensor::Tensor;

use super::{Neuron, NeuronState};
use crate::error::{Error, Result};

/// The outputs of a neuron layer over `T` steps.
#[derive(Debug, Clone)]
pub struct Sequence<S> {
    /// Spikes `S[t]`, `[T, batch, features]`.
    pub spikes: Tensor<3>,
    /// Membranes `U[t]`, `[T, batch, features]`.
    pub mems: Tensor<3>,
    /// The state after the last step (feed it to the next call to continue).
    pub state: S,
}

/// Runs `neuron` over `input` (`[T, batch, features]`) from `state` (resting when `None`).
///
/// With `truncate = Some(k)` the state is detached after every `k` steps, so gradients flow
/// back at most `k` steps (truncated BPTT); the forward values are unchanged.
pub fn run_sequence<N: Neuron>(
    neuron: &N,
    input: Tensor<3>,
    state: Option<N::State>,
    truncate: Option<usize>,
) -> Result<Sequence<N::State>> {
    let [steps, batch, features] = input.dims();
    if steps == 0 {
        return Err(Error::invalid(
            "input",
            "a sequence needs at least one time step",
        ));
    }
    if truncate == Some(0) {
        return Err(Error::invalid(
            "truncate",
            "truncated BPTT needs a window of at least 1 step",
        ));
    }
    let mut state = state.unwrap_or_else(|| neuron.init_state(batch, features, &input.device()));
    let mut spikes = Vec::with_capacity(steps);
    let mut mems = Vec::with_capacity(steps);
    for (t, x) in input.iter_dim(0).enumerate() {
        if let Some(k) = truncate {
            if t > 0 && t % k == 0 {
                state = state.detach();
            }
        }
        let (spk, next) = neuron.step(x.reshape([batch, features]), state)?;
        mems.push(next.mem());
        spikes.push(spk);
        state = next;
    }
    Ok(Sequence {
        spikes: Tensor::stack(spikes, 0),
        mems: Tensor::stack(mems, 0),
        state,
    })
}
