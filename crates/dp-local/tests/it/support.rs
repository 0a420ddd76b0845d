//! A small signed awsJson client for the tests, plus helpers that build definitions and wait for states.
//!
//! It signs with aws-sigv4 directly (not dp-wire) so that dp-local is checked against the reference signer.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// How a request is signed.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Signed with these keys at this time.
    Keys {
        access_key_id: String,
        secret: String,
        time: SystemTime,
    },
    /// No Authorization header at all.
    None,
}

impl Signing {
    pub fn example() -> Self {
        Signing::Keys {
            access_key_id: AKID.into(),
            secret: SECRET.into(),
            time: SystemTime::now(),
        }
    }
}

/// An error answer: status, `__type`, `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Client {
    url: String,
    host: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(url: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Client {
            url: format!("{url}/"),
            host: url.trim_start_matches("http://").to_string(),
            http,
        }
    }

    /// Calls `operation` signed with the example keys; `Err` carries the error answer.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, Failure> {
        self.call_with(
            operation,
            serde_json::to_vec(&input).unwrap(),
            Signing::example(),
        )
        .await
    }

    /// Calls and expects success.
    pub async fn ok(&self, operation: &str, input: Value) -> Value {
        match self.call(operation, input.clone()).await {
            Ok(v) => v,
            Err(f) => panic!("{operation} {input} failed: {f:?}"),
        }
    }

    /// Calls and expects an error with this code.
    pub async fn fails(&self, operation: &str, input: Value, code: &str) -> Failure {
        match self.call(operation, input.clone()).await {
            Ok(v) => panic!("{operation} {input} succeeded with {v}, expected {code}"),
            Err(f) => {
                assert_eq!(f.code, code, "{operation} {input}: {f:?}");
                f
            }
        }
    }

    pub async fn call_with(
        &self,
        operation: &str,
        body: Vec<u8>,
        signing: Signing,
    ) -> Result<Value, Failure> {
        self.call_tampered(operation, body.clone(), body, signing)
            .await
    }

    /// Signs `body` but sends `sent`.
    pub async fn call_tampered(
        &self,
        operation: &str,
        body: Vec<u8>,
        sent: Vec<u8>,
        signing: Signing,
    ) -> Result<Value, Failure> {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            // A name with a dot is a whole target (dp-local's own `DpLocal.StopWorkerGroup`).
            .header(
                "x-amz-target",
                if operation.contains('.') {
                    operation.to_string()
                } else {
                    format!("DataPipeline.{operation}")
                },
            )
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        if let Signing::Keys {
            access_key_id,
            secret,
            time,
        } = signing
        {
            let identity =
                aws_credential_types::Credentials::new(access_key_id, secret, None, None, "test")
                    .into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("datapipeline")
                .time(time)
                .settings(SigningSettings::default())
                .build()
                .unwrap()
                .into();
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
                .collect();
            let signable = SignableRequest::new(
                "POST",
                self.url.clone(),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(&body),
            )
            .unwrap();
            let (instructions, _) = sign(signable, &params).unwrap().into_parts();
            instructions.apply_to_request_http1x(&mut request);
        }
        *request.body_mut() = Full::new(Bytes::from(sent));
        self.send(request).await
    }

    /// Calls without signing; `Err` when no answer came (the server is down or the connection broke).
    pub async fn try_unsigned(
        &self,
        operation: &str,
        input: &Value,
    ) -> Result<Result<Value, Failure>, String> {
        let request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("DataPipeline.{operation}"))
            .body(Full::new(Bytes::from(serde_json::to_vec(input).unwrap())))
            .unwrap();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {bytes:?}"));
        Ok(if status == 200 {
            Ok(value)
        } else {
            Err(Failure {
                status,
                code: value["__type"].as_str().unwrap_or("").to_string(),
                message: value["message"].as_str().unwrap_or("").to_string(),
            })
        })
    }

    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Value, Failure> {
        let response = self
            .http
            .request(request)
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-amz-json-1.1"),
            "content type of every answer"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {bytes:?}"));
        if status == 200 {
            Ok(value)
        } else {
            Err(Failure {
                status,
                code: value["__type"].as_str().unwrap_or("").to_string(),
                message: value["message"].as_str().unwrap_or("").to_string(),
            })
        }
    }
}

/// A string field.
pub fn s(key: &str, value: &str) -> Value {
    json!({"key": key, "stringValue": value})
}

/// A reference field.
pub fn r(key: &str, id: &str) -> Value {
    json!({"key": key, "refValue": id})
}

/// A pipeline object.
pub fn object(id: &str, fields: Vec<Value>) -> Value {
    json!({"id": id, "name": id, "fields": fields})
}

/// An ondemand pipeline with one ShellCommandActivity `Act` on worker group `wg`, plus extra Default fields.
pub fn ondemand(wg: &str, extra_default: Vec<Value>) -> Vec<Value> {
    let mut default = vec![s("scheduleType", "ondemand"), s("workerGroup", wg)];
    default.extend(extra_default);
    vec![
        object("Default", default),
        object(
            "Act",
            vec![s("type", "ShellCommandActivity"), s("command", "echo hi")],
        ),
    ]
}

/// Creates a pipeline, puts `objects`, activates it; returns the pipeline id.
pub async fn running_pipeline(client: &Client, name: &str, objects: Vec<Value>) -> String {
    let id = client
        .ok("CreatePipeline", json!({"name": name, "uniqueId": name}))
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let put = client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": id, "pipelineObjects": objects}),
        )
        .await;
    assert_eq!(put["errored"], json!(false), "definition accepted: {put}");
    client
        .ok("ActivatePipeline", json!({"pipelineId": id}))
        .await;
    id
}

/// The fields of one object as `key -> first value`.
pub async fn fields(
    client: &Client,
    pipeline: &str,
    object: &str,
) -> std::collections::HashMap<String, String> {
    let out = client
        .ok(
            "DescribeObjects",
            json!({"pipelineId": pipeline, "objectIds": [object]}),
        )
        .await;
    let objects = out["pipelineObjects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "describe-objects of {object}: {out}");
    let mut map = std::collections::HashMap::new();
    for f in objects[0]["fields"].as_array().unwrap() {
        let v = f["stringValue"]
            .as_str()
            .or(f["refValue"].as_str())
            .unwrap_or("")
            .to_string();
        map.entry(f["key"].as_str().unwrap().to_string())
            .or_insert(v);
    }
    map
}

/// Waits (up to 20 s of real time, checking every 10 ms) until `field` of `object` equals `want`.
pub async fn wait_for(client: &Client, pipeline: &str, object: &str, field: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..2000 {
        let f = fields(client, pipeline, object).await;
        last = f.get(field).cloned().unwrap_or_default();
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{object}.{field} stayed {last:?}, expected {want:?}");
}

/// Polls until a task comes (up to 20 s of real time).
pub async fn poll_until_task(client: &Client, wg: &str) -> Value {
    for _ in 0..200 {
        let out = client
            .ok(
                "PollForTask",
                json!({"workerGroup": wg, "hostname": "test-host"}),
            )
            .await;
        if out.get("taskObject").is_some() {
            return out["taskObject"].clone();
        }
    }
    panic!("no task for worker group {wg}");
}
