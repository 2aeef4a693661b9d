//! Helpers shared by the CLI tests: a temporary directory, running the binary, and a small
//! synthetic data set.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("spyne-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn spyne(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spyne"));
    c.args(args)
        .env_remove("SPYNE_DATA")
        .env("SPYNE_OFFLINE", "1");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// 4×4 images whose class (0–2) is the brightness pattern.
pub fn write_data(dir: &Path) {
    use spyne::data::idx::encode_idx;
    let mut rng = spyne::rng::Rng::new(5);
    for (prefix, n) in [("train", 200usize), ("t10k", 60)] {
        let (mut img, mut lab) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let y = rng.below(3);
            img.extend((0..16).map(|p| if p % 3 == y { 220u8 } else { 10 }));
            lab.push(y as u8);
        }
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            gz(&encode_idx(&[n, 4, 4], &img)),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            gz(&encode_idx(&[n], &lab)),
        )
        .unwrap();
    }
}
