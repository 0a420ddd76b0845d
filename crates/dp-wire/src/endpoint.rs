//! Where a Data Pipeline request goes: region validation, configured endpoints and the endpoint ruleset.
//!
//! The ruleset is the service's `endpoint-rule-set-1.json` written out as code (it has four branches), with the
//! partition table of `partitions.json`. Everything here is pure: it takes the already resolved inputs and returns a
//! URL or the ruleset's exact error string, so that a region that is not a host label is refused before any IO.

use crate::error::Error;

/// A partition: a group of regions sharing DNS suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The partition id (`aws`, `aws-cn`, …).
    pub id: &'static str,
    /// Region prefixes: a region matches `^<prefix>-\w+-\d+$` for one of them.
    pub region_prefixes: &'static [&'static str],
    /// Regions named explicitly that the pattern does not cover (the `*-global` pseudo regions).
    pub explicit_regions: &'static [&'static str],
    /// DNS suffix of the regular endpoints.
    pub dns_suffix: &'static str,
    /// DNS suffix of the dual-stack endpoints.
    pub dual_stack_dns_suffix: &'static str,
    /// Whether FIPS endpoints exist.
    pub supports_fips: bool,
    /// Whether dual-stack endpoints exist.
    pub supports_dual_stack: bool,
}

/// The partitions of botocore's `partitions.json`, in its order (the order decides pattern matches).
pub static PARTITIONS: &[Partition] = &[
    Partition {
        id: "aws",
        region_prefixes: &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        explicit_regions: &["aws-global"],
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-cn",
        region_prefixes: &["cn"],
        explicit_regions: &["aws-cn-global"],
        dns_suffix: "amazonaws.com.cn",
        dual_stack_dns_suffix: "api.amazonwebservices.com.cn",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-eusc",
        region_prefixes: &["eusc-de"],
        explicit_regions: &[],
        dns_suffix: "amazonaws.eu",
        dual_stack_dns_suffix: "api.amazonwebservices.eu",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-iso",
        region_prefixes: &["us-iso"],
        explicit_regions: &["aws-iso-global"],
        dns_suffix: "c2s.ic.gov",
        dual_stack_dns_suffix: "api.aws.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-iso-b",
        region_prefixes: &["us-isob"],
        explicit_regions: &["aws-iso-b-global"],
        dns_suffix: "sc2s.sgov.gov",
        dual_stack_dns_suffix: "api.aws.scloud",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-iso-e",
        region_prefixes: &["eu-isoe"],
        explicit_regions: &["aws-iso-e-global"],
        dns_suffix: "cloud.adc-e.uk",
        dual_stack_dns_suffix: "api.cloud-aws.adc-e.uk",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-iso-f",
        region_prefixes: &["us-isof"],
        explicit_regions: &["aws-iso-f-global"],
        dns_suffix: "csp.hci.ic.gov",
        dual_stack_dns_suffix: "api.aws.hci.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
    },
    Partition {
        id: "aws-us-gov",
        region_prefixes: &["us-gov"],
        explicit_regions: &["aws-us-gov-global"],
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
    },
];

impl Partition {
    fn matches_pattern(&self, region: &str) -> bool {
        self.region_prefixes.iter().any(|prefix| {
            let Some(rest) = region
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
            else {
                return false;
            };
            // `\w+-\d+`: a word without `-`, a dash, digits.
            let Some((word, number)) = rest.split_once('-') else {
                return false;
            };
            !word.is_empty()
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        })
    }
}

/// The partition of `region`: explicit region lists first, then the patterns, then `aws` (as `aws.partition`).
pub fn partition(region: &str) -> &'static Partition {
    PARTITIONS
        .iter()
        .find(|p| p.explicit_regions.contains(&region))
        .or_else(|| PARTITIONS.iter().find(|p| p.matches_pattern(region)))
        .unwrap_or(&PARTITIONS[0])
}

/// Whether `region` is a valid host label, as botocore checks it (`^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$`).
pub fn is_valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
        && !region.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses a region that is not a host label, with botocore's wording.
pub fn validate_region(region: &str) -> Result<(), Error> {
    if is_valid_region(region) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "Provided region_name '{region}' doesn't match a supported format."
        )))
    }
}

/// The parameters of the Data Pipeline endpoint ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointParams {
    /// `AWS::Region`.
    pub region: Option<String>,
    /// `AWS::UseFIPS`.
    pub use_fips: bool,
    /// `AWS::UseDualStack`.
    pub use_dual_stack: bool,
    /// `SDK::Endpoint`.
    pub endpoint: Option<String>,
}

/// Runs the Data Pipeline endpoint ruleset. Errors are the ruleset's exact strings.
pub fn resolve_endpoint(params: &EndpointParams) -> Result<String, String> {
    resolve_endpoint_in(params, partition)
}

/// [`resolve_endpoint`] with another partition lookup (every real partition supports FIPS and dual-stack, so the
/// ruleset's "does not support" branches are only reachable this way).
pub fn resolve_endpoint_in(
    params: &EndpointParams,
    partition: impl Fn(&str) -> &'static Partition,
) -> Result<String, String> {
    if let Some(endpoint) = &params.endpoint {
        if params.use_fips {
            return Err("Invalid Configuration: FIPS and custom endpoint are not supported".into());
        }
        if params.use_dual_stack {
            return Err(
                "Invalid Configuration: Dualstack and custom endpoint are not supported".into(),
            );
        }
        return Ok(endpoint.clone());
    }
    let Some(region) = &params.region else {
        return Err("Invalid Configuration: Missing Region".into());
    };
    let p = partition(region);
    match (params.use_fips, params.use_dual_stack) {
        (true, true) => {
            if p.supports_fips && p.supports_dual_stack {
                Ok(format!(
                    "https://datapipeline-fips.{region}.{}",
                    p.dual_stack_dns_suffix
                ))
            } else {
                Err("FIPS and DualStack are enabled, but this partition does not support one or both".into())
            }
        }
        (true, false) => {
            if p.supports_fips {
                Ok(format!(
                    "https://datapipeline-fips.{region}.{}",
                    p.dns_suffix
                ))
            } else {
                Err("FIPS is enabled but this partition does not support FIPS".into())
            }
        }
        (false, true) => {
            if p.supports_dual_stack {
                Ok(format!(
                    "https://datapipeline.{region}.{}",
                    p.dual_stack_dns_suffix
                ))
            } else {
                Err("DualStack is enabled but this partition does not support DualStack".into())
            }
        }
        (false, false) => Ok(format!("https://datapipeline.{region}.{}", p.dns_suffix)),
    }
}

/// The regions where Data Pipeline actually runs (AWS General Reference), for a helpful message on DNS failures.
pub const SERVICE_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-southeast-2",
    "eu-west-1",
    "us-east-1",
    "us-west-2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels() {
        for ok in ["us-east-1", "a", "x1", "1a", "A-b"] {
            assert!(is_valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "123",
            "evil.com/x",
            "a b",
            &"a".repeat(64),
            "us_east_1",
        ] {
            assert!(!is_valid_region(bad), "{bad}");
        }
    }
}
