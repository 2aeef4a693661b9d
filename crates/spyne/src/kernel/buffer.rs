//! Buffers that the kernels' parallel tasks share, each task writing its own elements.

/// An output buffer that parallel tasks fill completely before anyone reads it: allocated
/// without zeroing, since `vec![0.0; n]` on recycled heap memory is one serial memset of
/// the whole buffer, a few percent of a step for the large outputs.
pub(super) struct Unfilled<T>(Vec<std::mem::MaybeUninit<T>>);

impl<T> Unfilled<T> {
    /// `n` elements, not yet written.
    pub(super) fn new(n: usize) -> Self {
        let mut v = Vec::with_capacity(n);
        // SAFETY: `MaybeUninit` needs no initialisation, and the capacity is `n`.
        unsafe { v.set_len(n) };
        Unfilled(v)
    }

    /// The first element, for the tasks that fill the buffer.
    pub(super) fn as_mut_ptr(&mut self) -> *mut T {
        self.0.as_mut_ptr().cast()
    }

    /// The written buffer.
    ///
    /// # Safety
    /// Every element has been written.
    pub(super) unsafe fn assume_filled(self) -> Vec<T> {
        let mut v = std::mem::ManuallyDrop::new(self.0);
        // SAFETY: same allocation, length and capacity; `MaybeUninit<T>` has `T`'s layout,
        // and the caller vouches that every element is initialised.
        Vec::from_raw_parts(v.as_mut_ptr().cast(), v.len(), v.capacity())
    }
}

/// A raw pointer that may cross threads: each task writes a disjoint set of elements.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Row `row` (of length `n`) of the array this points into.
    ///
    /// # Safety
    /// The row lies inside the array, and no one else reads or writes it meanwhile.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn row(&self, row: usize, n: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(row * n), n)
    }

    /// Elements `start..start + len` of the array this points into.
    ///
    /// # Safety
    /// They lie inside the array, and no one else reads or writes them meanwhile.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn at(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}
