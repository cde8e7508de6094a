//! Memory-mapped safetensors checkpoints: one `model.safetensors` or shards listed in
//! `model.safetensors.index.json`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;

use crate::error::{LlamaError, Result};

struct Shard {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    metadata: Metadata,
}

/// The tensors of a checkpoint, read lazily from memory-mapped files.
pub struct Checkpoint {
    shards: Vec<Shard>,
    /// tensor name → shard index
    index: BTreeMap<String, usize>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field(
                "files",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.index.len())
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LlamaError + '_ {
    move |source| LlamaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open_shard(path: &Path) -> Result<Shard> {
    let file = File::open(path).map_err(io_err(path))?;
    // SAFETY: the file is opened read-only and only read through this map; like every
    // memory-mapped reader we rely on nobody truncating it while the model loads.
    let mmap = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
    let (n, metadata) = SafeTensors::read_metadata(&mmap).map_err(|e| LlamaError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Shard {
        path: path.to_path_buf(),
        mmap,
        data_start: 8 + n,
        metadata,
    })
}

/// A tensor's dtype, shape and raw little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawTensor<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: &'a [usize],
    /// Row-major little-endian bytes.
    pub bytes: &'a [u8],
}

impl Checkpoint {
    /// Opens the weights of a model directory: `model.safetensors.index.json` (sharded) if
    /// present, else `model.safetensors`.
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let index_path = dir.join("model.safetensors.index.json");
        if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(io_err(&index_path))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|source| LlamaError::Json {
                    path: index_path.clone(),
                    source,
                })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| LlamaError::Config {
                    field: format!("{}: weight_map", index_path.display()),
                    reason: "missing or not an object".into(),
                })?;
            let mut files: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            files.sort();
            files.dedup();
            let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
            Self::open_files(&paths)
        } else {
            Self::open_files(&[dir.join("model.safetensors")])
        }
    }

    /// Opens one or more safetensors files as one checkpoint. A name in two files is an error.
    pub fn open_files(paths: &[PathBuf]) -> Result<Self> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut index = BTreeMap::new();
        for (i, path) in paths.iter().enumerate() {
            let shard = open_shard(path)?;
            for name in shard.metadata.tensors().keys() {
                if index.insert(name.clone(), i).is_some() {
                    return Err(LlamaError::Safetensors {
                        path: path.clone(),
                        reason: format!("tensor `{name}` appears in more than one shard"),
                    });
                }
            }
            shards.push(shard);
        }
        Ok(Self { shards, index })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The raw tensor `name`.
    pub fn raw(&self, name: &str) -> Result<RawTensor<'_>> {
        let shard = self
            .index
            .get(name)
            .map(|&i| &self.shards[i])
            .ok_or_else(|| LlamaError::MissingTensor {
                name: name.to_string(),
            })?;
        let info = shard
            .metadata
            .info(name)
            .ok_or_else(|| LlamaError::MissingTensor {
                name: name.to_string(),
            })?;
        let (start, end) = info.data_offsets;
        let bytes = shard
            .mmap
            .get(shard.data_start + start..shard.data_start + end)
            .ok_or_else(|| LlamaError::Safetensors {
                path: shard.path.clone(),
                reason: format!("tensor `{name}` lies outside the file"),
            })?;
        Ok(RawTensor {
            dtype: info.dtype,
            shape: &info.shape,
            bytes,
        })
    }

    /// Tensor `name` converted to f32 (from F32, F16 or BF16), after checking its shape.
    pub fn read_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let raw = self.raw(name)?;
        if raw.shape != shape {
            return Err(LlamaError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: raw.shape.to_vec(),
            });
        }
        to_f32(name, raw)
    }

    /// Every tensor name with its shard file, for diagnostics.
    pub fn files(&self) -> HashMap<&str, &Path> {
        self.index
            .iter()
            .map(|(n, &i)| (n.as_str(), self.shards[i].path.as_path()))
            .collect()
    }
}

/// Converts F32, F16 or BF16 little-endian bytes to f32.
pub fn to_f32(name: &str, raw: RawTensor<'_>) -> Result<Vec<f32>> {
    let b = raw.bytes;
    Ok(match raw.dtype {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(LlamaError::Dtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    })
}
