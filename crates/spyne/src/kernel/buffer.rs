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

    /// A pointer to element `start` of the array this points into (for a callee that takes
    /// raw pointers; the closures that capture `self` then capture it whole, as `Send`).
    #[inline(always)]
    pub(super) fn ptr_at(&self, start: usize) -> *mut f32 {
        self.0.wrapping_add(start)
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

/// A cache line of floats, the unit of [`Aligned`].
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Floats that start on a cache line. The spike kernels read rows of 16 floats at random:
/// from a buffer that starts 16 bytes into a line (as the allocator's do), every such read
/// spans two lines, and the sums over them ran about a quarter slower.
pub(super) struct Aligned {
    lines: Vec<Line>,
    len: usize,
}

impl Aligned {
    /// `len` zeros.
    pub(super) fn zeroed(len: usize) -> Aligned {
        Aligned {
            lines: vec![Line([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }
}

impl From<&[f32]> for Aligned {
    fn from(v: &[f32]) -> Aligned {
        let mut a = Aligned::zeroed(v.len());
        a.copy_from_slice(v);
        a
    }
}

impl std::ops::Deref for Aligned {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `lines` holds at least `len` floats, contiguous (`Line` is `repr(C)`, 16
        // floats and no padding), all initialised.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }
}

impl std::ops::DerefMut for Aligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and the borrow is unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::Aligned;

    #[test]
    fn aligned_buffers_start_on_a_cache_line_and_hold_their_values() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let a = Aligned::zeroed(len);
            assert_eq!(a.len(), len);
            assert!(a.iter().all(|&v| v == 0.0));
            assert_eq!(a.as_ptr() as usize % 64, 0, "len {len}");
        }
        let values = [1.0, -2.5, 3.0];
        let mut b = Aligned::from(&values[..]);
        assert_eq!(&*b, &values);
        b[1] = 7.0;
        assert_eq!(&*b, &[1.0, 7.0, 3.0]);
    }
}
