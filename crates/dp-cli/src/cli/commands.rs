//! The subcommands that are not model operations: `list-runs` and `create-default-roles`, and the reading of
//! `list-runs`' options into [`ListRuns`] (whose checks live with the command).

use clap::{Arg, ArgMatches, Command};

use crate::default_roles;
use crate::error::CliError;
use crate::list_runs::{self, ListRuns};

/// The `list-runs` subcommand.
pub(super) fn list_runs() -> Command {
    Command::new(list_runs::NAME)
        .about("Lists the runs (instances) of a pipeline, optionally filtered by status and time.")
        .arg(Arg::new("pipeline-id").long("pipeline-id").num_args(1).help("[required] The pipeline's id."))
        .arg(Arg::new("status").long("status").num_args(1).help(
            "Only runs in these statuses, comma-separated: waiting, pending, cancelled, running, finished, failed, waiting_for_runner, waiting_on_dependencies, shutting_down.",
        ))
        .arg(Arg::new("start-interval").long("start-interval").num_args(1).help("Only runs that started within START,END."))
        .arg(Arg::new("schedule-interval").long("schedule-interval").num_args(1).help("Only runs scheduled to start within START,END."))
}

/// `dp list-runs help`: the reference's description, then the options.
pub(super) fn list_runs_help() -> String {
    let mut page = format!(
        "NAME\n    dp list-runs\n\nDESCRIPTION\n    {}\n\n",
        crate::help::description(list_runs::NAME)
    );
    page.push_str(
        &list_runs()
            .bin_name("dp list-runs")
            .render_help()
            .to_string(),
    );
    page
}

/// Reads `list-runs`' options and checks them.
pub(super) fn list_runs_of(m: &ArgMatches) -> Result<ListRuns, CliError> {
    let get = |name: &str| m.get_one::<String>(name).map(String::as_str);
    ListRuns::from_options(
        get("pipeline-id"),
        get("status"),
        get("start-interval"),
        get("schedule-interval"),
    )
}

/// The subcommand: no options of its own, hidden from the command list as in the reference.
pub(super) fn default_roles() -> Command {
    Command::new(default_roles::NAME)
        .about("Creates the default IAM roles of Data Pipeline if they are missing (deprecated).")
        .long_about(default_roles::description())
        .hide(true)
}
