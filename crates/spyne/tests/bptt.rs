//! BPTT gradients against hand-derived recursions, truncation, and learnable β/θ.

mod common;

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use common::*;
use spyne::layer::linear_from_torch;
use spyne::loss::ce_membrane_loss;
use spyne::neuron::*;
use spyne::surrogate::Surrogate;

fn h(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// One Leaky neuron, L = Σ c_t·U[t] + Σ d_t·S[t]; the seed's recursion
/// δ[t] = c_t + d_t·σ'(U[t] − θ) + β·δ[t+1] gives ∂L/∂I[t] = δ[t], ∂L/∂β = Σ δ[t]·U[t−1],
/// ∂L/∂θ = Σ −δ[t]·r[t] − d_t·σ'(U[t] − θ).
#[test]
fn single_neuron_matches_the_hand_derived_recursion() {
    let (beta, theta) = (0.9f64, 1.0f64);
    let input = [0.6f64, 0.7, 0.2, 0.9, 0.4];
    let c = [0.3f64, -0.2, 0.5, 0.1, -0.4];
    let d = [1.0f64, -0.5, 0.7, 0.2, 0.9];
    let sg = Surrogate::default();
    let t_n = input.len();
    let (mut u, mut r) = (vec![0.0f64; t_n + 1], vec![0.0f64; t_n + 1]);
    for t in 1..=t_n {
        r[t] = h(u[t - 1] - theta);
        u[t] = beta * u[t - 1] + input[t - 1] - r[t] * theta;
    }
    let sp = |t: usize| sg.derivative((u[t] - theta) as f32) as f64;
    let mut delta = vec![0.0f64; t_n + 2];
    for t in (1..=t_n).rev() {
        delta[t] = c[t - 1] + d[t - 1] * sp(t) + beta * delta[t + 1];
    }
    let want_i: Vec<f32> = (1..=t_n).map(|t| delta[t] as f32).collect();
    let want_beta: f64 = (1..=t_n).map(|t| delta[t] * u[t - 1]).sum();
    let want_theta: f64 = (1..=t_n).map(|t| -delta[t] * r[t] - d[t - 1] * sp(t)).sum();

    let dev = grad_device();
    let n = LeakyConfig::new(beta as f32)
        .with_learn_beta(true)
        .with_learn_threshold(true)
        .init(&dev)
        .unwrap();
    let x: Vec<f32> = input.iter().map(|&v| v as f32).collect();
    let x = t3(&x, [t_n, 1, 1], &dev).require_grad();
    let seq = run_sequence(&n, x.clone(), None, None).unwrap();
    let cw = t3(&c.map(|v| v as f32), [t_n, 1, 1], &dev);
    let dw = t3(&d.map(|v| v as f32), [t_n, 1, 1], &dev);
    let loss = (seq.mems * cw).sum() + (seq.spikes * dw).sum();
    let g = loss.backward();
    assert_close(&v(x.grad(&g).unwrap()), &want_i, 1e-5, "∂L/∂I");
    assert_close(
        &v(n.beta.val().grad(&g).unwrap()),
        &[want_beta as f32],
        1e-5,
        "∂L/∂β",
    );
    assert_close(
        &v(n.core.threshold.val().grad(&g).unwrap()),
        &[want_theta as f32],
        1e-5,
        "∂L/∂θ",
    );
}

/// A 2-layer network (3 → 4 → 2, T = 5, batch 2) under the tutorial's loss, against the
/// hand-derived BPTT: ∂L/∂W = Σ_t Σ_{s≤t} ∂L[t]/∂U[t]·∂U[t]/∂U[s]·∂U[s]/∂W.
#[test]
fn two_layer_network_matches_hand_derived_bptt() {
    let (ni, nh, no, b, t_n) = (3usize, 4usize, 2usize, 2usize, 5usize);
    let (beta, theta) = (0.8f64, 1.0f64);
    let w1: Vec<f64> = values(ni * nh, 11, -1.0, 1.5)
        .iter()
        .map(|&v| v as f64)
        .collect(); // [in, out]
    let b1: Vec<f64> = values(nh, 12, 0.0, 0.5).iter().map(|&v| v as f64).collect();
    let w2: Vec<f64> = values(nh * no, 13, -1.0, 1.0)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let b2: Vec<f64> = values(no, 14, -0.2, 0.2)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let x: Vec<f64> = values(t_n * b * ni, 15, 0.0, 1.0)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let y = [1usize, 0];
    let sg = Surrogate::default();

    // Forward in f64, keeping what the backward needs.
    let idx = |t: usize, bi: usize, j: usize, w: usize| (t * b + bi) * w + j;
    let (mut u1, mut s1) = (vec![0.0; t_n * b * nh], vec![0.0; t_n * b * nh]);
    let mut u2 = vec![0.0; t_n * b * no];
    for t in 0..t_n {
        for bi in 0..b {
            for j in 0..nh {
                let prev = if t == 0 {
                    0.0
                } else {
                    u1[idx(t - 1, bi, j, nh)]
                };
                let cur: f64 = b1[j]
                    + (0..ni)
                        .map(|i| x[idx(t, bi, i, ni)] * w1[i * nh + j])
                        .sum::<f64>();
                let u = beta * prev + cur - h(prev - theta) * theta;
                u1[idx(t, bi, j, nh)] = u;
                s1[idx(t, bi, j, nh)] = h(u - theta);
            }
            for k in 0..no {
                let prev = if t == 0 {
                    0.0
                } else {
                    u2[idx(t - 1, bi, k, no)]
                };
                let cur: f64 = b2[k]
                    + (0..nh)
                        .map(|j| s1[idx(t, bi, j, nh)] * w2[j * no + k])
                        .sum::<f64>();
                u2[idx(t, bi, k, no)] = beta * prev + cur - h(prev - theta) * theta;
            }
        }
    }
    // Backward: g_U2 = (softmax − onehot)/B, δ2[t] = g_U2[t] + β·δ2[t+1],
    // g_S1 = δ2·W2ᵀ, δ1[t] = g_S1[t]·σ'(U1[t] − θ) + β·δ1[t+1].
    let (mut dw1, mut db1, mut dw2, mut db2) = (
        vec![0.0; ni * nh],
        vec![0.0; nh],
        vec![0.0; nh * no],
        vec![0.0; no],
    );
    for bi in 0..b {
        let (mut d2_next, mut d1_next) = (vec![0.0; no], vec![0.0; nh]);
        for t in (0..t_n).rev() {
            let z: Vec<f64> = (0..no).map(|k| u2[idx(t, bi, k, no)]).collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            let d2: Vec<f64> = (0..no)
                .map(|k| {
                    (e[k] / sum - if k == y[bi] { 1.0 } else { 0.0 }) / b as f64 + beta * d2_next[k]
                })
                .collect();
            for k in 0..no {
                db2[k] += d2[k];
                for j in 0..nh {
                    dw2[j * no + k] += s1[idx(t, bi, j, nh)] * d2[k];
                }
            }
            let d1: Vec<f64> = (0..nh)
                .map(|j| {
                    let gs: f64 = (0..no).map(|k| d2[k] * w2[j * no + k]).sum();
                    gs * sg.derivative((u1[idx(t, bi, j, nh)] - theta) as f32) as f64
                        + beta * d1_next[j]
                })
                .collect();
            for j in 0..nh {
                db1[j] += d1[j];
                for i in 0..ni {
                    dw1[i * nh + j] += x[idx(t, bi, i, ni)] * d1[j];
                }
            }
            (d2_next, d1_next) = (d2, d1);
        }
    }
    assert!(
        s1.contains(&1.0) && s1.contains(&0.0),
        "hidden layer should partly fire"
    );

    let dev = grad_device();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let torch = |w: &[f64], i: usize, o: usize| -> Vec<f32> {
        (0..o)
            .flat_map(|k| (0..i).map(move |j| (j, k)))
            .map(|(j, k)| w[j * o + k] as f32)
            .collect()
    };
    let fc1 = linear_from_torch(&torch(&w1, ni, nh), Some(&f32s(&b1)), ni, nh, &dev).unwrap();
    let fc2 = linear_from_torch(&torch(&w2, nh, no), Some(&f32s(&b2)), nh, no, &dev).unwrap();
    let lif = LeakyConfig::new(beta as f32).init(&dev).unwrap();
    let input = t3(&f32s(&x), [t_n, b, ni], &dev);
    let hidden = run_sequence(&lif, fc1.forward(input), None, None).unwrap();
    let out = run_sequence(&lif, fc2.forward(hidden.spikes), None, None).unwrap();
    let g = ce_membrane_loss(out.mems, &y).unwrap().backward();
    let grad2 = |p: &burn::module::Param<Tensor<2>>| v(p.val().grad(&g).unwrap());
    let grad1 = |p: &burn::module::Param<Tensor<1>>| v(p.val().grad(&g).unwrap());
    assert_close(&grad2(&fc2.weight), &f32s(&dw2), 1e-5, "dW2");
    assert_close(&grad1(fc2.bias.as_ref().unwrap()), &f32s(&db2), 1e-5, "db2");
    assert_close(&grad2(&fc1.weight), &f32s(&dw1), 1e-5, "dW1");
    assert_close(&grad1(fc1.bias.as_ref().unwrap()), &f32s(&db1), 1e-5, "db1");
}

#[test]
fn truncated_bptt_cuts_gradients_beyond_the_window() {
    let dev = grad_device();
    let n = LeakyConfig::new(0.5)
        .with_reset(Reset::None)
        .init(&dev)
        .unwrap();
    let grad_of_last = |truncate: Option<usize>| {
        let x = t3(&[0.1; 5], [5, 1, 1], &dev).require_grad();
        let seq = run_sequence(&n, x.clone(), None, truncate).unwrap();
        let g = seq.mems.narrow(0, 4, 1).sum().backward();
        v(x.grad(&g).unwrap())
    };
    assert_close(
        &grad_of_last(None),
        &[0.0625, 0.125, 0.25, 0.5, 1.0],
        1e-6,
        "full",
    );
    assert_close(
        &grad_of_last(Some(3)),
        &[0.0, 0.0, 0.0, 0.5, 1.0],
        1e-6,
        "k = 3",
    );
    assert_close(
        &grad_of_last(Some(2)),
        &[0.0, 0.0, 0.0, 0.0, 1.0],
        1e-6,
        "k = 2",
    );
}

#[test]
fn learnable_beta_and_threshold_get_gradients_and_move_under_adam() {
    let dev = grad_device();
    let mut n = LeakyConfig::new(vec![0.8, 0.9, 0.7])
        .with_threshold(vec![1.0, 0.8, 1.2])
        .with_learn_beta(true)
        .with_learn_threshold(true)
        .init(&dev)
        .unwrap();
    let x = t3(&values(6 * 2 * 3, 9, 0.0, 1.2), [6, 2, 3], &dev);
    let (beta0, theta0) = (v(n.beta.val()), v(n.core.threshold.val()));
    let mut optim = spyne::optim::Adam::default().init();
    let seq = run_sequence(&n, x.clone(), None, None).unwrap();
    let loss = ce_membrane_loss(seq.mems, &[0, 2]).unwrap();
    let grads = loss.backward();
    assert!(
        v(n.beta.val().grad(&grads).unwrap())
            .iter()
            .all(|g| *g != 0.0),
        "β gradient"
    );
    assert!(
        v(n.core.threshold.val().grad(&grads).unwrap())
            .iter()
            .any(|g| *g != 0.0),
        "θ gradient"
    );
    n = optim.step(0.01, n.clone(), GradientsParams::from_grads(grads, &n));
    assert!(
        v(n.beta.val()).iter().zip(&beta0).all(|(a, b)| a != b),
        "β moved"
    );
    assert!(
        v(n.core.threshold.val())
            .iter()
            .zip(&theta0)
            .any(|(a, b)| a != b),
        "θ moved"
    );
}

#[test]
fn fixed_beta_gets_no_gradient() {
    let dev = grad_device();
    let n = LeakyConfig::new(0.8).init(&dev).unwrap();
    let x = t3(&[0.7; 4], [4, 1, 1], &dev).require_grad();
    let g = run_sequence(&n, x, None, None)
        .unwrap()
        .mems
        .sum()
        .backward();
    assert!(n.beta.val().grad(&g).is_none());
}
