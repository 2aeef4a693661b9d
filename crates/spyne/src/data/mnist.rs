//! MNIST: where the files come from (flag, environment, cache, download) and loading them.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::idx::read_idx;
use crate::error::{Error, Result};

/// The environment variable naming a directory that holds the four MNIST files.
pub const DATA_ENV: &str = "SPYNE_DATA";

/// Set (non-empty) to forbid downloads: a missing data set is then an error at once.
pub const OFFLINE_ENV: &str = "SPYNE_OFFLINE";

/// One of the four MNIST files, with the SHA-256 of its decompressed contents.
#[derive(Debug, Clone, Copy)]
pub struct MnistFile {
    /// The standard base name, without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the raw (decompressed) file.
    pub sha256: &'static str,
}

/// The four files, with the digests of the canonical contents (whose MD5 sums are the
/// well-known `6bbc9ace…`, `a25bea73…`, `2646ac64…`, `27ae3e4e…`).
pub const MNIST_FILES: [MnistFile; 4] = [
    MnistFile {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    MnistFile {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    MnistFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    MnistFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Mirrors tried in order when downloading; each serves `<name>.gz`.
pub const MIRRORS: [&str; 3] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// One split of an image-classification set: `len` images of `rows × cols` bytes and labels.
#[derive(Debug, Clone)]
pub struct Split {
    /// Pixels, row-major, `len * rows * cols` bytes (0–255).
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Split {
    /// Reads an image file (rank 3) and a label file (rank 1) and checks that they agree.
    pub fn load(images: &Path, labels: &Path) -> Result<Split> {
        let img = read_idx(images, 3)?;
        let lab = read_idx(labels, 1)?;
        if img.dims[0] != lab.dims[0] {
            return Err(Error::Data {
                path: labels.to_path_buf(),
                reason: format!(
                    "holds {} labels but {} holds {} images",
                    lab.dims[0],
                    images.display(),
                    img.dims[0]
                ),
            });
        }
        Split::new(img.data, lab.data, img.dims[1], img.dims[2]).map_err(|e| match e {
            Error::InvalidValue { reason, .. } => Error::Data {
                path: labels.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Builds a split from memory: `labels.len()` images of `rows × cols` bytes.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Result<Split> {
        if rows * cols == 0 || images.len() != labels.len() * rows * cols {
            return Err(Error::invalid(
                "split",
                format!(
                    "{} pixel bytes do not make {} images of {rows}x{cols}",
                    images.len(),
                    labels.len()
                ),
            ));
        }
        Ok(Split {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }
}

/// The MNIST training (60,000) and test (10,000) splits.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
}

impl Mnist {
    /// Loads the four files from `dir` (each gzipped or raw).
    pub fn load(dir: &Path) -> Result<Mnist> {
        let path = |i: usize| {
            find_file(dir, MNIST_FILES[i].name).ok_or_else(|| {
                Error::DataUnavailable(format!(
                    "{} not found in {} (as {0} or {0}.gz)",
                    MNIST_FILES[i].name,
                    dir.display()
                ))
            })
        };
        Ok(Mnist {
            train: Split::load(&path(0)?, &path(1)?)?,
            test: Split::load(&path(2)?, &path(3)?)?,
        })
    }

    /// Finds the data ([`locate`]) and loads it.
    pub fn locate_and_load(explicit: Option<&Path>) -> Result<Mnist> {
        Mnist::load(&locate(explicit)?)
    }
}

/// Finds a directory holding MNIST, in this order: `explicit` (a `--data` flag), the
/// `SPYNE_DATA` environment variable, then the cache directory, downloading into the cache
/// when it is empty, the `download` feature is on and `SPYNE_OFFLINE` is not set. An explicit directory or variable that
/// lacks the files is an error, not a reason to look elsewhere.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return require_files(dir, "--data");
    }
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        return require_files(Path::new(&dir), DATA_ENV);
    }
    let cache = cache_dir().ok_or_else(|| {
        Error::DataUnavailable(format!(
            "no MNIST directory given and no cache directory could be found; \
             pass --data DIR or set {DATA_ENV}=DIR to a directory holding the four MNIST files"
        ))
    })?;
    if missing_files(&cache).is_empty() {
        return Ok(cache);
    }
    if std::env::var_os(OFFLINE_ENV).is_some_and(|v| !v.is_empty()) {
        return Err(no_data_error(&cache, &format!("{OFFLINE_ENV} is set")));
    }
    download(&cache)?;
    Ok(cache)
}

/// `$XDG_CACHE_HOME/spyne/mnist`, or `~/.cache/spyne/mnist` (`%LOCALAPPDATA%` on Windows).
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("spyne").join("mnist"))
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The standard names that `dir` lacks.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    MNIST_FILES
        .iter()
        .filter(|f| find_file(dir, f.name).is_none())
        .map(|f| f.name)
        .collect()
}

fn require_files(dir: &Path, from: &str) -> Result<PathBuf> {
    let missing = missing_files(dir);
    if missing.is_empty() {
        Ok(dir.to_path_buf())
    } else {
        Err(Error::DataUnavailable(format!(
            "{} (from {from}) lacks {}; it must hold the four MNIST files, gzipped or raw",
            dir.display(),
            missing.join(", ")
        )))
    }
}

/// Checks that `raw` (decompressed) has the SHA-256 pinned for `file`.
pub fn verify(file: &MnistFile, raw: &[u8]) -> bool {
    let digest = Sha256::digest(raw);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex == file.sha256
}

#[cfg(feature = "download")]
fn download(dir: &Path) -> Result<()> {
    use std::io::Read;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for file in MNIST_FILES.iter() {
        if find_file(dir, file.name).is_some() {
            continue;
        }
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in MIRRORS {
            let url = format!("{mirror}{}.gz", file.name);
            match fetch(&url) {
                Ok(gz) => {
                    let mut raw = Vec::new();
                    let ok = flate2::read::GzDecoder::new(&gz[..])
                        .read_to_end(&mut raw)
                        .is_ok()
                        && verify(file, &raw);
                    if !ok {
                        failures.push(format!("{url}: checksum mismatch"));
                        continue;
                    }
                    crate::fsutil::write_atomic(&dir.join(format!("{}.gz", file.name)), &gz)?;
                    done = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(no_data_error(dir, &failures.join("; ")));
        }
    }
    Ok(())
}

#[cfg(feature = "download")]
fn fetch(url: &str) -> std::result::Result<Vec<u8>, String> {
    let mut resp = ureq::get(url).call().map_err(|e| e.to_string())?;
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "download"))]
fn download(dir: &Path) -> Result<()> {
    Err(no_data_error(dir, "this build has no download support"))
}

fn no_data_error(dir: &Path, why: &str) -> Error {
    Error::DataUnavailable(format!(
        "MNIST is not in {} and could not be downloaded ({why}); pass --data DIR or set \
         {DATA_ENV}=DIR to a directory holding train-images-idx3-ubyte.gz, \
         train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz",
        dir.display()
    ))
}
