//! Streaming the files of data nodes: the objects an `S3DataNode` names (`filePath`, every object under
//! `directoryPath`, or the entries of `manifestFilePath`) read chunk by chunk, and an output object written so that
//! it appears only whole (an S3 multipart upload completed at the end and aborted on failure; a local `.part`
//! file renamed at the end).
//!
//! Memory stays bounded: a reader holds one chunk, a writer one part (8 MiB). This module moves bytes only; the
//! formats are `format.rs`'s.

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::activity::{Failure, string_field};
use crate::storage::{Location, Storage, StorageError, sdk_error_text};

/// The size of one uploaded part (S3 wants at least 5 MiB for every part but the last).
pub const PART_SIZE: usize = 8 << 20;

/// Where an `S3DataNode`'s data is, and whether it is gzip-compressed.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// `filePath`, `directoryPath` or `manifestFilePath`, as written.
    pub location: String,
    /// Which of the three.
    pub kind: NodeLocation,
    /// `compression: gzip`.
    pub gzip: bool,
}

/// Which field names a node's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLocation {
    /// `filePath`: one object.
    File,
    /// `directoryPath`: every object under the prefix.
    Directory,
    /// `manifestFilePath`: the objects a manifest lists.
    Manifest,
}

impl NodeFiles {
    /// The files of an `S3DataNode` object.
    pub fn of(node: &dp_model::types::PipelineObject) -> Result<NodeFiles, Failure> {
        let gzip = match string_field(node, "compression").map(str::to_ascii_lowercase) {
            None => false,
            Some(c) if c == "none" => false,
            Some(c) if c == "gzip" => true,
            Some(other) => {
                return Err(Failure::new(
                    "InvalidTaskObject",
                    format!(
                        "{}: compression {other:?} is not supported (gzip or none)",
                        node.id
                    ),
                ));
            }
        };
        let (location, kind) = if let Some(p) = string_field(node, "filePath") {
            (p, NodeLocation::File)
        } else if let Some(p) = string_field(node, "directoryPath") {
            (p, NodeLocation::Directory)
        } else if let Some(p) = string_field(node, "manifestFilePath") {
            (p, NodeLocation::Manifest)
        } else {
            return Err(Failure::new(
                "InvalidTaskObject",
                format!(
                    "the S3DataNode {} has none of filePath, directoryPath, manifestFilePath",
                    node.id
                ),
            ));
        };
        Ok(NodeFiles {
            location: location.to_string(),
            kind,
            gzip,
        })
    }

    /// The locations to read, in order.
    pub async fn inputs(&self, storage: &Storage) -> Result<Vec<String>, StorageError> {
        match self.kind {
            NodeLocation::File => Ok(vec![self.location.clone()]),
            NodeLocation::Directory => match Location::parse(&self.location)? {
                Location::S3 { bucket, key } => {
                    let prefix = if key.is_empty() || key.ends_with('/') {
                        key
                    } else {
                        format!("{key}/")
                    };
                    let mut keys = storage.list_keys(&bucket, &prefix).await?;
                    keys.retain(|k| !k.ends_with('/'));
                    keys.sort();
                    Ok(keys
                        .into_iter()
                        .map(|k| format!("s3://{bucket}/{k}"))
                        .collect())
                }
                Location::Local(path) => Ok(crate::storage::list_local(&path)?
                    .into_iter()
                    .map(|(_, p)| p.display().to_string())
                    .collect()),
            },
            NodeLocation::Manifest => {
                let mut reader = ObjectReader::open(storage, &self.location).await?;
                let mut text = Vec::new();
                while let Some(chunk) = reader.next().await? {
                    text.extend_from_slice(&chunk);
                    if text.len() > 16 << 20 {
                        return Err(StorageError::new(format!(
                            "{}: a manifest larger than 16 MiB",
                            self.location
                        )));
                    }
                }
                parse_manifest(&self.location, &text)
            }
        }
    }

    /// The location of the one object an output node is written to: `filePath`, or `directoryPath/name`.
    pub fn output(&self, name: &str) -> Result<String, Failure> {
        match self.kind {
            NodeLocation::File => Ok(self.location.clone()),
            NodeLocation::Directory => Location::parse(&self.location)
                .map(|l| l.join(name).to_string())
                .map_err(|e| Failure::new("InvalidTaskObject", e.to_string())),
            NodeLocation::Manifest => Err(Failure::new(
                "InvalidTaskObject",
                format!("{}: a manifestFilePath cannot be an output", self.location),
            )),
        }
    }
}

/// The `url`s of a manifest (`{"entries": [{"url": "s3://…", "mandatory": true}]}`).
fn parse_manifest(location: &str, text: &[u8]) -> Result<Vec<String>, StorageError> {
    let value: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| StorageError::new(format!("{location}: the manifest is not JSON: {e}")))?;
    let entries = value
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| {
            StorageError::new(format!("{location}: the manifest has no \"entries\" array"))
        })?;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.get("url")
                .and_then(|u| u.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    StorageError::new(format!(
                        "{location}: manifest entry {} has no \"url\"",
                        i + 1
                    ))
                })
        })
        .collect()
}

/// An object or file read chunk by chunk.
pub enum ObjectReader {
    /// An S3 object's body.
    S3(ByteStream, String),
    /// A local file.
    Local(tokio::fs::File, String),
}

impl ObjectReader {
    /// Opens `uri` for reading.
    pub async fn open(storage: &Storage, uri: &str) -> Result<ObjectReader, StorageError> {
        match Location::parse(uri)? {
            Location::S3 { bucket, key } => {
                let output = storage
                    .s3_client()
                    .await?
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!("cannot read {uri}: {}", sdk_error_text(&e)))
                    })?;
                Ok(ObjectReader::S3(output.body, uri.to_string()))
            }
            Location::Local(path) => tokio::fs::File::open(&path)
                .await
                .map(|f| ObjectReader::Local(f, uri.to_string()))
                .map_err(|e| StorageError::new(format!("cannot read {uri}: {e}"))),
        }
    }

    /// The next chunk, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, StorageError> {
        match self {
            ObjectReader::S3(body, uri) => body
                .try_next()
                .await
                .map_err(|e| StorageError::new(format!("cannot read {uri}: {e}"))),
            ObjectReader::Local(file, uri) => {
                let mut buffer = vec![0u8; 256 << 10];
                let n = file
                    .read(&mut buffer)
                    .await
                    .map_err(|e| StorageError::new(format!("cannot read {uri}: {e}")))?;
                buffer.truncate(n);
                Ok((n > 0).then(|| buffer.into()))
            }
        }
    }
}

/// An output object that appears only when [`ObjectWriter::finish`] succeeds.
pub struct ObjectWriter {
    uri: String,
    target: WriterTarget,
    buffer: Vec<u8>,
    /// Bytes written so far.
    pub written: u64,
}

enum WriterTarget {
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
        upload_id: Option<String>,
        parts: Vec<CompletedPart>,
    },
    Local {
        file: tokio::fs::File,
        part: PathBuf,
        path: PathBuf,
    },
}

impl ObjectWriter {
    /// Starts writing `uri`.
    pub async fn create(storage: &Storage, uri: &str) -> Result<ObjectWriter, StorageError> {
        let target = match Location::parse(uri)? {
            Location::S3 { bucket, key } => {
                if key.is_empty() || key.ends_with('/') {
                    return Err(StorageError::new(format!(
                        "{uri}: an output object needs a key, not a prefix"
                    )));
                }
                WriterTarget::S3 {
                    client: storage.s3_client().await?.clone(),
                    bucket,
                    key,
                    upload_id: None,
                    parts: Vec::new(),
                }
            }
            Location::Local(path) => {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(|e| {
                        StorageError::new(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let part = path.with_file_name(format!(".{name}.part"));
                let file = tokio::fs::File::create(&part).await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", part.display()))
                })?;
                WriterTarget::Local { file, part, path }
            }
        };
        Ok(ObjectWriter {
            uri: uri.to_string(),
            target,
            buffer: Vec::new(),
            written: 0,
        })
    }

    /// The location being written.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Adds `bytes`; a full part is sent before this returns.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if self.buffer.capacity() == 0 {
            // One allocation per part, with room for the write that crosses the part size (a growing Vec would
            // double to twice the part size).
            self.buffer.reserve_exact(PART_SIZE + (2 << 20));
        }
        self.buffer.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buffer.len() >= PART_SIZE {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), StorageError> {
        let chunk = std::mem::take(&mut self.buffer);
        let uri = self.uri.clone();
        match &mut self.target {
            WriterTarget::Local { file, part, .. } => file
                .write_all(&chunk)
                .await
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", part.display()))),
            WriterTarget::S3 {
                client,
                bucket,
                key,
                upload_id,
                parts,
            } => {
                if upload_id.is_none() {
                    let created = client
                        .create_multipart_upload()
                        .bucket(bucket.as_str())
                        .key(key.as_str())
                        .send()
                        .await
                        .map_err(|e| {
                            StorageError::new(format!(
                                "cannot start the upload of {uri}: {}",
                                sdk_error_text(&e)
                            ))
                        })?;
                    *upload_id = created.upload_id().map(str::to_string);
                }
                let number = parts.len() as i32 + 1;
                let sent = client
                    .upload_part()
                    .bucket(bucket.as_str())
                    .key(key.as_str())
                    .upload_id(upload_id.clone().unwrap_or_default())
                    .part_number(number)
                    .body(ByteStream::from(chunk))
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!(
                            "cannot upload part {number} of {uri}: {}",
                            sdk_error_text(&e)
                        ))
                    })?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(sent.e_tag().map(str::to_string))
                        .build(),
                );
                Ok(())
            }
        }
    }

    /// Makes the object appear, whole.
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        let written = self.written;
        let multipart = matches!(
            &self.target,
            WriterTarget::S3 {
                upload_id: Some(_),
                ..
            }
        );
        let local = matches!(self.target, WriterTarget::Local { .. });
        if multipart || (local && !self.buffer.is_empty()) {
            self.send_part().await?;
        }
        let uri = self.uri.clone();
        match self.target {
            WriterTarget::Local {
                mut file,
                part,
                path,
            } => {
                file.flush().await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", part.display()))
                })?;
                drop(file);
                tokio::fs::rename(&part, &path).await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            WriterTarget::S3 {
                client,
                bucket,
                key,
                upload_id: None,
                ..
            } => {
                // Smaller than one part: a single PutObject, which is as atomic.
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!("cannot upload {uri}: {}", sdk_error_text(&e)))
                    })?;
            }
            WriterTarget::S3 {
                client,
                bucket,
                key,
                upload_id: Some(id),
                parts,
            } => {
                let completed = client
                    .complete_multipart_upload()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                if let Err(e) = completed {
                    let _ = client
                        .abort_multipart_upload()
                        .bucket(&bucket)
                        .key(&key)
                        .upload_id(&id)
                        .send()
                        .await;
                    return Err(StorageError::new(format!(
                        "cannot complete the upload of {uri}: {}",
                        sdk_error_text(&e)
                    )));
                }
            }
        }
        Ok(written)
    }

    /// Gives the object up: nothing appears under its name.
    pub async fn abort(self) {
        match self.target {
            WriterTarget::Local { file, part, .. } => {
                drop(file);
                let _ = tokio::fs::remove_file(&part).await;
            }
            WriterTarget::S3 {
                client,
                bucket,
                key,
                upload_id: Some(id),
                ..
            } => {
                let _ = client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
            }
            WriterTarget::S3 {
                upload_id: None, ..
            } => {}
        }
    }
}
