use burn::tensor::{Device, Distribution, Tensor};
use spyne::kernel::{conv2d, ConvPath, ConvSpec};
use std::time::Instant;

fn main() {
    rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
    let dev = Device::flex().autodiff();
    let n = 6400;
    let d: f64 = std::env::var("D").ok().and_then(|s| s.parse().ok()).unwrap_or(0.05);
    let x = Tensor::<4>::random([n, 12, 12, 12], Distribution::Bernoulli(d), &dev).require_grad();
    let w = Tensor::<4>::random([64, 12, 5, 5], Distribution::Uniform(-0.1, 0.1), &dev).require_grad();
    let b = Tensor::<1>::random([64], Distribution::Uniform(-0.1, 0.1), &dev).require_grad();
    let gz = Tensor::<4>::random([n, 64, 4, 4], Distribution::Uniform(-1.0, 1.0), &dev);
    let paths = if std::env::var("ONLYAUTO").is_ok() { vec![ConvPath::Auto] } else { vec![ConvPath::Auto, ConvPath::Dense] };
    for path in paths {
        let spec = ConvSpec { n, c: 12, h: 12, w: 12, o: 64, kh: 5, kw: 5, stride: [1, 1], padding: [0, 0], bias: true, forward: path, backward: path, pool: Some([2, 2]) };
        let (mut bf, mut bb) = (f64::MAX, f64::MAX);
        for _ in 0..4 {
            let t0 = Instant::now();
            let z = conv2d(x.clone(), w.clone(), Some(b.clone()), spec);
            let _ = z.clone().sum().into_scalar::<f32>();
            let t1 = t0.elapsed().as_secs_f64();
            let g = (z * gz.clone()).sum().backward();
            let _ = x.grad(&g).unwrap().sum().into_scalar::<f32>();
            let t2 = t0.elapsed().as_secs_f64() - t1;
            bf = bf.min(t1);
            bb = bb.min(t2);
        }
        println!("{path:?} d={d}: fwd {:.1} ms bwd {:.1} ms", bf * 1e3, bb * 1e3);
    }
}
