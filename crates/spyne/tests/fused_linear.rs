//! The fused layer + Linear op against the step path followed by a dense product.

mod common;

use burn::tensor::Tensor;
use common::fused::*;
use common::*;
use spyne::neuron::*;
use spyne::surrogate::Surrogate;

/// Linear widths that take each path of the kernel: a narrow Linear (on AVX-512, one
/// register per output: at least one and at most sixteen outputs) and the general one.
const WIDTHS: [usize; 4] = [1, 4, 16, 17];

/// The layer+Linear op against the step path followed by a dense product: currents, final
/// state and gradients for input, parameters, weights and initial state, for a Linear of
/// `out` outputs.
fn linear_both<M: Planes + std::fmt::Debug>(
    n: &M,
    params: impl Fn(&M) -> Vec<Tensor<1>>,
    static_input: bool,
    init: Option<usize>,
    out: usize,
) {
    let dev = grad_device();
    let rows = if static_input { 1 } else { T };
    let x_vals = values(rows * B * N, 41, -0.4, 1.6);
    let w_vals = values(N * out, 42, -1.0, 1.0);
    let wg = t3(&values(T * B * out, 43, -1.0, 1.0), [T, B, out], &dev);
    let wf = t2(&values(B * N, 44, -1.0, 1.0), B, N, &dev);
    let run = |fused: bool| {
        let x = t3(&x_vals, [rows, B, N], &dev).require_grad();
        let w = t2(&w_vals, N, out, &dev).require_grad();
        let init_rows: Vec<Tensor<2>> = (0..init.unwrap_or(0))
            .map(|k| t2(&values(B * N, 70 + k as u64, -0.5, 1.5), B, N, &dev).require_grad())
            .collect();
        let state = init.map(|_| n.state_from(init_rows.clone()));
        let (current, last) = if fused {
            let call = FusedCall {
                input: x.clone(),
                static_input,
                steps: T,
                state,
                mems: false,
                final_state: true,
            };
            let (c, s) = n
                .fused_linear(call, w.clone())
                .expect("Flex has a fused kernel")
                .unwrap();
            (c, s.unwrap())
        } else {
            let input = if static_input {
                x.clone().repeat_dim(0, T)
            } else {
                x.clone()
            };
            let seq = step_sequence(n, input, state, None).unwrap();
            let c = seq
                .spikes
                .reshape([T * B, N])
                .matmul(w.clone())
                .reshape([T, B, out]);
            (c, seq.state)
        };
        let last_rows = n.state_rows(&last);
        let mut loss = (current.clone() * wg.clone()).sum();
        for r in &last_rows {
            loss = loss + (r.clone() * wf.clone()).sum();
        }
        let g = loss.backward();
        let mut grads = vec![v(x.grad(&g).unwrap()), v(w.grad(&g).unwrap())];
        grads.extend(params(n).into_iter().map(|p| v(p.grad(&g).unwrap())));
        grads.extend(init_rows.iter().map(|r| v(r.grad(&g).unwrap())));
        let last: Vec<f32> = last_rows.into_iter().flat_map(v).collect();
        (v(current), last, grads)
    };
    let ((c_out, c_last, c_grads), (f_out, f_last, f_grads)) = (run(false), run(true));
    assert_close(&f_out, &c_out, 1e-5, &format!("currents, out={out}"));
    assert_eq!(f_last, c_last, "final state (bit for bit), out={out}");
    for (i, (f, c)) in f_grads.iter().zip(&c_grads).enumerate() {
        let what = format!(
            "gradient {i} of {} static={static_input} init={init:?} out={out}",
            describe(n)
        );
        assert_close(f, c, 2e-5, &what);
        assert!(c.iter().any(|g| *g != 0.0), "{what} is not trivially zero");
    }
}

/// The neuron's type and reset mechanism, for failure messages.
fn describe<M: std::fmt::Debug>(n: &M) -> String {
    let d = format!("{n:?}");
    let kind: String = d.chars().take_while(|c| c.is_alphanumeric()).collect();
    let reset: String = d[d.find("reset").unwrap_or(0)..].chars().take(16).collect();
    format!("{kind} {reset}")
}

/// `init` with each of [`WIDTHS`].
fn with_widths(init: Option<usize>) -> impl Iterator<Item = (Option<usize>, usize)> {
    WIDTHS.into_iter().map(move |out| (init, out))
}

#[test]
fn layer_plus_linear_fused_equals_composed() {
    let dev = grad_device();
    for reset in [
        Reset::Subtract,
        Reset::Zero,
        Reset::None,
        Reset::ZeroThenIntegrate,
    ] {
        for s in [
            Surrogate::atan(),
            Surrogate::fast_sigmoid(),
            Surrogate::custom("gauss", |x| (-4.0 * x * x).exp()),
        ] {
            for static_input in [false, true] {
                let leaky = LeakyConfig::new(values(N, 1, 0.5, 0.95))
                    .with_threshold(values(N, 2, 0.6, 1.2))
                    .with_learn_beta(true)
                    .with_learn_threshold(true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                for (init, out) in [None, Some(1)].into_iter().flat_map(with_widths) {
                    linear_both(
                        &leaky,
                        |n| vec![n.beta.val(), n.core.threshold.val()],
                        static_input,
                        init,
                        out,
                    );
                }
                let syn = SynapticConfig::new(values(N, 3, 0.3, 0.9), values(N, 4, 0.5, 0.95))
                    .with_learn(true, true, true)
                    .with_surrogate(s.clone())
                    .with_reset(reset)
                    .init(&dev)
                    .unwrap();
                for (init, out) in [None, Some(2)].into_iter().flat_map(with_widths) {
                    linear_both(
                        &syn,
                        |n| vec![n.alpha.val(), n.beta.val(), n.core.threshold.val()],
                        static_input,
                        init,
                        out,
                    );
                }
            }
        }
    }
}

/// A NaN input makes the currents of its batch row NaN from its step on, on both paths (the
/// narrow one adds weights only for neurons that fired, so it has to look for NaN itself).
#[test]
fn a_nan_membrane_gives_nan_currents() {
    let dev = grad_device();
    let leaky = LeakyConfig::new(values(N, 1, 0.5, 0.95))
        .with_threshold(values(N, 2, 0.6, 1.2))
        .init(&dev)
        .unwrap();
    let mut x = values(T * B * N, 41, -0.4, 1.6);
    let (t_nan, b_nan) = (2, 3);
    x[(t_nan * B + b_nan) * N + 20] = f32::NAN;
    for out in WIDTHS {
        let w = t2(&values(N * out, 42, -1.0, 1.0), N, out, &dev);
        let call = FusedCall {
            input: t3(&x, [T, B, N], &dev),
            static_input: false,
            steps: T,
            state: None,
            mems: false,
            final_state: false,
        };
        let (c, _) = leaky
            .fused_linear(call, w)
            .expect("Flex has a fused kernel")
            .unwrap();
        let c = v(c);
        for t in 0..T {
            for b in 0..B {
                let row = &c[(t * B + b) * out..][..out];
                let nan = b == b_nan && t >= t_nan;
                assert!(
                    row.iter().all(|c| c.is_nan() == nan),
                    "out={out} t={t} b={b}: {row:?}"
                );
            }
        }
    }
}
