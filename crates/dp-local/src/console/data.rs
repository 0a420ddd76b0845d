//! What the console shows, read through the same dispatcher as the API (`dispatch::call`): no second copy of the
//! service rules, so the console and `dp` always agree. Every read here is an API call made in-process.

use std::collections::BTreeMap;

use dp_model::types::{Field, PipelineObject};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::ServiceError;

/// Calls `operation` with `input` as a client would (without HTTP and signatures).
pub(crate) async fn api(
    engine: &Engine,
    operation: &str,
    input: Value,
) -> Result<Value, ServiceError> {
    let op = dp_model::operation(operation)
        .ok_or_else(|| ServiceError::internal(format!("no operation {operation}")))?;
    let body = serde_json::to_vec(&input).expect("JSON values encode");
    let answer = crate::dispatch::call(engine, op, &body).await?;
    if answer.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&answer).map_err(|e| ServiceError::internal(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ServiceError> {
    serde_json::from_value(value).map_err(|e| ServiceError::internal(e.to_string()))
}

/// The first string value of `key`.
pub(crate) fn text<'a>(fields: &'a [Field], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.key == key && f.string_value.is_some())
        .and_then(|f| f.string_value.as_deref())
}

/// The first reference value of `key`.
pub(crate) fn reference<'a>(fields: &'a [Field], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.key == key && f.ref_value.is_some())
        .and_then(|f| f.ref_value.as_deref())
}

/// One row of the pipelines page.
pub(crate) struct PipelineSummary {
    pub id: String,
    pub name: String,
    pub state: String,
    pub health: String,
    pub created: String,
    pub last_run: String,
    pub counts: BTreeMap<String, usize>,
}

/// Every pipeline, newest first, with its instances counted by status.
pub(crate) async fn pipelines(engine: &Engine) -> Result<Vec<PipelineSummary>, ServiceError> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut input = json!({});
        if let Some(m) = &marker {
            input["marker"] = json!(m);
        }
        let page: dp_model::types::ListPipelinesOutput =
            decode(api(engine, "ListPipelines", input).await?)?;
        ids.extend(page.pipeline_id_list.into_iter().filter_map(|p| p.id));
        match page.marker {
            Some(m) if page.has_more_results == Some(true) => marker = Some(m),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for chunk in ids.chunks(25) {
        let described: dp_model::types::DescribePipelinesOutput =
            decode(api(engine, "DescribePipelines", json!({"pipelineIds": chunk})).await?)?;
        for p in described.pipeline_description_list {
            let field = |k: &str| text(&p.fields, k).unwrap_or("").to_string();
            let mut counts = BTreeMap::new();
            for instance in objects(engine, &p.pipeline_id, "INSTANCE").await? {
                let status = text(&instance.fields, "@status")
                    .unwrap_or("UNKNOWN")
                    .to_string();
                *counts.entry(status).or_insert(0) += 1;
            }
            out.push(PipelineSummary {
                id: p.pipeline_id.clone(),
                name: p.name.clone(),
                state: field("@pipelineState"),
                health: field("@healthStatus"),
                created: field("@creationTime"),
                last_run: field("@latestRunTime"),
                counts,
            });
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Every object of `sphere` (`INSTANCE`, `ATTEMPT`) of a pipeline, described, in query order.
pub(crate) async fn objects(
    engine: &Engine,
    pipeline: &str,
    sphere: &str,
) -> Result<Vec<PipelineObject>, ServiceError> {
    let mut ids: Vec<String> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut input = json!({"pipelineId": pipeline, "sphere": sphere, "limit": 1000});
        if let Some(m) = &marker {
            input["marker"] = json!(m);
        }
        let page: dp_model::types::QueryObjectsOutput =
            decode(api(engine, "QueryObjects", input).await?)?;
        ids.extend(page.ids.unwrap_or_default());
        match page.marker {
            Some(m) if page.has_more_results == Some(true) => marker = Some(m),
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        let mut marker: Option<String> = None;
        loop {
            let mut input = json!({"pipelineId": pipeline, "objectIds": chunk});
            if let Some(m) = &marker {
                input["marker"] = json!(m);
            }
            let page: dp_model::types::DescribeObjectsOutput =
                decode(api(engine, "DescribeObjects", input).await?)?;
            out.extend(page.pipeline_objects);
            match page.marker {
                Some(m) if page.has_more_results == Some(true) => marker = Some(m),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// A pipeline as its page shows it.
pub(crate) struct PipelineView {
    pub id: String,
    pub name: String,
    pub fields: Vec<Field>,
    pub version: String,
    pub definition: Option<dp_model::types::GetPipelineDefinitionOutput>,
    pub definition_error: Option<String>,
    pub instances: Vec<PipelineObject>,
}

/// A pipeline's description, its `version` definition (`latest` or `active`) and its instances (by scheduled
/// start). Attempts are read per instance, when a run is opened ([`instance`]).
pub(crate) async fn pipeline(
    engine: &Engine,
    id: &str,
    version: &str,
) -> Result<PipelineView, ServiceError> {
    let described: dp_model::types::DescribePipelinesOutput =
        decode(api(engine, "DescribePipelines", json!({"pipelineIds": [id]})).await?)?;
    let p = described
        .pipeline_description_list
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::internal("no description"))?;
    let (definition, definition_error) = match api(
        engine,
        "GetPipelineDefinition",
        json!({"pipelineId": id, "version": version}),
    )
    .await
    {
        Ok(v) => (Some(decode(v)?), None),
        Err(e) => (None, Some(e.message)),
    };
    let mut instances = objects(engine, id, "INSTANCE").await?;
    instances.sort_by(|a, b| {
        let key = |o: &PipelineObject| {
            (
                text(&o.fields, "@scheduledStartTime")
                    .unwrap_or("")
                    .to_string(),
                o.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(PipelineView {
        id: p.pipeline_id,
        name: p.name,
        fields: p.fields,
        version: version.to_string(),
        definition,
        definition_error,
        instances,
    })
}

/// One instance and its attempts (in attempt order), as an opened run shows them.
pub(crate) async fn instance(
    engine: &Engine,
    pipeline: &str,
    id: &str,
) -> Result<(PipelineObject, Vec<PipelineObject>), ServiceError> {
    let described: dp_model::types::DescribeObjectsOutput = decode(
        api(
            engine,
            "DescribeObjects",
            json!({"pipelineId": pipeline, "objectIds": [id]}),
        )
        .await?,
    )?;
    let instance = described
        .pipeline_objects
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| ServiceError::invalid_request(format!("no instance {id} in {pipeline}")))?;
    let query = json!({"selectors": [
        {"fieldName": "@instanceParent", "operator": {"type": "REF_EQ", "values": [id]}}
    ]});
    let input = json!({"pipelineId": pipeline, "sphere": "ATTEMPT", "query": query, "limit": 1000});
    let found: dp_model::types::QueryObjectsOutput =
        decode(api(engine, "QueryObjects", input).await?)?;
    let ids = found.ids.unwrap_or_default();
    let mut attempts = Vec::new();
    for chunk in ids.chunks(100) {
        let described: dp_model::types::DescribeObjectsOutput = decode(
            api(
                engine,
                "DescribeObjects",
                json!({"pipelineId": pipeline, "objectIds": chunk}),
            )
            .await?,
        )?;
        attempts.extend(described.pipeline_objects);
    }
    attempts.sort_by_key(|a| {
        text(&a.fields, "@attemptNumber")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    Ok((instance, attempts))
}

/// A task waiting for a runner: its pipeline, instance and worker group.
pub(crate) struct Waiting {
    pub pipeline: String,
    pub pipeline_name: String,
    pub instance: String,
    pub worker_group: String,
}

/// Every instance `WAITING_FOR_RUNNER`, with the worker group it waits for.
pub(crate) async fn waiting(engine: &Engine) -> Result<Vec<Waiting>, ServiceError> {
    let mut out = Vec::new();
    for p in pipelines(engine).await? {
        if p.counts.get("WAITING_FOR_RUNNER").copied().unwrap_or(0) == 0 {
            continue;
        }
        for instance in objects(engine, &p.id, "INSTANCE").await? {
            if text(&instance.fields, "@status") == Some("WAITING_FOR_RUNNER") {
                out.push(Waiting {
                    pipeline: p.id.clone(),
                    pipeline_name: p.name.clone(),
                    instance: instance.id.clone(),
                    worker_group: text(&instance.fields, "workerGroup")
                        .unwrap_or("")
                        .to_string(),
                });
            }
        }
    }
    Ok(out)
}
