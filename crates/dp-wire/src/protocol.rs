//! awsJson 1.1 framing: the request body, the output, and error responses.
//!
//! Pure functions of bytes, headers and the model's shapes: timestamps go out as epoch seconds
//! ([`serialize_timestamps`]) and outputs come back as botocore's parser builds them ([`shape_output`]), so that
//! [`Client::call_json`](crate::Client::call_json) sends and returns what the AWS CLI sends and prints. The error rules are Smithy's (header `X-Amzn-ErrorType`, then body `code`,
//! then body `__type`; namespace and `:` suffix removed), and a 2xx body that is not a JSON object is an error, never
//! an empty success.

use dp_model::{Shape, ShapeKind};
use http::StatusCode;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, ServiceError};
use crate::transport::Response;

/// The request body for `input`: its JSON, `{}` for `null` or an empty input.
pub fn encode_body(input: &Value) -> Vec<u8> {
    match input {
        Value::Null => b"{}".to_vec(),
        other => serde_json::to_vec(other).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// The output of a 2xx response: its JSON object in wire order, `{}` for an empty body.
pub fn decode_output(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Error::new(
            ErrorKind::InvalidResponse,
            "Invalid response: the body is JSON but not an object",
        )),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "Invalid response: the body is not valid JSON ({e}; {} bytes received)",
                body.len()
            ),
        )),
    }
}

/// Drops everything from the first `:` and everything up to the last `#`.
pub fn sanitize_error_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    let code = code.rsplit('#').next().unwrap_or(code);
    code.trim()
}

/// The error of a non-2xx response. A body that is not JSON gives the status as code and the reason as message.
pub(crate) fn parse_error(response: &Response) -> ServiceError {
    let header_code = response
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok());
    let request_id = response
        .headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    parse_error_parts(response.status, header_code, &response.body, request_id)
}

/// The error of a non-2xx response from its status, `X-Amzn-ErrorType` header, body and request id.
pub fn parse_error_parts(
    status: StatusCode,
    header_code: Option<&str>,
    body: &[u8],
    request_id: Option<String>,
) -> ServiceError {
    let json = serde_json::from_slice::<Value>(body).ok();
    let object = json.as_ref().and_then(Value::as_object);
    let body_field = |name: &str| object.and_then(|o| o.get(name)).and_then(Value::as_str);
    let code = header_code
        .map(sanitize_error_code)
        .filter(|c| !c.is_empty())
        .or_else(|| {
            body_field("code")
                .map(sanitize_error_code)
                .filter(|c| !c.is_empty())
        })
        .or_else(|| {
            body_field("__type")
                .map(sanitize_error_code)
                .filter(|c| !c.is_empty())
        })
        .map(str::to_string)
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = match object {
        Some(_) => body_field("message")
            .or_else(|| body_field("Message"))
            .or_else(|| body_field("errorMessage"))
            .map(str::to_string),
        None => status.canonical_reason().map(str::to_string),
    };
    ServiceError {
        code,
        message,
        status: status.as_u16(),
        request_id,
    }
}

/// Converts timestamp members to epoch seconds, as the awsJson serializer sends them.
pub fn serialize_timestamps(shape: &Shape, value: &mut Value) {
    match (&shape.kind, value) {
        (ShapeKind::Timestamp, v) => {
            let secs = match v {
                Value::String(s) => dp_model::timestamp::parse(s),
                Value::Number(n) => n.as_f64().map(|f| f.trunc() as i64),
                _ => None,
            };
            if let Some(secs) = secs {
                *v = Value::from(secs);
            }
        }
        (ShapeKind::Structure(members), Value::Object(map)) => {
            for m in *members {
                if let Some(v) = map.get_mut(m.name) {
                    serialize_timestamps(m.shape, v);
                }
            }
        }
        (ShapeKind::List(member), Value::Array(items)) => items
            .iter_mut()
            .for_each(|v| serialize_timestamps(member, v)),
        (ShapeKind::Map { value: vs, .. }, Value::Object(map)) => {
            map.values_mut().for_each(|v| serialize_timestamps(vs, v))
        }
        _ => {}
    }
}

/// Rebuilds a response as botocore's parser does: structure members in model order, unknown and null members
/// dropped, map entries in wire order.
pub fn shape_output(shape: &Shape, value: &Value) -> Option<Value> {
    match (&shape.kind, value) {
        (_, Value::Null) => None,
        (ShapeKind::Structure(members), Value::Object(map)) => {
            let mut out = Map::new();
            for m in *members {
                if let Some(v) = map.get(m.name).and_then(|v| shape_output(m.shape, v)) {
                    out.insert(m.name.to_string(), v);
                }
            }
            Some(Value::Object(out))
        }
        (ShapeKind::List(member), Value::Array(items)) => Some(Value::Array(
            items
                .iter()
                .filter_map(|v| shape_output(member, v))
                .collect(),
        )),
        (ShapeKind::Map { value: vs, .. }, Value::Object(map)) => Some(Value::Object(
            map.iter()
                .filter_map(|(k, v)| shape_output(vs, v).map(|v| (k.clone(), v)))
                .collect(),
        )),
        (_, v) => Some(v.clone()),
    }
}
