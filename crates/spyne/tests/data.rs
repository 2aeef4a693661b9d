//! The IDX reader, MNIST sources and batching, on small files written by the tests.

mod common;

use common::*;
use spyne::data::idx::{encode_idx, parse_idx, read_idx};
use spyne::data::mnist::{locate, missing_files, verify, Mnist, MNIST_FILES};
use spyne::data::{Batch, EpochOrder};
use spyne::rng::Rng;
use spyne::Error;

#[test]
fn reads_raw_and_gzipped_idx() {
    let dir = TempDir::new("idx");
    let bytes = encode_idx(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    std::fs::write(dir.path().join("raw"), &bytes).unwrap();
    std::fs::write(dir.path().join("gz"), gzip(&bytes)).unwrap();
    for name in ["raw", "gz"] {
        let a = read_idx(&dir.path().join(name), 3).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 255);
    }
}

fn parse_err(bytes: &[u8], rank: usize) -> String {
    parse_idx(bytes.to_vec(), rank).unwrap_err()
}

#[test]
fn every_malformed_file_is_a_clear_error() {
    let good = encode_idx(&[2, 2], &[1, 2, 3, 4]);
    assert!(parse_err(&good[..3], 2).contains("too short"));
    let mut bad_magic = good.clone();
    bad_magic[0] = 7;
    assert!(parse_err(&bad_magic, 2).contains("magic"));
    let mut bad_type = good.clone();
    bad_type[2] = 0x0D;
    assert!(parse_err(&bad_type, 2).contains("unsigned byte"));
    assert!(parse_err(&good, 3).contains("dimensions, expected 3"));
    assert!(parse_err(&good[..6], 2).contains("truncated header"));
    assert!(parse_err(&good[..good.len() - 1], 2).contains("truncated"));
    let mut long = good.clone();
    long.push(0);
    assert!(parse_err(&long, 2).contains("trailing"));

    let dir = TempDir::new("bad");
    let p = dir.path().join("broken.gz");
    std::fs::write(&p, &gzip(&good)[..10]).unwrap();
    let err = read_idx(&p, 2).unwrap_err();
    assert!(matches!(err, Error::Data { .. }));
    assert!(err.to_string().contains("broken.gz"), "{err}");
    assert!(matches!(
        read_idx(&dir.path().join("missing"), 2).unwrap_err(),
        Error::Io { .. }
    ));
}

#[test]
fn loads_a_data_set_and_checks_counts_agree() {
    let dir = TempDir::new("mnist");
    write_synthetic_mnist(dir.path(), 30, 12);
    let m = Mnist::load(dir.path()).unwrap();
    assert_eq!(
        (m.train.len(), m.test.len(), m.train.pixels()),
        (30, 12, 16)
    );
    // Labels for 29 images next to 30 images: named, typed error.
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte.gz"),
        gzip(&encode_idx(&[29], &[0; 29])),
    )
    .unwrap();
    let err = Mnist::load(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    assert!(err.to_string().contains("29 labels"), "{err}");
}

#[test]
fn missing_files_are_named_and_explicit_dirs_are_not_skipped() {
    let dir = TempDir::new("empty");
    assert_eq!(missing_files(dir.path()).len(), 4);
    let err = locate(Some(dir.path())).unwrap_err();
    assert!(matches!(err, Error::DataUnavailable(_)));
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
    write_synthetic_mnist(dir.path(), 3, 3);
    assert_eq!(locate(Some(dir.path())).unwrap(), dir.path());
}

#[test]
fn pinned_digests_reject_other_content() {
    assert!(!verify(&MNIST_FILES[0], b"not mnist"));
    assert_eq!(
        MNIST_FILES
            .iter()
            .map(|f| f.sha256.len())
            .collect::<Vec<_>>(),
        vec![64; 4]
    );
}

#[test]
fn shared_mnist_matches_the_pinned_digests_when_present() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if !dir.is_dir() {
        return;
    }
    for f in MNIST_FILES.iter() {
        let gz = std::fs::read(dir.join(format!("{}.gz", f.name))).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        assert!(verify(f, &raw), "{} digest", f.name);
    }
}

#[test]
fn batches_scale_pixels_and_drop_the_last_partial_batch() {
    let dir = TempDir::new("batch");
    write_synthetic_mnist(dir.path(), 10, 3);
    let m = Mnist::load(dir.path()).unwrap();
    let order = EpochOrder::new(10, 4, true, Some(&mut Rng::new(1)));
    assert_eq!(order.num_batches(), 2);
    let mut seen: Vec<usize> = (0..2)
        .flat_map(|i| order.batch_indices(i).to_vec())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8);
    assert_eq!(EpochOrder::new(10, 4, false, None).num_batches(), 3);
    let b = Batch::gather(&m.train, &[2, 5]);
    assert_eq!(b.len(), 2);
    assert_eq!(b.labels[1], m.train.labels[5] as usize);
    assert_eq!(b.values[16], m.train.image(5)[0] as f32 / 255.0);
    assert!(b.values.iter().all(|p| (0.0..=1.0).contains(p)));
    // Same seed, same order; another seed, another order.
    let again = EpochOrder::new(10, 4, true, Some(&mut Rng::new(1)));
    assert_eq!(order.batch_indices(0), again.batch_indices(0));
    let other = EpochOrder::new(10, 4, true, Some(&mut Rng::new(2)));
    assert_ne!(
        (0..2)
            .flat_map(|i| order.batch_indices(i).to_vec())
            .collect::<Vec<_>>(),
        (0..2)
            .flat_map(|i| other.batch_indices(i).to_vec())
            .collect::<Vec<_>>()
    );
}

// PyTorch's generator. The expected values were printed by PyTorch 2.15 (CPU):
//   torch.manual_seed(0); a = nn.Linear(784, 1000); b = nn.Linear(1000, 10)
//   g = torch.Generator().manual_seed(0); torch.randperm(60000, generator=g)  # twice
// Bit patterns are the f32 values' IEEE bits.

use spyne::layer::torch_linear;
use spyne::rng::TorchRng;

#[test]
fn torch_uniform_and_randperm_match_pytorch() {
    let mut g = TorchRng::new(7);
    let got: Vec<f32> = (0..7).map(|_| g.uniform_f32(-0.5, 0.5)).collect();
    assert_eq!(got[0], 0.034_922_54);
    assert_eq!(got[1], -0.301_196_8);
    assert_eq!(got[6].to_bits(), 0xbe95f8d2);
    // PyTorch keeps the seed's low 32 bits.
    assert_eq!(TorchRng::new((1 << 32) + 7).uniform_f32(-0.5, 0.5), got[0]);
    assert_eq!(
        TorchRng::new(7).randperm(10),
        vec![5, 0, 3, 4, 1, 7, 9, 6, 8, 2]
    );
    let mut g = TorchRng::new(0);
    let p1 = g.randperm(60000);
    assert_eq!(
        p1[..8],
        [36044, 10678, 57327, 55074, 21567, 15479, 9481, 43095]
    );
    assert_eq!(p1[59997..], [31951, 27130, 1544]);
    let p2 = g.randperm(60000);
    assert_eq!(
        p2[..8],
        [27953, 38120, 7367, 44667, 1513, 24140, 14424, 14285]
    );
    let mut sorted = p2.clone();
    sorted.sort_unstable();
    assert!(sorted.iter().enumerate().all(|(i, &x)| i == x));
}

#[test]
fn linear_from_torch_seed_has_pytorchs_initial_weights() {
    let dev = cpu();
    let mut g = TorchRng::new(0);
    let fc1 = torch_linear(784, 1000, true, &mut g, &dev).unwrap();
    let fc2 = torch_linear(1000, 10, true, &mut g, &dev).unwrap();
    let bits = |t: burn::tensor::Tensor<2>, i: usize, o: usize| {
        v(t.slice([i..i + 1, o..o + 1]))[0].to_bits()
    };
    // burn stores [in, out]: PyTorch's weight[o][i] is ours [i][o].
    let w1 = fc1.weight.val();
    assert_eq!(bits(w1.clone(), 0, 0), 0xb98c3000);
    assert_eq!(bits(w1.clone(), 1, 0), 0x3c9cf2b5);
    assert_eq!(bits(w1.clone(), 2, 0), 0xbcf0ccac);
    assert_eq!(bits(w1, 783, 999), 0x3c4a80e5);
    let b1 = v(fc1.bias.unwrap().val());
    assert_eq!(
        (b1[0].to_bits(), b1[999].to_bits()),
        (0xbcc96711, 0x3bf518f8)
    );
    let w2 = fc2.weight.val();
    assert_eq!(bits(w2.clone(), 0, 0), 0xbcd7b931);
    assert_eq!(bits(w2, 999, 9), 0xbc5b8ded);
    assert_eq!(v(fc2.bias.unwrap().val())[9].to_bits(), 0xbcc1bf9a);
}
