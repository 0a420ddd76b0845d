//! All 19 operations through dp-wire, the project's own client: typed inputs and outputs from dp-model, SigV4 and
//! error decoding by dp-wire, against dp-local.

use dp_model::ModeledError;
use dp_model::ops;
use dp_model::types::*;
use dp_wire::{CallError, Client, Environment, Settings};

fn client(url: &str) -> Client {
    let env = Environment::from_vars([
        ("AWS_ACCESS_KEY_ID", crate::support::AKID),
        ("AWS_SECRET_ACCESS_KEY", crate::support::SECRET),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]);
    let settings = Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.into()),
        ..Settings::default()
    };
    Client::with_environment(settings, env).expect("a dp-wire client")
}

fn field(key: &str, value: &str) -> Field {
    Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    }
}

fn value_of<'a>(fields: &'a [Field], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.key == key)
        .and_then(|f| f.string_value.as_deref().or(f.ref_value.as_deref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_through_dp_wire() {
    let server = crate::server(10.0, 1.0);
    let wire = client(&server.url());
    macro_rules! call {
        ($op:ident, $input:expr) => {
            match wire.call::<ops::$op>(&$input).await {
                Ok(out) => out,
                Err(e) => panic!("{} failed: {:?}", stringify!($op), e),
            }
        };
    }

    let created = call!(
        CreatePipeline,
        CreatePipelineInput {
            name: "wire".into(),
            unique_id: "wire-1".into(),
            description: Some("through dp-wire".into()),
            tags: Some(vec![Tag {
                key: "env".into(),
                value: "dev".into()
            }]),
        }
    );
    let id = created.pipeline_id;
    call!(
        AddTags,
        AddTagsInput {
            pipeline_id: id.clone(),
            tags: vec![Tag {
                key: "team".into(),
                value: "x".into()
            }]
        }
    );
    call!(
        RemoveTags,
        RemoveTagsInput {
            pipeline_id: id.clone(),
            tag_keys: vec!["env".into()]
        }
    );
    let described = call!(
        DescribePipelines,
        DescribePipelinesInput {
            pipeline_ids: vec![id.clone()]
        }
    );
    let description = &described.pipeline_description_list[0];
    assert_eq!(description.description.as_deref(), Some("through dp-wire"));
    assert_eq!(
        description.tags.as_deref(),
        Some(
            &[Tag {
                key: "team".into(),
                value: "x".into()
            }][..]
        )
    );
    let listed = call!(ListPipelines, ListPipelinesInput::default());
    assert_eq!(listed.pipeline_id_list[0].id.as_deref(), Some(id.as_str()));

    let objects = vec![
        PipelineObject {
            id: "Default".into(),
            name: "Default".into(),
            fields: vec![
                field("scheduleType", "ondemand"),
                field("workerGroup", "wg-wire"),
            ],
        },
        PipelineObject {
            id: "Act".into(),
            name: "Act".into(),
            fields: vec![
                field("type", "ShellCommandActivity"),
                field("command", "echo wire"),
            ],
        },
    ];
    let validated = call!(
        ValidatePipelineDefinition,
        ValidatePipelineDefinitionInput {
            pipeline_id: id.clone(),
            pipeline_objects: objects.clone(),
            ..Default::default()
        }
    );
    assert!(!validated.errored);
    let put = call!(
        PutPipelineDefinition,
        PutPipelineDefinitionInput {
            pipeline_id: id.clone(),
            pipeline_objects: objects.clone(),
            ..Default::default()
        }
    );
    assert!(!put.errored);
    let got = call!(
        GetPipelineDefinition,
        GetPipelineDefinitionInput {
            pipeline_id: id.clone(),
            version: None
        }
    );
    assert_eq!(got.pipeline_objects.as_deref(), Some(&objects[..]));
    call!(
        ActivatePipeline,
        ActivatePipelineInput {
            pipeline_id: id.clone(),
            ..Default::default()
        }
    );

    let instances = call!(
        QueryObjects,
        QueryObjectsInput {
            pipeline_id: id.clone(),
            sphere: "INSTANCE".into(),
            ..Default::default()
        }
    );
    let instance = instances.ids.unwrap()[0].clone();
    let evaluated = call!(
        EvaluateExpression,
        EvaluateExpressionInput {
            pipeline_id: id.clone(),
            object_id: instance.clone(),
            expression: "#{command} at #{@scheduledStartTime}".into(),
        }
    );
    assert!(
        evaluated
            .evaluated_expression
            .starts_with("echo wire at 20"),
        "{}",
        evaluated.evaluated_expression
    );

    let polled = call!(
        PollForTask,
        PollForTaskInput {
            worker_group: "wg-wire".into(),
            hostname: Some("h".into()),
            instance_identity: None
        }
    );
    let task = polled.task_object.expect("a task");
    let task_id = task.task_id.clone().unwrap();
    assert_eq!(
        task.attempt_id.as_deref(),
        Some(format!("{instance}_Attempt=1").as_str())
    );
    let progress = call!(
        ReportTaskProgress,
        ReportTaskProgressInput {
            task_id: task_id.clone(),
            fields: Some(vec![field("step", "1")])
        }
    );
    assert!(!progress.canceled);
    let beat = call!(
        ReportTaskRunnerHeartbeat,
        ReportTaskRunnerHeartbeatInput {
            taskrunner_id: "wire-runner".into(),
            worker_group: Some("wg-wire".into()),
            hostname: None,
        }
    );
    assert!(!beat.terminate);
    call!(
        SetTaskStatus,
        SetTaskStatusInput {
            task_id: task_id.clone(),
            task_status: TaskStatus::Finished,
            ..Default::default()
        }
    );
    let objects = call!(
        DescribeObjects,
        DescribeObjectsInput {
            pipeline_id: id.clone(),
            object_ids: vec![instance.clone()],
            evaluate_expressions: None,
            marker: None,
        }
    );
    assert_eq!(
        value_of(&objects.pipeline_objects[0].fields, "@status"),
        Some("FINISHED")
    );
    call!(
        SetStatus,
        SetStatusInput {
            pipeline_id: id.clone(),
            object_ids: vec!["Act".into()],
            status: "PAUSE".into()
        }
    );
    call!(
        DeactivatePipeline,
        DeactivatePipelineInput {
            pipeline_id: id.clone(),
            cancel_active: Some(true)
        }
    );
    call!(
        DeletePipeline,
        DeletePipelineInput {
            pipeline_id: id.clone()
        }
    );

    match wire
        .call::<ops::DescribePipelines>(&DescribePipelinesInput {
            pipeline_ids: vec![id.clone()],
        })
        .await
    {
        Err(CallError::Service { error, .. }) => {
            assert_eq!(error.code(), "PipelineDeletedException")
        }
        other => panic!("expected PipelineDeletedException, got {other:?}"),
    }
    match wire
        .call::<ops::ReportTaskProgress>(&ReportTaskProgressInput {
            task_id: "nope".into(),
            fields: None,
        })
        .await
    {
        Err(CallError::Service { error, .. }) => assert_eq!(error.code(), "TaskNotFoundException"),
        other => panic!("expected TaskNotFoundException, got {other:?}"),
    }
}
