//! Inference engines behind one small trait: ONNX Runtime (`ort`, loaded from a shared library at
//! run time; the fast default) and tract (pure Rust, no native library).

use crate::VisionError;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

/// A dense f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// The `[1, 3, height, width]` input of interleaved RGB8 pixels, each value mapped by
    /// `normalise(channel, value)` as the network was trained.
    pub fn nchw(
        rgb: &[u8],
        width: usize,
        height: usize,
        normalise: impl Fn(usize, u8) -> f32,
    ) -> Self {
        let plane = width * height;
        debug_assert_eq!(rgb.len(), 3 * plane);
        let mut data = vec![0.0f32; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = normalise(c, px[c]);
            }
        }
        Tensor::new(vec![1, 3, height, width], data)
    }
}

/// A loaded network: one input, several outputs (in the model's output order). `run` may be
/// called from several threads at once.
pub trait Network: Send + Sync {
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, VisionError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// ONNX Runtime through `ort` (needs `libonnxruntime.so`).
    #[default]
    Ort,
    /// tract, pure Rust.
    Tract,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Ort => "ort",
            EngineKind::Tract => "tract",
        }
    }
}

/// An engine name that is neither `ort` nor `tract`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?} (expected \"ort\" or \"tract\")")]
pub struct UnknownEngine(pub String);

impl FromStr for EngineKind {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<Self, UnknownEngine> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ort" | "onnxruntime" => Ok(EngineKind::Ort),
            "tract" => Ok(EngineKind::Tract),
            other => Err(UnknownEngine(other.to_string())),
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one network runs: `lanes` inferences at once, each on `threads` threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub lanes: usize,
    pub threads: usize,
}

/// Loads `model` for `engine`, to be run with inputs of the given shapes (tract optimises one plan
/// for each; ort runs the model's own, possibly dynamic, shape).
pub fn load(
    engine: EngineKind,
    model: &Path,
    input_shapes: &[&[usize]],
    ort_library: &Path,
    concurrency: Concurrency,
) -> Result<Box<dyn Network>, VisionError> {
    match engine {
        EngineKind::Ort => Ok(Box::new(OrtNetwork::load(model, ort_library, concurrency)?)),
        // A tract plan is immutable and runs on the calling thread: one serves every lane.
        EngineKind::Tract => Ok(Box::new(TractNetwork::load(model, input_shapes)?)),
    }
}

fn model_error(model: &Path, detail: impl std::fmt::Display) -> VisionError {
    VisionError::Model(format!("{}: {detail}", model.display()))
}

// ---------------------------------------------------------------- ort

static ORT_ENVIRONMENT: OnceLock<Result<ort::environment::Environment, VisionError>> =
    OnceLock::new();
static ORT_LIBRARY: OnceLock<PathBuf> = OnceLock::new();

/// ONNX Runtime allows one environment per process, bound to the first library loaded.
fn ort_environment(library: &Path) -> Result<&'static ort::environment::Environment, VisionError> {
    let loaded_from = ORT_LIBRARY.get_or_init(|| library.to_path_buf());
    if loaded_from != library {
        return Err(VisionError::Model(format!(
            "ONNX Runtime is already loaded from {}; cannot also load {}",
            loaded_from.display(),
            library.display()
        )));
    }
    let env = ORT_ENVIRONMENT.get_or_init(|| {
        if !library.exists() {
            return Err(VisionError::Model(format!(
                "ONNX Runtime library not found at {} (run `cargo xtask setup`, or use --engine tract)",
                library.display()
            )));
        }
        ort::init_from(library)
            .map_err(|e| model_error(library, format_args!("cannot load ONNX Runtime: {e}")))?
            .with_name("snaplabel")
            .build()
            .map_err(|e| model_error(library, format_args!("cannot start ONNX Runtime: {e}")))
    });
    env.as_ref().map_err(Clone::clone)
}

struct OrtNetwork {
    // `Session::run` takes `&mut self`: one session per lane, so that lanes never wait for each
    // other.
    sessions: Vec<Mutex<ort::session::Session>>,
    input_name: String,
}

impl OrtNetwork {
    fn load(model: &Path, library: &Path, concurrency: Concurrency) -> Result<Self, VisionError> {
        let sessions = (0..concurrency.lanes.max(1))
            .map(|_| Self::session(model, library, concurrency.threads).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let input_name = sessions[0]
            .lock()
            .map_err(|_| model_error(model, "session poisoned while loading"))?
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| model_error(model, "no inputs"))?;
        Ok(OrtNetwork {
            sessions,
            input_name,
        })
    }

    fn session(
        model: &Path,
        library: &Path,
        threads: usize,
    ) -> Result<ort::session::Session, VisionError> {
        let env = ort_environment(library)?;
        let fail = |e: &dyn std::fmt::Display| model_error(model, e);
        ort::session::Session::builder(env)
            .map_err(|e| fail(&e))?
            .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
            .map_err(|e| fail(&e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| fail(&e))?
            // Idle workers (when a lane has more than one thread) sleep instead of spinning:
            // the other lanes' jobs and decoding the next image need those cores.
            .with_intra_op_spinning(false)
            .map_err(|e| fail(&e))?
            .commit_from_file(model)
            .map_err(|e| fail(&e))
    }
}

impl Network for OrtNetwork {
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, VisionError> {
        let shape: Vec<i64> = input.shape.iter().map(|&d| d as i64).collect();
        let value = ort::value::Tensor::from_array((shape, input.data))
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        // A free session if there is one, else wait for the first.
        let free = self.sessions.iter().find_map(|s| s.try_lock().ok());
        let mut session = match free {
            Some(session) => session,
            None => self.sessions[0]
                .lock()
                .map_err(|_| VisionError::Inference("a previous inference panicked".into()))?,
        };
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => value])
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let mut tensors = Vec::with_capacity(outputs.len());
        for (_, value) in outputs.iter() {
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| VisionError::Inference(e.to_string()))?;
            tensors.push(Tensor::new(
                shape.iter().map(|&d| d as usize).collect(),
                data.to_vec(),
            ));
        }
        Ok(tensors)
    }
}

// ---------------------------------------------------------------- tract

use tract_onnx::prelude::*;

struct TractNetwork {
    /// One plan per input shape, each optimised for its shape.
    plans: Vec<(Vec<usize>, std::sync::Arc<TypedSimplePlan>)>,
}

impl TractNetwork {
    fn load(model: &Path, input_shapes: &[&[usize]]) -> Result<Self, VisionError> {
        let onnx = tract_onnx::onnx();
        let plans = input_shapes
            .iter()
            .map(|&shape| {
                onnx.model_for_path(model)
                    .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .map(|plan| (shape.to_vec(), plan))
                    .map_err(|e| model_error(model, format!("{e:#}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(TractNetwork { plans })
    }
}

impl Network for TractNetwork {
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, VisionError> {
        let Some((_, plan)) = self.plans.iter().find(|(shape, _)| *shape == input.shape) else {
            return Err(VisionError::Inference(format!(
                "no plan for input shape {:?}",
                input.shape
            )));
        };
        let array = tract_ndarray::ArrayD::from_shape_vec(input.shape, input.data)
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let outputs = plan
            .run(tvec!(array.into_tensor().into()))
            .map_err(|e| VisionError::Inference(format!("{e:#}")))?;
        outputs
            .iter()
            .map(|t| {
                let view = t
                    .to_plain_array_view::<f32>()
                    .map_err(|e| VisionError::Inference(e.to_string()))?;
                Ok(Tensor::new(
                    view.shape().to_vec(),
                    view.iter().copied().collect(),
                ))
            })
            .collect()
    }
}
