//! Atomic files and f32 safetensors I/O for checkpoints.
//!
//! Everything is written to a temporary name in the destination directory and then renamed,
//! so a crash never leaves a half-written file under the final name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use thiserror::Error;

/// A host f32 tensor: values and shape.
pub type HostTensor = (Vec<f32>, Vec<usize>);

/// Checkpoint I/O failures, naming the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A safetensors file could not be parsed or written.
    #[error("{path}: invalid safetensors: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has a dtype the reader does not take (F32 everywhere; U8 also in optimizer
    /// state).
    #[error("{path}: tensor `{name}` has dtype {dtype}, expected F32 (or U8 in optimizer state)")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("qlora-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let p = dir.join("x.json");
/// qlora_core::write_atomic(&p, b"{}").unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"{}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        use std::io::Write;
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))?;
        sync_parent(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes the directory entry of `path` (its parent directory) to disk, so that a rename
/// survives a power loss. Best effort: not every platform can open a directory.
pub(crate) fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Whether `name` is a temporary left by [`write_atomic`] or a checkpoint write of a process
/// other than this one: `.NAME.tmp-PID` (a file or a directory).
fn is_foreign_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    match rest.rsplit_once(".tmp-") {
        Some((stem, pid)) => {
            !stem.is_empty()
                && pid
                    .parse::<u32>()
                    .is_ok_and(|pid| pid != std::process::id())
        }
        None => false,
    }
}

/// Removes the temporaries (`.NAME.tmp-PID` files and `.checkpoint-N.tmp-PID` directories)
/// that a process killed in the middle of an atomic write left in `dir`, and returns their
/// paths. Final names are never touched, and neither are this process's own temporaries.
/// Call it only on a directory no other live process is writing to.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("qlora-stale-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join(".checkpoint-00000003.tmp-1")).unwrap();
/// std::fs::write(dir.join(".metrics.jsonl.tmp-1"), b"{").unwrap();
/// std::fs::write(dir.join("metrics.jsonl"), b"{}").unwrap();
/// let removed = qlora_core::checkpoint::remove_stale_temporaries(&dir).unwrap();
/// assert_eq!(removed.len(), 2);
/// assert!(dir.join("metrics.jsonl").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
///
/// [`CheckpointError::Io`] when `dir` cannot be listed or a temporary cannot be removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_foreign_temporary(&name) {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CheckpointError::Io { path, source }),
        }
    }
    Ok(removed)
}

/// Serializes f32 tensors to safetensors bytes (keys sorted), with optional string metadata.
pub fn f32_safetensors_bytes(
    tensors: &BTreeMap<String, HostTensor>,
    metadata: Option<std::collections::HashMap<String, String>>,
    path_for_errors: &Path,
) -> Result<Vec<u8>, CheckpointError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, (v, s))| (k.clone(), bytemuck::cast_slice(v).to_vec(), s.clone()))
        .collect();
    let mut views = Vec::new();
    for (k, b, s) in &bytes {
        let view = TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| {
            CheckpointError::Safetensors {
                path: path_for_errors.to_path_buf(),
                reason: format!("tensor `{k}`: {e}"),
            }
        })?;
        views.push((k.clone(), view));
    }
    safetensors::serialize(views, metadata).map_err(|e| CheckpointError::Safetensors {
        path: path_for_errors.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes f32 tensors to a safetensors file atomically.
pub fn save_f32_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
) -> Result<(), CheckpointError> {
    let bytes = f32_safetensors_bytes(tensors, None, path)?;
    write_atomic(path, &bytes)
}

/// Reads every tensor of a safetensors file as f32 (F32 stored; other dtypes are an error).
pub fn load_f32_safetensors(path: &Path) -> Result<BTreeMap<String, HostTensor>, CheckpointError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        CheckpointError::Safetensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Dtype {
                path: path.to_path_buf(),
                name,
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.insert(name, (values, view.shape().to_vec()));
    }
    Ok(out)
}

/// The safetensors dtype of the [`TensorData`] dtypes checkpoints hold (f32 and u8).
fn st_dtype(d: DType) -> Option<Dtype> {
    match d {
        DType::F32 => Some(Dtype::F32),
        DType::U8 => Some(Dtype::U8),
        _ => None,
    }
}

/// Writes f32 and u8 tensors (e.g. an optimizer's exported state, whose 8-bit moments are
/// u8 codes) to a safetensors file atomically. Other dtypes are an error naming the tensor.
///
/// ```
/// use std::collections::BTreeMap;
/// use burn::tensor::TensorData;
/// let dir = std::env::temp_dir().join(format!("qlora-doc-td-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let p = dir.join("opt.safetensors");
/// let mut m = BTreeMap::new();
/// m.insert("w.state1".to_string(), TensorData::new(vec![1u8, 255], [2]));
/// m.insert("w.absmax1".to_string(), TensorData::new(vec![0.5f32], [1]));
/// qlora_core::checkpoint::save_tensors(&p, &m).unwrap();
/// assert_eq!(qlora_core::checkpoint::load_tensors(&p).unwrap(), m);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save_tensors(
    path: &Path,
    tensors: &BTreeMap<String, TensorData>,
) -> Result<(), CheckpointError> {
    let mut views = Vec::new();
    for (k, d) in tensors {
        let dtype = st_dtype(d.dtype).ok_or_else(|| CheckpointError::Dtype {
            path: path.to_path_buf(),
            name: k.clone(),
            dtype: format!("{:?}", d.dtype),
        })?;
        let view = TensorView::new(dtype, d.shape.to_vec(), d.as_bytes()).map_err(|e| {
            CheckpointError::Safetensors {
                path: path.to_path_buf(),
                reason: format!("tensor `{k}`: {e}"),
            }
        })?;
        views.push((k.clone(), view));
    }
    let bytes = safetensors::serialize(views, None).map_err(|e| CheckpointError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Reads every tensor of a safetensors file written by [`save_tensors`] (F32 or U8; other
/// dtypes are an error naming the tensor).
pub fn load_tensors(path: &Path) -> Result<BTreeMap<String, TensorData>, CheckpointError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        CheckpointError::Safetensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = match view.dtype() {
            Dtype::F32 => {
                let values: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                TensorData::new(values, shape)
            }
            Dtype::U8 => TensorData::new(view.data().to_vec(), shape),
            other => {
                return Err(CheckpointError::Dtype {
                    path: path.to_path_buf(),
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        out.insert(name, data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file() {
        let dir = std::env::temp_dir().join(format!("qlora-ckpt-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.safetensors");
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), (vec![1.0f32, -2.5, 3.25], vec![3]));
        m.insert("b.c".to_string(), (vec![0.5f32; 6], vec![2, 3]));
        save_f32_safetensors(&p, &m).unwrap();
        assert_eq!(load_f32_safetensors(&p).unwrap(), m);
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let mut bytes = fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 5);
        fs::write(&p, &bytes).unwrap();
        let e = load_f32_safetensors(&p).unwrap_err();
        assert!(e.to_string().contains("t.safetensors"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
