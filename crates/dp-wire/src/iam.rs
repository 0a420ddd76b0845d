//! IAM's protocol (awsQuery), for the one command that talks to IAM (`create-default-roles`).
//!
//! awsQuery requests are `POST /` with a form-encoded body (`Action=…&Version=2010-05-08&…`, encoded as Python's
//! `urlencode` does, which is what botocore sends); answers are XML: `<XResponse><XResult>…</XResult>…` on success
//! and `<ErrorResponse><Error><Code>…</Code><Message>…</Message></Error>…` on failure. IAM is a global service: one
//! endpoint and one signing region per partition, whatever region the caller is in.
//!
//! Everything here is a pure function of its inputs; [`crate::Client::call_iam`] does the IO. This module knows
//! only the few IAM shapes `create-default-roles` reads or prints, not IAM's whole model.

use quick_xml::events::Event;
use serde_json::{Map, Value};

use crate::endpoint::partition;
use crate::error::{Error, ErrorKind, ServiceError};

/// IAM's API version, sent as `Version` in every request.
pub const API_VERSION: &str = "2010-05-08";
/// IAM's SigV4 signing name.
pub const SIGNING_NAME: &str = "iam";
/// The `Content-Type` of awsQuery requests, as botocore sends it.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The body of an awsQuery request: `Action`, `Version`, then `params` in the order given (botocore keeps the
/// caller's keyword order). Keys and values are encoded as Python's `urllib.parse.quote_plus`: letters, digits
/// and `_.-~` stay, a space becomes `+`, every other byte of the UTF-8 text is `%XX`.
pub fn encode_query(action: &str, params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    let mut pairs = vec![("Action", action), ("Version", API_VERSION)];
    pairs.extend_from_slice(params);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        crate::percent::quote_plus(key, &mut out);
        out.push('=');
        crate::percent::quote_plus(value, &mut out);
    }
    out.into_bytes()
}

/// Where IAM requests go when no endpoint is configured, and the region they are signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalEndpoint {
    /// The endpoint URL (`https://iam.amazonaws.com`).
    pub url: String,
    /// The SigV4 signing region (`us-east-1` for the whole `aws` partition).
    pub signing_region: String,
}

/// IAM's endpoint for a caller in `region`, as botocore's IAM endpoint rules give it: one global endpoint for
/// the `aws`, `aws-cn` and `aws-us-gov` partitions (each signed for its home region), a regional one elsewhere.
/// `fips` picks the FIPS endpoint where the partition has one.
pub fn global_endpoint(region: &str, fips: bool) -> GlobalEndpoint {
    let p = partition(region);
    let (url, signing_region) = match (p.id, fips) {
        ("aws", false) => (
            "https://iam.amazonaws.com".to_string(),
            "us-east-1".to_string(),
        ),
        ("aws", true) => (
            "https://iam-fips.amazonaws.com".to_string(),
            "us-east-1".to_string(),
        ),
        ("aws-cn", false) => (
            "https://iam.cn-north-1.amazonaws.com.cn".to_string(),
            "cn-north-1".to_string(),
        ),
        ("aws-cn", true) => (
            "https://iam-fips.aws-cn-global.amazonaws.com.cn".to_string(),
            "cn-north-1".to_string(),
        ),
        ("aws-us-gov", _) => (
            "https://iam.us-gov.amazonaws.com".to_string(),
            "us-gov-west-1".to_string(),
        ),
        (_, _) => (
            format!("https://iam.{region}.{}", p.dns_suffix),
            region.to_string(),
        ),
    };
    GlobalEndpoint {
        url,
        signing_region,
    }
}

/// An XML element: its local name (namespace prefix dropped), its text (entities decoded) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name.
    pub name: String,
    /// The concatenated text directly inside the element.
    pub text: String,
    /// The child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the descendant at `path` (`["Policy", "DefaultVersionId"]`).
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        let mut element = self;
        for name in path {
            element = element.child(name)?;
        }
        Some(element.text.as_str())
    }
}

/// Parses an XML document into its root element.
pub fn parse_xml(body: &[u8]) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut buf = Vec::new();
    let local = |name: &[u8]| {
        let name = String::from_utf8_lossy(name).into_owned();
        match name.rsplit_once(':') {
            Some((_, local)) => local.to_string(),
            None => name,
        }
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(start)) => stack.push(Element {
                name: local(start.name().as_ref()),
                ..Element::default()
            }),
            Ok(Event::Empty(empty)) => {
                let element = Element {
                    name: local(empty.name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(current) = stack.last_mut() {
                    let decoded = text.decode().map_err(|e| e.to_string())?;
                    let unescaped =
                        quick_xml::escape::unescape(&decoded).map_err(|e| e.to_string())?;
                    current.text.push_str(&unescaped);
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                if let Some(current) = stack.last_mut() {
                    let name = reference.decode().map_err(|e| e.to_string())?;
                    let entity = format!("&{name};");
                    let resolved =
                        quick_xml::escape::unescape(&entity).map_err(|e| e.to_string())?;
                    current.text.push_str(&resolved);
                }
            }
            Ok(Event::CData(data)) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Ok(Event::End(_)) => {
                let element = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Ok(Event::Eof) => {
                return Err("the document ends before its root element is closed".into());
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{e} at byte {}", reader.error_position())),
        }
        buf.clear();
    }
}

/// The `<ActionResult>` element of a 2xx answer (an empty element for an empty body or a missing result).
pub fn decode_result(action: &str, body: &[u8]) -> Result<Element, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Element::default());
    }
    let root = parse_xml(body).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "Invalid response: the body is not valid XML ({e}; {} bytes received)",
                body.len()
            ),
        )
    })?;
    let result_name = format!("{action}Result");
    Ok(root.child(&result_name).cloned().unwrap_or_default())
}

/// The error of a non-2xx answer: `Error/Code` and `Error/Message` of the XML (botocore's query error rules),
/// else the status as code and its reason as message.
pub fn parse_error(status: u16, body: &[u8]) -> ServiceError {
    let root = parse_xml(body).ok();
    let error = root.as_ref().and_then(|r| {
        if r.name == "Error" {
            Some(r)
        } else {
            r.child("Error")
        }
    });
    let code = error
        .and_then(|e| e.child("Code"))
        .map(|c| c.text.trim().to_string())
        .filter(|c| !c.is_empty());
    let message = error
        .and_then(|e| e.child("Message"))
        .map(|m| m.text.clone());
    let request_id = root
        .as_ref()
        .and_then(|r| r.child("RequestId").or_else(|| r.child("RequestID")))
        .map(|r| r.text.clone());
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(str::to_string);
    ServiceError {
        message: if code.is_some() {
            message
        } else {
            message.or(reason)
        },
        code: code.unwrap_or_else(|| status.to_string()),
        status,
        request_id,
    }
}

/// The type of a member of the few IAM shapes dp reads.
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    /// `policyDocumentType`: URL-encoded JSON, decoded as botocore's `json_decode_policies` does.
    PolicyDocument,
    Integer,
    Structure(&'static [(&'static str, Kind)]),
    List(&'static Kind),
}

const TAG: Kind = Kind::Structure(&[("Key", Kind::String), ("Value", Kind::String)]);
const TAGS: Kind = Kind::List(&TAG);

/// IAM's `Role` shape, members in model order (botocore prints them in this order, whatever the XML's order).
const ROLE: Kind = Kind::Structure(&[
    ("Path", Kind::String),
    ("RoleName", Kind::String),
    ("RoleId", Kind::String),
    ("Arn", Kind::String),
    // Timestamps stay as sent: the AWS CLI v1 prints them unparsed.
    ("CreateDate", Kind::String),
    ("AssumeRolePolicyDocument", Kind::PolicyDocument),
    ("Description", Kind::String),
    ("MaxSessionDuration", Kind::Integer),
    (
        "PermissionsBoundary",
        Kind::Structure(&[
            ("PermissionsBoundaryType", Kind::String),
            ("PermissionsBoundaryArn", Kind::String),
        ]),
    ),
    ("Tags", TAGS),
    (
        "RoleLastUsed",
        Kind::Structure(&[("LastUsedDate", Kind::String), ("Region", Kind::String)]),
    ),
]);

/// The `Role` of a `CreateRole` or `GetRole` result as botocore returns it to the CLI: members in model order,
/// integers as numbers, the trust policy decoded into JSON. `None` when the result has no `Role`.
pub fn role(result: &Element) -> Option<Value> {
    result.child("Role").map(|r| convert(r, ROLE))
}

/// A policy document as botocore's `decode_quoted_jsondoc` gives it: percent-decoded and parsed as JSON (key
/// order kept); the text unchanged when it is not JSON.
pub fn policy_document(text: &str) -> Value {
    let decoded = crate::percent::decode(text);
    match serde_json::from_str::<Value>(&decoded) {
        Ok(value) => value,
        Err(_) => Value::String(text.to_string()),
    }
}

fn convert(element: &Element, kind: Kind) -> Value {
    match kind {
        Kind::String => Value::String(element.text.clone()),
        Kind::PolicyDocument => policy_document(&element.text),
        Kind::Integer => element
            .text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(element.text.clone())),
        Kind::Structure(members) => {
            let mut map = Map::new();
            for (name, member) in members {
                if let Some(child) = element.child(name) {
                    map.insert((*name).to_string(), convert(child, *member));
                }
            }
            Value::Object(map)
        }
        Kind::List(item) => Value::Array(
            element
                .children
                .iter()
                .filter(|c| c.name == "member")
                .map(|c| convert(c, *item))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bodies_are_encoded_as_python_does() {
        let check = |params: &[(&str, &str)], expected: &str| {
            assert_eq!(
                String::from_utf8(encode_query("GetRole", params)).unwrap(),
                expected
            );
        };
        check(
            &[("RoleName", "DataPipelineDefaultRole")],
            "Action=GetRole&Version=2010-05-08&RoleName=DataPipelineDefaultRole",
        );
        check(
            &[("PolicyArn", "arn:aws:iam::aws:policy/x")],
            "Action=GetRole&Version=2010-05-08&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2Fx",
        );
        check(
            &[("D", "{\n  \"a\": [1, 2]~é")],
            "Action=GetRole&Version=2010-05-08&D=%7B%0A++%22a%22%3A+%5B1%2C+2%5D~%C3%A9",
        );
    }

    #[test]
    fn global_endpoints_per_partition() {
        let check = |region: &str, fips: bool, url: &str, signing: &str| {
            assert_eq!(
                global_endpoint(region, fips),
                GlobalEndpoint {
                    url: url.into(),
                    signing_region: signing.into()
                },
                "{region} fips={fips}"
            );
        };
        check("us-east-1", false, "https://iam.amazonaws.com", "us-east-1");
        check("eu-west-1", false, "https://iam.amazonaws.com", "us-east-1");
        check(
            "mars-west-1",
            false,
            "https://iam.amazonaws.com",
            "us-east-1",
        );
        check(
            "us-east-1",
            true,
            "https://iam-fips.amazonaws.com",
            "us-east-1",
        );
        check(
            "cn-northwest-1",
            false,
            "https://iam.cn-north-1.amazonaws.com.cn",
            "cn-north-1",
        );
        check(
            "cn-north-1",
            true,
            "https://iam-fips.aws-cn-global.amazonaws.com.cn",
            "cn-north-1",
        );
        check(
            "us-gov-east-1",
            false,
            "https://iam.us-gov.amazonaws.com",
            "us-gov-west-1",
        );
        check(
            "us-iso-east-1",
            false,
            "https://iam.us-iso-east-1.c2s.ic.gov",
            "us-iso-east-1",
        );
        check(
            "us-isob-east-1",
            false,
            "https://iam.us-isob-east-1.sc2s.sgov.gov",
            "us-isob-east-1",
        );
        check(
            "eu-isoe-west-1",
            false,
            "https://iam.eu-isoe-west-1.cloud.adc-e.uk",
            "eu-isoe-west-1",
        );
        check(
            "us-isof-south-1",
            false,
            "https://iam.us-isof-south-1.csp.hci.ic.gov",
            "us-isof-south-1",
        );
        check(
            "eusc-de-east-1",
            false,
            "https://iam.eusc-de-east-1.amazonaws.eu",
            "eusc-de-east-1",
        );
    }

    #[test]
    fn errors_take_code_and_message_from_the_xml() {
        let check = |status: u16, body: &str, code: &str, message: Option<&str>| {
            let e = parse_error(status, body.as_bytes());
            assert_eq!(
                (e.code.as_str(), e.message.as_deref()),
                (code, message),
                "{body}"
            );
        };
        check(
            404,
            r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name X cannot be found.</Message></Error><RequestId>r</RequestId></ErrorResponse>"#,
            "NoSuchEntity",
            Some("The role with name X cannot be found."),
        );
        check(
            403,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>a &amp; b</Message></Error></ErrorResponse>",
            "AccessDenied",
            Some("a & b"),
        );
        check(503, "not xml", "503", Some("Service Unavailable"));
    }

    #[test]
    fn roles_come_out_in_model_order_with_decoded_policies() {
        let body = r#"<CreateRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateRoleResult><Role>
            <AssumeRolePolicyDocument>%7B%22Version%22%3A%222008-10-17%22%2C%22S%22%3A%5B%5D%7D</AssumeRolePolicyDocument>
            <MaxSessionDuration>3600</MaxSessionDuration><Arn>arn:aws:iam::1:role/R</Arn><RoleName>R</RoleName><Path>/</Path>
            <Tags><member><Key>k</Key><Value>v</Value></member></Tags><CreateDate>2026-01-01T00:00:00Z</CreateDate>
            </Role></CreateRoleResult></CreateRoleResponse>"#;
        let result = decode_result("CreateRole", body.as_bytes()).unwrap();
        let role = role(&result).unwrap();
        assert_eq!(
            role.to_string(),
            r#"{"Path":"/","RoleName":"R","Arn":"arn:aws:iam::1:role/R","CreateDate":"2026-01-01T00:00:00Z","AssumeRolePolicyDocument":{"Version":"2008-10-17","S":[]},"MaxSessionDuration":3600,"Tags":[{"Key":"k","Value":"v"}]}"#
        );
    }

    #[test]
    fn policy_documents_that_are_not_json_stay_text() {
        assert_eq!(
            policy_document("%7B%22a%22%3A1%7D"),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            policy_document("not%20json"),
            Value::String("not%20json".into())
        );
        assert_eq!(policy_document("%"), Value::String("%".into()));
    }

    #[test]
    fn bad_xml_is_an_invalid_response() {
        assert!(decode_result("GetRole", b"<a><b></a>").is_err());
        assert_eq!(decode_result("GetRole", b"").unwrap(), Element::default());
    }
}
