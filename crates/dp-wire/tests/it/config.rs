//! Configuration: credentials, region, profiles and configured endpoints, observed through what the loopback server
//! receives (or the error before any request).

use dp_wire::{Client, Environment, Settings};

use crate::server::{Action, Server};
use crate::support::{SECRET_KEY, env_with, op, report_task_progress, settings, temp_dir};

/// An environment whose HOME holds `config` and `credentials` files, plus `extra` variables (no key variables).
fn env_with_files(config: &str, credentials: &str, extra: &[(&str, &str)]) -> Environment {
    let home = temp_dir("profiles");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/config"), config).unwrap();
    std::fs::write(home.join(".aws/credentials"), credentials).unwrap();
    let mut vars = vec![
        ("HOME".to_string(), home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Environment::from_vars(vars)
}

async fn error_of(settings: Settings, env: Environment) -> dp_wire::Error {
    Client::with_environment(settings, env)
        .unwrap()
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn configuration_errors_happen_before_any_request() {
    let server = Server::start(vec![]).await;
    let no_keys = env_with_files("", "", &[]);
    let error = error_of(settings(&server.url), no_keys.clone()).await;
    assert_eq!(
        error.to_string(),
        "Unable to locate credentials. You can configure credentials by running \"aws configure\"."
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Credentials);

    let error = error_of(
        Settings {
            region: None,
            ..settings(&server.url)
        },
        env_with(&[]),
    )
    .await;
    assert_eq!(
        error.to_string(),
        "You must specify a region. You can also configure your region by running \"aws configure\"."
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Region);

    let error = error_of(
        settings(&server.url),
        env_with(&[("AWS_PROFILE", "nosuch")]),
    )
    .await;
    assert_eq!(
        error.to_string(),
        "The config profile (nosuch) could not be found"
    );
    let error = error_of(
        Settings {
            profile: Some("nosuch".into()),
            ..settings(&server.url)
        },
        env_with(&[]),
    )
    .await;
    assert_eq!(
        error.to_string(),
        "The config profile (nosuch) could not be found"
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Config);

    let error = error_of(
        Settings {
            region: Some("evil.com/x".into()),
            endpoint_url: None,
            ..Default::default()
        },
        env_with(&[]),
    )
    .await;
    assert_eq!(
        error.to_string(),
        "Provided region_name 'evil.com/x' doesn't match a supported format."
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Config);

    let error = error_of(
        Settings {
            region: Some("us-east-1".into()),
            ..Default::default()
        },
        env_with(&[("AWS_ENDPOINT_URL", "ftp://x")]),
    )
    .await;
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Config, "{error}");

    let error = error_of(
        settings(&server.url),
        env_with(&[("AWS_SECRET_ACCESS_KEY", "")]),
    )
    .await;
    assert_eq!(
        error.to_string(),
        "Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY"
    );
    assert_eq!(server.count(), 0, "nothing was sent");
}

#[tokio::test]
async fn profiles_give_region_endpoint_and_keys() {
    let server = Server::start(vec![]).await;
    let config = format!(
        "[default]\nregion = eu-west-1\noutput = text\n\n[profile dev]\nregion = us-west-2\nservices = local\noutput = table\n\
         [services local]\ndata_pipeline =\n  endpoint_url = {}\n",
        server.url
    );
    let credentials = "[dev]\naws_access_key_id = AKIDPROFILEKEY\naws_secret_access_key = profilesecret\naws_session_token = tok\n";
    // The environment's keys are ignored when --profile is given explicitly.
    let env = env_with_files(
        &config,
        credentials,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ],
    );
    let client = Client::with_environment(
        Settings {
            profile: Some("dev".into()),
            ..Default::default()
        },
        env.clone(),
    )
    .unwrap();
    assert_eq!(client.profile_setting("output").as_deref(), Some("table"));
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let request = &server.recorded()[0];
    let auth = request.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROFILEKEY/"),
        "{auth}"
    );
    assert!(
        auth.contains("/us-west-2/datapipeline/aws4_request"),
        "{auth}"
    );
    assert!(
        auth.contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
        ),
        "{auth}"
    );
    assert_eq!(request.header("x-amz-security-token"), Some("tok"));

    // AWS_PROFILE selects the profile without disabling environment keys.
    let client = Client::with_environment(Settings::default(), {
        let mut vars = vec![("AWS_PROFILE", "dev")];
        vars.push(("AWS_ACCESS_KEY_ID", "AKIDENVKEY"));
        extend(&env, &vars)
    })
    .unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let auth = server.recorded()[1]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDENVKEY/"),
        "{auth}"
    );

    let client =
        Client::with_environment(Settings::default(), env_with_files(&config, "", &[])).unwrap();
    assert_eq!(client.profile_setting("output").as_deref(), Some("text"));
    assert_eq!(client.profile_setting("nothing"), None);
}

/// `env` plus variables (re-reading HOME from it).
fn extend(env: &Environment, vars: &[(&str, &str)]) -> Environment {
    let mut all = vec![
        ("HOME".to_string(), env.get("HOME").unwrap().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    if let Some(s) = env.get("AWS_SECRET_ACCESS_KEY") {
        all.push(("AWS_SECRET_ACCESS_KEY".into(), s.into()));
    }
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Environment::from_vars(all)
}

#[tokio::test]
async fn endpoint_precedence() {
    let explicit = Server::start(vec![]).await;
    let specific = Server::start(vec![]).await;
    let global = Server::start(vec![]).await;
    let services = Server::start(vec![]).await;
    let profile = Server::start(vec![]).await;
    let config = format!(
        "[default]\nregion = us-east-1\nendpoint_url = {}\nservices = s\n[services s]\ndata_pipeline =\n  endpoint_url = {}\n",
        profile.url, services.url
    );
    let creds = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = x\n";
    let specific_url = specific.url.clone();
    let global_url = global.url.clone();
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, &'a Server);
    let cases: Vec<Case<'_>> = vec![
        (
            Some(explicit.url.as_str()),
            vec![("AWS_ENDPOINT_URL_DATA_PIPELINE", specific_url.as_str())],
            &explicit,
        ),
        (
            None,
            vec![
                ("AWS_ENDPOINT_URL_DATA_PIPELINE", specific_url.as_str()),
                ("AWS_ENDPOINT_URL", global_url.as_str()),
            ],
            &specific,
        ),
        (
            None,
            vec![("AWS_ENDPOINT_URL", global_url.as_str())],
            &global,
        ),
        (None, vec![], &services),
    ];
    for (endpoint_url, vars, expected) in cases {
        let before = expected.count();
        let settings = Settings {
            endpoint_url: endpoint_url.map(str::to_string),
            ..Default::default()
        };
        Client::with_environment(settings, env_with_files(&config, creds, &vars))
            .unwrap()
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap();
        assert_eq!(expected.count(), before + 1, "{endpoint_url:?} {vars:?}");
    }
    // Without a services section, the profile's endpoint_url.
    let config = format!(
        "[default]\nregion = us-east-1\nendpoint_url = {}\n",
        profile.url
    );
    Client::with_environment(Settings::default(), env_with_files(&config, creds, &[]))
        .unwrap()
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    assert_eq!(profile.count(), 1);
}

#[tokio::test]
async fn no_sign_request_sends_no_credentials() {
    let server = Server::start(vec![Action::ok("{}")]).await;
    let settings = Settings {
        no_sign_request: true,
        ..settings(&server.url)
    };
    Client::with_environment(settings, env_with_files("", "", &[]))
        .unwrap()
        .call_json(op("ListPipelines"), &serde_json::json!({}))
        .await
        .unwrap();
    let request = &server.recorded()[0];
    assert!(request.header("authorization").is_none());
    assert!(request.header("x-amz-date").is_none());
    // Unsigned requests to an explicit endpoint need no region.
    let unsigned = Settings {
        no_sign_request: true,
        region: None,
        ..crate::support::settings(&server.url)
    };
    Client::with_environment(unsigned, env_with_files("", "", &[]))
        .unwrap()
        .call_json(op("ListPipelines"), &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn region_order() {
    let server = Server::start(vec![]).await;
    let config = "[default]\nregion = ap-northeast-1\n";
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            Some("eu-west-1"),
            vec![("AWS_REGION", "us-west-2")],
            "eu-west-1",
        ),
        (
            None,
            vec![
                ("AWS_REGION", "us-west-2"),
                ("AWS_DEFAULT_REGION", "ap-southeast-2"),
            ],
            "us-west-2",
        ),
        (
            None,
            vec![("AWS_DEFAULT_REGION", "ap-southeast-2")],
            "ap-southeast-2",
        ),
        (None, vec![], "ap-northeast-1"),
    ];
    for (i, (region, vars, expected)) in cases.into_iter().enumerate() {
        let mut vars = vars;
        vars.push(("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"));
        vars.push(("AWS_SECRET_ACCESS_KEY", SECRET_KEY));
        let settings = Settings {
            region: region.map(str::to_string),
            endpoint_url: Some(server.url.clone()),
            ..Default::default()
        };
        Client::with_environment(settings, env_with_files(config, "", &vars))
            .unwrap()
            .call_json(op("ReportTaskProgress"), &report_task_progress())
            .await
            .unwrap();
        let auth = server.recorded()[i]
            .header("authorization")
            .unwrap()
            .to_string();
        assert!(
            auth.contains(&format!("/{expected}/datapipeline/")),
            "case {i}: {auth}"
        );
    }
}

#[tokio::test]
async fn credential_process_through_aws_config() {
    let server = Server::start(vec![]).await;
    let dir = temp_dir("process");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESSKEY\", \"SecretAccessKey\": \"processsecret\", \
         \"SessionToken\": \"processtoken\"}'\n",
    )
    .unwrap();
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    let config = format!(
        "[profile proc]\nregion = us-east-1\ncredential_process = {}\n",
        script.display()
    );
    let settings = Settings {
        profile: Some("proc".into()),
        endpoint_url: Some(server.url.clone()),
        ..Default::default()
    };
    let client = Client::with_environment(settings, env_with_files(&config, "", &[])).unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    for request in server.recorded() {
        let auth = request.header("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROCESSKEY/"),
            "{auth}"
        );
        assert_eq!(request.header("x-amz-security-token"), Some("processtoken"));
    }

    // A failing process is a credentials error (253) naming the cause.
    let config = "[profile proc]\nregion = us-east-1\ncredential_process = /nonexistent/dp-creds\n";
    let settings = Settings {
        profile: Some("proc".into()),
        endpoint_url: Some(server.url.clone()),
        ..Default::default()
    };
    let error = error_of(settings, env_with_files(config, "", &[])).await;
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Credentials, "{error}");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn instance_metadata_v2_on_a_loopback_endpoint() {
    let expiration = dp_model::timestamp::format_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
    ) + "Z";
    let credentials = format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"AKIDIMDSKEY","SecretAccessKey":"imdssecret","Token":"imdstoken","Expiration":"{expiration}"}}"#
    );
    let imds = Server::start_with(std::sync::Arc::new(
        move |request: &crate::server::Recorded| match (
            request.method.as_str(),
            request.path.as_str(),
        ) {
            ("PUT", "/latest/api/token") => Action::ok("imds-session-token")
                .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
            (_, path)
                if request.header("x-aws-ec2-metadata-token") != Some("imds-session-token") =>
            {
                Action::status(401, &format!("no token for {path}"))
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") => Action::ok("role-a"),
            ("GET", "/latest/meta-data/iam/security-credentials/role-a") => {
                Action::ok(&credentials)
            }
            _ => Action::status(404, "not found"),
        },
    ))
    .await;
    let service = Server::start(vec![]).await;
    let env = env_with_files("", "", &[]);
    let env = Environment::from_vars([
        ("HOME".to_string(), env.get("HOME").unwrap().to_string()),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(),
            imds.url.clone(),
        ),
    ]);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    let client = Client::with_environment(settings(&service.url), env)
        .unwrap()
        .with_log_sink(std::sync::Arc::new(move |line: &str| {
            sink.lock().unwrap().push_str(line)
        }));
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let log = log.lock().unwrap().clone();
    for secret in ["imdssecret", "imdstoken", "imds-session-token"] {
        assert!(!log.contains(secret), "the debug log shows {secret}: {log}");
    }
    assert!(log.contains("Ec2InstanceMetadata"), "{log}");
    let auth = service.recorded()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDIMDSKEY/"),
        "{auth}"
    );
    assert_eq!(
        service.recorded()[0].header("x-amz-security-token"),
        Some("imdstoken")
    );
    assert_eq!(
        imds.recorded()[0].method,
        "PUT",
        "IMDSv2 starts with a token"
    );
}

#[tokio::test]
async fn fips_dual_stack_and_ignored_configured_endpoints() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let config = "[default]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:7\n\
                  [profile fips]\nregion = us-gov-west-1\nuse_fips_endpoint = true\n";
    let cases: &[Case<'_>] = &[
        ("default", &[], "http://127.0.0.1:7/"),
        (
            "default",
            &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")],
            "https://datapipeline.us-east-1.amazonaws.com/",
        ),
        (
            "fips",
            &[],
            "https://datapipeline-fips.us-gov-west-1.amazonaws.com/",
        ),
        (
            "fips",
            &[("AWS_USE_DUALSTACK_ENDPOINT", "true")],
            "https://datapipeline-fips.us-gov-west-1.api.aws/",
        ),
        // The environment variable wins over the profile key.
        (
            "fips",
            &[("AWS_USE_FIPS_ENDPOINT", "false")],
            "https://datapipeline.us-gov-west-1.amazonaws.com/",
        ),
        (
            "default",
            &[
                ("AWS_USE_FIPS_ENDPOINT", "true"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ],
            "https://datapipeline-fips.us-east-1.amazonaws.com/",
        ),
        // A configured endpoint turns FIPS off instead of failing, as botocore does.
        (
            "default",
            &[("AWS_USE_FIPS_ENDPOINT", "true")],
            "http://127.0.0.1:7/",
        ),
        (
            "default",
            &[
                ("AWS_REGION", "cn-north-1"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ],
            "https://datapipeline.cn-north-1.amazonaws.com.cn/",
        ),
    ];
    for (profile, vars, expected) in cases {
        let mut vars = vars.to_vec();
        vars.push(("AWS_PROFILE", profile));
        let client =
            Client::with_environment(Settings::default(), env_with_files(config, "", &vars))
                .unwrap();
        assert_eq!(
            client.endpoint_url().await.unwrap(),
            *expected,
            "{profile} {vars:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_instance_metadata_means_no_credentials() {
    let service = Server::start(vec![]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = temp_dir("no-imds");
    let env = Environment::from_vars([
        ("HOME".to_string(), home.display().to_string()),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
    ]);
    let error = error_of(settings(&service.url), env).await;
    assert_eq!(
        error.to_string(),
        "Unable to locate credentials. You can configure credentials by running \"aws configure\"."
    );
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Credentials);
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn container_credentials_with_a_token() {
    let expiration = dp_model::timestamp::format_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
    ) + "Z";
    let body = format!(
        r#"{{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"containersecret","Token":"containertoken","Expiration":"{expiration}"}}"#
    );
    let agent = Server::start(vec![Action::status(500, "busy"), Action::ok(&body)]).await;
    let service = Server::start(vec![]).await;
    let home = temp_dir("container");
    let token_file = home.join("token");
    std::fs::write(&token_file, "token-from-file\n").unwrap();
    let env = Environment::from_vars([
        ("HOME".to_string(), home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
            format!("{}/v1/credentials", agent.url),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
            "ignored-when-the-file-is-set".to_string(),
        ),
    ]);
    let client = Client::with_environment(settings(&service.url), env).unwrap();
    client
        .call_json(op("ReportTaskProgress"), &report_task_progress())
        .await
        .unwrap();
    let agent_requests = agent.recorded();
    assert_eq!(agent_requests.len(), 2, "a 500 from the agent is retried");
    assert_eq!(agent_requests[1].method, "GET");
    assert_eq!(agent_requests[1].path, "/v1/credentials");
    assert_eq!(
        agent_requests[1].header("authorization"),
        Some("token-from-file")
    );
    let auth = service.recorded()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDCONTAINER/"),
        "{auth}"
    );
    assert_eq!(
        service.recorded()[0].header("x-amz-security-token"),
        Some("containertoken")
    );
}

#[tokio::test]
async fn container_full_uris_outside_the_allow_list_are_refused() {
    let service = Server::start(vec![]).await;
    let home = temp_dir("container-refused");
    // A TEST-NET address: refused by the allow-list before any connection is attempted.
    let env = Environment::from_vars([
        ("HOME", home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://192.0.2.10/creds".to_string(),
        ),
    ]);
    let error = error_of(settings(&service.url), env).await;
    assert_eq!(error.kind(), &dp_wire::ErrorKind::Credentials);
    assert!(
        error.to_string().contains("Unsupported host '192.0.2.10'"),
        "{error}"
    );
    assert_eq!(service.count(), 0);
}
