//! Objects and queries: how instances and attempts look in describe-objects and task objects (runtime fields
//! first, then the component's), expressions evaluated against them, and query-objects' selectors.
//!
//! Read-only: nothing here changes state.

use super::*;

impl State {
    pub(super) fn describe_objects(
        &self,
        input: DescribeObjectsInput,
    ) -> Result<DescribeObjectsOutput> {
        let p = self.pipeline(&input.pipeline_id)?;
        let start = parse_marker(input.marker.as_deref())?;
        let evaluate = input.evaluate_expressions.unwrap_or(false);
        let found: Vec<&String> = input
            .object_ids
            .iter()
            .filter(|id| object_exists(p, id))
            .collect();
        let page: Vec<PipelineObject> = found
            .iter()
            .skip(start)
            .take(PAGE_SIZE)
            .map(|id| {
                let mut object = render(p, id).expect("filtered to existing objects");
                if evaluate {
                    let ctx = RunContext {
                        pipeline: p,
                        current_instance: runtime_instance(p, id),
                    };
                    for f in &mut object.fields {
                        if let Some(s) = f.string_value.as_mut().filter(|s| s.contains("#{"))
                            && let Ok(v) = expr::evaluate_template(s, id, &ctx)
                        {
                            *s = v;
                        }
                    }
                }
                object
            })
            .collect();
        let more = start + page.len() < found.len();
        Ok(DescribeObjectsOutput {
            pipeline_objects: page,
            marker: more.then(|| (start + PAGE_SIZE).to_string()),
            has_more_results: Some(more),
        })
    }

    pub(super) fn query_objects(&self, input: QueryObjectsInput) -> Result<QueryObjectsOutput> {
        let p = self.pipeline(&input.pipeline_id)?;
        let start = parse_marker(input.marker.as_deref())?;
        let limit = input.limit.unwrap_or(PAGE_SIZE as i32).max(1) as usize;
        let selectors = input.query.and_then(|q| q.selectors).unwrap_or_default();
        let mut checks = Vec::new();
        for s in &selectors {
            let field = s
                .field_name
                .clone()
                .ok_or_else(|| ServiceError::invalid_request("A selector needs a fieldName"))?;
            let op = s
                .operator
                .as_ref()
                .ok_or_else(|| ServiceError::invalid_request("A selector needs an operator"))?;
            let kind = op
                .r#type
                .as_ref()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "EQ".into());
            let values = op.values.clone().unwrap_or_default();
            let needed = match kind.as_str() {
                "EQ" | "REF_EQ" => 1,
                "LE" | "GE" => 1,
                "BETWEEN" => 2,
                other => {
                    return Err(ServiceError::invalid_request(format!(
                        "Unknown operator type {other}"
                    )));
                }
            };
            if values.len() < needed {
                return Err(ServiceError::invalid_request(format!(
                    "Operator {kind} on {field} needs {needed} value(s), got {}",
                    values.len()
                )));
            }
            checks.push((field, kind, values));
        }
        let ids: Vec<String> = match input.sphere.as_str() {
            "COMPONENT" => p
                .definition()
                .map(|d| d.objects.iter().map(|o| o.id.clone()).collect())
                .unwrap_or_default(),
            "INSTANCE" => p.instances.keys().cloned().collect(),
            "ATTEMPT" => p.attempts.keys().cloned().collect(),
            other => {
                return Err(ServiceError::invalid_request(format!(
                    "Invalid sphere {other:?}: expected COMPONENT, INSTANCE or ATTEMPT"
                )));
            }
        };
        let matching: Vec<String> = if checks.is_empty() {
            ids
        } else {
            ids.into_iter()
                .filter(|id| {
                    let fields = render(p, id).map(|o| o.fields).unwrap_or_default();
                    checks
                        .iter()
                        .all(|(field, kind, values)| selector_matches(&fields, field, kind, values))
                })
                .collect()
        };
        let page: Vec<String> = matching.iter().skip(start).take(limit).cloned().collect();
        let more = start + page.len() < matching.len();
        Ok(QueryObjectsOutput {
            ids: Some(page),
            marker: more.then(|| (start + limit).to_string()),
            has_more_results: Some(more),
        })
    }
}

pub(super) fn parse_marker(marker: Option<&str>) -> Result<usize> {
    match marker {
        None | Some("") => Ok(0),
        Some(m) => m
            .parse()
            .map_err(|_| ServiceError::invalid_request(format!("Invalid marker {m:?}"))),
    }
}

pub(super) fn selector_matches(
    fields: &[Field],
    name: &str,
    kind: &str,
    values: &[String],
) -> bool {
    let present: Vec<&str> = fields
        .iter()
        .filter(|f| f.key == name)
        .filter_map(|f| {
            if kind == "REF_EQ" {
                f.ref_value.as_deref()
            } else {
                f.string_value.as_deref().or(f.ref_value.as_deref())
            }
        })
        .collect();
    present.iter().any(|v| match kind {
        "EQ" | "REF_EQ" => values.iter().any(|w| w == v),
        "LE" => compare(v, &values[0]).is_le(),
        "GE" => compare(v, &values[0]).is_ge(),
        _ => compare(v, &values[0]).is_ge() && compare(v, &values[1]).is_le(),
    })
}

/// Compares two field values as timestamps if both are, else as numbers if both are, else as strings.
pub(super) fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    use dp_model::timestamp::parse;
    if let (Some(x), Some(y)) = (
        parse(a).filter(|_| a.contains('-')),
        parse(b).filter(|_| b.contains('-')),
    ) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
    }
    a.cmp(b)
}

pub(super) fn object_exists(p: &Pipeline, id: &str) -> bool {
    p.instances.contains_key(id)
        || p.attempts.contains_key(id)
        || p.definition().is_some_and(|d| d.object(id).is_some())
}

/// The instance whose runtime fields (`@scheduledStartTime`, ...) an expression on `id` sees.
pub(super) fn runtime_instance<'a>(p: &'a Pipeline, id: &str) -> Option<&'a Instance> {
    p.instances.get(id).or_else(|| {
        p.attempts
            .get(id)
            .map(|a| &p.instances[a.instance.as_str()])
    })
}

pub(super) fn push_error_fields(fields: &mut Vec<Field>, error: &Option<ErrorInfo>) {
    if let Some(e) = error {
        if let Some(v) = &e.id {
            fields.push(text("errorId", v));
        }
        if let Some(v) = &e.message {
            fields.push(text("errorMessage", v));
        }
        if let Some(v) = &e.stack_trace {
            fields.push(text("errorStackTrace", v));
        }
    }
}

pub(super) fn instance_runtime_fields(p: &Pipeline, inst: &Instance) -> Vec<Field> {
    let mut fields = vec![reference("@componentParent", &inst.component)];
    if let Some(head) = inst.attempts.last() {
        fields.push(reference("@headAttempt", head));
    }
    let status = if inst.paused && !inst.status.is_terminal() && inst.status != Status::Running {
        "PAUSED"
    } else {
        inst.status.as_str()
    };
    fields.push(text("@status", status));
    fields.push(text(
        "@scheduledStartTime",
        format_utc(inst.scheduled_start),
    ));
    if let Some(end) = inst.scheduled_end {
        fields.push(text("@scheduledEndTime", format_utc(end)));
    }
    if let Some(t) = inst.actual_start {
        fields.push(text("@actualStartTime", format_utc(t)));
    }
    if let Some(t) = inst.actual_end {
        fields.push(text("@actualEndTime", format_utc(t)));
    }
    fields.push(text("@attemptCount", inst.attempts.len().to_string()));
    fields.push(text(
        "@triesLeft",
        inst.max_attempts
            .saturating_sub(inst.attempts.len() as u32)
            .to_string(),
    ));
    push_error_fields(&mut fields, &inst.error);
    if let Some(head) = inst.attempts.last().and_then(|a| p.attempts.get(a)) {
        push_resource_fields(&mut fields, head);
    }
    if let Some(r) = &inst.runs_on {
        fields.push(reference("@resource", r));
    }
    for dep in &inst.depends_on {
        fields.push(reference("@dependsOnInstance", dep));
    }
    for event in &inst.events {
        fields.push(text("@event", event));
    }
    fields.push(text("@sphere", "INSTANCE"));
    fields.push(text("@pipelineId", &p.id));
    fields
}

pub(super) fn attempt_runtime_fields(p: &Pipeline, attempt: &Attempt) -> Vec<Field> {
    let inst = &p.instances[attempt.instance.as_str()];
    let mut fields = vec![
        reference("@componentParent", &inst.component),
        reference("@instanceParent", &inst.id),
        text("@status", attempt.status.as_str()),
        text("@attemptNumber", attempt.number.to_string()),
        text("@scheduledStartTime", format_utc(inst.scheduled_start)),
    ];
    if let Some(end) = inst.scheduled_end {
        fields.push(text("@scheduledEndTime", format_utc(end)));
    }
    if let Some(t) = attempt.actual_start {
        fields.push(text("@actualStartTime", format_utc(t)));
    }
    if let Some(t) = attempt.actual_end {
        fields.push(text("@actualEndTime", format_utc(t)));
    }
    if let Some(h) = &attempt.hostname {
        fields.push(text("@hostname", h));
    }
    if let Some(t) = attempt.last_report {
        fields.push(text("@reportProgressTime", format_utc(t)));
    }
    push_error_fields(&mut fields, &attempt.error);
    push_resource_fields(&mut fields, attempt);
    fields.push(text("@sphere", "ATTEMPT"));
    fields.push(text("@pipelineId", &p.id));
    fields.extend(attempt.reported.iter().cloned());
    fields
}

/// A resource attempt's local runner: `@resourceId` (`local-<pid>`) and `@resourceStatus`.
fn push_resource_fields(fields: &mut Vec<Field>, attempt: &Attempt) {
    let Some(id) = &attempt.resource_id else {
        return;
    };
    fields.push(text("@resourceId", id));
    let status = match attempt.status {
        Status::Creating => "starting",
        Status::Running => "running",
        _ => "stopped",
    };
    fields.push(text("@resourceStatus", status));
}

/// Runtime fields first, then the component's fields that they do not already name.
pub(super) fn with_component_fields(
    mut fields: Vec<Field>,
    def: &Definition,
    component: &str,
) -> Vec<Field> {
    let taken: HashSet<String> = fields.iter().map(|f| f.key.clone()).collect();
    fields.extend(
        def.effective_fields(component)
            .into_iter()
            .filter(|f| !taken.contains(&f.key) && f.key != "parent"),
    );
    fields
}

/// Any object of the pipeline as describe-objects shows it.
pub(super) fn render(p: &Pipeline, id: &str) -> Option<PipelineObject> {
    if let Some(inst) = p.instances.get(id) {
        let fields = with_component_fields(
            instance_runtime_fields(p, inst),
            &inst.definition,
            &inst.component,
        );
        return Some(PipelineObject {
            id: id.into(),
            name: id.into(),
            fields,
        });
    }
    if let Some(attempt) = p.attempts.get(id) {
        let inst = &p.instances[attempt.instance.as_str()];
        let fields = with_component_fields(
            attempt_runtime_fields(p, attempt),
            &inst.definition,
            &inst.component,
        );
        return Some(PipelineObject {
            id: id.into(),
            name: id.into(),
            fields,
        });
    }
    p.definition().and_then(|d| d.object(id)).cloned()
}

/// Expressions see definition objects through their effective fields, and instances and attempts through their
/// runtime fields too; a component referenced from a task borrows the task's `@` times it lacks.
pub(super) struct RunContext<'a> {
    pub(super) pipeline: &'a Pipeline,
    pub(super) current_instance: Option<&'a Instance>,
}

impl Context for RunContext<'_> {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        let p = self.pipeline;
        // A precondition's expressions see the object it guards (`#{node.directoryPath}` on an S3KeyExists of a
        // data node) where the precondition itself has no such field.
        let owner = |inst: &Instance| inst.owner.as_deref().and_then(|o| self.field(o, key));
        if let Some(inst) = p.instances.get(object) {
            let fields = with_component_fields(
                instance_runtime_fields(p, inst),
                &inst.definition,
                &inst.component,
            );
            return definition::first_of(&fields, key).or_else(|| owner(inst));
        }
        if let Some(a) = p.attempts.get(object) {
            let inst = &p.instances[a.instance.as_str()];
            let fields = with_component_fields(
                attempt_runtime_fields(p, a),
                &inst.definition,
                &inst.component,
            );
            return definition::first_of(&fields, key).or_else(|| owner(inst));
        }
        let def = self
            .current_instance
            .map(|i| &*i.definition)
            .or(p.definition().map(|d| &**d))?;
        def.first(object, key).or_else(|| {
            let inst = self.current_instance.filter(|_| key.starts_with('@'))?;
            definition::first_of(&instance_runtime_fields(p, inst), key)
        })
    }

    fn parameter(&self, id: &str) -> Option<String> {
        let def = self
            .current_instance
            .map(|i| &*i.definition)
            .or(self.pipeline.definition().map(|d| &**d))?;
        def.parameter(id)
    }
}

pub(super) fn evaluate_on(p: &Pipeline, object: &str, expression: &str) -> Result<String> {
    if !object_exists(p, object) {
        return Err(ServiceError::invalid_request(format!(
            "Object {object} not found in pipeline {}",
            p.id
        )));
    }
    let ctx = RunContext {
        pipeline: p,
        current_instance: runtime_instance(p, object),
    };
    expr::evaluate_template(expression, object, &ctx)
        .map_err(|e| ServiceError::invalid_request(e.message))
}
