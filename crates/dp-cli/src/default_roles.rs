//! `dp create-default-roles`: the AWS CLI's (hidden, deprecated) command that makes sure Data Pipeline's two
//! default IAM roles and its instance profile exist.
//!
//! The requests are the reference's, in its order (`awscli/customizations/datapipeline/createdefaultroles.py`):
//! for each role `GetRole`, and on `NoSuchEntity` `CreateRole`, `AttachRolePolicy`, `GetPolicy`,
//! `GetPolicyVersion`; then `GetInstanceProfile`, and on `NoSuchEntity` `CreateInstanceProfile` and
//! `AddRoleToInstanceProfile`. Any other error ends the command. The output lists the roles it created, each
//! with the managed policy's document, titled `create_role` in tables. IAM's protocol lives in `dp_wire::iam`;
//! this module only decides what to ask.

use serde_json::{Map, Value};

use std::io::Write as _;

use crate::error::CliError;
use crate::session::Session;
use crate::settings::GlobalSettings;

/// The subcommand name.
pub const NAME: &str = "create-default-roles";

/// The service role's name.
pub const SERVICE_ROLE: &str = "DataPipelineDefaultRole";
/// The resource role's name, also the instance profile's.
pub const RESOURCE_ROLE: &str = "DataPipelineDefaultResourceRole";

/// The deprecation notice, word for word the reference's (`_DEPRECATION_NOTICE`).
pub const DEPRECATION_NOTICE: &str = "
Support for this command has been deprecated and may fail to create these roles
if they do not already exist. For more information on managing these policies
manually see the following documentation:

https://docs.aws.amazon.com/datapipeline/latest/DeveloperGuide/dp-iam-roles.html
";

/// The service role's trust policy as the reference sends it: Python's `json.dumps(policy, indent=2)`.
pub const SERVICE_ROLE_TRUST_POLICY: &str = r#"{
  "Version": "2008-10-17",
  "Statement": [
    {
      "Sid": "",
      "Effect": "Allow",
      "Principal": {
        "Service": [
          "datapipeline.amazonaws.com",
          "elasticmapreduce.amazonaws.com"
        ]
      },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;

/// The resource role's trust policy, formatted as [`SERVICE_ROLE_TRUST_POLICY`].
pub const RESOURCE_ROLE_TRUST_POLICY: &str = r#"{
  "Version": "2008-10-17",
  "Statement": [
    {
      "Sid": "",
      "Effect": "Allow",
      "Principal": {
        "Service": "ec2.amazonaws.com"
      },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;

/// The managed policy of a role in `partition` (`aws`, `aws-cn`, …). The reference always writes `arn:aws:`,
/// which names no policy outside the `aws` partition; dp uses the caller's partition.
pub fn managed_policy_arn(partition: &str, role: &str) -> String {
    let policy = if role == SERVICE_ROLE {
        "AWSDataPipelineRole"
    } else {
        "AmazonEC2RoleforDataPipelineRole"
    };
    format!("arn:{partition}:iam::aws:policy/service-role/{policy}")
}

/// The help page's description.
pub fn description() -> String {
    format!(
        "NOTE: {DEPRECATION_NOTICE}\nCreates the default IAM roles \"{SERVICE_ROLE}\" and \"{RESOURCE_ROLE}\" (and the \
         instance profile \"{RESOURCE_ROLE}\") that pipelines use by default.\n\nIf these roles do not exist, \
         create-default-roles creates them and attaches their managed policies. Roles that exist already are left \
         as they are: their policies are not updated.\n"
    )
}

/// The IAM side of the command, so that the sequence can run against anything that answers IAM actions.
pub trait Iam {
    /// Sends `action` with `params` and returns its result element, or the error.
    fn call(
        &mut self,
        action: &'static str,
        params: &[(&'static str, &str)],
    ) -> Result<dp_wire::iam::Element, dp_wire::Error>;
}

fn is_no_such_entity(e: &dp_wire::Error) -> bool {
    e.service_code() == Some("NoSuchEntity")
}

/// Runs the reference's sequence against `iam` for a caller in `partition` and returns the output value: the list
/// of `{"Role": …, "RolePolicy": …}` for the roles it created.
pub fn ensure(iam: &mut dyn Iam, partition: &str) -> Result<Value, CliError> {
    let mut created = Vec::new();
    for (role, trust) in [
        (SERVICE_ROLE, SERVICE_ROLE_TRUST_POLICY),
        (RESOURCE_ROLE, RESOURCE_ROLE_TRUST_POLICY),
    ] {
        match iam.call("GetRole", &[("RoleName", role)]) {
            Ok(_) => continue,
            Err(e) if is_no_such_entity(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let policy_arn = managed_policy_arn(partition, role);
        let result = iam.call(
            "CreateRole",
            &[("RoleName", role), ("AssumeRolePolicyDocument", trust)],
        )?;
        iam.call(
            "AttachRolePolicy",
            &[("PolicyArn", &policy_arn), ("RoleName", role)],
        )?;
        let policy = iam.call("GetPolicy", &[("PolicyArn", &policy_arn)])?;
        let version = policy
            .text_at(&["Policy", "DefaultVersionId"])
            .ok_or_else(|| {
                CliError::other(
                    format!("The GetPolicy answer for {policy_arn} has no DefaultVersionId"),
                    crate::error::exit::OTHER,
                )
            })?
            .to_string();
        let version = iam.call(
            "GetPolicyVersion",
            &[("PolicyArn", &policy_arn), ("VersionId", &version)],
        )?;
        let document = version
            .text_at(&["PolicyVersion", "Document"])
            .map(dp_wire::iam::policy_document)
            .unwrap_or(Value::Null);
        if let Some(role) = dp_wire::iam::role(&result) {
            let mut entry = Map::new();
            entry.insert("Role".into(), role);
            entry.insert("RolePolicy".into(), document);
            created.push(Value::Object(entry));
        }
    }
    match iam.call(
        "GetInstanceProfile",
        &[("InstanceProfileName", RESOURCE_ROLE)],
    ) {
        Ok(_) => {}
        Err(e) if is_no_such_entity(&e) => {
            iam.call(
                "CreateInstanceProfile",
                &[("InstanceProfileName", RESOURCE_ROLE)],
            )?;
            iam.call(
                "AddRoleToInstanceProfile",
                &[
                    ("InstanceProfileName", RESOURCE_ROLE),
                    ("RoleName", RESOURCE_ROLE),
                ],
            )?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Value::Array(created))
}

/// Runs `dp create-default-roles`: the deprecation notice on stderr, the IAM requests for the caller's partition
/// ([`ensure`]), and the roles created, printed as the reference prints them.
pub fn run(settings: &GlobalSettings, stdout: &mut String) -> Result<(), CliError> {
    let session = Session::open(settings)?;
    let render_opts = session.render_options(settings)?;
    // The notice comes before anything can fail, as in the reference (which warns, then finds no region or
    // credentials on its first request). The blank line after it is the reference's warning framing.
    let _ = std::io::stderr().write_all(format!("warning:{DEPRECATION_NOTICE}\n").as_bytes());
    let region = session.wait(session.client.region())?;
    let mut iam = WireIam { session: &session };
    let partition = dp_wire::endpoint::partition(&region).id;
    let result = ensure(&mut iam, partition)?;
    stdout.push_str(&crate::output::render(
        "create_role",
        &result,
        &render_opts,
    )?);
    Ok(())
}

/// What `dp create-default-roles help` prints.
pub fn help_page() -> String {
    let body = crate::help::indent_block(&description(), 4);
    format!("NAME\n    dp {NAME}\n\nDESCRIPTION\n{body}\n")
}

/// [`Iam`] over a session's `dp_wire::Client` (its settings decide the endpoint and the signing region).
pub struct WireIam<'a> {
    /// The session whose client and runtime send the calls.
    pub session: &'a Session,
}

impl Iam for WireIam<'_> {
    fn call(
        &mut self,
        action: &'static str,
        params: &[(&'static str, &str)],
    ) -> Result<dp_wire::iam::Element, dp_wire::Error> {
        self.session
            .wait(self.session.client.call_iam(action, params))
    }
}
