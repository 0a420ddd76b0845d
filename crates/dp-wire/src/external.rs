//! Credential sources beyond environment and static profile keys, delegated to aws-config.
//!
//! Not wired yet: until it is, these sources report "Unable to locate credentials".

use aws_credential_types::Credentials;

use crate::error::Error;
use crate::log::DebugLog;

/// Resolves credentials for `profile` (or the rest of the default chain when `None`).
pub(crate) async fn resolve(profile: Option<&str>, log: &DebugLog) -> Result<Credentials, Error> {
    log.log("dp_wire.credentials", || format!("no static credentials; external sources (profile {profile:?}) are not available in this build"));
    Err(Error::no_credentials())
}
