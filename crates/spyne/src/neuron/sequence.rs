//! Running a neuron over a whole sequence, with optional truncated BPTT.

use burn::tensor::Tensor;

use super::{FusedCall, Neuron, NeuronState};
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

/// Runs `neuron` over `input` (`[T, batch, features]`) from `state` (resting when `None`),
/// through the fused kernel where one covers the layer, else step by step
/// ([`step_sequence`]); both give the same values, gradients and final state.
///
/// With `truncate = Some(k)` the state is detached after every `k` steps, so gradients flow
/// back at most `k` steps (truncated BPTT); the forward values are unchanged. Each window of
/// `k` steps is one fused call that starts from the previous window's (detached) state.
pub fn run_sequence<N: Neuron>(
    neuron: &N,
    input: Tensor<3>,
    state: Option<N::State>,
    truncate: Option<usize>,
) -> Result<Sequence<N::State>> {
    let steps = check(&input, truncate)?;
    let window = truncate.unwrap_or(steps);
    let (mut spikes, mut mems) = (Vec::new(), Vec::new());
    let mut state = state;
    let mut start = 0;
    while start < steps {
        let len = window.min(steps - start);
        let x = input.clone().narrow(0, start, len);
        let carried = if start > 0 {
            state.map(NeuronState::detach)
        } else {
            state
        };
        let call = FusedCall::new(x.clone())
            .with_state(carried.clone())
            .with_mems(true)
            .with_final_state(true);
        let seq = match neuron.fused(call) {
            Some(out) => {
                let out = out?;
                Sequence {
                    spikes: out.spikes,
                    mems: out.mems.expect("membranes were asked for"),
                    state: out.state.expect("the final state was asked for"),
                }
            }
            None => step_sequence(neuron, x, carried, None)?,
        };
        spikes.push(seq.spikes);
        mems.push(seq.mems);
        state = Some(seq.state);
        start += len;
    }
    Ok(Sequence {
        spikes: Tensor::cat(spikes, 0),
        mems: Tensor::cat(mems, 0),
        state: state.expect("at least one window ran"),
    })
}

/// [`run_sequence`] one step at a time with plain tensor ops (any backend): the reference
/// every fused kernel is tested against.
pub fn step_sequence<N: Neuron>(
    neuron: &N,
    input: Tensor<3>,
    state: Option<N::State>,
    truncate: Option<usize>,
) -> Result<Sequence<N::State>> {
    check(&input, truncate)?;
    let [_, batch, features] = input.dims();
    let device = input.device();
    let steps = split_steps(input)
        .into_iter()
        .map(|x| x.reshape([batch, features]))
        .collect();
    step_through(neuron, steps, state, truncate, &device)
}

/// [`step_sequence`] over the same input `x` (`[B, N]`) at each of `steps` steps, without
/// materialising the sequence.
pub(crate) fn step_constant<N: Neuron>(
    neuron: &N,
    x: Tensor<2>,
    steps: usize,
    state: Option<N::State>,
) -> Result<Sequence<N::State>> {
    check_steps(steps, None)?;
    let device = x.device();
    step_through(neuron, vec![x; steps], state, None, &device)
}

/// Steps `neuron` through the per-step inputs `xs` (each `[B, N]`).
fn step_through<N: Neuron>(
    neuron: &N,
    xs: Vec<Tensor<2>>,
    state: Option<N::State>,
    truncate: Option<usize>,
    device: &burn::tensor::Device,
) -> Result<Sequence<N::State>> {
    let [batch, features] = xs[0].dims();
    let mut state = state.unwrap_or_else(|| neuron.init_state(batch, features, device));
    let mut spikes = Vec::with_capacity(xs.len());
    let mut mems = Vec::with_capacity(xs.len());
    for (t, x) in xs.into_iter().enumerate() {
        if let Some(k) = truncate {
            if t > 0 && t % k == 0 {
                state = state.detach();
            }
        }
        let (spk, next) = neuron.step(x, state)?;
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

/// The steps of `x` (`[T, B, N]`), each `[1, B, N]`, split by halves. The backward of a
/// slice is a zero tensor of the sliced one's size with the gradient written in, so T
/// slices of the whole sequence cost O(T²) in the backward pass (3× the whole composed
/// iteration of tutorial 5); halving costs O(T log T).
fn split_steps(x: Tensor<3>) -> Vec<Tensor<3>> {
    let steps = x.dims()[0];
    if steps == 1 {
        return vec![x];
    }
    let half = steps / 2;
    let mut out = split_steps(x.clone().narrow(0, 0, half));
    out.extend(split_steps(x.narrow(0, half, steps - half)));
    out
}

/// Checks the sequence and the window; returns the number of steps.
fn check(input: &Tensor<3>, truncate: Option<usize>) -> Result<usize> {
    let steps = input.dims()[0];
    check_steps(steps, truncate)?;
    Ok(steps)
}

/// A sequence of `steps` steps, and the window, are valid.
fn check_steps(steps: usize, truncate: Option<usize>) -> Result<()> {
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
    Ok(())
}
