// Generated from ONNX "inference/model/ampoule-mlp.onnx" by burn-onnx
extern crate alloc;
use burn::prelude::*;
use burn::nn::Linear;
use burn::nn::LinearConfig;
use burn::tensor::Bytes;
use burn_store::BurnpackStore;
use burn_store::ModuleSnapshot;


#[derive(Module, Debug)]
pub struct Model {
    constant1: burn::module::Param<Tensor<1>>,
    constant2: burn::module::Param<Tensor<1>>,
    linear1: Linear,
    linear2: Linear,
    linear3: Linear,
    #[module(skip)]
    device: Device,
}


impl Model {
    /// Load model weights from in-memory bytes.
    ///
    /// The bytes must be the contents of a `.bpk` file.
    pub fn from_bytes(bytes: Bytes, device: &Device) -> Self {
        let mut model = Self::new(device);
        let mut store = BurnpackStore::from_bytes(Some(bytes));
        model
            .load_from(&mut store)
            .unwrap_or_else(|e| panic!("Failed to load burnpack bytes: {e}"));
        model
    }
}

impl Model {
    #[allow(unused_variables)]
    pub fn new(device: &Device) -> Self {
        let constant1: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::zeros([30], (device, burn::tensor::DType::F32)),
            device.clone(),
            false,
            [30].into(),
        );
        let constant2: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::zeros([30], (device, burn::tensor::DType::F32)),
            device.clone(),
            false,
            [30].into(),
        );
        let linear1 = LinearConfig::new(30, 16).with_bias(true).init(device);
        let linear2 = LinearConfig::new(16, 8).with_bias(true).init(device);
        let linear3 = LinearConfig::new(8, 2).with_bias(true).init(device);
        Self {
            constant1,
            constant2,
            linear1,
            linear2,
            linear3,
            device: device.clone(),
        }
    }

    #[allow(clippy::let_and_return, clippy::approx_constant)]
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let constant1_out1 = self.constant1.val();
        let constant2_out1 = self.constant2.val();
        let sub1_out1 = features.sub((constant1_out1).unsqueeze_dims(&[0isize]));
        let div1_out1 = sub1_out1.div((constant2_out1).unsqueeze_dims(&[0isize]));
        let linear1_out1 = self.linear1.forward(div1_out1);
        let relu1_out1 = burn::tensor::activation::relu(linear1_out1);
        let linear2_out1 = self.linear2.forward(relu1_out1);
        let relu2_out1 = burn::tensor::activation::relu(linear2_out1);
        let linear3_out1 = self.linear3.forward(relu2_out1);
        let softmax1_out1 = burn::tensor::activation::softmax(linear3_out1, 1);
        softmax1_out1
    }
}
