//! The Data Pipeline endpoint ruleset, every branch, and the partition table.

use dp_wire::endpoint::{EndpointParams, partition, resolve_endpoint};

fn check(
    region: Option<&str>,
    fips: bool,
    dual_stack: bool,
    endpoint: Option<&str>,
    expected: Result<&str, &str>,
) {
    let params = EndpointParams {
        region: region.map(str::to_string),
        use_fips: fips,
        use_dual_stack: dual_stack,
        endpoint: endpoint.map(str::to_string),
    };
    let got = resolve_endpoint(&params);
    assert_eq!(
        got.as_deref().map_err(String::as_str),
        expected,
        "{params:?}"
    );
}

#[test]
fn ruleset() {
    // Regional endpoints of the five regions where the service runs.
    for region in [
        "ap-northeast-1",
        "ap-southeast-2",
        "eu-west-1",
        "us-east-1",
        "us-west-2",
    ] {
        let url = format!("https://datapipeline.{region}.amazonaws.com");
        check(Some(region), false, false, None, Ok(&url));
    }
    // FIPS × dual-stack in each kind of partition.
    check(
        Some("us-east-1"),
        true,
        true,
        None,
        Ok("https://datapipeline-fips.us-east-1.api.aws"),
    );
    check(
        Some("us-east-1"),
        true,
        false,
        None,
        Ok("https://datapipeline-fips.us-east-1.amazonaws.com"),
    );
    check(
        Some("us-east-1"),
        false,
        true,
        None,
        Ok("https://datapipeline.us-east-1.api.aws"),
    );
    check(
        Some("cn-north-1"),
        true,
        true,
        None,
        Ok("https://datapipeline-fips.cn-north-1.api.amazonwebservices.com.cn"),
    );
    check(
        Some("cn-north-1"),
        true,
        false,
        None,
        Ok("https://datapipeline-fips.cn-north-1.amazonaws.com.cn"),
    );
    check(
        Some("cn-north-1"),
        false,
        true,
        None,
        Ok("https://datapipeline.cn-north-1.api.amazonwebservices.com.cn"),
    );
    check(
        Some("cn-north-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.cn-north-1.amazonaws.com.cn"),
    );
    check(
        Some("us-gov-east-1"),
        true,
        true,
        None,
        Ok("https://datapipeline-fips.us-gov-east-1.api.aws"),
    );
    check(
        Some("us-gov-west-1"),
        true,
        false,
        None,
        Ok("https://datapipeline-fips.us-gov-west-1.amazonaws.com"),
    );
    check(
        Some("us-gov-east-1"),
        false,
        true,
        None,
        Ok("https://datapipeline.us-gov-east-1.api.aws"),
    );
    check(
        Some("us-gov-east-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.us-gov-east-1.amazonaws.com"),
    );
    check(
        Some("us-iso-east-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.us-iso-east-1.c2s.ic.gov"),
    );
    check(
        Some("us-iso-east-1"),
        true,
        false,
        None,
        Ok("https://datapipeline-fips.us-iso-east-1.c2s.ic.gov"),
    );
    check(
        Some("us-isob-east-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.us-isob-east-1.sc2s.sgov.gov"),
    );
    check(
        Some("us-isob-east-1"),
        true,
        false,
        None,
        Ok("https://datapipeline-fips.us-isob-east-1.sc2s.sgov.gov"),
    );
    check(
        Some("eu-isoe-west-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.eu-isoe-west-1.cloud.adc-e.uk"),
    );
    check(
        Some("us-isof-south-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.us-isof-south-1.csp.hci.ic.gov"),
    );
    check(
        Some("eusc-de-east-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.eusc-de-east-1.amazonaws.eu"),
    );
    check(
        Some("eu-central-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.eu-central-1.amazonaws.com"),
    );
    // Unknown regions fall back to the aws partition.
    check(
        Some("mars-1"),
        false,
        false,
        None,
        Ok("https://datapipeline.mars-1.amazonaws.com"),
    );
    // Custom endpoints, with and without a region, and the configuration errors.
    check(
        Some("us-east-1"),
        false,
        false,
        Some("https://example.com"),
        Ok("https://example.com"),
    );
    check(
        None,
        false,
        false,
        Some("https://example.com"),
        Ok("https://example.com"),
    );
    check(
        Some("us-east-1"),
        true,
        false,
        Some("https://example.com"),
        Err("Invalid Configuration: FIPS and custom endpoint are not supported"),
    );
    check(
        Some("us-east-1"),
        false,
        true,
        Some("https://example.com"),
        Err("Invalid Configuration: Dualstack and custom endpoint are not supported"),
    );
    check(
        None,
        false,
        false,
        None,
        Err("Invalid Configuration: Missing Region"),
    );
}

#[test]
fn partitions() {
    let cases = [
        ("us-east-1", "aws"),
        ("aws-global", "aws"),
        ("cn-northwest-1", "aws-cn"),
        ("aws-cn-global", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-west-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-east-1", "aws-iso-f"),
        ("eusc-de-east-1", "aws-eusc"),
        ("xx-east-1", "aws"),
        ("us-east-1a", "aws"),
    ];
    for (region, id) in cases {
        assert_eq!(partition(region).id, id, "{region}");
    }
}

#[test]
fn partitions_without_fips_or_dual_stack() {
    use dp_wire::endpoint::{Partition, resolve_endpoint_in};
    static NEITHER: Partition = Partition {
        id: "test",
        region_prefixes: &["zz"],
        explicit_regions: &[],
        dns_suffix: "example",
        dual_stack_dns_suffix: "dual.example",
        supports_fips: false,
        supports_dual_stack: false,
    };
    static FIPS_ONLY: Partition = Partition {
        supports_fips: true,
        ..NEITHER
    };
    let params = |fips, dual_stack| EndpointParams {
        region: Some("zz-east-1".into()),
        use_fips: fips,
        use_dual_stack: dual_stack,
        endpoint: None,
    };
    let cases: [(&'static Partition, bool, bool, Result<&str, &str>); 6] = [
        (
            &NEITHER,
            true,
            true,
            Err("FIPS and DualStack are enabled, but this partition does not support one or both"),
        ),
        (
            &FIPS_ONLY,
            true,
            true,
            Err("FIPS and DualStack are enabled, but this partition does not support one or both"),
        ),
        (
            &NEITHER,
            true,
            false,
            Err("FIPS is enabled but this partition does not support FIPS"),
        ),
        (
            &NEITHER,
            false,
            true,
            Err("DualStack is enabled but this partition does not support DualStack"),
        ),
        (
            &NEITHER,
            false,
            false,
            Ok("https://datapipeline.zz-east-1.example"),
        ),
        (
            &FIPS_ONLY,
            true,
            false,
            Ok("https://datapipeline-fips.zz-east-1.example"),
        ),
    ];
    for (partition, fips, dual_stack, expected) in cases {
        let got = resolve_endpoint_in(&params(fips, dual_stack), |_| partition);
        assert_eq!(
            got.as_deref().map_err(String::as_str),
            expected,
            "{} fips={fips} dual_stack={dual_stack}",
            partition.id
        );
    }
}

/// Differential: dp's ruleset against the resolver generated into aws-sdk-datapipeline (the same ruleset, with the
/// SDK's partition data), over every region kind × FIPS × dual-stack × custom endpoint. Covers the 25 cases the SDK
/// generates from `endpoint-tests-1.json` and more.
#[tokio::test]
async fn agrees_with_aws_sdk_datapipeline() {
    use aws_sdk_datapipeline::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let regions = [
        None,
        Some("ap-northeast-1"),
        Some("ap-southeast-2"),
        Some("eu-west-1"),
        Some("us-east-1"),
        Some("us-west-2"),
        Some("eu-central-1"),
        Some("cn-north-1"),
        Some("cn-northwest-1"),
        Some("us-gov-east-1"),
        Some("us-gov-west-1"),
        Some("us-iso-east-1"),
        Some("us-isob-east-1"),
        Some("eu-isoe-west-1"),
        Some("us-isof-south-1"),
        Some("eusc-de-east-1"),
        Some("aws-global"),
        Some("aws-cn-global"),
        Some("aws-us-gov-global"),
        Some("mars-1"),
        Some("us-east-1a"),
        Some("xx-east-1"),
    ];
    let resolver = DefaultResolver::new();
    let mut compared = 0;
    for region in regions {
        for use_fips in [false, true] {
            for use_dual_stack in [false, true] {
                for endpoint in [None, Some("https://example.com")] {
                    let ours = resolve_endpoint(&EndpointParams {
                        region: region.map(str::to_string),
                        use_fips,
                        use_dual_stack,
                        endpoint: endpoint.map(str::to_string),
                    });
                    let params = Params::builder()
                        .set_region(region.map(str::to_string))
                        .use_fips(use_fips)
                        .use_dual_stack(use_dual_stack)
                        .set_endpoint(endpoint.map(str::to_string))
                        .build()
                        .unwrap();
                    let theirs = resolver
                        .resolve_endpoint(&params)
                        .await
                        .map(|e| e.url().to_string())
                        .map_err(|e| e.to_string());
                    assert_eq!(
                        ours, theirs,
                        "{region:?} fips={use_fips} dual_stack={use_dual_stack} endpoint={endpoint:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 176);
}
