//! State files that dp-local must refuse (and leave as they were), the committed fixture of each schema version,
//! and export/import.

use std::path::Path;

use serde_json::{Value, json};

use crate::process::{DpLocal, run};
use crate::state::{TempDir, busy_state, durable_server, view};
use crate::support::*;

/// The committed state file of schema version 1 and what it holds (see `write_state_fixture_v1`).
const FIXTURE_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/state-v1.db");
const FIXTURE_V1_FACTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/fixtures/state-v1.json"
);

/// Starting dp-local on `path` fails with exit 1 and one line on stderr containing `message`, and the file
/// (if any) is byte for byte what it was.
fn refused(path: &Path, message: &str) {
    let before = std::fs::read(path).ok();
    let out = run(&["--state", path.to_str().unwrap(), "--no-auth"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{path:?}: {stderr}");
    assert!(out.stdout.is_empty(), "no URL is printed: {:?}", out.stdout);
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line for {path:?}: {stderr:?}"
    );
    assert!(
        stderr.starts_with("dp-local: ") && stderr.contains(message),
        "{path:?}: {stderr:?} should say {message:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read(path).ok(),
        before,
        "{path:?} is left as it was"
    );
}

fn sqlite(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// A state file made by dp-local and closed cleanly (no WAL left beside it).
fn made_by_dp_local(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path(name);
    let server = durable_server(&path, 1.0, 0.2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::new(&server.url());
        for i in 0..50 {
            running_pipeline(&client, &format!("p{i}"), ondemand("wg-file", vec![])).await;
        }
    });
    server.shutdown();
    path
}

#[test]
fn unusable_files_are_refused_and_left_alone() {
    let dir = TempDir::new("files");

    let text = dir.path("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
    refused(
        &text,
        "is not a dp-local state file (not an SQLite database)",
    );

    let foreign = dir.path("foreign.db");
    sqlite(&foreign)
        .execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');")
        .unwrap();
    refused(&foreign, "an SQLite database of another application");

    let newer = made_by_dp_local(&dir, "newer.db");
    sqlite(&newer)
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    refused(
        &newer,
        "has schema version 99, newer than this dp-local's 1",
    );

    let corrupt = made_by_dp_local(&dir, "corrupt.db");
    let mut bytes = std::fs::read(&corrupt).unwrap();
    assert!(bytes.len() > 3 * 4096, "the file has several pages");
    // Garbage over the second page (a b-tree page of the schema's tables).
    for (i, b) in bytes[4096..8192].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    refused(&corrupt, "corrupt");

    let directory = dir.path("a-directory");
    std::fs::create_dir(&directory).unwrap();
    refused(&directory, "is a directory");
}

#[test]
fn a_read_only_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("readonly");
    let locked = dir.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; sysfs refuses new files even to root.
    let probe = locked.join("probe");
    let target = if std::fs::write(&probe, "x").is_ok() {
        std::path::PathBuf::from("/sys/dp-local-state.db")
    } else {
        locked.join("state.db")
    };
    let out = run(&["--state", target.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("cannot create the state file")
            && stderr.contains(target.to_str().unwrap()),
        "{stderr:?}"
    );
    assert!(!target.exists(), "nothing is created");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_served_by_another_dp_local_is_refused() {
    let dir = TempDir::new("locked");
    let path = dir.path("state.db");
    let path_arg = path.to_str().unwrap();
    let first = DpLocal::start(&["--state", path_arg, "--no-auth"]).unwrap();
    let client = Client::new(&first.url);
    let id = client
        .ok(
            "CreatePipeline",
            json!({"name": "mine", "uniqueId": "mine"}),
        )
        .await["pipelineId"]
        .clone();
    let second = tokio::task::spawn_blocking({
        let path_arg = path_arg.to_string();
        move || run(&["--state", &path_arg, "--no-auth"], None)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("is in use by another dp-local"),
        "{stderr:?}"
    );
    let export = tokio::task::spawn_blocking({
        let path_arg = path_arg.to_string();
        move || run(&["export", "--state", &path_arg], None)
    })
    .await
    .unwrap();
    assert_eq!(
        export.status.code(),
        Some(1),
        "export of a served file is refused too"
    );
    // The first one is unharmed.
    let listed = client.ok("ListPipelines", json!({})).await;
    assert_eq!(listed["pipelineIdList"][0]["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_version_1_fixture_opens() {
    let dir = TempDir::new("fixture");
    let path = dir.path("state.db");
    std::fs::copy(FIXTURE_V1, &path).unwrap();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE_V1_FACTS).unwrap()).unwrap();
    let pipeline = facts["pipelineId"].as_str().unwrap();
    // The file keeps the time scale it was made with (1000), as the binary does without --time-scale.
    let server = dp_local::Server::bind(dp_local::Config {
        state: Some(path.clone()),
        restore_time_scale: true,
        poll_timeout: std::time::Duration::from_secs(200),
        ..dp_local::Config::default()
    })
    .unwrap();
    let client = Client::new(&server.url());
    let described = client
        .ok("DescribePipelines", json!({"pipelineIds": [pipeline]}))
        .await;
    let description = &described["pipelineDescriptionList"][0];
    assert_eq!(description["name"], "fixture-v1");
    assert_eq!(
        description["tags"],
        json!([{"key": "made-by", "value": "dp-local 0.1.0"}])
    );
    let definition = client
        .ok(
            "GetPipelineDefinition",
            json!({"pipelineId": pipeline, "version": "active"}),
        )
        .await;
    assert_eq!(definition["pipelineObjects"], facts["pipelineObjects"]);
    assert_eq!(
        fields(
            &client,
            pipeline,
            facts["finishedAttempt"].as_str().unwrap()
        )
        .await["@status"],
        "FINISHED"
    );
    // The held task's progress lease (0.9 s at the fixture's scale of 1000) lapsed long ago: the attempt timed
    // out at start, and its retry comes after the retry delay (0.6 s at that scale).
    let held = facts["heldAttempt"].as_str().unwrap();
    assert_eq!(fields(&client, pipeline, held).await["@status"], "TIMEDOUT");
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": facts["heldTaskId"]}))
            .await,
        json!({"canceled": true})
    );
    let retry = poll_until_task(&client, "wg-fixture").await;
    assert_eq!(
        retry["attemptId"],
        json!(held.replace("_Attempt=1", "_Attempt=2"))
    );
    assert_eq!(server.runners().len(), 1, "the runner came back");
}

/// Writes `tests/it/fixtures/state-v1.*` (run once per released schema, by hand:
/// `cargo test -p dp-local --test it -- --ignored write_state_fixture_v1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the committed fixture"]
async fn write_state_fixture_v1() {
    let _ = std::fs::remove_file(FIXTURE_V1);
    std::fs::create_dir_all(Path::new(FIXTURE_V1).parent().unwrap()).unwrap();
    // At scale 1000 the held task's progress lease lasts 0.9 s: it has lapsed whenever a test opens the file.
    let server = durable_server(Path::new(FIXTURE_V1), 1000.0, 200.0);
    let client = Client::new(&server.url());
    let pipeline = client
        .ok(
            "CreatePipeline",
            json!({"name": "fixture-v1", "uniqueId": "fixture-v1",
                   "tags": [{"key": "made-by", "value": "dp-local 0.1.0"}]}),
        )
        .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut objects = ondemand("wg-fixture", vec![]);
    objects.push(object(
        "Second",
        vec![s("type", "ShellCommandActivity"), s("command", "echo two")],
    ));
    client
        .ok(
            "PutPipelineDefinition",
            json!({"pipelineId": pipeline, "pipelineObjects": objects}),
        )
        .await;
    client
        .ok("ActivatePipeline", json!({"pipelineId": pipeline}))
        .await;
    let finished = poll_until_task(&client, "wg-fixture").await;
    client
        .ok(
            "SetTaskStatus",
            json!({"taskId": finished["taskId"], "taskStatus": "FINISHED"}),
        )
        .await;
    let held = poll_until_task(&client, "wg-fixture").await;
    client
        .ok(
            "ReportTaskProgress",
            json!({"taskId": held["taskId"], "fields": [s("progress", "started")]}),
        )
        .await;
    client
        .ok(
            "ReportTaskRunnerHeartbeat",
            json!({"taskrunnerId": "fixture-runner", "workerGroup": "wg-fixture"}),
        )
        .await;
    let active = client
        .ok(
            "GetPipelineDefinition",
            json!({"pipelineId": pipeline, "version": "active"}),
        )
        .await;
    server.shutdown();
    let facts = json!({
        "pipelineId": pipeline,
        "pipelineObjects": active["pipelineObjects"],
        "finishedAttempt": finished["attemptId"],
        "heldAttempt": held["attemptId"],
        "heldTaskId": held["taskId"],
    });
    std::fs::write(
        FIXTURE_V1_FACTS,
        serde_json::to_string_pretty(&facts).unwrap() + "\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_round_trip_a_busy_state() {
    let dir = TempDir::new("export");
    let path = dir.path("state.db");
    let server = durable_server(&path, 1.0, 0.2);
    let client = Client::new(&server.url());
    let (pipelines, held) = busy_state(&client).await;
    let before = view(&client, &pipelines).await;
    server.shutdown();

    let path_arg = path.to_str().unwrap().to_string();
    let export = tokio::task::spawn_blocking(move || run(&["export", "--state", &path_arg], None))
        .await
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let dump: Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(dump["format"], "dp-local-state");
    assert_eq!(dump["schemaVersion"], 1);

    let copy = dir.path("copy.db");
    let copy_arg = copy.to_str().unwrap().to_string();
    let stdout = export.stdout.clone();
    let import =
        tokio::task::spawn_blocking(move || run(&["import", "--state", &copy_arg], Some(&stdout)))
            .await
            .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    // Importing over an existing file is refused.
    let again_arg = copy.to_str().unwrap().to_string();
    let stdout = export.stdout.clone();
    let again =
        tokio::task::spawn_blocking(move || run(&["import", "--state", &again_arg], Some(&stdout)))
            .await
            .unwrap();
    assert_eq!(again.status.code(), Some(1));
    // Bad input leaves no file behind.
    let bad = dir.path("bad.db");
    let bad_arg = bad.to_str().unwrap().to_string();
    let refused = tokio::task::spawn_blocking(move || {
        run(
            &["import", "--state", &bad_arg],
            Some(b"{\"format\": \"something else\", \"schemaVersion\": 1, \"tables\": {}}"),
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(!bad.exists(), "a refused import leaves no file");

    let server = durable_server(&copy, 1.0, 0.2);
    let client = Client::new(&server.url());
    assert_eq!(
        view(&client, &pipelines).await,
        before,
        "the imported state"
    );
    assert_eq!(
        client
            .ok("ReportTaskProgress", json!({"taskId": held}))
            .await,
        json!({"canceled": false}),
        "task ids move with the state"
    );
}
