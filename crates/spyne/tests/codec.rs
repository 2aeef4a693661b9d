//! Encoders, losses and decoding against hand-computed values.

mod common;

use common::*;
use spyne::decode::*;
use spyne::loss::*;
use spyne::rng::Rng;
use spyne::spikegen::*;

#[test]
fn direct_repeats_and_rate_matches_pixel_values() {
    assert_eq!(direct(&[0.1, 0.2], 3), vec![0.1, 0.2, 0.1, 0.2, 0.1, 0.2]);
    let data = [0.0, 0.1, 0.5, 0.9, 1.0];
    let steps = 20_000;
    let s = rate(&data, steps, 1.0, 0.0, &mut Rng::new(3));
    assert!(s.iter().all(|&x| x == 0.0 || x == 1.0));
    for (i, &p) in data.iter().enumerate() {
        let mean = (0..steps).map(|t| s[t * data.len() + i]).sum::<f32>() / steps as f32;
        assert!((mean - p).abs() < 0.01, "rate of {p}: {mean}");
    }
    // Gain and offset clamp into [0, 1]; the same seed gives the same spikes.
    let g = rate(&[0.6], 1000, 2.0, 0.0, &mut Rng::new(1));
    assert!(g.iter().all(|&x| x == 1.0));
    assert_eq!(
        rate(&data, 5, 1.0, 0.0, &mut Rng::new(7)),
        rate(&data, 5, 1.0, 0.0, &mut Rng::new(7))
    );
}

#[test]
fn latency_matches_snntorch_formulas() {
    // Log: t = τ·ln(x/(x − θ)); x = 1 → ln(1/0.99) ≈ 0.01005 → step 0.
    let o = LatencyOptions {
        tau: 5.0,
        ..LatencyOptions::default()
    };
    let t = latency_times(&[1.0, 0.5, 0.02], 25, &o).unwrap();
    let want = [
        5.0 * (1.0f32 / 0.99).ln(),
        5.0 * (0.5f32 / 0.49).ln(),
        5.0 * 2.0f32.ln(),
    ];
    assert_close(&t, &want, 1e-4, "log times");
    let s = latency(&[1.0, 0.02, 0.0], 25, &o).unwrap();
    // One spike each, at round(t); x = 0 fires at ~80 ≥ 25, so never.
    let at = |i: usize| (0..25).filter(|&k| s[k * 3 + i] == 1.0).collect::<Vec<_>>();
    assert_eq!(at(0), vec![0]);
    assert_eq!(at(1), vec![3]);
    assert!(at(2).is_empty());
    // Linear with normalize: t = (T − 1)·(1 − x), capped at (T − 1)·(1 − θ).
    let lin = LatencyOptions {
        linear: true,
        normalize: true,
        ..LatencyOptions::default()
    };
    assert_close(
        &latency_times(&[1.0, 0.5, 0.0], 11, &lin).unwrap(),
        &[0.0, 5.0, 9.9],
        1e-5,
        "linear",
    );
    let clip = LatencyOptions { clip: true, ..lin };
    assert!(latency(&[0.0], 11, &clip)
        .unwrap()
        .iter()
        .all(|&x| x == 0.0));
    assert!(latency(&[1.5], 5, &LatencyOptions::default()).is_err());
}

#[test]
fn delta_spikes_on_changes() {
    // Two features over three steps.
    let seq = [0.5, 0.0, 0.55, 0.3, 0.1, 0.3];
    assert_eq!(
        delta(&seq, 2, 0.1, false),
        vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(
        delta(&seq, 2, 0.1, true),
        vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0]
    );
}

#[test]
fn encode_builds_time_major_tensors() {
    let dev = cpu();
    let x = Encoding::Direct
        .encode(&[1.0, 2.0, 3.0, 4.0], 2, 3, &mut Rng::new(0), &dev)
        .unwrap();
    assert_eq!(x.dims(), [3, 2, 2]);
    assert_eq!(v(x.narrow(0, 2, 1)), vec![1.0, 2.0, 3.0, 4.0]);
    assert!(Encoding::from_name("morse").is_err());
}

fn ce(logits: &[f32], y: usize) -> f32 {
    let m = logits.iter().cloned().fold(f32::MIN, f32::max);
    let lse = logits.iter().map(|z| (z - m).exp()).sum::<f32>().ln() + m;
    lse - logits[y]
}

#[test]
fn losses_equal_hand_computed_values() {
    let dev = cpu();
    // T = 2, B = 2, C = 3.
    let out = [0.5, 1.0, -1.0, 0.0, 0.2, 0.1, 1.5, 0.0, 0.3, 0.7, 0.7, 0.0];
    let spikes = [1., 0., 0., 0., 1., 1., 1., 1., 0., 0., 1., 0.];
    let y = [1usize, 2];
    let m = t3(&out, [2, 2, 3], &dev);
    let s = t3(&spikes, [2, 2, 3], &dev);
    let row = |t: usize, b: usize, v: &[f32]| v[(t * 2 + b) * 3..(t * 2 + b) * 3 + 3].to_vec();
    let sum_ce = |v: &[f32]| {
        (0..2)
            .map(|t| (0..2).map(|b| ce(&row(t, b, v), y[b])).sum::<f32>() / 2.0)
            .sum::<f32>()
    };
    let scalar = |t: burn::tensor::Tensor<1>| v(t)[0];
    assert_close(
        &[scalar(ce_membrane_loss(m.clone(), &y).unwrap())],
        &[sum_ce(&out)],
        1e-6,
        "ce membrane",
    );
    assert_close(
        &[scalar(ce_rate_loss(s.clone(), &y).unwrap())],
        &[sum_ce(&spikes) / 2.0],
        1e-6,
        "ce rate",
    );
    // Counts: sample 0 [2, 1, 0], sample 1 [0, 2, 1].
    let count_ce = (ce(&[2., 1., 0.], 1) + ce(&[0., 2., 1.], 2)) / 2.0;
    assert_close(
        &[scalar(ce_count_loss(s.clone(), &y).unwrap())],
        &[count_ce],
        1e-6,
        "ce count",
    );
    // Max membrane: sample 0 [1.5, 1.0, 0.3], sample 1 [0.7, 0.7, 0.1].
    let max_ce = (ce(&[1.5, 1.0, 0.3], 1) + ce(&[0.7, 0.7, 0.1], 2)) / 2.0;
    assert_close(
        &[scalar(ce_max_membrane_loss(m.clone(), &y).unwrap())],
        &[max_ce],
        1e-6,
        "ce max",
    );
    // mse_count with rates 1 and 0: targets [0, 2, 0] and [0, 0, 2] (T = 2).
    let se = [4., 1., 0., 0., 4., 1.].iter().sum::<f32>() / 6.0 / 2.0;
    assert_close(
        &[scalar(mse_count_loss(s.clone(), &y, 1.0, 0.0).unwrap())],
        &[se],
        1e-6,
        "mse count",
    );
    let tgt = |b: usize, c: usize| if c == y[b] { 1.0 } else { 0.0 };
    let mse_mem: f32 = (0..12)
        .map(|k| (out[k] - tgt((k / 3) % 2, k % 3)).powi(2))
        .sum::<f32>()
        / 12.0;
    assert_close(
        &[scalar(mse_membrane_loss(m, &y, 1.0, 0.0).unwrap())],
        &[mse_mem],
        1e-6,
        "mse membrane",
    );
    // First spikes: sample 0 [0, 1, 1(silent → T−1)], sample 1 [1, 0, 0].
    assert_eq!(
        v(first_spike_times(s.clone())),
        vec![0., 1., 1., 1., 0., 0.]
    );
    let temporal = (ce(&[0., -1., -1.], 1) + ce(&[-1., 0., 0.], 2)) / 2.0;
    assert_close(
        &[scalar(ce_temporal_loss(s.clone(), &y).unwrap())],
        &[temporal],
        1e-6,
        "ce temporal",
    );
    // Targets: correct at 0, others at T − 1 = 1; divided by T.
    let mse_t = [0., 1., 1., 1., 0., 0.]
        .iter()
        .zip([1., 0., 1., 1., 1., 0.])
        .map(|(a, b): (&f32, f32)| ((a - b) / 2.0).powi(2))
        .sum::<f32>()
        / 6.0;
    assert_close(
        &[scalar(mse_temporal_loss(s.clone(), &y).unwrap())],
        &[mse_t],
        1e-6,
        "mse temporal",
    );
    assert_close(
        &[scalar(l1_rate_sparsity(s.clone(), 0.5))],
        &[3.0],
        1e-6,
        "l1",
    );
    assert!(
        ce_membrane_loss(s.clone(), &[0]).is_err(),
        "target count must match the batch"
    );
    assert!(ce_membrane_loss(s, &[0, 7]).is_err(), "class out of range");
}

#[test]
fn first_spike_time_gradient_is_minus_one_at_the_first_spike() {
    let dev = grad_device();
    let s = t3(&[0., 1., 1., 1., 0., 0.], [3, 1, 2], &dev).require_grad();
    let g = first_spike_times(s.clone()).sum().backward();
    // Output 0 first fires at t = 1; output 1 at t = 0.
    assert_eq!(v(s.grad(&g).unwrap()), vec![0., -1., -1., 0., 0., 0.]);
}

#[test]
fn decoding_and_ties() {
    let dev = cpu();
    // T = 2, B = 3, C = 2: counts [1, 1] (tie → 0), [0, 2] → 1, [0, 0] silent → 0.
    let s = t3(
        &[1., 0., 0., 1., 0., 0., 0., 1., 0., 1., 0., 0.],
        [2, 3, 2],
        &dev,
    );
    assert_eq!(predict_rate(s.clone()), vec![0, 1, 0]);
    // First spikes: sample 0 [0, 1] → 0; sample 1 [1, 0] → 1; silent → both T − 1 → 0.
    assert_eq!(predict_latency(s.clone()), vec![0, 1, 0]);
    assert_eq!(accuracy_rate(s.clone(), &[0, 1, 1]), 2.0 / 3.0);
    assert_eq!(accuracy_temporal(s, &[0, 1, 0]), 1.0);
    assert_eq!(argmax_rows(&[0.1, 0.3, 0.3, 2.0, -1.0, 2.0], 3), vec![1, 0]);
}

/// The cross-entropy op (the CPU backend's) against the same loss as burn tensor ops:
/// the loss and its gradient, over rows split into several parallel tasks.
#[test]
fn the_cross_entropy_op_equals_burns_ops() {
    let dev = grad_device();
    let (t, b, c) = (7, 97, 10); // 679 rows: three tasks, the last one short
    let x_vals = values(t * b * c, 11, -4.0, 4.0);
    let y: Vec<usize> = (0..b).map(|i| (i * 7) % c).collect();
    let run = |op: bool| {
        let x = t3(&x_vals, [t, b, c], &dev).require_grad();
        let loss = if op {
            ce_membrane_loss(x.clone(), &y).unwrap()
        } else {
            reference_cross_entropy(x.clone(), &y, 1.0 / b as f32).unwrap()
        };
        let g = loss.clone().mul_scalar(3.0).backward();
        (v(loss), v(x.grad(&g).unwrap()))
    };
    let ((l_op, g_op), (l_ref, g_ref)) = (run(true), run(false));
    assert_close(&l_op, &l_ref, 1e-5, "loss");
    assert_close(&g_op, &g_ref, 1e-5, "gradient");
    assert!(g_ref.iter().any(|g| *g != 0.0));
    // Out-of-range targets and a batch of the wrong size are errors, not panics.
    let x = t3(&x_vals, [t, b, c], &dev);
    assert!(ce_membrane_loss(x.clone(), &vec![c; b]).is_err());
    assert!(ce_membrane_loss(x, &y[1..]).is_err());
    let empty = burn::tensor::Tensor::<3>::zeros([t, 0, c], &dev);
    assert!(ce_membrane_loss(empty, &[]).is_err(), "an empty batch");
}
