// Generated from ONNX "target/models/minilm/paraphrase-MiniLM-L3-v2.onnx" by burn-onnx
extern crate alloc;
use burn::prelude::*;
use burn::nn::LayerNorm;
use burn::nn::LayerNormConfig;
use burn::nn::Linear;
use burn::nn::LinearConfig;
use burn::tensor::Bytes;
use burn_store::BurnpackStore;
use burn_store::ModuleSnapshot;


#[derive(Module, Debug)]
pub struct Submodule1 {
    constant56: burn::module::Param<Tensor<2, Int>>,
    constant64: burn::module::Param<Tensor<1, Int>>,
    constant67: burn::module::Param<Tensor<1>>,
    constant68: burn::module::Param<Tensor<1>>,
    constant69: burn::module::Param<Tensor<2, Int>>,
    constant1: burn::module::Param<Tensor<2>>,
    constant3: burn::module::Param<Tensor<2>>,
    constant2: burn::module::Param<Tensor<2>>,
    layernormalization1: LayerNorm,
    linear1: Linear,
    linear2: Linear,
    linear3: Linear,
    constant92: burn::module::Param<Tensor<1>>,
    linear4: Linear,
    #[module(skip)]
    device: Device,
}
impl Submodule1 {
    #[allow(unused_variables)]
    pub fn new(device: &Device) -> Self {
        let constant56: burn::module::Param<Tensor<2, Int>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                2,
                Int,
            >::zeros([1, 512], (device, burn::tensor::DType::I64)),
            device.clone(),
            false,
            [1, 512].into(),
        );
        let constant64: burn::module::Param<Tensor<1, Int>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
                Int,
            >::from_data(
                burn::tensor::TensorData::from([-1i64]),
                (device, burn::tensor::DType::I64),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant67: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant68: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([
                    -340282346638528860000000000000000000000f64,
                ]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant69: burn::module::Param<Tensor<2, Int>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                2,
                Int,
            >::zeros([1, 512], (device, burn::tensor::DType::I64)),
            device.clone(),
            false,
            [1, 512].into(),
        );
        let constant1: burn::module::Param<Tensor<2>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                2,
            >::zeros([30522, 384], (device, burn::tensor::DType::F32)),
            device.clone(),
            false,
            [30522, 384].into(),
        );
        let constant3: burn::module::Param<Tensor<2>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                2,
            >::zeros([2, 384], (device, burn::tensor::DType::F32)),
            device.clone(),
            false,
            [2, 384].into(),
        );
        let constant2: burn::module::Param<Tensor<2>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                2,
            >::zeros([512, 384], (device, burn::tensor::DType::F32)),
            device.clone(),
            false,
            [512, 384].into(),
        );
        let layernormalization1 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let linear1 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear2 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear3 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let constant92: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([5.656854152679443f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear4 = LinearConfig::new(384, 384).with_bias(true).init(device);
        Self {
            constant56,
            constant64,
            constant67,
            constant68,
            constant69,
            constant1,
            constant3,
            constant2,
            layernormalization1,
            linear1,
            linear2,
            linear3,
            constant92,
            linear4,
            device: device.clone(),
        }
    }
    #[allow(clippy::let_and_return, clippy::approx_constant)]
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> (Tensor<3>, Tensor<4>) {
        let shape1_out1: [i64; 2] = {
            let axes = &input_ids.clone().dims()[0..2];
            let mut output = [0i64; 2];
            for i in 0..2 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather1_out1 = shape1_out1[0] as i64;
        let gather2_out1 = shape1_out1[1] as i64;
        let unsqueeze1_out1 = [gather2_out1 as i64];
        let constant56_out1 = self.constant56.val();
        let slice1_out1 = constant56_out1.slice(s![.., 0..unsqueeze1_out1[0]]);
        let unsqueeze2_out1 = [gather1_out1 as i64];
        let unsqueeze3_out1 = [gather2_out1 as i64];
        let concat1_out1: [i64; 2usize] = [&unsqueeze2_out1[..], &unsqueeze3_out1[..]]
            .concat()
            .try_into()
            .unwrap();
        let reshape1_out1 = concat1_out1;
        let shape3_out1: [i64; 1] = [2i64];
        let constantofshape1_out1 = Tensor::<
            1,
            Int,
        >::from_data(
                burn::tensor::TensorData::from([1i64 as i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .reshape([1])
            .expand(shape3_out1);
        let constant64_out1 = self.constant64.val();
        let mul1_out1 = constantofshape1_out1.clone().mul(constant64_out1);
        let equal1_out1 = Tensor::<
            1,
            burn::tensor::Int,
        >::from_data(
                burn::tensor::TensorData::from(&reshape1_out1 as &[i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .equal(mul1_out1);
        let where1_out1 = Tensor::<
            1,
            burn::tensor::Int,
        >::from_data(
                burn::tensor::TensorData::from(&reshape1_out1 as &[i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .mask_where(equal1_out1, constantofshape1_out1);
        let expand1_out1 = {
            let onnx_shape: [i64; 2usize] = TryInto::<
                [i64; 2usize],
            >::try_into(where1_out1.to_data().convert::<i64>().as_slice().unwrap())
                .unwrap();
            let input_dims = slice1_out1.dims();
            let mut shape = onnx_shape;
            #[allow(clippy::needless_range_loop)]
            for i in 0..2usize {
                let dim_offset = i;
                if shape[dim_offset] == 1 && input_dims[i] > 1 {
                    shape[dim_offset] = input_dims[i] as i64;
                }
            }
            slice1_out1.expand(shape)
        };
        let unsqueeze4_out1: Tensor<3, Int> = attention_mask.unsqueeze_dims::<3>(&[1]);
        let unsqueeze5_out1: Tensor<4, Int> = unsqueeze4_out1.unsqueeze_dims::<4>(&[2]);
        let cast1_out1 = unsqueeze5_out1.float().cast(burn::tensor::DType::F32);
        let constant67_out1 = self.constant67.val();
        let sub1_out1 = (constant67_out1)
            .unsqueeze_dims(&[0isize, 1isize, 2isize])
            .sub(cast1_out1);
        let constant68_out1 = self.constant68.val();
        let mul2_out1 = sub1_out1
            .mul((constant68_out1).unsqueeze_dims(&[0isize, 1isize, 2isize]));
        let unsqueeze6_out1 = [gather2_out1 as i64];
        let constant69_out1 = self.constant69.val();
        let slice2_out1 = constant69_out1.slice(s![.., 0..unsqueeze6_out1[0]]);
        let constant1_out1 = self.constant1.val();
        let gather3_out1 = {
            let axis_size = constant1_out1.dims()[0] as i64;
            let negative = input_ids.clone().lower_elem(0i64);
            let corrected = input_ids.clone() + axis_size;
            let indices = input_ids.mask_where(negative, corrected);
            constant1_out1.take::<2, 3>(0, indices)
        };
        let constant3_out1 = self.constant3.val();
        let gather4_out1 = {
            let axis_size = constant3_out1.dims()[0] as i64;
            let negative = expand1_out1.clone().lower_elem(0i64);
            let corrected = expand1_out1.clone() + axis_size;
            let indices = expand1_out1.mask_where(negative, corrected);
            constant3_out1.take::<2, 3>(0, indices)
        };
        let add1_out1 = gather3_out1.add(gather4_out1);
        let constant2_out1 = self.constant2.val();
        let gather5_out1 = {
            let axis_size = constant2_out1.dims()[0] as i64;
            let negative = slice2_out1.clone().lower_elem(0i64);
            let corrected = slice2_out1.clone() + axis_size;
            let indices = slice2_out1.mask_where(negative, corrected);
            constant2_out1.take::<2, 3>(0, indices)
        };
        let add2_out1 = add1_out1.add(gather5_out1);
        let layernormalization1_out1 = {
            let dtype = add2_out1.dtype();
            self.layernormalization1
                .forward(add2_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let linear1_out1 = self.linear1.forward(layernormalization1_out1.clone());
        let linear2_out1 = self.linear2.forward(layernormalization1_out1.clone());
        let shape4_out1: [i64; 3] = {
            let axes = &linear2_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather6_out1 = shape4_out1[0] as i64;
        let gather7_out1 = shape4_out1[1] as i64;
        let unsqueeze7_out1 = [gather6_out1 as i64];
        let unsqueeze8_out1 = [gather7_out1 as i64];
        let constant79_out1: [i64; 1] = [32i64];
        let constant78_out1: [i64; 1] = [12i64];
        let concat2_out1: [i64; 4usize] = [
            &unsqueeze7_out1[..],
            &unsqueeze8_out1[..],
            &constant78_out1[..],
            &constant79_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape2_out1 = linear2_out1.reshape(concat2_out1);
        let linear3_out1 = self.linear3.forward(layernormalization1_out1.clone());
        let shape6_out1: [i64; 3] = {
            let axes = &linear3_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather8_out1 = shape6_out1[0] as i64;
        let gather9_out1 = shape6_out1[1] as i64;
        let unsqueeze9_out1 = [gather8_out1 as i64];
        let unsqueeze10_out1 = [gather9_out1 as i64];
        let constant85_out1: [i64; 1] = [32i64];
        let constant84_out1: [i64; 1] = [12i64];
        let concat3_out1: [i64; 4usize] = [
            &unsqueeze9_out1[..],
            &unsqueeze10_out1[..],
            &constant84_out1[..],
            &constant85_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape3_out1 = linear3_out1.reshape(concat3_out1);
        let transpose1_out1 = reshape3_out1.permute([0, 2, 1, 3]);
        let shape8_out1: [i64; 3] = {
            let axes = &linear1_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather10_out1 = shape8_out1[0] as i64;
        let gather11_out1 = shape8_out1[1] as i64;
        let unsqueeze11_out1 = [gather10_out1 as i64];
        let unsqueeze12_out1 = [gather11_out1 as i64];
        let constant91_out1: [i64; 1] = [32i64];
        let constant90_out1: [i64; 1] = [12i64];
        let concat4_out1: [i64; 4usize] = [
            &unsqueeze11_out1[..],
            &unsqueeze12_out1[..],
            &constant90_out1[..],
            &constant91_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape4_out1 = linear1_out1.reshape(concat4_out1);
        let transpose2_out1 = reshape4_out1.permute([0, 2, 1, 3]);
        let transpose3_out1 = reshape2_out1.permute([0, 2, 3, 1]);
        let matmul4_out1 = transpose2_out1.matmul(transpose3_out1);
        let constant92_out1 = self.constant92.val();
        let div1_out1 = matmul4_out1
            .div((constant92_out1).unsqueeze_dims(&[0isize, 1isize, 2isize]));
        let add3_out1 = div1_out1.add(mul2_out1.clone());
        let softmax1_out1 = burn::tensor::activation::softmax(add3_out1, 3);
        let matmul5_out1 = softmax1_out1.matmul(transpose1_out1);
        let transpose4_out1 = matmul5_out1.permute([0, 2, 1, 3]);
        let shape10_out1: [i64; 4] = {
            let axes = &transpose4_out1.clone().dims()[0..4];
            let mut output = [0i64; 4];
            for i in 0..4 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather12_out1 = shape10_out1[0] as i64;
        let gather13_out1 = shape10_out1[1] as i64;
        let unsqueeze13_out1 = [gather12_out1 as i64];
        let unsqueeze14_out1 = [gather13_out1 as i64];
        let constant97_out1: [i64; 1] = [384i64];
        let concat5_out1: [i64; 3usize] = [
            &unsqueeze13_out1[..],
            &unsqueeze14_out1[..],
            &constant97_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape5_out1 = transpose4_out1.reshape(concat5_out1);
        let linear4_out1 = self.linear4.forward(reshape5_out1);
        let add4_out1 = linear4_out1.add(layernormalization1_out1);
        (add4_out1, mul2_out1)
    }
}
#[derive(Module, Debug)]
pub struct Submodule2 {
    layernormalization2: LayerNorm,
    linear5: Linear,
    constant98: burn::module::Param<Tensor<1>>,
    constant99: burn::module::Param<Tensor<1>>,
    constant100: burn::module::Param<Tensor<1>>,
    linear6: Linear,
    layernormalization3: LayerNorm,
    linear7: Linear,
    linear8: Linear,
    linear9: Linear,
    constant119: burn::module::Param<Tensor<1>>,
    linear10: Linear,
    layernormalization4: LayerNorm,
    #[module(skip)]
    device: Device,
}
impl Submodule2 {
    #[allow(unused_variables)]
    pub fn new(device: &Device) -> Self {
        let layernormalization2 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let linear5 = LinearConfig::new(384, 1536).with_bias(true).init(device);
        let constant98: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1.4142135381698608f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant99: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant100: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([0.5f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear6 = LinearConfig::new(1536, 384).with_bias(true).init(device);
        let layernormalization3 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let linear7 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear8 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear9 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let constant119: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([5.656854152679443f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear10 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let layernormalization4 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        Self {
            layernormalization2,
            linear5,
            constant98,
            constant99,
            constant100,
            linear6,
            layernormalization3,
            linear7,
            linear8,
            linear9,
            constant119,
            linear10,
            layernormalization4,
            device: device.clone(),
        }
    }
    #[allow(clippy::let_and_return, clippy::approx_constant)]
    pub fn forward(&self, add4_out1: Tensor<3>, mul2_out1: Tensor<4>) -> Tensor<3> {
        let layernormalization2_out1 = {
            let dtype = add4_out1.dtype();
            self.layernormalization2
                .forward(add4_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let linear5_out1 = self.linear5.forward(layernormalization2_out1.clone());
        let constant98_out1 = self.constant98.val();
        let div2_out1 = linear5_out1
            .clone()
            .div((constant98_out1).unsqueeze_dims(&[0isize, 1isize]));
        let erf1_out1 = div2_out1.erf();
        let constant99_out1 = self.constant99.val();
        let add5_out1 = erf1_out1
            .add((constant99_out1).unsqueeze_dims(&[0isize, 1isize]));
        let mul3_out1 = linear5_out1.mul(add5_out1);
        let constant100_out1 = self.constant100.val();
        let mul4_out1 = mul3_out1
            .mul((constant100_out1).unsqueeze_dims(&[0isize, 1isize]));
        let linear6_out1 = self.linear6.forward(mul4_out1);
        let add6_out1 = linear6_out1.add(layernormalization2_out1);
        let layernormalization3_out1 = {
            let dtype = add6_out1.dtype();
            self.layernormalization3
                .forward(add6_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let linear7_out1 = self.linear7.forward(layernormalization3_out1.clone());
        let linear8_out1 = self.linear8.forward(layernormalization3_out1.clone());
        let shape12_out1: [i64; 3] = {
            let axes = &linear8_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather14_out1 = shape12_out1[0] as i64;
        let gather15_out1 = shape12_out1[1] as i64;
        let unsqueeze15_out1 = [gather14_out1 as i64];
        let unsqueeze16_out1 = [gather15_out1 as i64];
        let constant106_out1: [i64; 1] = [32i64];
        let constant105_out1: [i64; 1] = [12i64];
        let concat6_out1: [i64; 4usize] = [
            &unsqueeze15_out1[..],
            &unsqueeze16_out1[..],
            &constant105_out1[..],
            &constant106_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape6_out1 = linear8_out1.reshape(concat6_out1);
        let linear9_out1 = self.linear9.forward(layernormalization3_out1.clone());
        let shape14_out1: [i64; 3] = {
            let axes = &linear9_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather16_out1 = shape14_out1[0] as i64;
        let gather17_out1 = shape14_out1[1] as i64;
        let unsqueeze17_out1 = [gather16_out1 as i64];
        let unsqueeze18_out1 = [gather17_out1 as i64];
        let constant112_out1: [i64; 1] = [32i64];
        let constant111_out1: [i64; 1] = [12i64];
        let concat7_out1: [i64; 4usize] = [
            &unsqueeze17_out1[..],
            &unsqueeze18_out1[..],
            &constant111_out1[..],
            &constant112_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape7_out1 = linear9_out1.reshape(concat7_out1);
        let transpose5_out1 = reshape7_out1.permute([0, 2, 1, 3]);
        let shape16_out1: [i64; 3] = {
            let axes = &linear7_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather18_out1 = shape16_out1[0] as i64;
        let gather19_out1 = shape16_out1[1] as i64;
        let unsqueeze19_out1 = [gather18_out1 as i64];
        let unsqueeze20_out1 = [gather19_out1 as i64];
        let constant118_out1: [i64; 1] = [32i64];
        let constant117_out1: [i64; 1] = [12i64];
        let concat8_out1: [i64; 4usize] = [
            &unsqueeze19_out1[..],
            &unsqueeze20_out1[..],
            &constant117_out1[..],
            &constant118_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape8_out1 = linear7_out1.reshape(concat8_out1);
        let transpose6_out1 = reshape8_out1.permute([0, 2, 1, 3]);
        let transpose7_out1 = reshape6_out1.permute([0, 2, 3, 1]);
        let matmul12_out1 = transpose6_out1.matmul(transpose7_out1);
        let constant119_out1 = self.constant119.val();
        let div3_out1 = matmul12_out1
            .div((constant119_out1).unsqueeze_dims(&[0isize, 1isize, 2isize]));
        let add7_out1 = div3_out1.add(mul2_out1);
        let softmax2_out1 = burn::tensor::activation::softmax(add7_out1, 3);
        let matmul13_out1 = softmax2_out1.matmul(transpose5_out1);
        let transpose8_out1 = matmul13_out1.permute([0, 2, 1, 3]);
        let shape18_out1: [i64; 4] = {
            let axes = &transpose8_out1.clone().dims()[0..4];
            let mut output = [0i64; 4];
            for i in 0..4 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather20_out1 = shape18_out1[0] as i64;
        let gather21_out1 = shape18_out1[1] as i64;
        let unsqueeze21_out1 = [gather20_out1 as i64];
        let unsqueeze22_out1 = [gather21_out1 as i64];
        let constant124_out1: [i64; 1] = [384i64];
        let concat9_out1: [i64; 3usize] = [
            &unsqueeze21_out1[..],
            &unsqueeze22_out1[..],
            &constant124_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape9_out1 = transpose8_out1.reshape(concat9_out1);
        let linear10_out1 = self.linear10.forward(reshape9_out1);
        let add8_out1 = linear10_out1.add(layernormalization3_out1);
        let layernormalization4_out1 = {
            let dtype = add8_out1.dtype();
            self.layernormalization4
                .forward(add8_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        layernormalization4_out1
    }
}
#[derive(Module, Debug)]
pub struct Submodule3 {
    linear11: Linear,
    constant125: burn::module::Param<Tensor<1>>,
    constant126: burn::module::Param<Tensor<1>>,
    constant127: burn::module::Param<Tensor<1>>,
    linear12: Linear,
    layernormalization5: LayerNorm,
    linear13: Linear,
    linear14: Linear,
    linear15: Linear,
    constant146: burn::module::Param<Tensor<1>>,
    linear16: Linear,
    layernormalization6: LayerNorm,
    linear17: Linear,
    constant152: burn::module::Param<Tensor<1>>,
    constant153: burn::module::Param<Tensor<1>>,
    constant154: burn::module::Param<Tensor<1>>,
    linear18: Linear,
    layernormalization7: LayerNorm,
    constant163: burn::module::Param<Tensor<1, Int>>,
    #[module(skip)]
    device: Device,
}
impl Submodule3 {
    #[allow(unused_variables)]
    pub fn new(device: &Device) -> Self {
        let linear11 = LinearConfig::new(384, 1536).with_bias(true).init(device);
        let constant125: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1.4142135381698608f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant126: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant127: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([0.5f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear12 = LinearConfig::new(1536, 384).with_bias(true).init(device);
        let layernormalization5 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let linear13 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear14 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let linear15 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let constant146: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([5.656854152679443f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear16 = LinearConfig::new(384, 384).with_bias(true).init(device);
        let layernormalization6 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let linear17 = LinearConfig::new(384, 1536).with_bias(true).init(device);
        let constant152: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1.4142135381698608f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant153: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([1f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let constant154: burn::module::Param<Tensor<1>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
            >::from_data(
                burn::tensor::TensorData::from([0.5f64]),
                (device, burn::tensor::DType::F32),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        let linear18 = LinearConfig::new(1536, 384).with_bias(true).init(device);
        let layernormalization7 = LayerNormConfig::new(384)
            .with_epsilon(0.0000000000009999999960041972f64)
            .with_bias(true)
            .init(device);
        let constant163: burn::module::Param<Tensor<1, Int>> = burn::module::Param::uninitialized(
            burn::module::ParamId::new(),
            move |device, _require_grad| Tensor::<
                1,
                Int,
            >::from_data(
                burn::tensor::TensorData::from([-1i64]),
                (device, burn::tensor::DType::I64),
            ),
            device.clone(),
            false,
            [1].into(),
        );
        Self {
            linear11,
            constant125,
            constant126,
            constant127,
            linear12,
            layernormalization5,
            linear13,
            linear14,
            linear15,
            constant146,
            linear16,
            layernormalization6,
            linear17,
            constant152,
            constant153,
            constant154,
            linear18,
            layernormalization7,
            constant163,
            device: device.clone(),
        }
    }
    #[allow(clippy::let_and_return, clippy::approx_constant)]
    pub fn forward(
        &self,
        layernormalization4_out1: Tensor<3>,
        mul2_out1: Tensor<4>,
        attention_mask: Tensor<2, Int>,
    ) -> (Tensor<3>, Tensor<2>) {
        let linear11_out1 = self.linear11.forward(layernormalization4_out1.clone());
        let constant125_out1 = self.constant125.val();
        let div4_out1 = linear11_out1
            .clone()
            .div((constant125_out1).unsqueeze_dims(&[0isize, 1isize]));
        let erf2_out1 = div4_out1.erf();
        let constant126_out1 = self.constant126.val();
        let add9_out1 = erf2_out1
            .add((constant126_out1).unsqueeze_dims(&[0isize, 1isize]));
        let mul5_out1 = linear11_out1.mul(add9_out1);
        let constant127_out1 = self.constant127.val();
        let mul6_out1 = mul5_out1
            .mul((constant127_out1).unsqueeze_dims(&[0isize, 1isize]));
        let linear12_out1 = self.linear12.forward(mul6_out1);
        let add10_out1 = linear12_out1.add(layernormalization4_out1);
        let layernormalization5_out1 = {
            let dtype = add10_out1.dtype();
            self.layernormalization5
                .forward(add10_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let linear13_out1 = self.linear13.forward(layernormalization5_out1.clone());
        let linear14_out1 = self.linear14.forward(layernormalization5_out1.clone());
        let shape20_out1: [i64; 3] = {
            let axes = &linear14_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather22_out1 = shape20_out1[0] as i64;
        let gather23_out1 = shape20_out1[1] as i64;
        let unsqueeze23_out1 = [gather22_out1 as i64];
        let unsqueeze24_out1 = [gather23_out1 as i64];
        let constant133_out1: [i64; 1] = [32i64];
        let constant132_out1: [i64; 1] = [12i64];
        let concat10_out1: [i64; 4usize] = [
            &unsqueeze23_out1[..],
            &unsqueeze24_out1[..],
            &constant132_out1[..],
            &constant133_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape10_out1 = linear14_out1.reshape(concat10_out1);
        let linear15_out1 = self.linear15.forward(layernormalization5_out1.clone());
        let shape22_out1: [i64; 3] = {
            let axes = &linear15_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather24_out1 = shape22_out1[0] as i64;
        let gather25_out1 = shape22_out1[1] as i64;
        let unsqueeze25_out1 = [gather24_out1 as i64];
        let unsqueeze26_out1 = [gather25_out1 as i64];
        let constant139_out1: [i64; 1] = [32i64];
        let constant138_out1: [i64; 1] = [12i64];
        let concat11_out1: [i64; 4usize] = [
            &unsqueeze25_out1[..],
            &unsqueeze26_out1[..],
            &constant138_out1[..],
            &constant139_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape11_out1 = linear15_out1.reshape(concat11_out1);
        let transpose9_out1 = reshape11_out1.permute([0, 2, 1, 3]);
        let shape24_out1: [i64; 3] = {
            let axes = &linear13_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather26_out1 = shape24_out1[0] as i64;
        let gather27_out1 = shape24_out1[1] as i64;
        let unsqueeze27_out1 = [gather26_out1 as i64];
        let unsqueeze28_out1 = [gather27_out1 as i64];
        let constant145_out1: [i64; 1] = [32i64];
        let constant144_out1: [i64; 1] = [12i64];
        let concat12_out1: [i64; 4usize] = [
            &unsqueeze27_out1[..],
            &unsqueeze28_out1[..],
            &constant144_out1[..],
            &constant145_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape12_out1 = linear13_out1.reshape(concat12_out1);
        let transpose10_out1 = reshape12_out1.permute([0, 2, 1, 3]);
        let transpose11_out1 = reshape10_out1.permute([0, 2, 3, 1]);
        let matmul20_out1 = transpose10_out1.matmul(transpose11_out1);
        let constant146_out1 = self.constant146.val();
        let div5_out1 = matmul20_out1
            .div((constant146_out1).unsqueeze_dims(&[0isize, 1isize, 2isize]));
        let add11_out1 = div5_out1.add(mul2_out1);
        let softmax3_out1 = burn::tensor::activation::softmax(add11_out1, 3);
        let matmul21_out1 = softmax3_out1.matmul(transpose9_out1);
        let transpose12_out1 = matmul21_out1.permute([0, 2, 1, 3]);
        let shape26_out1: [i64; 4] = {
            let axes = &transpose12_out1.clone().dims()[0..4];
            let mut output = [0i64; 4];
            for i in 0..4 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather28_out1 = shape26_out1[0] as i64;
        let gather29_out1 = shape26_out1[1] as i64;
        let unsqueeze29_out1 = [gather28_out1 as i64];
        let unsqueeze30_out1 = [gather29_out1 as i64];
        let constant151_out1: [i64; 1] = [384i64];
        let concat13_out1: [i64; 3usize] = [
            &unsqueeze29_out1[..],
            &unsqueeze30_out1[..],
            &constant151_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape13_out1 = transpose12_out1.reshape(concat13_out1);
        let linear16_out1 = self.linear16.forward(reshape13_out1);
        let add12_out1 = linear16_out1.add(layernormalization5_out1);
        let layernormalization6_out1 = {
            let dtype = add12_out1.dtype();
            self.layernormalization6
                .forward(add12_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let linear17_out1 = self.linear17.forward(layernormalization6_out1.clone());
        let constant152_out1 = self.constant152.val();
        let div6_out1 = linear17_out1
            .clone()
            .div((constant152_out1).unsqueeze_dims(&[0isize, 1isize]));
        let erf3_out1 = div6_out1.erf();
        let constant153_out1 = self.constant153.val();
        let add13_out1 = erf3_out1
            .add((constant153_out1).unsqueeze_dims(&[0isize, 1isize]));
        let mul7_out1 = linear17_out1.mul(add13_out1);
        let constant154_out1 = self.constant154.val();
        let mul8_out1 = mul7_out1
            .mul((constant154_out1).unsqueeze_dims(&[0isize, 1isize]));
        let linear18_out1 = self.linear18.forward(mul8_out1);
        let add14_out1 = linear18_out1.add(layernormalization6_out1);
        let layernormalization7_out1 = {
            let dtype = add14_out1.dtype();
            self.layernormalization7
                .forward(add14_out1.cast(burn::tensor::DType::F32))
                .cast(dtype)
        };
        let unsqueeze31_out1: Tensor<3, Int> = attention_mask.unsqueeze_dims::<3>(&[-1]);
        let shape28_out1: [i64; 3] = {
            let axes = &layernormalization7_out1.clone().dims()[0..3];
            let mut output = [0i64; 3];
            for i in 0..3 {
                output[i] = axes[i] as i64;
            }
            output
        };
        let gather30_out1 = shape28_out1[0] as i64;
        let gather31_out1 = shape28_out1[1] as i64;
        let gather32_out1 = shape28_out1[2] as i64;
        let unsqueeze32_out1 = [gather30_out1 as i64];
        let unsqueeze33_out1 = [gather31_out1 as i64];
        let unsqueeze34_out1 = [gather32_out1 as i64];
        let concat14_out1: [i64; 3usize] = [
            &unsqueeze32_out1[..],
            &unsqueeze33_out1[..],
            &unsqueeze34_out1[..],
        ]
            .concat()
            .try_into()
            .unwrap();
        let reshape14_out1 = concat14_out1;
        let shape31_out1: [i64; 1] = [3i64];
        let constantofshape2_out1 = Tensor::<
            1,
            Int,
        >::from_data(
                burn::tensor::TensorData::from([1i64 as i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .reshape([1])
            .expand(shape31_out1);
        let constant163_out1 = self.constant163.val();
        let mul9_out1 = constantofshape2_out1.clone().mul(constant163_out1);
        let equal2_out1 = Tensor::<
            1,
            burn::tensor::Int,
        >::from_data(
                burn::tensor::TensorData::from(&reshape14_out1 as &[i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .equal(mul9_out1);
        let where2_out1 = Tensor::<
            1,
            burn::tensor::Int,
        >::from_data(
                burn::tensor::TensorData::from(&reshape14_out1 as &[i64]),
                (&self.device, burn::tensor::DType::I64),
            )
            .mask_where(equal2_out1, constantofshape2_out1);
        let expand2_out1 = {
            let onnx_shape: [i64; 3usize] = TryInto::<
                [i64; 3usize],
            >::try_into(where2_out1.to_data().convert::<i64>().as_slice().unwrap())
                .unwrap();
            let input_dims = unsqueeze31_out1.dims();
            let mut shape = onnx_shape;
            #[allow(clippy::needless_range_loop)]
            for i in 0..3usize {
                let dim_offset = i;
                if shape[dim_offset] == 1 && input_dims[i] > 1 {
                    shape[dim_offset] = input_dims[i] as i64;
                }
            }
            unsqueeze31_out1.expand(shape)
        };
        let cast2_out1 = expand2_out1.float().cast(burn::tensor::DType::F32);
        let mul10_out1 = layernormalization7_out1.clone().mul(cast2_out1.clone());
        let reducesum1_out1 = {
            mul10_out1.sum_dim(1usize).squeeze_dims::<2usize>(&[1])
        };
        let reducesum2_out1 = {
            cast2_out1.sum_dim(1usize).squeeze_dims::<2usize>(&[1])
        };
        let clip1_out1 = reducesum2_out1.clamp_min(0.0000000009999999717180685f64);
        let div7_out1 = reducesum1_out1.div(clip1_out1);
        (layernormalization7_out1, div7_out1)
    }
}

#[derive(Module, Debug)]
pub struct Model {
    submodule1: Submodule1,
    submodule2: Submodule2,
    submodule3: Submodule3,
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
        let submodule1 = Submodule1::new(device);
        let submodule2 = Submodule2::new(device);
        let submodule3 = Submodule3::new(device);
        Self {
            submodule1,
            submodule2,
            submodule3,
            device: device.clone(),
        }
    }

    #[allow(clippy::let_and_return, clippy::approx_constant)]
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<3>, Tensor<2>) {
        let (add4_out1, mul2_out1) = self
            .submodule1
            .forward(input_ids.clone(), attention_mask.clone());
        let layernormalization4_out1 = self
            .submodule2
            .forward(add4_out1, mul2_out1.clone());
        let (layernormalization7_out1, div7_out1) = self
            .submodule3
            .forward(layernormalization4_out1, mul2_out1, attention_mask.clone());
        (input_ids, attention_mask, layernormalization7_out1, div7_out1)
    }
}
