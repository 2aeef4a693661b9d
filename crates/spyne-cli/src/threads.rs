//! The worker pool: burn's CPU backend runs on rayon's global pool.

use anyhow::{Context, Result};

/// Sizes rayon's global pool (`0`: one thread per core) and returns the thread count.
pub fn init(threads: usize) -> Result<usize> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if threads > 0 {
        builder = builder.num_threads(threads);
    }
    builder
        .build_global()
        .context("could not start the worker threads")?;
    Ok(rayon::current_num_threads())
}
