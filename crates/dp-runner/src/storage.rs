//! Where task files come from and go to: `s3://bucket/key` through aws-sdk-s3, or a local path (`/x`, `file:///x`).
//!
//! The S3 client is made on first use from the runner's dp-wire client, so it signs with the same credentials
//! (refreshed the same way), uses the same region, and sends through the same transport (TLS settings, CA bundle,
//! proxy). An S3 endpoint can be set for S3-compatible stores and tests (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
//! or `--s3-endpoint-url`); addressing is then path-style. Objects stream between S3 and files in chunks (a download goes to a
//! hidden `.part` file beside its target and is renamed when complete, so a failed transfer leaves no partial
//! file under the target's name); one upload is one PutObject, so objects up to S3's 5 GB limit for a single PUT.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};

/// A failed transfer: what was being done, to which location, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    message: String,
}

impl StorageError {
    pub(crate) fn new(message: impl Into<String>) -> StorageError {
        StorageError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://bucket/key` (the key may be empty or end with `/`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
    },
    /// A path on this machine.
    Local(PathBuf),
}

impl Location {
    /// Parses `s3://bucket/key`, `file:///path` or a plain path; other schemes are refused.
    pub fn parse(uri: &str) -> Result<Location, StorageError> {
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::new(format!(
                    "{uri}: an S3 location needs a bucket (s3://BUCKET/KEY)"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(StorageError::new(format!(
                "{uri}: the scheme {scheme}:// is not supported (expected s3:// or a local path)"
            )));
        }
        if uri.is_empty() {
            return Err(StorageError::new("an empty location"));
        }
        Ok(Location::Local(PathBuf::from(uri)))
    }

    /// This location with `suffix` appended as a path segment.
    pub fn join(&self, suffix: &str) -> Location {
        match self {
            Location::S3 { bucket, key } => {
                let key = if key.is_empty() || key.ends_with('/') {
                    format!("{key}{suffix}")
                } else {
                    format!("{key}/{suffix}")
                };
                Location::S3 {
                    bucket: bucket.clone(),
                    key,
                }
            }
            Location::Local(path) => Location::Local(path.join(suffix)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Location::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Downloads and uploads. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    wire: Option<Arc<dp_wire::Client>>,
    endpoint: Option<String>,
    s3: tokio::sync::OnceCell<aws_sdk_s3::Client>,
    dynamodb_endpoint: Option<String>,
    dynamodb: tokio::sync::OnceCell<aws_sdk_dynamodb::Client>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage whose S3 calls use `wire`'s credentials, region and transport, at `endpoint` when given.
    pub fn new(wire: Arc<dp_wire::Client>, endpoint: Option<String>) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                wire: Some(wire),
                endpoint,
                s3: tokio::sync::OnceCell::new(),
                dynamodb_endpoint: None,
                dynamodb: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Storage for local paths only; an `s3://` location is an error.
    pub fn local_only() -> Storage {
        Storage {
            inner: Arc::new(Inner {
                wire: None,
                endpoint: None,
                s3: tokio::sync::OnceCell::new(),
                dynamodb_endpoint: None,
                dynamodb: tokio::sync::OnceCell::new(),
            }),
        }
    }

    async fn s3(&self) -> Result<&aws_sdk_s3::Client, StorageError> {
        self.inner
            .s3
            .get_or_try_init(|| async {
                let wire = self.inner.wire.clone().ok_or_else(|| {
                    StorageError::new("S3 locations are not available here (no AWS client)")
                })?;
                let failed =
                    |e: dp_wire::Error| StorageError::new(format!("cannot set up S3: {e}"));
                let http = wire.sdk_http_client().await.map_err(failed)?;
                let region = wire.region().await.map_err(failed)?;
                let mut config = aws_sdk_s3::Config::builder()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .region(aws_sdk_s3::config::Region::new(region))
                    .http_client(http)
                    .credentials_provider(WireCredentials(wire));
                if let Some(endpoint) = &self.inner.endpoint {
                    config = config.endpoint_url(endpoint).force_path_style(true);
                }
                Ok(aws_sdk_s3::Client::from_conf(config.build()))
            })
            .await
    }

    /// The same storage, with DynamoDB calls (the `DynamoDBTableExists` and `DynamoDBDataExists` checks) sent to
    /// `endpoint` when given (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, or AWS's).
    pub fn with_dynamodb_endpoint(self, endpoint: Option<String>) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                wire: self.inner.wire.clone(),
                endpoint: self.inner.endpoint.clone(),
                s3: tokio::sync::OnceCell::new(),
                dynamodb_endpoint: endpoint,
                dynamodb: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The credentials requests are signed with (`None` when they are not signed), for a statement that hands
    /// them to another service (Redshift's `COPY … CREDENTIALS`).
    pub(crate) async fn credentials(
        &self,
    ) -> Result<Option<aws_credential_types::Credentials>, StorageError> {
        let wire = self.inner.wire.as_ref().ok_or_else(|| {
            StorageError::new("no AWS credentials here (the storage has no AWS client)")
        })?;
        wire.credentials()
            .await
            .map_err(|e| StorageError::new(e.to_string()))
    }

    /// The S3 client (made on first use), for modules that stream objects themselves (`objects.rs`).
    pub(crate) async fn s3_client(&self) -> Result<&aws_sdk_s3::Client, StorageError> {
        self.s3().await
    }

    /// The DynamoDB client, made on first use from the same credentials, region and transport as S3's.
    pub(crate) async fn dynamodb(&self) -> Result<&aws_sdk_dynamodb::Client, StorageError> {
        self.inner
            .dynamodb
            .get_or_try_init(|| async {
                let wire = self.inner.wire.clone().ok_or_else(|| {
                    StorageError::new("DynamoDB is not available here (no AWS client)")
                })?;
                let failed =
                    |e: dp_wire::Error| StorageError::new(format!("cannot set up DynamoDB: {e}"));
                let http = wire.sdk_http_client().await.map_err(failed)?;
                let region = wire.region().await.map_err(failed)?;
                let mut config = aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .region(aws_sdk_dynamodb::config::Region::new(region))
                    .http_client(http)
                    .credentials_provider(WireCredentials(wire));
                if let Some(endpoint) = &self.inner.dynamodb_endpoint {
                    config = config.endpoint_url(endpoint);
                }
                Ok(aws_sdk_dynamodb::Client::from_conf(config.build()))
            })
            .await
    }

    /// Whether the object (or local file) at `uri` exists: a HeadObject that answers 404 is `false`; any other
    /// failure is an error.
    pub async fn exists(&self, uri: &str) -> Result<bool, StorageError> {
        match Location::parse(uri)? {
            Location::Local(path) => {
                Ok(tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()))
            }
            Location::S3 { bucket, key } => {
                if key.is_empty() {
                    return Err(StorageError::new(format!(
                        "{uri}: an S3 key is needed (s3://BUCKET/KEY), not a bucket"
                    )));
                }
                let answer = self
                    .s3()
                    .await?
                    .head_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await;
                match answer {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
                    Err(e) => Err(StorageError::new(format!(
                        "cannot look up s3://{bucket}/{key}: {}",
                        sdk_error_text(&e)
                    ))),
                }
            }
        }
    }

    /// Whether at least one object has a key starting with the prefix `uri` (or, for a local directory, whether
    /// it holds a file).
    pub async fn prefix_has_objects(&self, uri: &str) -> Result<bool, StorageError> {
        match Location::parse(uri)? {
            Location::Local(path) => Ok(list_local(&path).is_ok_and(|files| !files.is_empty())),
            Location::S3 { bucket, key } => {
                let output = self
                    .s3()
                    .await?
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&key)
                    .max_keys(1)
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::new(format!(
                            "cannot list s3://{bucket}/{key}: {}",
                            sdk_error_text(&e)
                        ))
                    })?;
                Ok(output.key_count().unwrap_or(0) > 0 || !output.contents().is_empty())
            }
        }
    }

    /// Copies the object or file at `from` to the local file `to` (its directory is created).
    pub async fn download_file(&self, from: &str, to: &Path) -> Result<(), StorageError> {
        let location = Location::parse(from)?;
        if let Some(dir) = to.parent() {
            create_dir(dir).await?;
        }
        match location {
            Location::Local(path) => copy(&path, to).await,
            Location::S3 { bucket, key } => self.get_object(&bucket, &key, to).await,
        }
    }

    /// Copies every object under the prefix (or every file under the directory) `from` into the directory `to`,
    /// keeping relative paths. Returns how many files were copied.
    pub async fn download_dir(&self, from: &str, to: &Path) -> Result<usize, StorageError> {
        create_dir(to).await?;
        match Location::parse(from)? {
            Location::Local(path) => {
                let files = list_local(&path)?;
                for (relative, file) in &files {
                    let target = to.join(relative);
                    if let Some(dir) = target.parent() {
                        create_dir(dir).await?;
                    }
                    copy(file, &target).await?;
                }
                Ok(files.len())
            }
            Location::S3 { bucket, key } => {
                let prefix = if key.is_empty() || key.ends_with('/') {
                    key
                } else {
                    format!("{key}/")
                };
                let keys = self.list_keys(&bucket, &prefix).await?;
                let mut count = 0;
                for object_key in keys {
                    let relative = &object_key[prefix.len()..];
                    if relative.is_empty() || relative.ends_with('/') {
                        continue;
                    }
                    let target = to.join(relative);
                    if let Some(dir) = target.parent() {
                        create_dir(dir).await?;
                    }
                    self.get_object(&bucket, &object_key, &target).await?;
                    count += 1;
                }
                Ok(count)
            }
        }
    }

    /// Copies the local file `from` to `to` (an object, or a local path whose directory is created).
    pub async fn upload_file(&self, from: &Path, to: &str) -> Result<(), StorageError> {
        self.upload_to(from, &Location::parse(to)?).await
    }

    async fn upload_to(&self, from: &Path, to: &Location) -> Result<(), StorageError> {
        match to {
            Location::Local(path) => {
                if let Some(dir) = path.parent() {
                    create_dir(dir).await?;
                }
                copy(from, path).await
            }
            Location::S3 { bucket, key } => self.put_object(bucket, key, from).await,
        }
    }

    /// Copies every file under the local directory `from` to the prefix or directory `to`, keeping relative
    /// paths. Returns how many files were copied.
    pub async fn upload_dir(&self, from: &Path, to: &str) -> Result<usize, StorageError> {
        let base = Location::parse(to)?;
        let files = list_local(from)?;
        for (relative, file) in &files {
            self.upload_to(file, &base.join(relative)).await?;
        }
        Ok(files.len())
    }

    /// Streams the object to the file `to`, through a `.part` file renamed when the last chunk is written.
    async fn get_object(&self, bucket: &str, key: &str, to: &Path) -> Result<(), StorageError> {
        use tokio::io::AsyncWriteExt as _;
        let failed =
            |e: String| StorageError::new(format!("cannot download s3://{bucket}/{key}: {e}"));
        let output = self
            .s3()
            .await?
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed(sdk_error_text(&e)))?;
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = to.with_file_name(format!(".{name}.part"));
        let written = async {
            let mut file = tokio::fs::File::create(&part)
                .await
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", part.display())))?;
            let mut body = output.body;
            while let Some(chunk) = body.try_next().await.map_err(|e| failed(e.to_string()))? {
                file.write_all(&chunk).await.map_err(|e| {
                    StorageError::new(format!("cannot write {}: {e}", part.display()))
                })?;
            }
            file.flush()
                .await
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", part.display())))?;
            tokio::fs::rename(&part, to)
                .await
                .map_err(|e| StorageError::new(format!("cannot write {}: {e}", to.display())))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        written
    }

    /// Streams the file `from` to the object (one PutObject with the file's length).
    async fn put_object(&self, bucket: &str, key: &str, from: &Path) -> Result<(), StorageError> {
        let body = aws_sdk_s3::primitives::ByteStream::from_path(from)
            .await
            .map_err(|e| StorageError::new(format!("cannot read {}: {e}", from.display())))?;
        self.s3()
            .await?
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                StorageError::new(format!(
                    "cannot upload {} to s3://{bucket}/{key}: {}",
                    from.display(),
                    sdk_error_text(&e)
                ))
            })?;
        Ok(())
    }

    pub(crate) async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError> {
        let s3 = self.s3().await?;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    StorageError::new(format!(
                        "cannot list s3://{bucket}/{prefix}: {}",
                        sdk_error_text(&e)
                    ))
                })?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }
}

/// An SDK error as one line: the service's code and message when it answered, else the error chain.
pub(crate) fn sdk_error_text<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    // An answer without an error code is one the SDK could not read: the error chain says why.
    if let Some(service) = error.as_service_error()
        && let Some(code) = service.code()
    {
        return match service.message() {
            Some(message) => format!("{code}: {message}"),
            None => code.to_string(),
        };
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The runner's credentials, as aws-sdk-s3 asks for them.
#[derive(Debug)]
struct WireCredentials(Arc<dp_wire::Client>);

impl ProvideCredentials for WireCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match self.0.credentials().await {
                Ok(Some(credentials)) => Ok(credentials),
                Ok(None) => Err(CredentialsError::not_loaded(
                    "requests are not signed (--no-sign-request)",
                )),
                Err(e) => Err(CredentialsError::provider_error(e)),
            }
        })
    }
}

async fn create_dir(dir: &Path) -> Result<(), StorageError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| StorageError::new(format!("cannot create {}: {e}", dir.display())))
}

async fn copy(from: &Path, to: &Path) -> Result<(), StorageError> {
    tokio::fs::copy(from, to).await.map(|_| ()).map_err(|e| {
        StorageError::new(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Every file under `dir` (or `dir` itself when it is a file), with its path relative to `dir` using `/`, sorted.
pub(crate) fn list_local(dir: &Path) -> Result<Vec<(String, PathBuf)>, StorageError> {
    let metadata = std::fs::metadata(dir)
        .map_err(|e| StorageError::new(format!("cannot read {}: {e}", dir.display())))?;
    if metadata.is_file() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, dir.to_path_buf())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, path)) = stack.pop() {
        let entries = std::fs::read_dir(&path)
            .map_err(|e| StorageError::new(format!("cannot read {}: {e}", path.display())))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| StorageError::new(format!("cannot read {}: {e}", path.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| StorageError::new(format!("cannot read {}: {e}", path.display())))?;
            if kind.is_dir() {
                stack.push((relative, entry.path()));
            } else if kind.is_file() {
                out.push((relative, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let check = |uri: &str, expected: Result<Location, &str>| {
            let got = Location::parse(uri);
            match expected {
                Ok(l) => assert_eq!(got, Ok(l), "{uri}"),
                Err(fragment) => {
                    let e = got.expect_err(uri).to_string();
                    assert!(e.contains(fragment), "{uri}: {e}");
                }
            }
        };
        let s3 = |b: &str, k: &str| {
            Ok(Location::S3 {
                bucket: b.into(),
                key: k.into(),
            })
        };
        check("s3://b/k/x.sh", s3("b", "k/x.sh"));
        check("s3://b", s3("b", ""));
        check("s3://b/dir/", s3("b", "dir/"));
        check("/tmp/x", Ok(Location::Local("/tmp/x".into())));
        check("file:///tmp/x", Ok(Location::Local("/tmp/x".into())));
        check("rel/x", Ok(Location::Local("rel/x".into())));
        check("s3:///k", Err("needs a bucket"));
        check("https://x/y", Err("https:// is not supported"));
        check("", Err("empty"));
        assert_eq!(
            Location::parse("s3://b/logs")
                .unwrap()
                .join("a/b")
                .to_string(),
            "s3://b/logs/a/b"
        );
        assert_eq!(
            Location::parse("s3://b/logs/")
                .unwrap()
                .join("a")
                .to_string(),
            "s3://b/logs/a"
        );
    }
}
