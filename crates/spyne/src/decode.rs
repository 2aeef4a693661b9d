//! Decoding output spikes into predictions, and accuracy.
//!
//! Ties go to the lowest class index (as `torch.max` does on CPU), so a silent output layer
//! predicts class 0 under rate decoding; under latency decoding a silent output counts as
//! firing at the last step `T − 1`, as in snntorch.

use burn::tensor::Tensor;

use crate::tensor::to_vec;

/// Index of the largest value of each row of a `rows × cols` host matrix (lowest on ties).
pub fn argmax_rows(values: &[f32], cols: usize) -> Vec<usize> {
    values
        .chunks(cols)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// Rate decoding: the class with the most spikes over `[T, batch, classes]`.
pub fn predict_rate(spikes: Tensor<3>) -> Vec<usize> {
    let [_, b, c] = spikes.dims();
    argmax_rows(&to_vec(spikes.sum_dim(0).reshape([b, c])), c)
}

/// Latency decoding: the class that fired first (silent counts as `T − 1`; ties lowest index).
pub fn predict_latency(spikes: Tensor<3>) -> Vec<usize> {
    let [t, b, c] = spikes.dims();
    let host = to_vec(spikes);
    (0..b)
        .map(|i| {
            let first = |k: usize| {
                (0..t)
                    .find(|&s| host[(s * b + i) * c + k] != 0.0)
                    .unwrap_or(t - 1)
            };
            (0..c).min_by_key(|&k| (first(k), k)).unwrap_or(0)
        })
        .collect()
}

/// The fraction of `predictions` equal to `targets`.
pub fn accuracy(predictions: &[usize], targets: &[usize]) -> f32 {
    if targets.is_empty() {
        return 0.0;
    }
    let hits = predictions
        .iter()
        .zip(targets)
        .filter(|(p, y)| p == y)
        .count();
    hits as f32 / targets.len() as f32
}

/// snntorch `accuracy_rate`.
pub fn accuracy_rate(spikes: Tensor<3>, targets: &[usize]) -> f32 {
    accuracy(&predict_rate(spikes), targets)
}

/// snntorch `accuracy_temporal`.
pub fn accuracy_temporal(spikes: Tensor<3>, targets: &[usize]) -> f32 {
    accuracy(&predict_latency(spikes), targets)
}
