//! Allocator tuning for the training loop.

/// Keeps freed memory in the process instead of returning it to the kernel.
///
/// Every iteration allocates and frees the same few buffers of several MB. glibc serves
/// those with fresh `mmap`s (and trims the heap with `brk`), so each iteration paid for
/// page faults and page zeroing on tens of MB: about 40 % of an iteration. Raising the mmap
/// and trim thresholds lets the buffers be reused.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
