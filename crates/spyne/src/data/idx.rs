//! Reader for the IDX format used by MNIST (unsigned bytes, gzipped or raw).

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// An IDX array of unsigned bytes: its dimensions and its values in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions read from the header, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// The IDX type code for unsigned bytes.
const UBYTE: u8 = 0x08;

/// Reads an IDX file of unsigned bytes with exactly `expected_rank` dimensions.
///
/// Gzip is detected from the file's first two bytes, so `.gz` and raw files both work.
/// The magic number, the rank, and the file length (header + product of dims) are checked;
/// any mismatch is an [`Error::Data`] naming the file.
pub fn read_idx(path: &Path, expected_rank: usize) -> Result<IdxArray> {
    let raw =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        // The gzip trailer holds the uncompressed size (mod 2³²): allocate it once.
        let size = raw
            .get(raw.len().saturating_sub(4)..)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b: [u8; 4]| u32::from_le_bytes(b) as usize);
        let mut out = Vec::with_capacity(size.min(1 << 30));
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| data_err(path, format!("corrupt or truncated gzip stream ({e})")))?;
        out
    } else {
        raw
    };
    parse_idx(bytes, expected_rank).map_err(|reason| data_err(path, reason))
}

/// Parses IDX bytes (already decompressed), reusing their buffer for the data; the error is a
/// reason without the file name.
pub fn parse_idx(
    mut bytes: Vec<u8>,
    expected_rank: usize,
) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "file is {} bytes, too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != UBYTE {
        return Err(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    if rank != expected_rank {
        return Err(format!("has {rank} dimensions, expected {expected_rank}"));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let body = bytes.len() - header;
    if body != count {
        let what = if body < count {
            "truncated"
        } else {
            "has trailing bytes"
        };
        return Err(format!(
            "{what}: dimensions {dims:?} need {count} data bytes, found {body}"
        ));
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// Encodes an IDX array of unsigned bytes (used by tests and tools to write small files).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UBYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn data_err(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason,
    }
}
