//! spyne's Adam against PyTorch's `torch.optim.Adam`.

mod common;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use common::*;
use spyne::optim::Adam;

#[derive(Module, Debug)]
struct One {
    w: Param<Tensor<1>>,
}

#[test]
fn adam_follows_pytorch_step_by_step() {
    // torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8) from p = [0.5, -0.3, 0.1, 2],
    // stepping with these three gradients (values printed by PyTorch 2.15).
    let grads = [
        [0.1, -0.2, 0.0, 3.0],
        [0.3, 0.1, -1e-3, -1.0],
        [-0.5, 0.2, 0.4, 0.5],
    ];
    let want: [[f32; 4]; 3] = [
        [0.49, -0.29, 0.1, 1.99],
        [0.480_822_2, -0.287_336_65, 0.107_441_26, 1.985_997_8],
        [0.482_431_35, -0.290_063_62, 0.101_067_52, 1.981_943_5],
    ];
    let dev = grad_device();
    let mut model = One {
        w: Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.5f32, -0.3, 0.1, 2.0], [4]),
            &dev,
        )),
    };
    let mut optim = Adam::default().init();
    for (g, want) in grads.iter().zip(want) {
        let g = Tensor::<1>::from_data(TensorData::new(g.to_vec(), [4]), &dev);
        let loss = (model.w.val() * g).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
        assert_close(&v(model.w.val()), &want, 2e-7, "Adam step");
    }
}
