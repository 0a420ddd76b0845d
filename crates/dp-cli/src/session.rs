//! What a command needs once its input is known: a `dp_wire` client and the runtime its calls run on, built from
//! the global settings in one place, and the output options those settings ask for.
//!
//! Every command that sends a request (the generic operations, `list-runs`, `create-default-roles`) opens one
//! [`Session`]; nothing that returns before the network (skeletons, help, input errors) does. A session also
//! listens for SIGINT: a Ctrl-C while a call is waiting ends that call with [`dp_wire::Error::interrupted`], which
//! exits 130 as CLI v2 does, instead of killing the process with whatever it had half printed.

use std::future::Future;
use std::sync::Mutex;

use dp_model::Operation;
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{CliError, exit};
use crate::output::RenderOptions;
use crate::settings::GlobalSettings;

/// A client and its runtime.
pub struct Session {
    /// The client, configured by the global options.
    pub client: dp_wire::Client,
    /// dp's calls are sequential, so a current-thread runtime is all a command needs.
    pub runtime: tokio::runtime::Runtime,
    /// SIGINT, listened to from the moment the session opens (a Ctrl-C between two calls ends the next one).
    interrupt: Mutex<Option<Signal>>,
}

impl Session {
    /// Builds the client from `settings` and starts the runtime.
    pub fn open(settings: &GlobalSettings) -> Result<Self, CliError> {
        let client = dp_wire::Client::new(wire_settings(settings))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::other(e.to_string(), exit::OTHER))?;
        // A dp started with SIGINT ignored (`dp … &` in a script, nohup) keeps ignoring it, as Python, and so the
        // AWS CLI, does. Without a handler (it cannot be installed) Ctrl-C keeps its default: the process ends.
        let interrupt = if sigint_ignored() {
            None
        } else {
            let _entered = runtime.enter();
            signal(SignalKind::interrupt()).ok()
        };
        Ok(Self {
            client,
            runtime,
            interrupt: Mutex::new(interrupt),
        })
    }

    /// Runs one of the client's calls to its end, or until SIGINT arrives ([`dp_wire::Error::interrupted`]).
    pub fn wait<T>(
        &self,
        call: impl Future<Output = Result<T, dp_wire::Error>>,
    ) -> Result<T, dp_wire::Error> {
        let mut interrupt = self
            .interrupt
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.runtime.block_on(async {
            match interrupt.as_mut() {
                Some(signal) => tokio::select! {
                    result = call => result,
                    _ = signal.recv() => Err(dp_wire::Error::interrupted()),
                },
                None => call.await,
            }
        })
    }

    /// One Data Pipeline call. dp-wire sends timestamps as epoch seconds and returns the output in the model's
    /// order, as the CLI prints it.
    pub fn call(&self, op: &'static Operation, input: &Value) -> Result<Value, CliError> {
        Ok(self.wait(self.client.call_json(op, input))?)
    }

    /// `--output`, then `AWS_DEFAULT_OUTPUT`, then the profile's `output`, then json.
    pub fn output_format(&self, settings: &GlobalSettings) -> String {
        if let Some(o) = &settings.output {
            return o.clone();
        }
        if let Ok(o) = std::env::var("AWS_DEFAULT_OUTPUT")
            && !o.is_empty()
        {
            return o;
        }
        self.client
            .profile_setting("output")
            .unwrap_or_else(|| "json".into())
    }

    /// The output options of this command: its format ([`Session::output_format`]) and the global options.
    pub fn render_options(&self, settings: &GlobalSettings) -> Result<RenderOptions, CliError> {
        render_options(&self.output_format(settings), settings)
    }
}

/// Whether this process was started with SIGINT ignored: bit 1 (signal 2) of `SigIgn` in `/proc/self/status`.
/// Where that file cannot be read, SIGINT counts as not ignored.
fn sigint_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << 1) != 0)
}

/// The request settings of the global options, as dp-wire takes them.
pub fn wire_settings(s: &GlobalSettings) -> dp_wire::Settings {
    dp_wire::Settings {
        region: s.region.clone(),
        profile: s.profile.clone(),
        endpoint_url: s.endpoint_url.clone(),
        no_sign_request: s.no_sign_request,
        no_verify_ssl: s.no_verify_ssl,
        ca_bundle: s.ca_bundle.clone(),
        connect_timeout: s.connect_timeout,
        read_timeout: s.read_timeout,
        debug: s.debug,
    }
}

/// Output options for `format`; tables use the terminal's width when stdout is one (80 otherwise).
pub fn render_options(format: &str, settings: &GlobalSettings) -> Result<RenderOptions, CliError> {
    let mut opts = RenderOptions::new(format, settings.query.as_deref(), color(settings))?;
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(std::io::stdout()) {
        opts.terminal_width = usize::from(w);
    }
    Ok(opts)
}

fn color(s: &GlobalSettings) -> bool {
    use std::io::IsTerminal as _;
    match s.color.as_deref() {
        Some("on") => true,
        Some("off") => false,
        _ => std::io::stdout().is_terminal(),
    }
}
