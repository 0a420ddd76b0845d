//! `create-default-roles`' sequence against a scripted IAM (the wire and the reference are compared in the
//! end-to-end package): which actions it sends in which state, and the managed policy ARN per partition.

use dp_cli::default_roles::{Iam, ensure};
use dp_wire::iam::{Element, parse_xml};

/// An IAM that has the given roles and answers everything else successfully, recording each call.
struct Scripted {
    existing: Vec<&'static str>,
    calls: Vec<String>,
}

impl Iam for Scripted {
    fn call(
        &mut self,
        action: &'static str,
        params: &[(&'static str, &str)],
    ) -> Result<Element, dp_wire::Error> {
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.calls.push(format!("{action} {}", rendered.join(" ")));
        let name = params.first().map(|(_, v)| *v).unwrap_or_default();
        if action == "GetRole" && !self.existing.contains(&name) {
            return Err(no_such_entity());
        }
        let xml = match action {
            "GetPolicy" => {
                "<R><Policy><DefaultVersionId>v1</DefaultVersionId></Policy></R>".to_string()
            }
            "GetPolicyVersion" => {
                "<R><PolicyVersion><Document>%7B%7D</Document></PolicyVersion></R>".to_string()
            }
            "CreateRole" => format!("<R><Role><RoleName>{name}</RoleName></Role></R>"),
            _ => "<R/>".to_string(),
        };
        Ok(parse_xml(xml.as_bytes()).unwrap())
    }
}

/// A NoSuchEntity error as dp-wire reports it, obtained through a real call to a loopback IAM answer.
fn no_such_entity() -> dp_wire::Error {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let body = "<ErrorResponse><Error><Code>NoSuchEntity</Code><Message>gone</Message></Error></ErrorResponse>";
        let _ = write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let env = dp_wire::Environment::from_vars([
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]);
    let settings = dp_wire::Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url),
        ..dp_wire::Settings::default()
    };
    let client = dp_wire::Client::with_environment(settings, env).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime
        .block_on(client.call_iam("GetRole", &[("RoleName", "x")]))
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(error.service_code(), Some("NoSuchEntity"), "{error}");
    error
}

fn check(partition: &str, existing: Vec<&'static str>, expected: &[&str]) {
    let mut iam = Scripted {
        existing,
        calls: Vec::new(),
    };
    ensure(&mut iam, partition).unwrap();
    assert_eq!(iam.calls, expected);
}

#[test]
fn sequence_and_partition_arns() {
    check(
        "aws-cn",
        vec!["DataPipelineDefaultResourceRole"],
        &[
            "GetRole RoleName=DataPipelineDefaultRole",
            &format!(
                "CreateRole RoleName=DataPipelineDefaultRole AssumeRolePolicyDocument={}",
                dp_cli::default_roles::SERVICE_ROLE_TRUST_POLICY
            ),
            "AttachRolePolicy PolicyArn=arn:aws-cn:iam::aws:policy/service-role/AWSDataPipelineRole RoleName=DataPipelineDefaultRole",
            "GetPolicy PolicyArn=arn:aws-cn:iam::aws:policy/service-role/AWSDataPipelineRole",
            "GetPolicyVersion PolicyArn=arn:aws-cn:iam::aws:policy/service-role/AWSDataPipelineRole VersionId=v1",
            "GetRole RoleName=DataPipelineDefaultResourceRole",
            "GetInstanceProfile InstanceProfileName=DataPipelineDefaultResourceRole",
        ],
    );
}
