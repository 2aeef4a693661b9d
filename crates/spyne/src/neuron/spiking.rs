//! A Linear layer whose input is binary spikes, fused into the neuron layer after it: the
//! currents are computed inside the neuron's kernel from the active inputs, never stored,
//! and the backward pass keeps only the spikes' index and a few checkpoints of the state.

use burn::tensor::Tensor;

use super::{FusedCall, Neuron};
use crate::error::Result;
use crate::kernel::{SpikeInput, SPARSE_LINEAR_DENSITY};
use crate::layer::{Linear, SeqLayer};
use crate::run::{Output, Run};
use crate::seq::Seq;

/// What follows the neuron layer in the fused op.
#[derive(Clone, Copy)]
pub(crate) enum After<'a> {
    /// Nothing: the op returns the spikes (and membranes when `true`).
    Spikes(bool),
    /// A Linear layer: the op returns its currents.
    Linear(&'a Linear),
}

/// What [`Run::spiking_into`] did.
#[allow(clippy::large_enum_variant)] // a return value, moved once
pub(crate) enum Spiking {
    /// The fused op ran: the spikes (and membranes), or the next layer's currents.
    Ran(Seq, Option<Tensor<3>>),
    /// It does not apply: the input back, carrying its spike index when one was built (so
    /// that the layers run one by one need not scan the values again).
    Not(Seq),
}

impl Run {
    /// `linear` then neuron layer `n` (then what `after` says) as one op, when `x` is binary
    /// spikes at most [`SPARSE_LINEAR_DENSITY`] dense on a device the kernels cover and `n`
    /// has a kernel for them.
    pub(crate) fn spiking_into<N: Neuron>(
        &mut self,
        linear: &Linear,
        n: &N,
        after: After,
        x: Seq,
    ) -> Result<Spiking>
    where
        N::State: 'static,
    {
        if !self.fused_allowed() || self.is_recording() {
            return Ok(Spiking::Not(x));
        }
        let shape = linear.output_shape(x.shape())?;
        let Some(index) = x.active_inputs(SPARSE_LINEAR_DENSITY) else {
            return Ok(Spiking::Not(x));
        };
        let x = x.with_spike_index(index.clone())?;
        let input = SpikeInput {
            index,
            weight: linear.weight.val(),
            bias: linear.bias.as_ref().map(|b| b.val()),
            chunk: 0,
        };
        let state: Option<N::State> = self.take_state()?;
        let call = FusedCall {
            input: x.clone().into_steps(),
            static_input: false,
            steps: x.steps(),
            state: state.clone(),
            mems: matches!(after, After::Spikes(true)),
            final_state: self.keeps_states(),
        };
        let out = match after {
            After::Linear(next) => {
                n.fused_spiking_linear(call, input, next.weight.val())
                    .map(|r| {
                        r.map(|(current, last)| {
                            let d_out = next.weight.dims()[1];
                            let current = match &next.bias {
                                Some(b) => current + b.val().reshape([1, 1, d_out]),
                                None => current,
                            };
                            (Seq::new(current), None, last)
                        })
                    })
            }
            After::Spikes(_) => n.fused_spiking(call, input).map(|r| {
                r.and_then(|f| Ok((Seq::new(f.spikes).with_shape(&shape)?, f.mems, f.state)))
            }),
        };
        match out {
            Some(result) => {
                let (y, mems, last) = result?;
                self.count_sparse();
                self.finish_layer(last, true);
                Ok(Spiking::Ran(y, mems))
            }
            None => {
                self.restore_state(state);
                Ok(Spiking::Not(x))
            }
        }
    }

    /// The output layer fed by `linear`: [`Run::spiking_into`] returning the spikes and
    /// membranes the losses read, or the input back when the fused op does not apply.
    pub(crate) fn output_spiking<N: Neuron>(
        &mut self,
        linear: &Linear,
        n: &N,
        x: Seq,
    ) -> Result<std::result::Result<Output, Seq>>
    where
        N::State: 'static,
    {
        let want = self.wants_output_mems();
        Ok(
            match self.spiking_into(linear, n, After::Spikes(want), x)? {
                Spiking::Ran(spikes, mems) => Ok(Output {
                    spikes: spikes.into_steps(),
                    mems,
                }),
                Spiking::Not(x) => Err(x),
            },
        )
    }
}
