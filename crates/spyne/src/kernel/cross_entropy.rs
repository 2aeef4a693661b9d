//! Cross-entropy over rows of logits, `L = −s·Σ_r log softmax(x_r)[y_r]`, in one pass that
//! also keeps the softmax for the gradient `∂L/∂x_r = s·(softmax(x_r) − onehot(y_r))`.
//!
//! As burn tensor ops, tutorial 5's summed membrane loss (`[25·128, 10]` logits) was a
//! dozen serial passes, forward and backward, with every exponential taken twice.

use rayon::prelude::*;

use super::buffer::{Shared, Unfilled};

/// Rows per parallel task.
const ROWS: usize = 256;

/// The loss, and the softmax of every row (`[rows, C]`) for [`backward`]. Row `r`'s target
/// is `targets[r % targets.len()]` (one target per batch row, the rows being steps × batch),
/// each below `c`; `scale` is `s`. The per-row terms are summed in row order, in `f64`.
/// A NaN or infinite logit makes the loss NaN or infinite.
pub fn forward(x: &[f32], c: usize, targets: &[usize], scale: f32) -> (f32, Vec<f32>) {
    let rows = x.len() / c;
    assert!(rows * c == x.len() && !targets.is_empty() && targets.iter().all(|&y| y < c));
    let mut probs = Unfilled::new(rows * c);
    let p = Shared(probs.as_mut_ptr());
    let terms: Vec<f64> = (0..rows.div_ceil(ROWS))
        .into_par_iter()
        .map(|task| {
            let mut sum = 0.0f64;
            for r in task * ROWS..((task + 1) * ROWS).min(rows) {
                let x = &x[r * c..(r + 1) * c];
                // SAFETY: row r of the softmax belongs to this task alone.
                let p = unsafe { p.at(r * c, c) };
                // `max` skips a NaN; the NaN then reaches `total` through `exp`.
                let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut total = 0.0f32;
                for (p, &v) in p.iter_mut().zip(x) {
                    *p = (v - m).exp();
                    total += *p;
                }
                for p in p.iter_mut() {
                    *p /= total;
                }
                // log softmax(x)[y] = x[y] − m − ln Σ exp(x − m)
                let y = targets[r % targets.len()];
                sum += f64::from(x[y] - m - total.ln());
            }
            sum
        })
        .collect();
    let loss = -terms.iter().sum::<f64>() * f64::from(scale);
    // An infinite logit gives `∞ − ∞ = NaN` (or, −∞ at the target, an infinite loss).
    // SAFETY: the tasks cover every row, and each writes its rows whole.
    (loss as f32, unsafe { probs.assume_filled() })
}

/// `∂L/∂x` for an upstream gradient `g` of the loss, from [`forward`]'s softmax.
pub fn backward(probs: &[f32], c: usize, targets: &[usize], scale: f32, g: f32) -> Vec<f32> {
    let k = scale * g;
    let mut out = probs.to_vec();
    out.par_chunks_mut(ROWS * c)
        .enumerate()
        .for_each(|(task, block)| {
            for (i, row) in block.chunks_exact_mut(c).enumerate() {
                let r = task * ROWS + i;
                row[targets[r % targets.len()]] -= 1.0;
                for v in row.iter_mut() {
                    *v *= k;
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_gradient_follow_the_formula() {
        // Two rows per target (steps × batch), three classes.
        let x = [
            1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0, 0.25, 0.25, 0.25, 10.0, -10.0, 0.0,
        ];
        let targets = [1usize, 2];
        let (loss, probs) = forward(&x, 3, &targets, 0.5);
        let mut want = 0.0f64;
        let mut grad = vec![0.0f64; 12];
        for r in 0..4 {
            let row: Vec<f64> = x[r * 3..r * 3 + 3].iter().map(|&v| v as f64).collect();
            let z: f64 = row.iter().map(|v| v.exp()).sum();
            let y = targets[r % 2];
            want -= 0.5 * (row[y] - z.ln());
            for k in 0..3 {
                let p = row[k].exp() / z;
                assert!((probs[r * 3 + k] as f64 - p).abs() < 1e-6);
                grad[r * 3 + k] = 2.0 * 0.5 * (p - f64::from(u8::from(k == y)));
            }
        }
        assert!((loss as f64 - want).abs() < 1e-5, "{loss} vs {want}");
        let g = backward(&probs, 3, &targets, 0.5, 2.0);
        for (a, b) in g.iter().zip(&grad) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn large_logits_stay_finite_and_bad_ones_give_nan() {
        let (loss, _) = forward(&[1000.0, 0.0, -1000.0, 999.0], 2, &[0], 1.0);
        // Row 0: −log softmax ≈ 0; row 1: 1999.
        assert!((loss - 1999.0).abs() < 1e-3, "{loss}");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let (loss, _) = forward(&[0.0, bad, 1.0, 2.0], 2, &[1], 1.0);
            assert!(!loss.is_finite(), "{bad}: {loss}");
        }
    }

    #[test]
    fn many_rows_split_over_tasks_sum_in_order() {
        let c = 7;
        let x: Vec<f32> = (0..1000 * c)
            .map(|i| ((i * 37 % 101) as f32) / 17.0)
            .collect();
        let targets: Vec<usize> = (0..13).map(|i| i % c).collect();
        let (a, pa) = forward(&x, c, &targets, 0.01);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (b, pb) = pool.install(|| forward(&x, c, &targets, 0.01));
        assert_eq!((a, pa), (b, pb), "the same at any thread count");
    }
}
