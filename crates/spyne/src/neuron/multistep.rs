//! Neuron layers over whole sequences: the fused kernel where one covers the layer, the
//! step-by-step path otherwise, with the state carried through a [`Run`].

use burn::tensor::Tensor;

use super::sequence::step_constant;
use super::{step_sequence, FusedCall, Neuron};
use crate::error::{Error, Result};
use crate::layer::{Linear, SeqLayer};
use crate::run::{Output, Run};
use crate::seq::Seq;

/// Every neuron is a multi-step layer: `[T, B, …]` currents in, spikes of the same shape out.
/// A constant input (a static image after stateless layers) goes into the kernel as one
/// current for every step.
impl<N: Neuron> SeqLayer for N
where
    N::State: 'static,
{
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }

    fn forward_seq(&self, x: Seq, run: &mut Run) -> Result<Seq> {
        Ok(spiking(self, x, run, false)?.0)
    }
}

/// Runs neuron layer `n` over `x`; returns its spikes and, when `mems` (or recording), its
/// membranes `[T, B, features]`.
fn spiking<N: Neuron>(n: &N, x: Seq, run: &mut Run, mems: bool) -> Result<(Seq, Option<Tensor<3>>)>
where
    N::State: 'static,
{
    let state: Option<N::State> = run.take_state()?;
    spiking_from(n, x, state, run, mems)
}

/// [`spiking`] from a state already taken from the run.
fn spiking_from<N: Neuron>(
    n: &N,
    x: Seq,
    state: Option<N::State>,
    run: &mut Run,
    mems: bool,
) -> Result<(Seq, Option<Tensor<3>>)>
where
    N::State: 'static,
{
    let shape = x.shape().to_vec();
    let want_mems = mems || run.is_recording();
    let mut out = None;
    if run.fused_allowed() {
        let call = FusedCall {
            input: x.clone().into_steps(),
            static_input: x.is_constant(),
            steps: x.steps(),
            state: state.clone(),
            mems: want_mems,
            final_state: run.keeps_states(),
        };
        if let Some(fused) = n.fused(call) {
            let f = fused?;
            out = Some((f.spikes, f.mems, f.state, true));
        }
    }
    let (spikes, membranes, last, fused) = match out {
        Some(o) => o,
        None => {
            let seq = if x.is_constant() {
                let steps = x.steps();
                step_constant(n, x.into_steps().squeeze_dim(0), steps, state)?
            } else {
                step_sequence(n, x.into_steps(), state, None)?
            };
            (seq.spikes, Some(seq.mems), Some(seq.state), false)
        }
    };
    run.finish_layer(last, fused);
    let membranes = membranes.filter(|_| want_mems);
    if run.is_recording() {
        if let Some(m) = &membranes {
            run.record(spikes.clone(), m.clone());
        }
    }
    Ok((Seq::new(spikes).with_shape(&shape)?, membranes))
}

impl Run {
    /// The output layer of a model: runs neuron layer `n` over `x` and returns its spikes and
    /// (unless [`Run::output_mems`] said otherwise) membranes, `[T, B, classes]`, which the
    /// losses read.
    pub fn output<N: Neuron>(&mut self, n: &N, x: Seq) -> Result<Output>
    where
        N::State: 'static,
    {
        let want = self.wants_output_mems();
        let (spikes, mems) = spiking(n, x, self, want)?;
        Ok(Output {
            spikes: spikes.into_steps(),
            mems: mems.filter(|_| want),
        })
    }

    /// Neuron layer `n` followed by `linear`, as one fused op where a kernel covers `n`: the
    /// spikes go straight into the next layer's currents and are never materialised.
    /// Otherwise (no kernel, [`Run::composed`], or [`Run::recording`]) the two run one after
    /// the other. Returns the currents, `[T, B, out]`.
    pub fn into_linear<N: Neuron>(&mut self, n: &N, linear: &Linear, x: Seq) -> Result<Seq>
    where
        N::State: 'static,
    {
        let [d_in, d_out] = linear.weight.dims();
        if !self.fused_allowed() || self.is_recording() {
            let spikes = n.forward_seq(x, self)?;
            let features = spikes.features();
            let flat = spikes.with_shape(&[features])?;
            return linear.forward_seq(flat, self);
        }
        if x.features() != d_in {
            return Err(Error::Shape {
                context: "linear layer input",
                expected: vec![d_in],
                got: x.shape().to_vec(),
            });
        }
        let state: Option<N::State> = self.take_state()?;
        let call = FusedCall {
            input: x.clone().into_steps(),
            static_input: x.is_constant(),
            steps: x.steps(),
            state: state.clone(),
            mems: false,
            final_state: self.keeps_states(),
        };
        match n.fused_linear(call, linear.weight.val()) {
            Some(result) => {
                let (current, last) = result?;
                self.finish_layer(last, true);
                let current = match &linear.bias {
                    Some(b) => current + b.val().reshape([1, 1, d_out]),
                    None => current,
                };
                Ok(Seq::new(current))
            }
            // No layer+Linear kernel: the layer on its own (fused where it can be), then
            // the product.
            None => {
                let (spikes, _) = spiking_from(n, x, state, self, false)?;
                linear.forward_seq(spikes.with_shape(&[d_in])?, self)
            }
        }
    }
}
