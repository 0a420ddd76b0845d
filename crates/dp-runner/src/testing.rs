//! Helpers for examples and tests against a local endpoint (dp-local): an environment with the documented
//! example keys, and pipelines made and inspected through dp-wire. Not part of the supported API.

use dp_model::ops;
use dp_model::types::{
    ActivatePipelineInput, CreatePipelineInput, DescribeObjectsInput, Field, PipelineObject,
    PutPipelineDefinitionInput, Query, QueryObjectsInput,
};

/// A boxed error for the helpers.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The documented example keys, region `us-east-1`, `url` as the Data Pipeline endpoint, and no profile files or
/// instance metadata.
pub fn environment(url: &str) -> dp_wire::Environment {
    dp_wire::Environment::from_vars([
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_DATA_PIPELINE", url),
    ])
}

fn client(url: &str) -> Result<dp_wire::Client, Error> {
    Ok(dp_wire::Client::with_environment(
        dp_wire::Settings::default(),
        environment(url),
    )?)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}

fn text(key: &str, value: &str) -> Field {
    Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    }
}

/// Creates and activates an on-demand pipeline with `objects` (plus a `Default` object with
/// `scheduleType: ondemand`), returning its id.
pub fn pipeline(url: &str, name: &str, objects: Vec<PipelineObject>) -> Result<String, Error> {
    let client = client(url)?;
    block_on(async {
        let created = client
            .call::<ops::CreatePipeline>(&CreatePipelineInput {
                name: name.into(),
                unique_id: format!("{name}-{}", uuid::Uuid::new_v4()),
                ..Default::default()
            })
            .await?;
        let id = created.pipeline_id;
        let mut all = vec![PipelineObject {
            id: "Default".into(),
            name: "Default".into(),
            fields: vec![text("scheduleType", "ondemand")],
        }];
        all.extend(objects);
        let put = client
            .call::<ops::PutPipelineDefinition>(&PutPipelineDefinitionInput {
                pipeline_id: id.clone(),
                pipeline_objects: all,
                ..Default::default()
            })
            .await?;
        if put.errored {
            return Err(format!("definition refused: {:?}", put.validation_errors).into());
        }
        client
            .call::<ops::ActivatePipeline>(&ActivatePipelineInput {
                pipeline_id: id.clone(),
                ..Default::default()
            })
            .await?;
        Ok::<_, Error>(id)
    })?
}

/// An on-demand pipeline with one activity `Work` of type `kind` on `worker_group`, with `fields`.
pub fn one_task_pipeline(
    url: &str,
    worker_group: &str,
    kind: &str,
    fields: &[(&str, &str)],
) -> Result<String, Error> {
    let mut object_fields = vec![text("type", kind), text("workerGroup", worker_group)];
    object_fields.extend(fields.iter().map(|(k, v)| text(k, v)));
    pipeline(
        url,
        worker_group,
        vec![PipelineObject {
            id: "Work".into(),
            name: "Work".into(),
            fields: object_fields,
        }],
    )
}

/// Every attempt of `pipeline`, as `(id, fields)`, in the order the endpoint lists them.
pub fn attempts(url: &str, pipeline: &str) -> Result<Vec<PipelineObject>, Error> {
    objects(url, pipeline, "ATTEMPT")
}

/// Every instance of `pipeline`.
pub fn instances(url: &str, pipeline: &str) -> Result<Vec<PipelineObject>, Error> {
    objects(url, pipeline, "INSTANCE")
}

fn objects(url: &str, pipeline: &str, sphere: &str) -> Result<Vec<PipelineObject>, Error> {
    let client = client(url)?;
    block_on(async {
        let mut ids = Vec::new();
        let mut marker = None;
        loop {
            let page = client
                .call::<ops::QueryObjects>(&QueryObjectsInput {
                    pipeline_id: pipeline.into(),
                    query: Some(Query::default()),
                    sphere: sphere.into(),
                    marker: marker.clone(),
                    limit: Some(1000),
                })
                .await?;
            ids.extend(page.ids.unwrap_or_default());
            match page.marker {
                Some(m) if page.has_more_results == Some(true) => marker = Some(m),
                _ => break,
            }
        }
        let mut objects = Vec::new();
        for chunk in ids.chunks(25) {
            let described = client
                .call::<ops::DescribeObjects>(&DescribeObjectsInput {
                    pipeline_id: pipeline.into(),
                    object_ids: chunk.to_vec(),
                    ..Default::default()
                })
                .await?;
            objects.extend(described.pipeline_objects);
        }
        Ok::<_, Error>(objects)
    })?
}

/// The `@status` of the single attempt of `pipeline` (an error when there is not exactly one).
pub fn attempt_status(url: &str, pipeline: &str) -> Result<String, Error> {
    let attempts = attempts(url, pipeline)?;
    match attempts.as_slice() {
        [one] => Ok(field(one, "@status").unwrap_or_default().to_string()),
        other => Err(format!("expected one attempt, found {}", other.len()).into()),
    }
}

/// The first string value of `key`.
pub fn field<'a>(object: &'a PipelineObject, key: &str) -> Option<&'a str> {
    crate::activity::string_field(object, key)
}
