//! `dp create-default-roles` against `aws datapipeline create-default-roles`: a loopback IAM fake (awsQuery:
//! form-encoded requests, XML answers) that verifies every signature for the service `iam`, one fresh fake per
//! client with the same starting state. Both must send the same requests in the same order, byte for byte, signed
//! for the same region, and print the same stdout; the exit code is the CLI v2 table's, and stderr carries the
//! reference's deprecation notice (which the reference prints through Python's `warnings`, framed with its own
//! file path).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::harness::{Recorded, Reply, Run, Server, aws_with_env, dp_with_env};

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// What the fake account holds at the start, and which action fails how.
#[derive(Debug, Clone, Default)]
struct Account {
    roles: BTreeSet<String>,
    instance_profile: bool,
    /// `(action, status, code)`: that action answers this error every time.
    failing: Option<(&'static str, u16, &'static str)>,
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn xml_reply(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body,
    }
}

fn ok(action: &str, inner: &str) -> Reply {
    xml_reply(
        200,
        format!(
            r#"<{action}Response xmlns="{NS}"><{action}Result>{inner}</{action}Result><ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata></{action}Response>"#
        ),
    )
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    xml_reply(
        status,
        format!(
            r#"<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>4a8e1c2b-EXAMPLE</RequestId></ErrorResponse>"#
        ),
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A role as IAM returns it; the members are deliberately out of model order, and the trust policy is the
/// URL-encoded document that was sent.
fn role_xml(name: &str, trust: &str) -> String {
    format!(
        "<Role><AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument><RoleId>AROA{}</RoleId><MaxSessionDuration>3600</MaxSessionDuration>\
         <CreateDate>2026-12-02T21:00:00Z</CreateDate><RoleName>{name}</RoleName><Path>/</Path>\
         <Arn>arn:aws:iam::123456789012:role/{name}</Arn></Role>",
        percent_encode(trust),
        name.len()
    )
}

/// The managed policy's document, as IAM sends it (URL-encoded JSON with a Unicode character, an escaped `&`).
fn policy_document(arn: &str) -> String {
    let document = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:Get*","ec2:Describe*"],"Resource":"*","Sid":"{}é"}}]}}"#,
        arn.rsplit('/').next().unwrap_or_default()
    );
    percent_encode(&document)
}

/// The fake IAM: answers the actions create-default-roles uses and keeps the account's state.
fn fake_iam(account: Account) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    let state = Arc::new(Mutex::new(account));
    move |rec: &Recorded, _| {
        if rec.verify_signature_for("iam").is_err() {
            return error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match",
            );
        }
        let params = form(&rec.body);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let action = get("Action");
        let mut state = state.lock().unwrap();
        if let Some((failing, status, code)) = state.failing
            && failing == action
        {
            return error(
                status,
                code,
                &format!(
                    "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:{action}"
                ),
            );
        }
        match action.as_str() {
            "GetRole" => {
                let name = get("RoleName");
                if state.roles.contains(&name) {
                    ok("GetRole", &role_xml(&name, "{}"))
                } else {
                    error(
                        404,
                        "NoSuchEntity",
                        &format!("The role with name {name} cannot be found."),
                    )
                }
            }
            "CreateRole" => {
                let name = get("RoleName");
                state.roles.insert(name.clone());
                ok(
                    "CreateRole",
                    &role_xml(&name, &get("AssumeRolePolicyDocument")),
                )
            }
            "AttachRolePolicy" | "AddRoleToInstanceProfile" => ok(&action, ""),
            "GetPolicy" => ok(
                "GetPolicy",
                &format!(
                    "<Policy><PolicyName>P</PolicyName><DefaultVersionId>v7</DefaultVersionId><Arn>{}</Arn><AttachmentCount>1</AttachmentCount></Policy>",
                    get("PolicyArn")
                ),
            ),
            "GetPolicyVersion" => ok(
                "GetPolicyVersion",
                &format!(
                    "<PolicyVersion><Document>{}</Document><VersionId>{}</VersionId><IsDefaultVersion>true</IsDefaultVersion></PolicyVersion>",
                    policy_document(&get("PolicyArn")),
                    get("VersionId")
                ),
            ),
            "GetInstanceProfile" => {
                if state.instance_profile {
                    ok(
                        "GetInstanceProfile",
                        "<InstanceProfile><InstanceProfileName>DataPipelineDefaultResourceRole</InstanceProfileName></InstanceProfile>",
                    )
                } else {
                    error(
                        404,
                        "NoSuchEntity",
                        "Instance Profile DataPipelineDefaultResourceRole cannot be found.",
                    )
                }
            }
            "CreateInstanceProfile" => {
                state.instance_profile = true;
                ok(
                    "CreateInstanceProfile",
                    "<InstanceProfile><InstanceProfileName>DataPipelineDefaultResourceRole</InstanceProfileName><Roles/></InstanceProfile>",
                )
            }
            _ => error(400, "InvalidAction", "unknown action"),
        }
    }
}

/// What a case expects of both clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Both succeed (dp exits 0).
    Success,
    /// IAM answers an error: dp exits 254 with the reference's message.
    ServiceError,
    /// Both stop before sending anything: dp exits 253 (configuration).
    ConfigError,
}

fn run_both(
    account: &Account,
    args: &[&str],
    env: crate::harness::EnvChanges<'_>,
) -> (Run, Vec<Recorded>, Run, Vec<Recorded>) {
    let dir = std::env::temp_dir();
    let mut full = vec!["create-default-roles"];
    full.extend_from_slice(args);
    // `AWS_ENDPOINT_URL_IAM` set to "fake" means: the fake's URL through that variable, no --endpoint-url.
    let via_env = env
        .iter()
        .any(|(k, v)| *k == "AWS_ENDPOINT_URL_IAM" && *v == Some("fake"));
    let run = |server: &Server,
               client: fn(
        &str,
        &[&str],
        &std::path::Path,
        crate::harness::EnvChanges<'_>,
    ) -> Run| {
        if via_env {
            let mut changed: Vec<(&str, Option<&str>)> = env
                .iter()
                .filter(|(k, _)| *k != "AWS_ENDPOINT_URL_IAM")
                .copied()
                .collect();
            changed.push(("AWS_ENDPOINT_URL_IAM", Some(server.url.as_str())));
            client("", &full, &dir, &changed)
        } else {
            client(&server.url, &full, &dir, env)
        }
    };
    let theirs_server = Server::start(fake_iam(account.clone()));
    let theirs = run(&theirs_server, aws_with_env);
    let ours_server = Server::start(fake_iam(account.clone()));
    let ours = run(&ours_server, dp_with_env);
    (theirs, theirs_server.take(), ours, ours_server.take())
}

/// The reference's deprecation notice, cut out of Python's warning framing (`<file>:<line>: UserWarning: …
/// \n  warnings.warn(…)\n`).
fn reference_notice(stderr: &str) -> &str {
    let start = stderr.find("UserWarning: ").expect("the reference warns") + "UserWarning: ".len();
    let end = stderr
        .find("  warnings.warn(")
        .expect("the warning's source line");
    &stderr[start..end]
}

fn check(
    name: &str,
    account: Account,
    args: &[&str],
    env: crate::harness::EnvChanges<'_>,
    expect: Expect,
) {
    let (theirs, their_requests, ours, our_requests) = run_both(&account, args, env);
    let what = format!(
        "case {name} {args:?}\n--- aws (rc {}):\n{}{}\n--- dp (rc {}):\n{}{}",
        theirs.code, theirs.stdout, theirs.stderr, ours.code, ours.stdout, ours.stderr
    );
    let actions = |requests: &[Recorded]| {
        requests
            .iter()
            .map(|r| {
                form(&r.body)
                    .first()
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        actions(&our_requests),
        actions(&their_requests),
        "IAM actions differ: {what}"
    );
    for (a, b) in our_requests.iter().zip(&their_requests) {
        assert_eq!(
            (a.method.as_str(), a.path.as_str()),
            (b.method.as_str(), b.path.as_str()),
            "{what}"
        );
        assert_eq!(a.header("content-type"), b.header("content-type"), "{what}");
        assert_eq!(
            String::from_utf8_lossy(&a.body),
            String::from_utf8_lossy(&b.body),
            "request bodies differ byte for byte: {what}"
        );
        assert_eq!(
            a.header("x-amz-target"),
            None,
            "awsQuery has no target: {what}"
        );
        a.verify_signature_for("iam")
            .unwrap_or_else(|e| panic!("dp's signature is invalid: {e}\n{what}"));
        b.verify_signature_for("iam")
            .unwrap_or_else(|e| panic!("the harness cannot verify aws's signature: {e}\n{what}"));
        assert_eq!(
            a.signing_region(),
            b.signing_region(),
            "signing regions differ: {what}"
        );
    }
    assert_eq!(ours.stdout, theirs.stdout, "stdout differs: {what}");
    match expect {
        Expect::Success => {
            assert_eq!((theirs.code, ours.code), (0, 0), "{what}");
            assert!(!their_requests.is_empty(), "{what}");
        }
        Expect::ServiceError => {
            assert_eq!((theirs.code, ours.code), (255, 254), "{what}");
            assert!(!their_requests.is_empty(), "{what}");
        }
        Expect::ConfigError => {
            assert_eq!((theirs.code, ours.code), (255, 253), "{what}");
            assert!(
                their_requests.is_empty() && our_requests.is_empty(),
                "{what}"
            );
        }
    }
    // dp prints the reference's notice after `warning:`, then what the reference prints after its warning (the
    // error message, if any). dp frames configuration errors with a leading blank line, as for every command.
    let notice = reference_notice(&theirs.stderr);
    let their_rest = &theirs.stderr[theirs.stderr.find("  warnings.warn(").unwrap()..];
    let their_rest = their_rest.split_once('\n').map_or("", |(_, rest)| rest);
    let our_rest = ours
        .stderr
        .strip_prefix(&format!("warning:{notice}"))
        .unwrap_or_else(|| panic!("dp does not print the reference's notice first: {what}"));
    let our_rest = match expect {
        Expect::ConfigError => our_rest.strip_prefix('\n').unwrap_or(our_rest),
        _ => our_rest,
    };
    assert_eq!(
        our_rest, their_rest,
        "stderr differs after the notice: {what}"
    );
}

fn roles(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const SERVICE: &str = "DataPipelineDefaultRole";
const RESOURCE: &str = "DataPipelineDefaultResourceRole";

#[test]
fn nothing_exists_json() {
    check(
        "nothing exists",
        Account::default(),
        &[],
        &[],
        Expect::Success,
    );
}

#[test]
fn nothing_exists_text_and_table() {
    check(
        "text",
        Account::default(),
        &["--output", "text"],
        &[],
        Expect::Success,
    );
    check(
        "table",
        Account::default(),
        &["--output", "table"],
        &[],
        Expect::Success,
    );
}

#[test]
fn partly_present() {
    let service_only = Account {
        roles: roles(&[SERVICE]),
        ..Account::default()
    };
    check(
        "service role exists",
        service_only,
        &[],
        &[],
        Expect::Success,
    );
    let resource_only = Account {
        roles: roles(&[RESOURCE]),
        instance_profile: true,
        ..Account::default()
    };
    check(
        "resource role and profile exist",
        resource_only,
        &["--output", "table"],
        &[],
        Expect::Success,
    );
    let roles_no_profile = Account {
        roles: roles(&[SERVICE, RESOURCE]),
        ..Account::default()
    };
    check(
        "roles exist, profile missing",
        roles_no_profile,
        &[],
        &[],
        Expect::Success,
    );
}

#[test]
fn everything_present() {
    let all = Account {
        roles: roles(&[SERVICE, RESOURCE]),
        instance_profile: true,
        ..Account::default()
    };
    for output in ["json", "text", "table"] {
        check(
            "all present",
            all.clone(),
            &["--output", output],
            &[],
            Expect::Success,
        );
    }
}

#[test]
fn query_and_region() {
    check(
        "query",
        Account::default(),
        &["--query", "[].Role.RoleName", "--output", "text"],
        &[],
        Expect::Success,
    );
    // With an endpoint URL both sign for the caller's region, not IAM's home region.
    check(
        "region",
        Account::default(),
        &["--region", "eu-west-1"],
        &[],
        Expect::Success,
    );
}

#[test]
fn errors_end_the_command() {
    for (action, status, code) in [
        ("GetRole", 403, "AccessDenied"),
        ("CreateRole", 403, "AccessDenied"),
        ("AttachRolePolicy", 409, "LimitExceeded"),
        ("GetInstanceProfile", 403, "AccessDenied"),
        ("AddRoleToInstanceProfile", 400, "EntityAlreadyExists"),
    ] {
        let account = Account {
            failing: Some((action, status, code)),
            ..Account::default()
        };
        check(action, account, &[], &[], Expect::ServiceError);
    }
}

/// Without `--endpoint-url`, both send IAM requests to the configured IAM endpoint (`AWS_ENDPOINT_URL_IAM`),
/// signed for the caller's region.
#[test]
fn configured_iam_endpoint() {
    check(
        "AWS_ENDPOINT_URL_IAM",
        Account::default(),
        &["--region", "ap-southeast-2"],
        &[("AWS_ENDPOINT_URL_IAM", Some("fake"))],
        Expect::Success,
    );
}

#[test]
fn no_region_sends_nothing() {
    check(
        "no region",
        Account::default(),
        &[],
        &[("AWS_DEFAULT_REGION", None)],
        Expect::ConfigError,
    );
}
