//! Small bridges between burn tensors and host values.

use burn::tensor::Tensor;

/// The values of `t`, row-major, as `f32` (converting from another float type if needed).
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor converts to f32")
}

/// The single value of a one-element tensor.
pub fn scalar<const D: usize>(t: Tensor<D>) -> f32 {
    to_vec(t)[0]
}
