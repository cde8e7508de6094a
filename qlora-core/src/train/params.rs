//! Finding, reading and replacing the trainable parameters of any burn module by path.
//!
//! A parameter is trainable when it requires a gradient; in a model built from
//! [`LoraLinear`](crate::LoraLinear) those are exactly the LoRA `A` and `B` matrices. Paths
//! join field names with `.` (e.g. `layers.0.self_attn.q_proj.lora.lora_a`).

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use crate::checkpoint::HostTensor;

/// A trainable parameter found by [`trainable_params`].
#[derive(Debug, Clone)]
pub struct TrainableParam<B: Backend> {
    /// Its id in the module.
    pub id: ParamId,
    /// Value, flattened.
    pub value: Tensor<B, 1>,
    /// Original shape.
    pub shape: Vec<usize>,
}

struct Collect<B: Backend> {
    path: Vec<String>,
    out: BTreeMap<String, TrainableParam<B>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            let v = param.val();
            let shape = v.dims().to_vec();
            let n: usize = shape.iter().product();
            self.out.insert(
                self.path.join("."),
                TrainableParam {
                    id: param.id,
                    value: v.reshape([n]),
                    shape,
                },
            );
        }
    }
}

/// The trainable (require-grad) float parameters of `module`, by dotted path.
pub fn trainable_params<B: Backend, M: Module<B>>(
    module: &M,
) -> BTreeMap<String, TrainableParam<B>> {
    let mut c = Collect {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    module.visit(&mut c);
    c.out
}

/// The trainable parameters as host f32 tensors, by path.
pub fn trainable_host_tensors<B: Backend, M: Module<B>>(
    module: &M,
) -> BTreeMap<String, HostTensor> {
    trainable_params(module)
        .into_iter()
        .map(|(k, p)| {
            let v = p
                .value
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap_or_default();
            (k, (v, p.shape))
        })
        .collect()
}

struct GradCollect<'a, B: AutodiffBackend> {
    path: Vec<String>,
    grads: &'a B::Gradients,
    out: BTreeMap<String, Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradCollect<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            if let Some(g) = param.grad(self.grads) {
                let n = g.shape().num_elements();
                self.out.insert(self.path.join("."), g.reshape([n]));
            }
        }
    }
}

/// The gradients of the trainable parameters (flattened, inner backend), by path.
pub fn trainable_grads<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &B::Gradients,
) -> BTreeMap<String, Tensor<B::InnerBackend, 1>> {
    let mut c = GradCollect {
        path: Vec::new(),
        grads,
        out: BTreeMap::new(),
    };
    module.visit(&mut c);
    c.out
}

struct Replace<B: Backend> {
    by_id: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> ModuleMapper<B> for Replace<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match self.by_id.remove(&id) {
            Some(new) => {
                let rg = tensor.is_require_grad();
                let new = new.reshape(tensor.shape()).detach();
                if rg {
                    new.require_grad()
                } else {
                    new
                }
            }
            None => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Replaces trainable parameters by path with new flattened values (same number of
/// elements); paths not given are kept. Returns the paths that were not found.
pub fn replace_trainable<B: Backend, M: Module<B>>(
    module: M,
    values: BTreeMap<String, Tensor<B, 1>>,
) -> (M, Vec<String>) {
    let params = trainable_params(&module);
    let mut by_id = HashMap::new();
    let mut missing = Vec::new();
    for (path, v) in values {
        match params.get(&path) {
            Some(p) => {
                by_id.insert(p.id, v);
            }
            None => missing.push(path),
        }
    }
    (module.map(&mut Replace { by_id }), missing)
}

/// Host tensor → flattened burn tensor.
pub fn host_to_tensor<B: Backend>(t: &HostTensor, device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(t.0.clone(), [t.0.len()]), device)
}
