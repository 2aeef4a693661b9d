//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in spyne, as a typed value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A constructor or function received a value outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidValue {
        /// The parameter that was wrong, e.g. `beta`.
        name: &'static str,
        /// Why, with the offending value.
        reason: String,
    },
    /// Two tensors that must agree in shape do not.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Where the mismatch was found.
        context: &'static str,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A data file is malformed.
    #[error("{}: {reason}", path.display())]
    Data {
        /// The file that was read.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What spyne was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A loss or another value became NaN or infinite.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// A checkpoint or record could not be written or read.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model description is wrong: a layer with a bad setting, or shapes that don't chain.
    #[error("layer {index} '{name}' ({kind}): {reason}")]
    Model {
        /// The layer's position, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// Its type (`linear`, `leaky`, …).
        kind: &'static str,
        /// What is wrong, with the shapes involved.
        reason: String,
    },
    /// MNIST could not be found locally nor downloaded.
    #[error("{0}")]
    DataUnavailable(String),
}

/// Shorthand for `Result<T, spyne::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidValue {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
