//! The console's pages, generated with maud: every value is escaped by construction, and nothing is inline (the
//! Content-Security-Policy allows only this origin's stylesheet and script).

use std::collections::BTreeMap;

use dp_model::types::{Field, PipelineObject};
use maud::{DOCTYPE, Markup, html};

use super::data::{PipelineSummary, PipelineView, Waiting, reference, text};
use crate::engine::Runner;

/// The statuses an instance can have, in the order the filter lists them.
pub(crate) const STATUSES: [&str; 10] = [
    "WAITING_ON_DEPENDENCIES",
    "WAITING_FOR_RUNNER",
    "CREATING",
    "RUNNING",
    "FINISHED",
    "FAILED",
    "CASCADE_FAILED",
    "TIMEDOUT",
    "CANCELED",
    "PAUSED",
];

/// A parameter's attributes with each key once, in first-seen order: a list attribute such as `allowedValues`
/// arrives as one attribute per value.
fn grouped(attributes: &[dp_model::types::ParameterAttribute]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for a in attributes {
        match out.iter_mut().find(|(k, _)| *k == a.key) {
            Some((_, values)) => values.push(&a.string_value),
            None => out.push((&a.key, vec![&a.string_value])),
        }
    }
    out
}

/// `2026-12-02T21:38:55` as `2026-12-02 21:38:55 UTC`; other text unchanged.
fn utc(time: &str) -> String {
    if time.len() == 19 && time.as_bytes()[10] == b'T' {
        format!("{} {} UTC", &time[..10], &time[11..])
    } else {
        time.to_string()
    }
}

fn status_badge(status: &str) -> Markup {
    html! { span.status.{"s-" (status)} { (status) } }
}

/// The frame of every page.
pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · dp-local console" }
                link rel="stylesheet" href="/console/assets/app.css";
                script src="/console/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "dp-local console" }
                    nav {
                        a href="/console" { "Pipelines" }
                        a href="/console/runners" { "Runners" }
                    }
                    span.refresh #refresh-note { "refreshes every 3 s" }
                }
                main #live { (body) }
            }
        }
    }
}

/// The pipelines page: newest first.
pub(crate) fn pipelines(rows: &[PipelineSummary]) -> Markup {
    layout(
        "Pipelines",
        html! {
            h1 { "Pipelines" }
            @if rows.is_empty() {
                p.empty { "No pipelines yet: create one with " code { "dp create-pipeline" } "." }
            } @else {
                table.pipelines {
                    thead { tr { th { "Name" } th { "Id" } th { "State" } th { "Health" } th { "Last run" } th { "Instances" } } }
                    tbody {
                        @for p in rows {
                            tr.pipeline data-id=(p.id) {
                                td { a.name href={ "/console/pipeline?id=" (p.id) } { (p.name) } }
                                td.id { (p.id) }
                                td { span.state.{"p-" (p.state)} { (p.state) } }
                                td { (p.health) }
                                td { (utc(&p.last_run)) }
                                td.counts {
                                    @if p.counts.is_empty() { span.none { "none" } }
                                    @for (status, n) in &p.counts {
                                        span.count.{"s-" (status)} title=(status) { (status) ": " (n) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn action_form(
    csrf: &str,
    action: &str,
    pipeline: &str,
    object: Option<&str>,
    label: &str,
) -> Markup {
    html! {
        form.action method="post" action="/console/action" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            input type="hidden" name="pipeline" value=(pipeline);
            @if let Some(object) = object { input type="hidden" name="object" value=(object); }
            button type="submit" data-action=(action) { (label) }
        }
    }
}

fn field_rows(fields: &[Field]) -> Markup {
    html! {
        @for f in fields {
            tr.field.error[f.key.starts_with("error")] {
                th { (f.key) }
                td {
                    @if let Some(r) = &f.ref_value { span.ref { "→ " (r) } }
                    @else if let Some(v) = &f.string_value {
                        @if f.key.starts_with('@') && f.key.ends_with("Time") { (utc(v)) } @else { (v) }
                    }
                }
            }
        }
    }
}

/// A pipeline: header and actions, the definition graph and parameters, the runs with their attempts.
pub(crate) fn pipeline(
    view: &PipelineView,
    status_filter: Option<&str>,
    csrf: &str,
    notice: Option<&str>,
) -> Markup {
    let state = text(&view.fields, "@pipelineState").unwrap_or("");
    let other = if view.version == "active" {
        "latest"
    } else {
        "active"
    };
    let shown: Vec<&PipelineObject> = view
        .instances
        .iter()
        .filter(|i| status_filter.is_none_or(|s| text(&i.fields, "@status") == Some(s)))
        .collect();
    // Each component's state in the graph is its latest instance's (instances come by scheduled start).
    let states: std::collections::HashMap<&str, &str> = view
        .instances
        .iter()
        .filter_map(|i| {
            Some((
                reference(&i.fields, "@componentParent")?,
                text(&i.fields, "@status")?,
            ))
        })
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &view.instances {
        *counts
            .entry(text(&i.fields, "@status").unwrap_or("UNKNOWN"))
            .or_default() += 1;
    }
    layout(
        &view.name,
        html! {
            @if let Some(notice) = notice { p.notice { (notice) } }
            h1 { span.pname { (view.name) } " " span.state.{"p-" (state)} { (state) } }
            p.meta {
                span.id { (view.id) }
                @if let Some(h) = text(&view.fields, "@healthStatus") { " · health " (h) }
                @if let Some(t) = text(&view.fields, "@latestRunTime") { " · last run " (utc(t)) }
            }
            div.actions {
                (action_form(csrf, "activate", &view.id, None, "Activate"))
                (action_form(csrf, "deactivate", &view.id, None, "Deactivate"))
            }
            section.definition {
                h2 { "Definition (" (view.version) ") " a.switch href={ "/console/pipeline?id=" (view.id) "&version=" (other) } { "show " (other) } }
                @if let Some(error) = &view.definition_error {
                    p.empty { (error) }
                }
                @if let Some(def) = &view.definition {
                    div.legend {
                        @for kind in ["activity", "data", "schedule", "resource", "precondition", "action", "database", "default", "other"] {
                            span.{"k-" (kind)} { (kind) }
                        }
                    }
                    div.graph-box { (super::graph::svg(def.pipeline_objects.as_deref().unwrap_or(&[]), &states)) }
                    @let parameters = def.parameter_objects.clone().unwrap_or_default();
                    @let values = def.parameter_values.clone().unwrap_or_default();
                    @if !parameters.is_empty() || !values.is_empty() {
                        h3 { "Parameters" }
                        table.parameters {
                            thead { tr { th { "Id" } th { "Attributes" } th { "Value" } } }
                            tbody {
                                @for p in &parameters {
                                    tr {
                                        td { (p.id) }
                                        td { @for (key, values) in grouped(&p.attributes) { span.attr { (key) "=" (values.join(", ")) } " " } }
                                        td { @for v in values.iter().filter(|v| v.id == p.id) { span.value { (v.string_value) } " " } }
                                    }
                                }
                                @for v in values.iter().filter(|v| !parameters.iter().any(|p| p.id == v.id)) {
                                    tr { td { (v.id) } td { "(not declared)" } td { (v.string_value) } }
                                }
                            }
                        }
                    }
                }
            }
            section.runs {
                h2 { "Runs" }
                form.filter method="get" action="/console/pipeline" {
                    input type="hidden" name="id" value=(view.id);
                    input type="hidden" name="version" value=(view.version);
                    label { "Status "
                        select name="status" #status-filter {
                            option value="" selected[status_filter.is_none()] { "all (" (view.instances.len()) ")" }
                            @for s in STATUSES {
                                option value=(s) selected[status_filter == Some(s)] { (s) " (" (counts.get(s).copied().unwrap_or(0)) ")" }
                            }
                        }
                    }
                    button type="submit" { "Filter" }
                }
                @if shown.is_empty() {
                    p.empty { "No instances" @if let Some(s) = status_filter { " with status " (s) } "." }
                }
                ol.runs-list {
                    @for (n, instance) in shown.iter().enumerate() {
                        @let status = text(&instance.fields, "@status").unwrap_or("");
                        @let link = format!("/console/instance?pipeline={}&id={}", super::encode(&view.id), super::encode(&instance.id));
                        li.run data-id=(instance.id) data-status=(status) {
                            details #{ "run-" (instance.id) } data-fragment=(link) {
                                summary {
                                    span.n { (n + 1) "." }
                                    span.component { (reference(&instance.fields, "@componentParent").unwrap_or("")) }
                                    span.kind { (text(&instance.fields, "type").unwrap_or("")) }
                                    @if let Some(r) = text(&instance.fields, "@resourceId") { span.resource title="the local runner standing in for this resource" { (r) } }
                                    span.iid { (instance.id) }
                                    span.sched { (utc(text(&instance.fields, "@scheduledStartTime").unwrap_or(""))) }
                                    (status_badge(status))
                                    span.started { (utc(text(&instance.fields, "@actualStartTime").unwrap_or(""))) }
                                    span.ended { (utc(text(&instance.fields, "@actualEndTime").unwrap_or(""))) }
                                }
                                div.lazy { a href=(link) { "the instance's fields and attempts" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// An opened run: the instance's actions and fields, then every attempt with `errorMessage` first.
pub(crate) fn instance_fragment(
    pipeline: &str,
    instance: &PipelineObject,
    attempts: &[PipelineObject],
    csrf: &str,
) -> Markup {
    html! {
        div.instance-actions {
            (action_form(csrf, "rerun", pipeline, Some(&instance.id), "Rerun"))
            (action_form(csrf, "cancel", pipeline, Some(&instance.id), "Cancel"))
            (action_form(csrf, "mark-finished", pipeline, Some(&instance.id), "Mark finished"))
        }
        h4 { "Instance" }
        table.fields { tbody { (field_rows(&instance.fields)) } }
        @for attempt in attempts {
            div.attempt data-id=(attempt.id) data-status=(text(&attempt.fields, "@status").unwrap_or("")) {
                h4 { "Attempt " (text(&attempt.fields, "@attemptNumber").unwrap_or("?")) " " (status_badge(text(&attempt.fields, "@status").unwrap_or(""))) }
                @if let Some(message) = text(&attempt.fields, "errorMessage") {
                    p.error-message { (message) }
                }
                table.fields { tbody { (field_rows(&attempt.fields)) } }
            }
        }
    }
}

/// An instance on a page of its own (the console without JavaScript).
pub(crate) fn instance_page(
    pipeline: &str,
    instance: &PipelineObject,
    attempts: &[PipelineObject],
    csrf: &str,
) -> Markup {
    layout(
        &instance.id,
        html! {
            p.meta { a href={ "/console/pipeline?id=" (super::encode(pipeline)) } { "← pipeline " (pipeline) } }
            h1 { (instance.id) " " (status_badge(text(&instance.fields, "@status").unwrap_or(""))) }
            div.instance { (instance_fragment(pipeline, instance, attempts, csrf)) }
        },
    )
}

/// The runners page: who sent heartbeats, and which waiting tasks have no runner for their worker group.
pub(crate) fn runners(runners: &[Runner], waiting: &[Waiting]) -> Markup {
    let groups: Vec<&str> = runners
        .iter()
        .filter_map(|r| r.worker_group.as_deref())
        .collect();
    layout(
        "Runners",
        html! {
            h1 { "Task runners" }
            @if runners.is_empty() {
                p.empty { "No task runner has sent a heartbeat." }
            } @else {
                table.runners {
                    thead { tr { th { "Runner" } th { "Worker group" } th { "Host" } th { "Last contact" } th { "Heartbeats" } } }
                    tbody {
                        @for r in runners {
                            tr.runner {
                                td { (r.id) }
                                td { (r.worker_group.as_deref().unwrap_or("")) }
                                td { (r.hostname.as_deref().unwrap_or("")) }
                                td { (utc(&dp_model::timestamp::format_utc(r.last_heartbeat))) }
                                td { (r.heartbeats) }
                            }
                        }
                    }
                }
            }
            h2 { "Tasks waiting for a runner" }
            @if waiting.is_empty() {
                p.empty { "None." }
            } @else {
                table.waiting {
                    thead { tr { th { "Pipeline" } th { "Instance" } th { "Worker group" } th { "" } } }
                    tbody {
                        @for w in waiting {
                            @let orphan = !groups.contains(&w.worker_group.as_str());
                            tr.flagged[orphan] {
                                td { a href={ "/console/pipeline?id=" (w.pipeline) } { (w.pipeline_name) } }
                                td { (w.instance) }
                                td { (w.worker_group) }
                                td { @if orphan { span.flag { "no runner has sent a heartbeat for this worker group" } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What an action will do, in words.
pub(crate) fn describe_action(action: &str, pipeline: &str, object: Option<&str>) -> String {
    match (action, object) {
        ("rerun", Some(o)) => {
            format!("Rerun instance {o} of pipeline {pipeline} (set-status RERUN)")
        }
        ("cancel", Some(o)) => {
            format!("Cancel instance {o} of pipeline {pipeline} (set-status CANCEL)")
        }
        ("mark-finished", Some(o)) => {
            format!("Mark instance {o} of pipeline {pipeline} finished (set-status MARK_FINISHED)")
        }
        ("activate", _) => format!("Activate pipeline {pipeline}"),
        ("deactivate", _) => format!("Deactivate pipeline {pipeline} (running tasks are canceled)"),
        (other, _) => format!("{other} on {pipeline}"),
    }
}

/// The confirmation every action asks for.
pub(crate) fn confirm(csrf: &str, action: &str, pipeline: &str, object: Option<&str>) -> Markup {
    layout(
        "Confirm",
        html! {
            h1 { "Confirm" }
            p.confirm-text { (describe_action(action, pipeline, object)) "?" }
            form.confirm method="post" action="/console/action" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action);
                input type="hidden" name="pipeline" value=(pipeline);
                @if let Some(object) = object { input type="hidden" name="object" value=(object); }
                input type="hidden" name="confirmed" value="yes";
                button #confirm type="submit" { "Yes, do it" }
                " "
                a #cancel href={ "/console/pipeline?id=" (pipeline) } { "No, go back" }
            }
        },
    )
}

/// A short page for errors and refusals.
pub(crate) fn message(title: &str, text: &str) -> Markup {
    layout(title, html! { h1 { (title) } p.message { (text) } })
}
