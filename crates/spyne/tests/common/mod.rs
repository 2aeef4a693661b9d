//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fused;

use burn::tensor::{Device, Tensor, TensorData};

pub fn cpu() -> Device {
    Device::flex()
}

pub fn grad_device() -> Device {
    Device::flex().autodiff()
}

/// A Leaky layer on the CPU with decay `beta` and reset `reset`.
pub fn leaky(beta: f32, reset: spyne::neuron::Reset) -> spyne::neuron::Leaky {
    spyne::neuron::LeakyConfig::new(beta)
        .with_reset(reset)
        .init(&cpu())
        .unwrap()
}

pub fn t2(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

pub fn t3(values: &[f32], dims: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values.to_vec(), dims), device)
}

pub fn v<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    spyne::tensor::to_vec(t)
}

pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (tol {tol})\n got: {got:?}\nwant: {want:?}"
        );
    }
}

/// Deterministic pseudo-random values in [lo, hi).
pub fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = spyne::rng::Rng::new(seed);
    (0..n).map(|_| r.uniform_range(lo, hi)).collect()
}

/// A fresh empty directory under the system temp dir, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("spyne-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A synthetic MNIST-like data set in `dir`: `n_train`/`n_test` images of 4×4 pixels whose
/// class (0–2) is written in their brightness pattern, so a tiny network can learn it.
pub fn write_synthetic_mnist(dir: &std::path::Path, n_train: usize, n_test: usize) {
    use spyne::data::idx::encode_idx;
    let mut rng = spyne::rng::Rng::new(42);
    let mut make = |n: usize| {
        let (mut img, mut lab) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let y = rng.below(3);
            for p in 0..16 {
                let on = p % 3 == y;
                let base = if on { 200.0 } else { 20.0 };
                img.push((base + rng.uniform() * 50.0) as u8);
            }
            lab.push(y as u8);
        }
        (img, lab)
    };
    let (ti, tl) = make(n_train);
    let (si, sl) = make(n_test);
    let w = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), gzip(&bytes)).unwrap();
    w(
        "train-images-idx3-ubyte.gz",
        encode_idx(&[n_train, 4, 4], &ti),
    );
    w("train-labels-idx1-ubyte.gz", encode_idx(&[n_train], &tl));
    w(
        "t10k-images-idx3-ubyte.gz",
        encode_idx(&[n_test, 4, 4], &si),
    );
    w("t10k-labels-idx1-ubyte.gz", encode_idx(&[n_test], &sl));
}
