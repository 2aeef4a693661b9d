//! The feedback path of the explicitly recurrent neurons.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::param::{row, Value};
use super::{Fused, FusedCall, SpikeCore};
use crate::error::{Error, Result};
use crate::kernel::{self, RlifSpec};
use crate::layer::{torch_linear, Linear};
use crate::rng::UniformSource;

/// How output spikes are fed back into the layer.
#[derive(Debug, Clone, PartialEq)]
pub enum RecurrentKind {
    /// All-to-all: a `features × features` Linear layer with bias (snntorch `all_to_all=True`).
    AllToAll {
        /// The layer's width.
        features: usize,
    },
    /// One weight per neuron, or one shared weight `V` (snntorch `all_to_all=False`).
    OneToOne(Value),
}

impl RecurrentKind {
    /// The one-to-one weight's value, if that is the kind.
    pub fn one_to_one(&self) -> Option<&Value> {
        match self {
            RecurrentKind::OneToOne(v) => Some(v),
            RecurrentKind::AllToAll { .. } => None,
        }
    }
}

/// The recurrent connection `R(S[t−1])`: a Linear layer or an element-wise weight `V`.
#[derive(Module, Debug)]
pub struct Recurrent {
    /// The all-to-all layer, when that is the kind.
    pub linear: Option<Linear>,
    /// The one-to-one weight `V`, `[1]` or `[features]`, when that is the kind.
    pub v: Option<Param<Tensor<1>>>,
}

impl Recurrent {
    /// Builds the connection; `learn` decides whether its weights are trained.
    pub fn new(
        kind: &RecurrentKind,
        learn: bool,
        rng: &mut impl UniformSource,
        device: &Device,
    ) -> Result<Self> {
        Ok(match kind {
            RecurrentKind::AllToAll { features } => {
                let mut linear = torch_linear(*features, *features, true, rng, device)?;
                if !learn {
                    linear = linear.no_grad();
                }
                Recurrent {
                    linear: Some(linear),
                    v: None,
                }
            }
            RecurrentKind::OneToOne(v) => {
                v.check("V", "finite", f32::is_finite)?;
                Recurrent {
                    linear: None,
                    v: Some(v.param(learn, device)),
                }
            }
        })
    }

    /// `R(s)` for spikes `s`, `[batch, features]`; `channels` as the layer's
    /// [`crate::neuron::SpikeCore::channels`].
    pub fn forward(&self, spikes: Tensor<2>, channels: Option<usize>) -> Result<Tensor<2>> {
        let [_, n] = spikes.dims();
        if let Some(linear) = &self.linear {
            let [i, _] = linear.weight.dims();
            if i != n {
                return Err(Error::Shape {
                    context: "recurrent layer width",
                    expected: vec![i],
                    got: vec![n],
                });
            }
            return Ok(linear.forward(spikes));
        }
        let v = self
            .v
            .as_ref()
            .expect("Recurrent holds a linear layer or a weight V");
        Ok(spikes * row(v, n, channels, "recurrent V width")?)
    }
}

/// What an explicitly recurrent neuron hands the fused kernel.
pub(super) struct RecurrentKernel<'a> {
    pub core: &'a SpikeCore,
    /// The synaptic current's decay (RSynaptic).
    pub alpha: Option<&'a Param<Tensor<1>>>,
    pub beta: &'a Param<Tensor<1>>,
    pub recurrent: &'a Recurrent,
}

impl RecurrentKernel<'_> {
    /// The fused call for a layer whose state is `planes` (`[S, B, N]`) ↔ `S` through
    /// `to`/`from`. `None` off the Flex backend.
    pub fn run<S>(
        &self,
        call: FusedCall<S>,
        to: impl Fn(S) -> Tensor<3>,
        from: impl Fn(Tensor<3>) -> S,
    ) -> Option<Result<Fused<S>>> {
        if !kernel::supports(&call.input.device()) {
            return None;
        }
        Some(
            self.pack(call, to)
                .map(|(input, params, weight, init, spec)| {
                    let out = kernel::fused_recurrent(input, params, weight, init, spec);
                    Fused {
                        spikes: out.spikes,
                        mems: out.mems,
                        state: out.state.map(from),
                    }
                }),
        )
    }

    #[allow(clippy::type_complexity)]
    fn pack<S>(
        &self,
        call: FusedCall<S>,
        to: impl Fn(S) -> Tensor<3>,
    ) -> Result<(
        Tensor<3>,
        Tensor<2>,
        Option<Tensor<2>>,
        Option<Tensor<3>>,
        RlifSpec,
    )> {
        let FusedCall {
            input,
            static_input,
            steps,
            state,
            mems,
            final_state,
        } = call;
        let [t, batch, n] = input.dims();
        if steps == 0 || (static_input && t != 1) || (!static_input && t != steps) {
            return Err(Error::Shape {
                context: "fused sequence input steps",
                expected: vec![if static_input { 1 } else { steps }, batch, n],
                got: vec![t, batch, n],
            });
        }
        let device = input.device();
        let zeros = || Tensor::<2>::zeros([1, n], &device);
        let core = self.core;
        let alpha = match self.alpha {
            Some(a) => core.decay_row(a, n, "alpha width")?,
            None => zeros(),
        };
        let (v, bias, weight) = match (&self.recurrent.linear, &self.recurrent.v) {
            (Some(l), _) => {
                let [i, o] = l.weight.dims();
                if i != n || o != n {
                    return Err(Error::Shape {
                        context: "recurrent layer width",
                        expected: vec![n, n],
                        got: vec![i, o],
                    });
                }
                let bias = match &l.bias {
                    Some(b) => b.val().reshape([1, n]),
                    None => zeros(),
                };
                (zeros(), bias, Some(l.weight.val()))
            }
            (None, Some(v)) => (core.row(v, n, "recurrent V width")?, zeros(), None),
            (None, None) => return Err(Error::invalid("recurrent", "holds neither W nor V")),
        };
        let rows = [
            alpha,
            core.decay_row(self.beta, n, "beta width")?,
            core.threshold_row(n)?,
            v,
            bias,
        ];
        let params = Tensor::cat(rows.into_iter().map(|r| r.expand([1, n])).collect(), 0);
        let spec = RlifSpec {
            synaptic: self.alpha.is_some(),
            all_to_all: weight.is_some(),
            reset: core.reset,
            surrogate: core.surrogate.clone(),
            steps,
            batch,
            features: n,
            static_input,
            mems,
            init: state.is_some(),
            final_state,
        };
        let init = state.map(to);
        if let Some(p) = &init {
            let want = [spec.state_rows(), batch, n];
            if p.dims() != want {
                return Err(Error::Shape {
                    context: "fused sequence initial state",
                    expected: want.to_vec(),
                    got: p.dims().to_vec(),
                });
            }
        }
        Ok((input, params, weight, init, spec))
    }
}
