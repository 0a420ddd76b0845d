//! The configured-endpoint cases of the AWS CLI (`tests/functional/configured_endpoint_urls/profile-tests.json`,
//! Apache-2.0), ported from S3 to Data Pipeline: `AWS_ENDPOINT_URL_S3` becomes `AWS_ENDPOINT_URL_DATA_PIPELINE`, the
//! `s3` key of a `services` section becomes `data_pipeline`, and DynamoDB stays as the other service whose settings
//! must be ignored. 37 of the 39 cases apply; the two whose client configuration says
//! `ignore_configured_endpoint_urls` have no counterpart in dp's settings (the CLI has no such option).

use dp_wire::{Client, Environment, Settings};

use crate::support::temp_dir;

const CONFIG: &str = "\
[default]
aws_access_key_id = 123
aws_secret_access_key = 456
region = fake-region-10

[profile service_localhost_global_only]
aws_access_key_id = 123
aws_secret_access_key = 456
region = fake-region-10
endpoint_url = http://localhost:1234

[profile service_global_only]
aws_access_key_id = 123
aws_secret_access_key = 456
region = fake-region-10
endpoint_url = https://global.endpoint.aws

[profile service_specific_s3]
aws_access_key_id = 123
aws_secret_access_key = 456
services = service_specific_s3
region = fake-region-10

[profile global_and_service_specific_s3]
aws_access_key_id = 123
aws_secret_access_key = 456
endpoint_url = https://global.endpoint.aws
services = service_specific_s3
region = fake-region-10

[profile ignore_global_and_service_specific_s3]
aws_access_key_id = 123
aws_secret_access_key = 456
endpoint_url = https://global.endpoint.aws
services = service_specific_s3
region = fake-region-10
ignore_configured_endpoint_urls = true

[profile service_specific_dynamodb_and_s3]
aws_access_key_id = 123
aws_secret_access_key = 456
services = service_specific_dynamodb_and_s3
region = fake-region-10

[services service_specific_s3]
data_pipeline =
  endpoint_url = https://dp.endpoint.aws

[services service_specific_dynamodb_and_s3]
dynamodb =
  endpoint_url = https://dynamodb.endpoint.aws
data_pipeline =
  endpoint_url = https://dp.endpoint.aws
";

fn environment(name: &str) -> Vec<(&'static str, &'static str)> {
    match name {
        "default" => vec![],
        "global_only" => vec![(
            "AWS_ENDPOINT_URL",
            "https://global-from-envvar.endpoint.aws",
        )],
        "service_specific_s3" => vec![(
            "AWS_ENDPOINT_URL_DATA_PIPELINE",
            "https://dp-from-envvar.endpoint.aws",
        )],
        "global_and_service_specific_s3" => vec![
            (
                "AWS_ENDPOINT_URL",
                "https://global-from-envvar.endpoint.aws",
            ),
            (
                "AWS_ENDPOINT_URL_DATA_PIPELINE",
                "https://dp-from-envvar.endpoint.aws",
            ),
        ],
        "ignore_global_and_service_specific_s3" => vec![
            (
                "AWS_ENDPOINT_URL",
                "https://global-from-envvar.endpoint.aws",
            ),
            (
                "AWS_ENDPOINT_URL_DATA_PIPELINE",
                "https://dp-from-envvar.endpoint.aws",
            ),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ],
        "service_specific_dynamodb_and_s3" => vec![
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                "https://dynamodb-from-envvar.endpoint.aws",
            ),
            (
                "AWS_ENDPOINT_URL_DATA_PIPELINE",
                "https://dp-from-envvar.endpoint.aws",
            ),
        ],
        other => panic!("no environment {other}"),
    }
}

const CLIENT: &str = "https://client-config.endpoint.aws";
const RULESET: &str = "https://datapipeline.fake-region-10.amazonaws.com";

/// (profile, `--endpoint-url` given, environment, expected endpoint).
const CASES: &[(&str, bool, &str, &str)] = &[
    (
        "service_global_only",
        false,
        "default",
        "https://global.endpoint.aws",
    ),
    (
        "service_specific_s3",
        false,
        "default",
        "https://dp.endpoint.aws",
    ),
    (
        "global_and_service_specific_s3",
        false,
        "default",
        "https://dp.endpoint.aws",
    ),
    (
        "default",
        false,
        "global_only",
        "https://global-from-envvar.endpoint.aws",
    ),
    (
        "service_global_only",
        false,
        "global_only",
        "https://global-from-envvar.endpoint.aws",
    ),
    (
        "service_specific_s3",
        false,
        "global_only",
        "https://global-from-envvar.endpoint.aws",
    ),
    (
        "global_and_service_specific_s3",
        false,
        "global_only",
        "https://global-from-envvar.endpoint.aws",
    ),
    (
        "default",
        false,
        "service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "service_global_only",
        false,
        "service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "service_specific_s3",
        false,
        "service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "global_and_service_specific_s3",
        false,
        "service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "default",
        false,
        "global_and_service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "service_global_only",
        false,
        "global_and_service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "service_specific_s3",
        false,
        "global_and_service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    (
        "global_and_service_specific_s3",
        false,
        "global_and_service_specific_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
    ("default", true, "default", CLIENT),
    ("service_global_only", true, "default", CLIENT),
    ("service_specific_s3", true, "default", CLIENT),
    ("global_and_service_specific_s3", true, "default", CLIENT),
    ("default", true, "global_only", CLIENT),
    ("service_global_only", true, "global_only", CLIENT),
    ("service_specific_s3", true, "global_only", CLIENT),
    (
        "global_and_service_specific_s3",
        true,
        "global_only",
        CLIENT,
    ),
    ("default", true, "service_specific_s3", CLIENT),
    ("service_global_only", true, "service_specific_s3", CLIENT),
    ("service_specific_s3", true, "service_specific_s3", CLIENT),
    (
        "global_and_service_specific_s3",
        true,
        "service_specific_s3",
        CLIENT,
    ),
    ("default", true, "global_and_service_specific_s3", CLIENT),
    (
        "service_global_only",
        true,
        "global_and_service_specific_s3",
        CLIENT,
    ),
    (
        "service_specific_s3",
        true,
        "global_and_service_specific_s3",
        CLIENT,
    ),
    (
        "global_and_service_specific_s3",
        true,
        "global_and_service_specific_s3",
        CLIENT,
    ),
    (
        "global_and_service_specific_s3",
        false,
        "ignore_global_and_service_specific_s3",
        RULESET,
    ),
    (
        "ignore_global_and_service_specific_s3",
        false,
        "global_and_service_specific_s3",
        RULESET,
    ),
    (
        "ignore_global_and_service_specific_s3",
        true,
        "global_and_service_specific_s3",
        CLIENT,
    ),
    (
        "global_and_service_specific_s3",
        true,
        "ignore_global_and_service_specific_s3",
        CLIENT,
    ),
    // The DynamoDB cases, seen from Data Pipeline: the other service's key and variable are ignored.
    (
        "service_specific_dynamodb_and_s3",
        false,
        "default",
        "https://dp.endpoint.aws",
    ),
    (
        "default",
        false,
        "service_specific_dynamodb_and_s3",
        "https://dp-from-envvar.endpoint.aws",
    ),
];

#[tokio::test]
async fn ported_configured_endpoint_cases() {
    assert_eq!(CASES.len(), 37);
    let home = temp_dir("configured-endpoints");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/config"), CONFIG).unwrap();
    for (i, (profile, client_endpoint, env_name, expected)) in CASES.iter().enumerate() {
        let mut vars = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        ];
        vars.extend(
            environment(env_name)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let settings = Settings {
            profile: Some(profile.to_string()),
            endpoint_url: client_endpoint.then(|| CLIENT.to_string()),
            ..Default::default()
        };
        let client = Client::with_environment(settings, Environment::from_vars(vars)).unwrap();
        let url = client
            .endpoint_url()
            .await
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(
            url.trim_end_matches('/'),
            *expected,
            "case {i}: profile {profile}, env {env_name}"
        );
    }
}
