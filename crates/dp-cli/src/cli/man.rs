//! Man pages for `dp`, generated with clap_mangen from the same command tree (and so the same model and option
//! help) that parses the command line: `dp(1)` with the global options, the commands and the exit codes, and one
//! page per command (`dp-report-task-progress(1)`, …). They are generated into release archives
//! (`cargo xtask dist`, through the `dp-man` example), never committed.

use clap::Command;

/// The exit-status section of `dp(1)`, in roff: CLI v2's table, which dp uses.
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
0
Success.
.TP
252
The command line or an input value is invalid; nothing was sent.
.TP
253
Configuration or credentials are invalid or missing (no region, no credentials, unknown profile, bad region).
.TP
254
The service answered with an error.
.TP
255
Anything else: connection refused, timeouts, an unreadable response.
.TP
130
Interrupted.
"#;

/// One man page: its file name (`dp-list-runs.1`), the command it documents, and its roff source.
#[derive(Debug, Clone)]
pub struct Page {
    /// The file name, section 1.
    pub file_name: String,
    /// The command the page documents (with the page's name), for checking which options it must show.
    pub command: Command,
    /// The roff source.
    pub roff: String,
}

fn render(command: &Command, extra: &str) -> String {
    let man = clap_mangen::Man::new(command.clone()).date("");
    let mut out = Vec::new();
    man.render(&mut out).expect("writing to memory");
    let mut text = String::from_utf8(out).expect("clap_mangen writes UTF-8");
    text.push_str(extra);
    text
}

/// Every page: `dp.1` first, then one per command in the order of `dp help`'s command list, hidden ones included.
pub fn pages() -> Vec<Page> {
    let root = crate::cli::command();
    let mut pages = vec![Page {
        file_name: "dp.1".to_string(),
        roff: render(&root, EXIT_STATUS),
        command: root.clone(),
    }];
    for sub in root.get_subcommands() {
        let name = format!("dp-{}", sub.get_name());
        // The global options are accepted after the command too, so each command's page shows them.
        let mut command = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("dp {}", sub.get_name()))
            .hide(false);
        for (i, arg) in root
            .get_arguments()
            .filter(|a| a.is_global_set())
            .enumerate()
        {
            command = command.arg(arg.clone().display_order(1000 + i));
        }
        pages.push(Page {
            file_name: format!("{name}.1"),
            roff: render(&command, EXIT_STATUS),
            command,
        });
    }
    pages
}
