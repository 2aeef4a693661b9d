//! The fused-kernel test harness: a neuron run both ways on the same inputs.

use burn::tensor::Tensor;
use spyne::neuron::*;
use spyne::surrogate::Surrogate;

use super::*;

pub fn surrogates() -> Vec<Surrogate> {
    vec![
        Surrogate::atan(),
        Surrogate::fast_sigmoid(),
        Surrogate::sigmoid(),
        Surrogate::StraightThrough,
        Surrogate::triangular(),
        Surrogate::SpikeOperator,
        Surrogate::spike_rate_escape(),
        Surrogate::custom("gauss", |x| (-4.0 * x * x).exp()),
    ]
}

pub const T: usize = 6;
pub const B: usize = 5;
// Two full 16-lane blocks and a tail: both paths of the kernels run.
pub const N: usize = 37;

pub struct Outcome {
    pub spikes: Vec<f32>,
    pub mems: Vec<f32>,
    pub last_mem: Vec<f32>,
    pub grads: Vec<Vec<f32>>,
}

/// A neuron whose state is made of `[B, N]` tensors, for building and reading states.
pub trait Planes: Neuron {
    fn state_from(&self, rows: Vec<Tensor<2>>) -> Self::State;
    fn state_rows(&self, s: &Self::State) -> Vec<Tensor<2>>;
}

impl Planes for Leaky {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> LeakyState {
        LeakyState {
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &LeakyState) -> Vec<Tensor<2>> {
        vec![s.mem.clone()]
    }
}

impl Planes for Lapicque {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> LeakyState {
        LeakyState {
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &LeakyState) -> Vec<Tensor<2>> {
        vec![s.mem.clone()]
    }
}

impl Planes for Synaptic {
    fn state_from(&self, mut rows: Vec<Tensor<2>>) -> SynapticState {
        let syn = rows.remove(0);
        SynapticState {
            syn,
            mem: rows.remove(0),
        }
    }
    fn state_rows(&self, s: &SynapticState) -> Vec<Tensor<2>> {
        vec![s.syn.clone(), s.mem.clone()]
    }
}

/// Runs `n` both ways on the same input (and initial state, when `init` gives how many state
/// rows); the loss reads spikes, membranes and the final state with fixed random weights, so
/// every upstream gradient is non-trivial.
pub fn both<M: Planes>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
    init: Option<usize>,
) -> (Outcome, Outcome) {
    let dev = grad_device();
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 21, -0.4, 1.6);
    let ws = t3(&values(T * B * N, 22, -1.0, 1.0), [T, B, N], &dev);
    let wm = t3(&values(T * B * N, 23, -1.0, 1.0), [T, B, N], &dev);
    let wf = t2(&values(B * N, 24, -1.0, 1.0), B, N, &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let init_rows: Vec<Tensor<2>> = (0..init.unwrap_or(0))
            .map(|k| t2(&values(B * N, 60 + k as u64, -0.5, 1.5), B, N, &dev).require_grad())
            .collect();
        let state = init.map(|_| n.state_from(init_rows.clone()));
        let (spikes, mems, last) = if fused {
            let call = FusedCall {
                input: x.clone(),
                static_input,
                steps: T,
                state,
                mems: true,
                final_state: true,
            };
            let f = n.fused(call).expect("Flex has a fused kernel").unwrap();
            (f.spikes, f.mems.unwrap(), f.state.unwrap())
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let seq = step_sequence(n, input, state, None).unwrap();
            (seq.spikes, seq.mems, seq.state)
        };
        let last_rows = n.state_rows(&last);
        let mut loss = (spikes.clone() * ws.clone()).sum() + (mems.clone() * wm.clone()).sum();
        for r in &last_rows {
            loss = loss + (r.clone() * wf.clone()).sum();
        }
        let g = loss.backward();
        let mut grads = vec![v(x.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        grads.extend(init_rows.iter().map(|r| v(r.grad(&g).unwrap())));
        Outcome {
            spikes: v(spikes),
            mems: v(mems),
            last_mem: last_rows.into_iter().flat_map(v).collect(),
            grads,
        }
    };
    (run(false), run(true))
}

pub fn agree(what: &str, composed: Outcome, fused: Outcome) {
    assert_eq!(fused.spikes, composed.spikes, "{what}: spikes");
    assert_eq!(fused.mems, composed.mems, "{what}: membranes (bit for bit)");
    assert_eq!(
        fused.last_mem, composed.last_mem,
        "{what}: final state (bit for bit)"
    );
    assert!(
        composed.spikes.contains(&1.0) && composed.spikes.contains(&0.0),
        "{what}: some neurons fire"
    );
    for (i, (f, c)) in fused.grads.iter().zip(&composed.grads).enumerate() {
        assert_close(f, c, 2e-5, &format!("{what}: gradient {i}"));
        assert!(
            c.iter().any(|g| *g != 0.0),
            "{what}: gradient {i} is not trivially zero"
        );
    }
}
