//! Help pages: `dp help`, `dp <command> help` and `--help`, generated from the model, in dp's own words.
//!
//! Synopsis, options (type, constraints, required), the shorthand and JSON syntax of complex options (the same
//! notation the AWS CLI documents), the output shape and an example are all derived from the shapes. The only
//! hand-written text is one description per command, below; the model's documentation strings are not copied.

use std::fmt::Write as _;

use dp_model::{Operation, Shape, ShapeKind};

use crate::customize::option_name;

/// dp's own one-paragraph description of each command.
pub fn description(command: &str) -> &'static str {
    match command {
        "activate-pipeline" => {
            "Starts a pipeline that has a definition: its activities become runnable on their schedule. A pipeline that was deactivated resumes from where it stopped unless --start-timestamp says otherwise."
        }
        "add-tags" => "Adds key/value tags to a pipeline (at most 10 tags per pipeline).",
        "create-pipeline" => {
            "Creates an empty pipeline. --unique-id makes the call idempotent: repeating it with the same name and unique id returns the same pipeline id."
        }
        "deactivate-pipeline" => {
            "Stops a running pipeline. With --cancel-active (the service default) runs in progress are cancelled; with --no-cancel-active they finish first."
        }
        "delete-pipeline" => {
            "Deletes a pipeline, its definition and its run history. Running tasks report canceled=true from then on."
        }
        "describe-objects" => {
            "Returns the fields of pipeline objects (components, instances or attempts) by id; --evaluate-expressions resolves #{...} expressions in them."
        }
        "describe-pipelines" => {
            "Returns the metadata of up to 25 pipelines: name, state, tags and the @-fields the service keeps."
        }
        "evaluate-expression" => {
            "Evaluates an expression such as #{@scheduledStartTime} in the context of one object of a running pipeline."
        }
        "get-pipeline-definition" => {
            "Prints a pipeline's definition in the definition-file format (objects, parameters, values), the latest saved version or the active one."
        }
        "list-pipelines" => {
            "Lists the ids and names of the account's pipelines in this region, following every page unless told otherwise."
        }
        "poll-for-task" => {
            "Used by task runners: waits up to 90 seconds for a task of the given worker group and hands it to this caller. Acknowledge it with report-task-progress within 2 minutes, or it is handed out again."
        }
        "put-pipeline-definition" => {
            "Saves a pipeline definition (objects, parameters and parameter values), checking it first. Errors in the definition are returned, not raised; errored=true means nothing was saved."
        }
        "query-objects" => {
            "Returns the ids of the objects of a pipeline that match a query, in the COMPONENT, INSTANCE or ATTEMPT sphere."
        }
        "remove-tags" => "Removes tags from a pipeline by key.",
        "report-task-progress" => {
            "Used by task runners: acknowledges a task just received from poll-for-task (within 2 minutes), then keeps ownership of it while it runs (report at least every 15 minutes, or the pipeline's reportProgressTimeout; every 60 seconds is recommended). canceled=true in the answer means stop working on the task; no set-task-status is needed then."
        }
        "report-task-runner-heartbeat" => {
            "Used by task runners: says that this runner is alive (about every 15 minutes). terminate=true in the answer means the runner should shut down."
        }
        "set-status" => {
            "Changes the status of pipeline objects: PAUSE or RESUME for components, TRY_CANCEL, RERUN or MARK_FINISHED for instances."
        }
        "set-task-status" => {
            "Used by task runners: ends a task with FINISHED, FAILED or FALSE (a precondition that did not hold), with optional error details that describe-objects then shows."
        }
        "validate-pipeline-definition" => {
            "Checks a pipeline definition without saving it and returns its errors and warnings."
        }
        "list-runs" => {
            "Lists the runs (instances) of a pipeline with their schedule, status and times, by default those started in the last 4 days, in a fixed-width table unless --output is given."
        }
        _ => "",
    }
}

/// The shorthand notation of a complex option, as the AWS CLI documents it (`key=string,value=string ...`);
/// `None` where shorthand does not apply or the shape nests too deep to document.
pub fn shorthand_syntax(shape: &'static Shape) -> Option<String> {
    fn docs(shape: &'static Shape, stack: &mut Vec<&'static str>) -> Option<String> {
        if stack.len() > 3 {
            return None;
        }
        Some(match shape.kind {
            ShapeKind::Structure(members) => {
                let mut parts = Vec::new();
                for m in members {
                    if stack.contains(&m.shape.name) {
                        parts.push(format!("{}=( ... recursive ... )", m.name));
                        continue;
                    }
                    stack.push(m.shape.name);
                    let inner = docs(m.shape, stack);
                    stack.pop();
                    parts.push(format!("{}={}", m.name, inner?));
                }
                let inner = parts.join(",");
                if stack.is_empty() {
                    inner
                } else {
                    format!("{{{inner}}}")
                }
            }
            ShapeKind::List(member) => {
                stack.push(member.name);
                let element = docs(member, stack);
                stack.pop();
                let element = element?;
                if !member.is_scalar() || stack.len() > 1 {
                    format!("[{element},{element}]")
                } else {
                    format!("{element},{element}")
                }
            }
            ShapeKind::Map { value, .. } => {
                stack.push(value.name);
                let v = docs(value, stack);
                stack.pop();
                let v = v?;
                let start = format!("KeyName1={v},KeyName2={v}");
                if stack.is_empty() {
                    start
                } else {
                    format!("{{{start}}}")
                }
            }
            _ => shape.type_name().to_string(),
        })
    }
    let complex = match shape.kind {
        ShapeKind::Structure(_) | ShapeKind::Map { .. } => true,
        ShapeKind::List(m) => !m.is_scalar(),
        _ => false,
    };
    if !complex {
        return None;
    }
    let mut stack = Vec::new();
    match shape.kind {
        ShapeKind::List(member) => docs(member, &mut stack).map(|d| format!("{d} ...")),
        _ => docs(shape, &mut stack),
    }
}

fn json_value_name(shape: &Shape) -> String {
    match shape.kind {
        ShapeKind::String if !shape.enum_values.is_empty() => shape
            .enum_values
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join("|"),
        ShapeKind::String => "\"string\"".into(),
        ShapeKind::Boolean => "true|false".into(),
        _ => shape.type_name().into(),
    }
}

/// The JSON notation of an option's value, as the AWS CLI documents it.
pub fn json_syntax(shape: &'static Shape) -> String {
    fn write(
        shape: &'static Shape,
        indent: usize,
        out: &mut String,
        stack: &mut Vec<&'static str>,
    ) {
        let pad = "  ".repeat(indent);
        match shape.kind {
            ShapeKind::List(member) if member.is_scalar() => {
                let _ = write!(out, "[{}, ...]", json_value_name(member));
            }
            ShapeKind::List(member) => {
                let _ = write!(out, "[\n{pad}  ");
                write(member, indent + 1, out, stack);
                let _ = write!(out, "\n{pad}  ...\n{pad}]");
            }
            ShapeKind::Map { key, value } => {
                let _ = write!(out, "{{\n{pad}  {}: ", json_value_name(key));
                if value.is_scalar() {
                    out.push_str(&json_value_name(value));
                } else {
                    write(value, indent + 1, out, stack);
                }
                let _ = write!(out, "\n{pad}  ...\n{pad}}}");
            }
            ShapeKind::Structure(members) => {
                if stack.contains(&shape.name) {
                    out.push_str("{ ... recursive ... }");
                    return;
                }
                stack.push(shape.name);
                out.push_str("{\n");
                for (i, m) in members.iter().enumerate() {
                    let _ = write!(out, "{pad}  \"{}\": ", m.name);
                    if m.shape.is_scalar() {
                        out.push_str(&json_value_name(m.shape));
                    } else {
                        write(m.shape, indent + 1, out, stack);
                    }
                    out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
                }
                let _ = write!(out, "{pad}}}");
                stack.pop();
            }
            _ => out.push_str(&json_value_name(shape)),
        }
    }
    let mut out = String::new();
    write(shape, 0, &mut out, &mut Vec::new());
    out
}

/// `text` with every non-empty line indented by `by` spaces.
pub(crate) fn indent_block(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn example(op: &Operation) -> String {
    fn value(shape: &'static Shape, name: &str) -> String {
        match shape.kind {
            ShapeKind::String if !shape.enum_values.is_empty() => shape.enum_values[0].to_string(),
            ShapeKind::String => match name {
                "pipelineId" => "df-0123456789ABCDEFGHIJ".into(),
                "taskId" => "\"$TASK_ID\"".into(),
                "workerGroup" => "my-workers".into(),
                _ => format!("my-{}", crate::invocation::kebab(name)),
            },
            ShapeKind::Integer | ShapeKind::Long => "10".into(),
            ShapeKind::Timestamp => "2024-01-01T00:00:00Z".into(),
            _ => match shorthand_syntax(shape) {
                Some(s) => format!("'{}'", s.trim_end_matches(" ...").replace("=string", "=x")),
                None => format!(
                    "'{}'",
                    json_syntax(shape)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            },
        }
    }
    let mut line = format!("dp {}", op.cli_name);
    for m in op.input.map(|s| s.members()).unwrap_or_default() {
        if m.required && !crate::customize::replaces(op.name, m.name) {
            let _ = write!(line, " --{} {}", option_name(op, m), value(m.shape, m.name));
        }
    }
    line
}

/// The help page of one operation.
pub fn operation_help(op: &'static Operation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NAME\n    dp {} ({} operation)\n",
        op.cli_name, op.name
    );
    let _ = writeln!(out, "DESCRIPTION\n{}\n", wrap(description(op.cli_name), 4));
    let members: Vec<_> = op
        .input
        .map(|s| s.members())
        .unwrap_or_default()
        .iter()
        .filter(|m| !crate::customize::replaces(op.name, m.name))
        .collect();
    out.push_str("SYNOPSIS\n    dp ");
    out.push_str(op.cli_name);
    out.push('\n');
    for m in &members {
        let name = option_name(op, m);
        let flag = match m.shape.kind {
            ShapeKind::Boolean => format!("--{name} | --no-{name}"),
            _ => format!("--{name} <value>"),
        };
        let _ = writeln!(
            out,
            "      {}",
            if m.required {
                flag
            } else {
                format!("[{flag}]")
            }
        );
    }
    for c in crate::customize::options(op.name) {
        let _ = writeln!(out, "      [--{} <value>]", c.name);
    }
    out.push_str("      [--cli-input-json <value> | --cli-input-yaml <value>]\n      [--generate-cli-skeleton <input|output|yaml-input>]\n");
    if let Some(p) = &op.paginator {
        out.push_str("      [--starting-token <value>]\n      [--max-items <value>]\n");
        if p.limit_key.is_some() {
            out.push_str("      [--page-size <value>]\n");
        }
    }
    out.push_str("\nOPTIONS\n");
    for m in &members {
        let name = option_name(op, m);
        let _ = writeln!(
            out,
            "    --{name} ({}){}",
            m.shape.type_name(),
            if m.required { " [required]" } else { "" }
        );
        let constraints = dp_skeleton::describe_shape(m.shape);
        if constraints != m.shape.type_name() {
            let _ = writeln!(out, "        {constraints}");
        }
        if let Some(sh) = shorthand_syntax(m.shape) {
            let _ = writeln!(
                out,
                "\n        Shorthand syntax:\n{}",
                indent_block(&sh, 12)
            );
        }
        if !m.shape.is_scalar() {
            let _ = writeln!(
                out,
                "\n        JSON syntax:\n{}",
                indent_block(&json_syntax(m.shape), 12)
            );
        }
        out.push('\n');
    }
    for c in crate::customize::options(op.name) {
        let _ = writeln!(
            out,
            "    --{} ({})\n{}\n",
            c.name,
            if c.many { "list" } else { "string" },
            wrap(c.help, 8)
        );
    }
    out.push_str("    --cli-input-json, --cli-input-yaml (string)\n        The whole input as JSON or YAML (inline or file://), keyed by the API's member names; options given on\n        the command line win per top-level key.\n\n");
    out.push_str("    --generate-cli-skeleton (string)\n        Prints the input as JSON (input, the default) or commented YAML (yaml-input), or sample output (output),\n        and sends nothing.\n\n");
    if op.paginator.is_some() {
        out.push_str("    --starting-token, --max-items");
        if op.paginator.as_ref().is_some_and(|p| p.limit_key.is_some()) {
            out.push_str(", --page-size");
        }
        out.push_str(" (string, integer)\n        Pagination: dp follows every page unless --max-items limits the items (it then prints a NextToken for\n        --starting-token) or --no-paginate asks for one request.\n\n");
    }
    let _ = writeln!(out, "EXAMPLES\n    {}\n", example(op));
    out.push_str("OUTPUT\n");
    match op.output.filter(|s| !s.members().is_empty()) {
        Some(shape) if op.name == "GetPipelineDefinition" => {
            let _ = shape;
            out.push_str("    The pipeline definition in the definition-file format: objects, parameters and values.\n");
        }
        Some(shape) => {
            for m in shape.members() {
                let _ = writeln!(out, "    {} -> ({})", m.name, m.shape.type_name());
            }
        }
        None => out.push_str("    None: the command prints nothing when it succeeds.\n"),
    }
    out.push_str("\nSee `dp help` for the global options and exit codes.\n");
    out
}

/// The top-level help page.
pub fn main_help() -> String {
    let mut out = String::from(
        "dp: the AWS Data Pipeline command line (aws datapipeline), native.\n\nUSAGE\n    dp [global options] <command> [options]\n    dp <command> help\n\nCOMMANDS\n",
    );
    let mut names: Vec<&str> = dp_model::operations().iter().map(|o| o.cli_name).collect();
    names.push("list-runs");
    names.sort_unstable();
    for name in names {
        let first = description(name)
            .split(". ")
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        let _ = writeln!(out, "    {name:<30} {first}.");
    }
    out.push_str(
        "\nGLOBAL OPTIONS\n    --output json|text|table|yaml|yaml-stream|off   output format (default: json, or AWS_DEFAULT_OUTPUT, or\n                                                    the profile's output setting)\n    --query EXPR              a JMESPath expression applied to the result\n    --region R, --profile P   where to send requests and which credentials to use\n    --endpoint-url URL        send requests to this URL (for example a dp-local endpoint)\n    --no-sign-request         send unsigned requests\n    --no-verify-ssl, --ca-bundle PATH   TLS verification\n    --cli-read-timeout N, --cli-connect-timeout N   seconds; 0 waits forever\n    --no-paginate             one request for paginated commands\n    --color on|off|auto       colour table output\n    --debug                   log the request flow to stderr, secrets redacted\n    --version                 print the version\n\nEXIT CODES\n    0 success; 252 invalid command line or input (nothing was sent); 253 invalid configuration or credentials;\n    254 the service answered with an error; 255 anything else (connection, timeout); 130 interrupted.\n",
    );
    out
}

fn wrap(text: &str, indent: usize) -> String {
    let width = 110 - indent;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    let pad = " ".repeat(indent);
    lines
        .iter()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
