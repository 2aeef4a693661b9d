//! The dense Linear op (what a Linear layer on a dense input runs on the CPU backend) against
//! burn's product and bias: values and the gradients of input, weight and bias.

mod common;

use burn::tensor::Tensor;
use common::*;
use spyne::kernel;

#[test]
fn dense_linear_equals_burns_product() {
    let dev = grad_device();
    // 37 outputs: two column blocks, the second narrower, neither a whole register tile;
    // and a one-column layer.
    // The last: a quarter of the input's columns zero in every row (left out of the op's
    // products).
    let shapes = [(29, 45, 37, true), (3, 8, 1, false), (130, 200, 300, true)];
    for (case, (rows, k, n, bias)) in shapes.into_iter().enumerate() {
        let mut x_vals = values(rows * k, 1, -1.0, 1.0);
        if case == 2 {
            for (i, x) in x_vals.iter_mut().enumerate() {
                if (i % k).is_multiple_of(4) {
                    *x = 0.0;
                }
            }
        }
        let w_vals = values(k * n, 2, -1.0, 1.0);
        let b_vals = values(n, 3, -0.5, 0.5);
        let g_vals = values(rows * n, 4, -1.0, 1.0);
        let run = |op: bool| {
            let x = t2(&x_vals, rows, k, &dev).require_grad();
            let w = t2(&w_vals, k, n, &dev).require_grad();
            let b = Tensor::<1>::from_floats(b_vals.as_slice(), &dev).require_grad();
            let y = match (op, bias) {
                (true, _) => kernel::dense_linear(x.clone(), w.clone(), bias.then(|| b.clone())),
                (false, true) => x.clone().matmul(w.clone()) + b.clone().reshape([1, n]),
                (false, false) => x.clone().matmul(w.clone()),
            };
            let g = (y.clone() * t2(&g_vals, rows, n, &dev)).sum().backward();
            let grads = [x.grad(&g).map(v), w.grad(&g).map(v), b.grad(&g).map(v)];
            (v(y), grads)
        };
        let ((burn, bg), (op, og)) = (run(false), run(true));
        assert_close(&op, &burn, 1e-5, "forward");
        for (what, (o, b)) in ["input", "weight", "bias"].iter().zip(og.iter().zip(&bg)) {
            match (o, b) {
                (Some(o), Some(b)) => {
                    assert_close(o, b, 1e-5, what);
                    assert!(b.iter().any(|g| *g != 0.0), "{what} gradient is not zero");
                }
                (None, None) => assert!(!bias && *what == "bias"),
                _ => panic!("{what}: one path has a gradient, the other not"),
            }
        }
    }
}
