//! The feed-forward SNN of the reference job: Linear → neurons → … → Linear → neurons.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::config::TrainConfig;
use crate::error::{Error, Result};
use crate::layer::Linear;
use crate::neuron::{Cell, LeakyConfig, Neuron, NeuronState, Reset, SynapticConfig};
use crate::rng::UniformSource;
use crate::surrogate::Surrogate;

/// A stack of fully connected layers, each followed by a spiking layer.
#[derive(Module, Debug)]
pub struct SpikingMlp {
    /// The weights, input side first.
    pub linears: Vec<Linear>,
    /// The neuron layer after each Linear.
    pub cells: Vec<Cell>,
    /// Use the fused kernels where they apply (Flex device, full BPTT); `false` forces the
    /// step-by-step path, e.g. to record hidden membranes or to compare the two.
    #[module(skip)]
    pub fused: bool,
}

/// What a forward pass over a sequence produces.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Spikes of each layer, `[T, batch, width]`. The fused path never materialises a hidden
    /// layer's spikes (they go straight into the next layer's currents): those are `None`.
    pub spikes: Vec<Option<Tensor<3>>>,
    /// Membranes of each layer, `[T, batch, width]`; the fused path computes only the output
    /// layer's (hidden entries are then `None`).
    pub mems: Vec<Option<Tensor<3>>>,
}

impl Recording {
    /// The output layer's spikes.
    pub fn output_spikes(&self) -> Tensor<3> {
        self.spikes
            .last()
            .cloned()
            .flatten()
            .expect("the output spikes are always recorded")
    }

    /// The output layer's membranes.
    pub fn output_mems(&self) -> Tensor<3> {
        self.mems
            .last()
            .cloned()
            .flatten()
            .expect("the output membranes are always recorded")
    }
}

impl SpikingMlp {
    /// Builds `sizes[0] → sizes[1] → … ` with one neuron layer per Linear, weights from `rng`.
    pub fn new(
        config: &TrainConfig,
        rng: &mut impl UniformSource,
        device: &Device,
    ) -> Result<Self> {
        let sizes = config.layer_sizes();
        let surrogate = Surrogate::from_name(&config.surrogate)?;
        let reset = Reset::from_name(&config.reset)?;
        let mut linears = Vec::new();
        let mut cells = Vec::new();
        for w in sizes.windows(2) {
            linears.push(Linear::new(w[0], w[1], true, rng, device)?);
            let cell = match config.neuron.as_str() {
                "leaky" => Cell::Leaky(
                    LeakyConfig::new(config.beta)
                        .with_threshold(config.threshold)
                        .with_surrogate(surrogate.clone())
                        .with_reset(reset)
                        .init(device)?,
                ),
                "synaptic" => Cell::Synaptic(
                    SynapticConfig::new(config.alpha, config.beta)
                        .with_threshold(config.threshold)
                        .with_surrogate(surrogate.clone())
                        .with_reset(reset)
                        .init(device)?,
                ),
                other => {
                    return Err(Error::invalid(
                        "neuron",
                        format!("unknown neuron '{other}' (expected leaky or synaptic)"),
                    ))
                }
            };
            cells.push(cell);
        }
        Ok(SpikingMlp {
            linears,
            cells,
            fused: true,
        })
    }

    /// Runs the network over `steps` steps of input.
    ///
    /// `input` is `[steps, batch, features]`; with `static_input` its first step (it may have
    /// only one) is the input of every step and the first Linear runs once (its gradient then
    /// sums over steps, exactly as if it ran at every step). With `truncate = k > 0` every
    /// layer's state is detached after each `k` steps (truncated BPTT).
    pub fn forward(
        &self,
        input: Tensor<3>,
        steps: usize,
        static_input: bool,
        truncate: usize,
    ) -> Result<Recording> {
        let [t_in, batch, features] = input.dims();
        let (first_in, _) = self.linears[0].dims();
        if features != first_in {
            return Err(Error::Shape {
                context: "network input width",
                expected: vec![first_in],
                got: vec![features],
            });
        }
        if steps == 0 || t_in == 0 || (!static_input && t_in != steps) {
            return Err(Error::Shape {
                context: "network input steps",
                expected: vec![steps, batch, features],
                got: vec![t_in, batch, features],
            });
        }
        if self.fused && truncate == 0 {
            if let Some(rec) = self.forward_fused(input.clone(), steps, static_input) {
                return rec;
            }
        }
        let device = input.device();
        let hoisted = static_input.then(|| {
            let x0 = input.clone().narrow(0, 0, 1).reshape([batch, features]);
            self.linears[0].forward(x0)
        });
        let mut states: Vec<_> = self
            .cells
            .iter()
            .zip(&self.linears)
            .map(|(c, l)| c.init_state(batch, l.dims().1, &device))
            .collect();
        let layers = self.cells.len();
        let mut spikes = vec![Vec::with_capacity(steps); layers];
        let mut mems = vec![Vec::with_capacity(steps); layers];
        for t in 0..steps {
            if truncate > 0 && t > 0 && t % truncate == 0 {
                states = states.into_iter().map(NeuronState::detach).collect();
            }
            let mut x = match &hoisted {
                Some(c) => c.clone(),
                None => self.linears[0]
                    .forward(input.clone().narrow(0, t, 1).reshape([batch, features])),
            };
            for (l, cell) in self.cells.iter().enumerate() {
                if l > 0 {
                    x = self.linears[l].forward(x);
                }
                let (spk, next) = cell.step(x, states[l].clone())?;
                mems[l].push(next.mem());
                spikes[l].push(spk.clone());
                states[l] = next;
                x = spk;
            }
        }
        Ok(Recording {
            spikes: spikes
                .into_iter()
                .map(|s| Some(Tensor::stack(s, 0)))
                .collect(),
            mems: mems
                .into_iter()
                .map(|m| Some(Tensor::stack(m, 0)))
                .collect(),
        })
    }

    /// The fast path: each hidden neuron layer and the Linear layer after it run as one
    /// fused op (its spikes never materialise), the output layer as another; the first Linear
    /// runs once on a static input. `None` when a layer has no fused kernel here.
    fn forward_fused(
        &self,
        input: Tensor<3>,
        steps: usize,
        static_input: bool,
    ) -> Option<Result<Recording>> {
        let [_, batch, features] = input.dims();
        let mut x = if static_input {
            let x0 = input.narrow(0, 0, 1).reshape([batch, features]);
            let c = self.linears[0].forward(x0);
            let width = c.dims()[1];
            c.reshape([1, batch, width])
        } else {
            self.linears[0].forward_seq(input)
        };
        let last = self.cells.len() - 1;
        let (mut spikes, mut mems) = (vec![None; last], vec![None; last]);
        for (l, cell) in self.cells[..last].iter().enumerate() {
            let next = &self.linears[l + 1];
            x = match cell.fused_linear(x, static_input && l == 0, steps, next.weight.val())? {
                Ok(current) => next.add_bias(current),
                Err(e) => return Some(Err(e)),
            };
        }
        let (spk, mem) = match self.cells[last].fused(x, static_input && last == 0, steps, true)? {
            Ok(o) => o,
            Err(e) => return Some(Err(e)),
        };
        spikes.push(Some(spk));
        mems.push(mem);
        Some(Ok(Recording { spikes, mems }))
    }
}
