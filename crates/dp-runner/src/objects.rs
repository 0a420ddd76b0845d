//! Streaming the files of data nodes: the objects an `S3DataNode` names (`filePath`, every object under
//! `directoryPath`, or the entries of `manifestFilePath`) read chunk by chunk, and an output object written so that
//! it appears only whole (an S3 multipart upload completed at the end and aborted on failure; a local `.part`
//! file renamed at the end).
//!
//! Memory stays bounded: a reader holds one chunk, a writer the part it fills plus the parts uploading (at most
//! [`PARTS_IN_FLIGHT`] of 8 MiB). This module moves bytes only; the formats are `format.rs`'s.

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
///
/// To S3, full parts go out as a multipart upload while the next part fills: up to [`PARTS_IN_FLIGHT`] uploads
/// run at once, so memory stays within `(PARTS_IN_FLIGHT + 1)` parts. [`ObjectWriter::abort`] (or a failed
/// [`ObjectWriter::finish`]) stops them and aborts the upload, so neither a partial object nor a dangling upload is
/// left; a writer dropped unfinished (its copy was canceled by dropping it) sends the abort from a task of its own.
pub struct ObjectWriter {
    uri: String,
    target: WriterTarget,
    buffer: Vec<u8>,
    /// Bytes written so far.
    pub written: u64,
}

/// How long a CompleteMultipartUpload may take to answer. The server joins every part first, which takes
/// minutes for a large object on S3 and more than the default 30 s on moto for 1 GiB; a timeout there used to
/// retry the call while the first one was still joining.
const COMPLETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How many parts of one object may be uploading at once.
pub const PARTS_IN_FLIGHT: usize = 2;

enum WriterTarget {
    S3(Multipart),
    Local {
        file: tokio::fs::File,
        part: PathBuf,
        path: PathBuf,
    },
}

type PartUpload = tokio::task::JoinHandle<Result<CompletedPart, StorageError>>;

/// An S3 object being written: its multipart upload once the first part is full.
struct Multipart {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    in_flight: std::collections::VecDeque<PartUpload>,
    parts: Vec<CompletedPart>,
    /// Completed or aborted: nothing is left to clean up.
    closed: bool,
}

impl Multipart {
    /// Starts uploading `chunk` as the next part, first waiting for the oldest upload when enough are running.
    async fn send(&mut self, uri: &str, chunk: Vec<u8>) -> Result<(), StorageError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!(
                            "cannot start the upload of {uri}: {}",
                            sdk_error_text(&e)
                        ))
                    })?;
                let id = created.upload_id().map(str::to_string).ok_or_else(|| {
                    StorageError::new(format!("cannot start the upload of {uri}: no upload id"))
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.wait_oldest().await?;
        }
        let number = (self.parts.len() + self.in_flight.len()) as i32 + 1;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(chunk));
        let uri = uri.to_string();
        self.in_flight.push_back(tokio::spawn(async move {
            let sent = request.send().await.map_err(|e| {
                StorageError::new(format!(
                    "cannot upload part {number} of {uri}: {}",
                    sdk_error_text(&e)
                ))
            })?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_string))
                .build())
        }));
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<(), StorageError> {
        let Some(upload) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let part = upload
            .await
            .map_err(|e| StorageError::new(format!("a part upload stopped: {e}")))??;
        self.parts.push(part);
        Ok(())
    }

    /// Waits for every part, then completes the upload.
    async fn complete(&mut self, uri: &str) -> Result<(), StorageError> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        let Some(id) = self.upload_id.clone() else {
            return Ok(());
        };
        self.parts.sort_by_key(|p| p.part_number());
        let answer = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .read_timeout(COMPLETE_TIMEOUT)
                        .build(),
                ),
            )
            .send()
            .await;
        match answer {
            Ok(_) => {}
            Err(e) if completed_anyway(&e) => {}
            Err(e) => {
                return Err(StorageError::new(format!(
                    "cannot complete the upload of {uri}: {}",
                    sdk_error_text(&e)
                )));
            }
        }
        self.closed = true;
        Ok(())
    }

    /// Stops the part uploads still running and aborts the upload.
    async fn abort(&mut self) {
        self.closed = true;
        for upload in self.in_flight.drain(..) {
            upload.abort();
            let _ = upload.await;
        }
        if let Some(id) = self.upload_id.take() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

/// Whether a CompleteMultipartUpload the SDK calls failed did complete: a `200 OK` whose body is no `<Error>`
/// document (S3 reports a failed completion as a 200 with an `<Error>` body, which the SDK reads as an error with a
/// code) but which the SDK could not read. moto 5 answers with the root element `CompleteMultipartUploadResponse`
/// where S3 has `CompleteMultipartUploadResult`, which the SDK refuses.
fn completed_anyway<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    let aws_sdk_s3::error::SdkError::ServiceError(service) = error else {
        return false;
    };
    let raw = service.raw();
    let body = raw.body().bytes().unwrap_or_default();
    raw.status().as_u16() == 200
        && service.err().code().is_none()
        && !String::from_utf8_lossy(body).contains("<Error>")
        && String::from_utf8_lossy(body).contains("CompleteMultipartUpload")
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        for upload in &self.in_flight {
            upload.abort();
        }
        let Some(id) = self.upload_id.take() else {
            return;
        };
        // Dropped unfinished: the abort goes out from a task of its own (when a runtime is still there).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let request = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id);
            let uploads: Vec<PartUpload> = self.in_flight.drain(..).collect();
            runtime.spawn(async move {
                for upload in uploads {
                    let _ = upload.await;
                }
                let _ = request.send().await;
            });
        }
    }
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
                WriterTarget::S3(Multipart {
                    client: storage.s3_client().await?.clone(),
                    bucket,
                    key,
                    upload_id: None,
                    in_flight: Default::default(),
                    parts: Vec::new(),
                    closed: false,
                })
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

    /// Adds `bytes`; a full part is handed to its upload (or written to the file) before this returns.
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
        match &mut self.target {
            WriterTarget::Local { file, part, .. } => file
                .write_all(&chunk)
                .await
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", part.display()))),
            WriterTarget::S3(upload) => upload.send(&self.uri, chunk).await,
        }
    }

    /// Makes the object appear, whole.
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        let written = self.written;
        let multipart = matches!(
            &self.target,
            WriterTarget::S3(Multipart {
                upload_id: Some(_),
                ..
            })
        );
        let local = matches!(self.target, WriterTarget::Local { .. });
        // The rest of the data as the last part (none when it ended at a part's end).
        if (multipart || local)
            && !self.buffer.is_empty()
            && let Err(e) = self.send_part().await
        {
            self.abort().await;
            return Err(e);
        }
        let uri = self.uri.clone();
        match &mut self.target {
            WriterTarget::Local { file, part, path } => {
                file.flush().await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", part.display()))
                })?;
                tokio::fs::rename(&part, &path).await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            WriterTarget::S3(upload) if upload.upload_id.is_none() => {
                // Smaller than one part: a single PutObject, which is as atomic.
                upload.closed = true;
                upload
                    .client
                    .put_object()
                    .bucket(&upload.bucket)
                    .key(&upload.key)
                    .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!("cannot upload {uri}: {}", sdk_error_text(&e)))
                    })?;
            }
            WriterTarget::S3(upload) => {
                if let Err(e) = upload.complete(&uri).await {
                    upload.abort().await;
                    return Err(e);
                }
            }
        }
        Ok(written)
    }

    /// Gives the object up: nothing appears under its name.
    pub async fn abort(mut self) {
        match &mut self.target {
            WriterTarget::Local { part, .. } => {
                let _ = tokio::fs::remove_file(&part).await;
            }
            WriterTarget::S3(upload) => upload.abort().await,
        }
    }
}
