//! Pipeline definitions: the objects a client puts, how their fields inherit, and the checks the service makes.
//!
//! A field of an object comes from the object itself, else from its `parent` chain, else from the `Default`
//! object (whose `type` and `parent` are not inherited). [`validate`] returns the service's validation errors
//! (the definition is refused) and warnings (it is stored). This module holds no runtime state: instances and
//! attempts live in the engine.

use std::collections::{HashMap, HashSet};

use dp_model::types::{Field, ParameterObject, ParameterValue, PipelineObject};

use crate::expr::{Context, FieldValue};
use crate::schedule::Period;

/// Object types whose instances are tasks.
pub const ACTIVITY_TYPES: &[&str] = &[
    "ShellCommandActivity",
    "CopyActivity",
    "EmrActivity",
    "HadoopActivity",
    "HiveActivity",
    "HiveCopyActivity",
    "PigActivity",
    "RedshiftCopyActivity",
    "SqlActivity",
];

/// Object types the service knows that are not activities.
pub const OTHER_TYPES: &[&str] = &[
    "Schedule",
    "Ec2Resource",
    "EmrCluster",
    "S3DataNode",
    "SqlDataNode",
    "DynamoDBDataNode",
    "RedshiftDataNode",
    "MySqlDataNode",
    "JdbcDatabase",
    "RdsDatabase",
    "RedshiftDatabase",
    "Exists",
    "S3KeyExists",
    "S3PrefixNotEmpty",
    "ShellCommandPrecondition",
    "DynamoDBTableExists",
    "DynamoDBDataExists",
    "RdsSqlPrecondition",
    "SnsAlarm",
    "Terminate",
    "CSV",
    "TSV",
    "Custom",
    "RegEx",
    "DynamoDBDataFormat",
    "DynamoDBExportDataFormat",
    "EmrConfiguration",
    "HttpProxy",
    "Property",
];

const PARAMETER_TYPES: &[&str] = &["String", "Integer", "Double", "AWS::S3::ObjectKey"];

/// Resource types: dp-local stands a local task runner in for each of their instances.
pub const RESOURCE_TYPES: &[&str] = &["Ec2Resource", "EmrCluster"];

/// Data node types: their instances wait on their preconditions (and, as outputs, on the activity that writes
/// them).
pub const DATA_NODE_TYPES: &[&str] = &[
    "S3DataNode",
    "SqlDataNode",
    "MySqlDataNode",
    "DynamoDBDataNode",
    "RedshiftDataNode",
];

/// Precondition types the service checks itself (system-managed): dp-local hands them to a runner of its own.
pub const SYSTEM_PRECONDITION_TYPES: &[&str] = &[
    "S3KeyExists",
    "S3PrefixNotEmpty",
    "DynamoDBTableExists",
    "DynamoDBDataExists",
];

/// Precondition types that run on the pipeline's own resources or worker groups (user-managed).
pub const USER_PRECONDITION_TYPES: &[&str] =
    &["Exists", "ShellCommandPrecondition", "RdsSqlPrecondition"];

/// What part a component plays in a run, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An activity: its instances are tasks.
    Activity,
    /// An `Ec2Resource` or `EmrCluster`: its instances are local task runners.
    Resource,
    /// A data node: its instances become ready when their preconditions hold.
    DataNode,
    /// A precondition: its instances are checks, run as tasks.
    Precondition,
    /// Anything else (schedules, formats, databases, actions): no instances.
    Other,
}

impl Role {
    /// The role of an object of type `type_name`.
    pub fn of(type_name: &str) -> Role {
        if ACTIVITY_TYPES.contains(&type_name) {
            Role::Activity
        } else if RESOURCE_TYPES.contains(&type_name) {
            Role::Resource
        } else if DATA_NODE_TYPES.contains(&type_name) {
            Role::DataNode
        } else if SYSTEM_PRECONDITION_TYPES.contains(&type_name)
            || USER_PRECONDITION_TYPES.contains(&type_name)
        {
            Role::Precondition
        } else {
            Role::Other
        }
    }
}

/// The parameter id `id` without the `*` that marks a secret parameter (`*myPassword`).
pub fn parameter_name(id: &str) -> &str {
    id.strip_prefix('*').unwrap_or(id)
}

/// How a pipeline's activities are scheduled (the `scheduleType` of `Default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    /// Instances run at the start of each period.
    Cron,
    /// Instances run at the end of each period (the service's default).
    TimeSeries,
    /// One run per activation.
    OnDemand,
}

/// A stored definition: objects, parameter declarations and parameter values.
#[derive(Debug, Clone, Default)]
pub struct Definition {
    /// The objects, in the order they were put.
    pub objects: Vec<PipelineObject>,
    /// The parameter declarations.
    pub parameter_objects: Vec<ParameterObject>,
    /// The parameter values.
    pub parameter_values: Vec<ParameterValue>,
    index: HashMap<String, usize>,
}

impl Definition {
    /// A definition of these parts.
    pub fn new(
        objects: Vec<PipelineObject>,
        parameter_objects: Vec<ParameterObject>,
        parameter_values: Vec<ParameterValue>,
    ) -> Self {
        let mut index = HashMap::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            index.entry(o.id.clone()).or_insert(i);
        }
        Definition {
            objects,
            parameter_objects,
            parameter_values,
            index,
        }
    }

    /// The object with id `id`.
    pub fn object(&self, id: &str) -> Option<&PipelineObject> {
        self.index.get(id).map(|&i| &self.objects[i])
    }

    /// The fields of `id` with inheritance applied: own fields, then the `parent` chain's, then `Default`'s.
    pub fn effective_fields(&self, id: &str) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        let mut seen_keys: HashSet<String> = HashSet::new();
        let mut visited = HashSet::new();
        let mut next = Some(id.to_string());
        while let Some(current) = next.take() {
            if !visited.insert(current.clone()) {
                break;
            }
            let Some(object) = self.object(&current) else {
                break;
            };
            let mut added = HashSet::new();
            for f in &object.fields {
                if current != id && f.key == "parent" {
                    continue;
                }
                if !seen_keys.contains(&f.key) {
                    added.insert(f.key.clone());
                    out.push(f.clone());
                }
            }
            seen_keys.extend(added);
            next = object
                .fields
                .iter()
                .find(|f| f.key == "parent")
                .and_then(|f| f.ref_value.clone());
        }
        if id != "Default"
            && let Some(default) = self.object("Default")
        {
            for f in &default.fields {
                if f.key != "type" && f.key != "parent" && !seen_keys.contains(&f.key) {
                    out.push(f.clone());
                }
            }
        }
        out
    }

    /// The first effective value of `key` on `id`.
    pub fn first(&self, id: &str, key: &str) -> Option<FieldValue> {
        first_of(&self.effective_fields(id), key)
    }

    /// The first effective string value of `key` on `id`.
    pub fn string(&self, id: &str, key: &str) -> Option<String> {
        match self.first(id, key) {
            Some(FieldValue::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// The effective type of `id`.
    pub fn type_of(&self, id: &str) -> Option<String> {
        self.string(id, "type")
    }

    /// The role `id` plays in a run, by its effective type.
    pub fn role(&self, id: &str) -> Role {
        self.type_of(id)
            .map(|t| Role::of(&t))
            .unwrap_or(Role::Other)
    }

    /// The objects `id` refers to through `key`, in order (a field may repeat: several inputs, preconditions).
    pub fn refs(&self, id: &str, key: &str) -> Vec<String> {
        self.effective_fields(id)
            .into_iter()
            .filter(|f| f.key == key)
            .filter_map(|f| f.ref_value)
            .collect()
    }

    /// Whether `id` is an activity.
    pub fn is_activity(&self, id: &str) -> bool {
        self.type_of(id)
            .is_some_and(|t| ACTIVITY_TYPES.contains(&t.as_str()))
    }

    /// The ids of the activities, in definition order.
    pub fn activities(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| self.is_activity(&o.id))
            .map(|o| o.id.clone())
            .collect()
    }

    /// The pipeline's schedule type; `None` if `Default` names an unknown one.
    pub fn schedule_type(&self) -> Option<ScheduleType> {
        match self
            .object("Default")
            .and_then(|d| d.fields.iter().find(|f| f.key == "scheduleType"))
            .and_then(|f| f.string_value.as_deref())
        {
            None => Some(ScheduleType::TimeSeries),
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "cron" => Some(ScheduleType::Cron),
                "timeseries" => Some(ScheduleType::TimeSeries),
                "ondemand" => Some(ScheduleType::OnDemand),
                _ => None,
            },
        }
    }

    /// The value of parameter `id`: its first value, else its declared default.
    /// A secret parameter (`*myPassword`) answers to its name with or without the `*`.
    pub fn parameter(&self, id: &str) -> Option<String> {
        let same = |other: &str| parameter_name(other) == parameter_name(id);
        self.parameter_values
            .iter()
            .find(|v| same(&v.id))
            .map(|v| v.string_value.clone())
            .or_else(|| {
                self.parameter_objects
                    .iter()
                    .find(|p| same(&p.id))
                    .and_then(|p| p.attributes.iter().find(|a| a.key == "default"))
                    .map(|a| a.string_value.clone())
            })
    }

    /// The values that must never be shown: those of `*`-parameters, and `*`-fields that hold plain text.
    pub fn secrets(&self) -> Vec<String> {
        let starred = |id: &str| id.starts_with('*');
        let mut out: Vec<String> = self
            .parameter_values
            .iter()
            .filter(|v| starred(&v.id))
            .map(|v| v.string_value.clone())
            .chain(
                self.parameter_objects
                    .iter()
                    .filter(|p| starred(&p.id))
                    .flat_map(|p| {
                        p.attributes
                            .iter()
                            .filter(|a| a.key == "default")
                            .map(|a| a.string_value.clone())
                    }),
            )
            .chain(self.objects.iter().flat_map(|o| {
                o.fields
                    .iter()
                    .filter(|f| starred(&f.key))
                    .filter_map(|f| f.string_value.clone())
                    .filter(|v| !v.contains("#{"))
            }))
            .filter(|v| !v.is_empty())
            .collect();
        // Longest first, so that a secret containing another is masked whole.
        out.sort_by_key(|v| std::cmp::Reverse(v.len()));
        out.dedup();
        out
    }

    /// `text` with every secret of the definition masked.
    pub fn redact(&self, text: &str) -> String {
        self.secrets().iter().fold(text.to_string(), |t, secret| {
            t.replace(secret.as_str(), "********")
        })
    }

    /// Declared parameters that have neither a value nor a default and are not optional.
    pub fn missing_parameters(&self) -> Vec<String> {
        self.parameter_objects
            .iter()
            .filter(|p| {
                let optional = p
                    .attributes
                    .iter()
                    .any(|a| a.key == "optional" && a.string_value == "true");
                !optional && self.parameter(&p.id).is_none()
            })
            .map(|p| p.id.clone())
            .collect()
    }
}

/// The first value of `key` among `fields`.
pub fn first_of(fields: &[Field], key: &str) -> Option<FieldValue> {
    fields
        .iter()
        .find(|f| f.key == key)
        .and_then(|f| match (&f.string_value, &f.ref_value) {
            (Some(s), _) => Some(FieldValue::Text(s.clone())),
            (None, Some(r)) => Some(FieldValue::Ref(r.clone())),
            (None, None) => None,
        })
}

impl Context for Definition {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        self.first(object, key)
    }

    fn parameter(&self, id: &str) -> Option<String> {
        Definition::parameter(self, id)
    }
}

/// What validation found: errors refuse the definition, warnings do not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// `(object id, message)` errors, grouped by object in definition order.
    pub errors: Vec<(String, Vec<String>)>,
    /// `(object id, message)` warnings.
    pub warnings: Vec<(String, Vec<String>)>,
}

fn note(list: &mut Vec<(String, Vec<String>)>, id: &str, message: String) {
    match list.iter_mut().find(|(i, _)| i == id) {
        Some((_, messages)) => messages.push(message),
        None => list.push((id.to_string(), vec![message])),
    }
}

/// The service's checks of a definition (the documented subset).
pub fn validate(def: &Definition) -> Findings {
    let mut f = Findings::default();
    let mut ids = HashSet::new();
    let mut referenced: HashSet<&str> = HashSet::new();
    let mut parents: HashSet<&str> = HashSet::new();
    for o in &def.objects {
        if !ids.insert(o.id.as_str()) {
            note(
                &mut f.errors,
                &o.id,
                format!("Duplicate object id '{}'", o.id),
            );
        }
        for field in &o.fields {
            if let Some(r) = &field.ref_value {
                referenced.insert(r);
                if field.key == "parent" {
                    parents.insert(r);
                }
                if def.object(r).is_none() {
                    note(
                        &mut f.errors,
                        &o.id,
                        format!(
                            "Field '{}' refers to object '{r}', which does not exist",
                            field.key
                        ),
                    );
                }
            }
            if field.string_value.is_some() && field.ref_value.is_some() {
                note(
                    &mut f.errors,
                    &o.id,
                    format!(
                        "Field '{}' has both a stringValue and a refValue",
                        field.key
                    ),
                );
            }
        }
    }
    // As the service does (the samples' READMEs rely on it), a parameter may be given only a value, without a
    // declaration; either makes a reference resolvable.
    let declared: HashSet<&str> = def
        .parameter_objects
        .iter()
        .map(|p| parameter_name(&p.id))
        .chain(def.parameter_values.iter().map(|v| parameter_name(&v.id)))
        .collect();
    let schedule_type = def.schedule_type();
    if schedule_type.is_none() {
        note(
            &mut f.errors,
            "Default",
            "'scheduleType' must be one of cron, timeseries, ondemand".into(),
        );
    }
    for o in &def.objects {
        let id = o.id.as_str();
        let mut visited = HashSet::new();
        let mut cursor = Some(id.to_string());
        while let Some(c) = cursor.take() {
            if !visited.insert(c.clone()) {
                note(&mut f.errors, id, "The 'parent' chain has a cycle".into());
                break;
            }
            cursor = def
                .object(&c)
                .and_then(|x| x.fields.iter().find(|f| f.key == "parent"))
                .and_then(|f| f.ref_value.clone());
        }
        let fields = def.effective_fields(id);
        for field in &fields {
            if let Some(s) = &field.string_value {
                for name in parameter_references(s) {
                    if !declared.contains(parameter_name(name)) {
                        note(
                            &mut f.errors,
                            id,
                            format!(
                                "Field '{}' references parameter '{name}', which is not declared",
                                field.key
                            ),
                        );
                    }
                }
            }
        }
        let type_name = def.type_of(id);
        match type_name.as_deref() {
            None if id == "Default" || parents.contains(id) => continue,
            None => {
                note(&mut f.errors, id, "Object has no 'type' field".into());
                continue;
            }
            Some(t) if !ACTIVITY_TYPES.contains(&t) && !OTHER_TYPES.contains(&t) => {
                note(&mut f.errors, id, format!("Unknown object type '{t}'"));
                continue;
            }
            _ => {}
        }
        let type_name = type_name.unwrap_or_default();
        let text = |key: &str| match first_of(&fields, key) {
            Some(FieldValue::Text(s)) => Some(s),
            _ => None,
        };
        let has = |key: &str| fields.iter().any(|f| f.key == key);
        for key in ["reportProgressTimeout", "retryDelay", "attemptTimeout"] {
            if let Some(v) = text(key)
                && !v.contains("#{")
                && Period::parse(&v).is_none()
            {
                note(
                    &mut f.errors,
                    id,
                    format!("'{key}' must be a period such as '15 minutes', got '{v}'"),
                );
            }
        }
        if let Some(v) = text("maximumRetries")
            && v.parse::<u32>().is_err()
        {
            note(
                &mut f.errors,
                id,
                format!("'maximumRetries' must be a non-negative integer, got '{v}'"),
            );
        }
        if ACTIVITY_TYPES.contains(&type_name.as_str()) {
            let (runs_on, worker_group) = (has("runsOn"), has("workerGroup"));
            if !runs_on && !worker_group {
                note(
                    &mut f.errors,
                    id,
                    "An activity needs 'runsOn' or 'workerGroup'".into(),
                );
            }
            if runs_on && worker_group {
                note(
                    &mut f.warnings,
                    id,
                    "'workerGroup' is ignored because 'runsOn' is set: the activity runs on its resource"
                        .into(),
                );
            }
            match schedule_type {
                Some(ScheduleType::OnDemand) if has("schedule") => {
                    note(
                        &mut f.warnings,
                        id,
                        "'schedule' is ignored: the pipeline's scheduleType is ondemand".into(),
                    );
                }
                Some(ScheduleType::Cron | ScheduleType::TimeSeries) if !has("schedule") => {
                    note(
                        &mut f.errors,
                        id,
                        "'schedule' is required unless the pipeline's scheduleType is ondemand"
                            .into(),
                    );
                }
                _ => {}
            }
            for dep in fields.iter().filter(|f| f.key == "dependsOn") {
                match &dep.ref_value {
                    Some(r) if def.object(r).is_some() && !def.is_activity(r) => {
                        note(
                            &mut f.errors,
                            id,
                            format!("'dependsOn' must refer to an activity; '{r}' is not one"),
                        );
                    }
                    None => note(&mut f.errors, id, "'dependsOn' must be a reference".into()),
                    _ => {}
                }
            }
        }
        // References must point at objects of the right kind, or the run could not be planned.
        let kinds: [(&str, &[Role], &str); 4] = [
            ("runsOn", &[Role::Resource], "an Ec2Resource or EmrCluster"),
            ("input", &[Role::DataNode], "a data node"),
            ("output", &[Role::DataNode], "a data node"),
            ("precondition", &[Role::Precondition], "a precondition"),
        ];
        for (key, roles, what) in kinds {
            for field in fields.iter().filter(|f| f.key == key) {
                let Some(r) = &field.ref_value else {
                    note(
                        &mut f.errors,
                        id,
                        format!("'{key}' must be a reference to {what}"),
                    );
                    continue;
                };
                if def.object(r).is_some() && !roles.contains(&def.role(r)) {
                    let found = def
                        .type_of(r)
                        .unwrap_or_else(|| "an object without a type".into());
                    note(
                        &mut f.errors,
                        id,
                        format!("'{key}' must refer to {what}; '{r}' is {found}"),
                    );
                }
            }
        }
        if let Some(o) = def.object(id) {
            for field in &o.fields {
                let Some(text) = field.string_value.as_deref().filter(|s| s.contains("#{")) else {
                    continue;
                };
                if let Err(e) = crate::expr::evaluate_template(text, id, &Planning(def)) {
                    note(
                        &mut f.errors,
                        id,
                        format!(
                            "Field '{}' has an expression that cannot be evaluated: {e}",
                            field.key
                        ),
                    );
                }
            }
        }
        if type_name == "Schedule" {
            match text("period") {
                None => note(&mut f.errors, id, "A Schedule needs a 'period'".into()),
                Some(p) => match Period::parse(&p) {
                    None => note(
                        &mut f.errors,
                        id,
                        format!("'period' must be like '1 day' or '15 minutes', got '{p}'"),
                    ),
                    Some(p) if p.min_seconds() < 15 * 60 => note(
                        &mut f.errors,
                        id,
                        "'period' must be at least 15 minutes".into(),
                    ),
                    _ => {}
                },
            }
            match (text("startDateTime"), text("startAt")) {
                (Some(s), None) if dp_model::timestamp::parse(&s).is_none() => note(
                    &mut f.errors,
                    id,
                    format!("'startDateTime' is not a date and time: '{s}'"),
                ),
                (Some(_), None) => {}
                (None, Some(s)) if s == "FIRST_ACTIVATION_DATE_TIME" => {}
                (None, Some(s)) => note(
                    &mut f.errors,
                    id,
                    format!("'startAt' must be FIRST_ACTIVATION_DATE_TIME, got '{s}'"),
                ),
                (Some(_), Some(_)) => note(
                    &mut f.errors,
                    id,
                    "A Schedule takes 'startDateTime' or 'startAt', not both".into(),
                ),
                (None, None) => note(
                    &mut f.errors,
                    id,
                    "A Schedule needs 'startDateTime' or 'startAt'".into(),
                ),
            }
            if let Some(s) = text("endDateTime")
                && dp_model::timestamp::parse(&s).is_none()
            {
                note(
                    &mut f.errors,
                    id,
                    format!("'endDateTime' is not a date and time: '{s}'"),
                );
            }
            if let Some(s) = text("occurrences")
                && s.parse::<u32>().ok().filter(|n| *n > 0).is_none()
            {
                note(
                    &mut f.errors,
                    id,
                    format!("'occurrences' must be a positive integer, got '{s}'"),
                );
            }
        }
        if !ACTIVITY_TYPES.contains(&type_name.as_str()) && !referenced.contains(id) {
            note(
                &mut f.warnings,
                id,
                "Object is not referenced by any other object".into(),
            );
        }
    }
    for p in &def.parameter_objects {
        if !parameter_name(&p.id).starts_with("my") {
            note(
                &mut f.errors,
                &p.id,
                "A parameter id must begin with 'my' (or '*my' for a secret parameter)".into(),
            );
        }
        match p.attributes.iter().find(|a| a.key == "type") {
            None => note(&mut f.errors, &p.id, "A parameter needs a 'type'".into()),
            Some(a) if !PARAMETER_TYPES.contains(&a.string_value.as_str()) => note(
                &mut f.errors,
                &p.id,
                format!(
                    "Parameter type '{}' is not one of {}",
                    a.string_value,
                    PARAMETER_TYPES.join(", ")
                ),
            ),
            _ => {}
        }
    }
    for v in &def.parameter_values {
        let Some(p) = def
            .parameter_objects
            .iter()
            .find(|p| parameter_name(&p.id) == parameter_name(&v.id))
        else {
            // An undeclared parameter's value is plain text: nothing to check it against.
            continue;
        };
        let kind = p
            .attributes
            .iter()
            .find(|a| a.key == "type")
            .map(|a| a.string_value.as_str());
        let ok = match kind {
            Some("Integer") => v.string_value.trim().parse::<i64>().is_ok(),
            Some("Double") => v.string_value.trim().parse::<f64>().is_ok(),
            _ => true,
        };
        if !ok {
            note(
                &mut f.errors,
                &v.id,
                format!(
                    "Value '{}' is not a valid {}",
                    v.string_value,
                    kind.unwrap_or("value")
                ),
            );
        }
        if let Some(allowed) = p.attributes.iter().find(|a| a.key == "allowedValues") {
            let allowed: Vec<&str> = allowed.string_value.split(',').map(str::trim).collect();
            if !allowed.contains(&v.string_value.as_str()) {
                note(
                    &mut f.errors,
                    &v.id,
                    format!(
                        "Value '{}' is not one of the allowedValues {}",
                        v.string_value,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    f
}

/// The definition as expressions see it before a run: runtime fields (`@scheduledStartTime`, `@actualStartTime`…)
/// and parameters whose values come only at activation stand for themselves with a plausible value, so that what
/// is left to fail is what would fail at run time for every run: unknown functions, fields no object has, bad
/// syntax.
struct Planning<'a>(&'a Definition);

/// Fields the service sets on instances and attempts at run time without an `@` (an action's message names the
/// failed object's `#{node.errorMessage}`).
const RUNTIME_FIELDS: &[&str] = &[
    "errorId",
    "errorMessage",
    "errorStackTrace",
    "hostname",
    "status",
];

impl Context for Planning<'_> {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        if key.starts_with('@') || RUNTIME_FIELDS.contains(&key) {
            return Some(FieldValue::Text("2000-01-01T00:00:00".into()));
        }
        self.0.first(object, key).or_else(|| {
            // A precondition's or an action's `node` is the object that uses it: look there.
            self.0
                .objects
                .iter()
                .filter(|o| {
                    o.fields
                        .iter()
                        .any(|f| f.ref_value.as_deref() == Some(object))
                })
                .find_map(|o| self.0.first(&o.id, key))
        })
    }

    fn parameter(&self, id: &str) -> Option<String> {
        self.0.parameter(id).or_else(|| {
            self.0
                .parameter_objects
                .iter()
                .any(|p| p.id == id)
                .then(|| "1".into())
        })
    }
}

/// The parameter names referenced as `#{myName}` in `text` (a whole expression that is one `my...` name).
fn parameter_references(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        let body = &rest[start + 2..];
        let Some(end) = body.find('}') else { break };
        let inner = body[..end].trim();
        let name = parameter_name(inner);
        if name.starts_with("my") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(inner);
        }
        rest = &body[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(id: &str, fields: &[(&str, &str)]) -> PipelineObject {
        PipelineObject {
            id: id.into(),
            name: id.into(),
            fields: fields
                .iter()
                .map(|(k, v)| match v.strip_prefix('&') {
                    Some(r) => Field {
                        key: (*k).into(),
                        string_value: None,
                        ref_value: Some(r.into()),
                    },
                    None => Field {
                        key: (*k).into(),
                        string_value: Some((*v).into()),
                        ref_value: None,
                    },
                })
                .collect(),
        }
    }

    fn check(objects: Vec<PipelineObject>, errors: &[(&str, &str)], warnings: &[(&str, &str)]) {
        let found = validate(&Definition::new(objects, vec![], vec![]));
        let flat = |l: &[(String, Vec<String>)]| -> Vec<(String, String)> {
            l.iter()
                .flat_map(|(id, ms)| ms.iter().map(move |m| (id.clone(), m.clone())))
                .collect()
        };
        let want = |l: &[(&str, &str)]| -> Vec<(String, String)> {
            l.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(flat(&found.errors), want(errors), "errors");
        assert_eq!(flat(&found.warnings), want(warnings), "warnings");
    }

    #[test]
    fn ondemand_shell_command_is_valid() {
        check(
            vec![
                object(
                    "Default",
                    &[("scheduleType", "ondemand"), ("workerGroup", "wg")],
                ),
                object(
                    "Act",
                    &[("type", "ShellCommandActivity"), ("command", "echo hi")],
                ),
            ],
            &[],
            &[],
        );
    }

    #[test]
    fn reports_errors_and_warnings() {
        check(
            vec![
                object("Default", &[("scheduleType", "cron")]),
                object(
                    "Act",
                    &[("type", "ShellCommandActivity"), ("runsOn", "&Missing")],
                ),
                object("Odd", &[("type", "Frobnicator")]),
                object("Sched", &[("type", "Schedule"), ("period", "5 minutes")]),
            ],
            &[
                (
                    "Act",
                    "Field 'runsOn' refers to object 'Missing', which does not exist",
                ),
                (
                    "Act",
                    "'schedule' is required unless the pipeline's scheduleType is ondemand",
                ),
                ("Odd", "Unknown object type 'Frobnicator'"),
                ("Sched", "'period' must be at least 15 minutes"),
                ("Sched", "A Schedule needs 'startDateTime' or 'startAt'"),
            ],
            &[("Sched", "Object is not referenced by any other object")],
        );
    }

    #[test]
    fn secret_parameters_and_reference_kinds() {
        let param = |id: &str| ParameterObject {
            id: id.into(),
            attributes: vec![dp_model::types::ParameterAttribute {
                key: "type".into(),
                string_value: "String".into(),
            }],
        };
        let objects = vec![
            object("Default", &[("scheduleType", "ondemand")]),
            object(
                "Act",
                &[
                    ("type", "ShellCommandActivity"),
                    ("runsOn", "&Data"),
                    ("input", "&Res"),
                    (
                        "command",
                        "echo #{*myPassword} #{myUser} #{format(@scheduledStartTime,'YYYY')}",
                    ),
                    ("stage", "#{frobnicate(1)}"),
                ],
            ),
            object("Res", &[("type", "Ec2Resource")]),
            object(
                "Data",
                &[
                    ("type", "S3DataNode"),
                    ("filePath", "#{node.directoryPath}"),
                ],
            ),
        ];
        let def = Definition::new(
            objects,
            vec![param("*myPassword"), param("myUser"), param("*password")],
            vec![],
        );
        let found = validate(&def);
        let errors: Vec<String> = found
            .errors
            .iter()
            .flat_map(|(id, ms)| ms.iter().map(move |m| format!("{id}: {m}")))
            .collect();
        assert_eq!(
            errors,
            [
                "Act: 'runsOn' must refer to an Ec2Resource or EmrCluster; 'Data' is S3DataNode",
                "Act: 'input' must refer to a data node; 'Res' is Ec2Resource",
                "Act: Field 'stage' has an expression that cannot be evaluated: Unknown function frobnicate",
                "Data: Field 'filePath' has an expression that cannot be evaluated: Unable to resolve directoryPath for object: Data",
                "*password: A parameter id must begin with 'my' (or '*my' for a secret parameter)",
            ]
        );
    }

    #[test]
    fn secrets_are_masked() {
        let def = Definition::new(
            vec![object("Db", &[("*password", "plain-pw"), ("user", "u")])],
            vec![],
            vec![ParameterValue {
                id: "*myKey".into(),
                string_value: "k3y-value".into(),
            }],
        );
        assert_eq!(
            def.redact("user u, key k3y-value, pw plain-pw"),
            "user u, key ********, pw ********"
        );
    }

    #[test]
    fn inheritance_order() {
        let def = Definition::new(
            vec![
                object(
                    "Default",
                    &[
                        ("workerGroup", "from-default"),
                        ("type", "Ignored"),
                        ("maximumRetries", "5"),
                    ],
                ),
                object(
                    "Base",
                    &[("workerGroup", "from-parent"), ("command", "base")],
                ),
                object(
                    "Act",
                    &[
                        ("type", "ShellCommandActivity"),
                        ("parent", "&Base"),
                        ("command", "own"),
                    ],
                ),
            ],
            vec![],
            vec![],
        );
        assert_eq!(def.string("Act", "command").as_deref(), Some("own"));
        assert_eq!(
            def.string("Act", "workerGroup").as_deref(),
            Some("from-parent")
        );
        assert_eq!(def.string("Act", "maximumRetries").as_deref(), Some("5"));
        assert_eq!(def.type_of("Base"), None);
    }
}
