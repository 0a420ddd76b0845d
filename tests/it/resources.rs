//! dp-local running definitions as written, through the real binaries: `dp-local` launches a `dp-task-runner`
//! for each resource instance (`runsOn` an `Ec2Resource` or `EmrCluster`), data nodes wait on their
//! preconditions, and `dp` submits the definition files as a user would. Process facts (a runner's pid, whether
//! it still lives) are read from `/proc`, not assumed.
//!
//! The definitions here are written for these tests in the shapes the public AWS samples use (a schedule from
//! the first activation, a resource with `terminateAfter`, an echo on it, an S3 input guarded by `S3KeyExists`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{ACCESS_KEY, SECRET_KEY, dp, workspace_bin};

/// A folder of its own for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "dp-resources-{name}-{}-{}",
            std::process::id(),
            fastrand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_007
}

/// A dp-local process (stopped with SIGTERM, then killed, when dropped).
struct Local {
    child: Child,
    url: String,
}

impl Local {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Local {
        let runner = workspace_bin("dp-task-runner");
        let mut command = Command::new(workspace_bin("dp-local"));
        command
            .args(["--port", "0", "--time-scale", "60", "--no-console"])
            .arg(format!("--runner-bin={}", runner.display()))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("starting dp-local");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://"), "dp-local printed {line:?}");
        Local {
            child,
            url: line.trim().to_string(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a process runs (a zombie, ended but not yet reaped, counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn call(local: &Local, dir: &Path, args: &[&str]) -> Value {
    let run = dp(&local.url, args, dir);
    assert_eq!(
        run.code, 0,
        "dp {args:?} failed: {}{}",
        run.stdout, run.stderr
    );
    if run.stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&run.stdout).unwrap()
    }
}

/// Creates, puts (from a definition file, as the samples' READMEs do) and activates a pipeline.
fn run_definition(local: &Local, dir: &Path, name: &str, definition: &Value) -> String {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(definition).unwrap()).unwrap();
    let created = call(
        local,
        dir,
        &["create-pipeline", "--name", name, "--unique-id", name],
    );
    let pid = created["pipelineId"].as_str().unwrap().to_string();
    let put = call(
        local,
        dir,
        &[
            "put-pipeline-definition",
            "--pipeline-id",
            &pid,
            "--pipeline-definition",
            &format!("file://{}", file.display()),
        ],
    );
    assert_eq!(put["errored"], false, "{put}");
    call(local, dir, &["activate-pipeline", "--pipeline-id", &pid]);
    pid
}

/// One instance or attempt as describe-objects shows it.
#[derive(Debug, Clone)]
struct Object {
    id: String,
    fields: Vec<(String, String)>,
}

impl Object {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn status(&self) -> &str {
        self.get("@status").unwrap_or_default()
    }
}

fn objects(local: &Local, dir: &Path, pid: &str, sphere: &str) -> Vec<Object> {
    let ids = call(
        local,
        dir,
        &["query-objects", "--pipeline-id", pid, "--sphere", sphere],
    );
    let ids: Vec<String> = ids["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(50) {
        let mut args = vec!["describe-objects", "--pipeline-id", pid, "--object-ids"];
        args.extend(chunk.iter().map(String::as_str));
        let described = call(local, dir, &args);
        for o in described["pipelineObjects"].as_array().unwrap() {
            out.push(Object {
                id: o["id"].as_str().unwrap().to_string(),
                fields: o["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        let v = f["stringValue"].as_str().or(f["refValue"].as_str());
                        (
                            f["key"].as_str().unwrap().to_string(),
                            v.unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            });
        }
    }
    out
}

fn of<'a>(list: &'a [Object], component: &str) -> Vec<&'a Object> {
    list.iter()
        .filter(|o| o.get("@componentParent") == Some(component))
        .collect()
}

const TERMINAL: &[&str] = &[
    "FINISHED",
    "FAILED",
    "TIMEDOUT",
    "CANCELED",
    "CASCADE_FAILED",
];

/// Waits until every instance of `components` has ended; returns the instances.
fn until_ended(local: &Local, dir: &Path, pid: &str, components: &[&str]) -> Vec<Object> {
    let mut last = Vec::new();
    wait_until(Duration::from_secs(60), "the instances to end", || {
        last = objects(local, dir, pid, "INSTANCE");
        components.iter().all(|c| {
            let found = of(&last, c);
            !found.is_empty() && found.iter().all(|o| TERMINAL.contains(&o.status()))
        })
    });
    last
}

/// Runs once, at activation (a cron schedule from the first activation with one occurrence), as the helloworld
/// sample does, plus `objects`.
fn once(objects: Value) -> Value {
    let mut all = vec![
        json!({"id": "Default", "scheduleType": "cron", "failureAndRerunMode": "cascade",
               "schedule": {"ref": "Once"}, "retryDelay": "1 minutes"}),
        json!({"id": "Once", "type": "Schedule", "period": "1 day", "occurrences": "1",
               "startAt": "FIRST_ACTIVATION_DATE_TIME"}),
    ];
    all.extend(objects.as_array().unwrap().iter().cloned());
    json!({ "objects": all })
}

/// Waits until `Box`'s runner is up and `ready` holds of the instances; returns the runner's pid.
fn box_runner(
    local: &Local,
    dir: &Path,
    pid: &str,
    what: &str,
    ready: impl Fn(&[Object]) -> bool,
) -> u32 {
    let mut runner = 0;
    wait_until(Duration::from_secs(30), what, || {
        let list = objects(local, dir, pid, "INSTANCE");
        if let Some(b) = of(&list, "Box")
            .first()
            .filter(|b| b.get("@resourceId").is_some())
        {
            runner = resource_pid(b);
        }
        runner != 0 && ready(&list)
    });
    runner
}

/// `Box`'s runner once `Work` is running.
fn runner_of_running_work(local: &Local, dir: &Path, pid: &str) -> u32 {
    box_runner(local, dir, pid, "the work to run", |list| {
        of(list, "Work")
            .first()
            .is_some_and(|w| w.status() == "RUNNING")
    })
}

/// `Box`'s runner once the command has written its pid to `marker`, and that pid.
fn runner_and_command(local: &Local, dir: &Path, pid: &str, marker: &Path) -> (u32, u32) {
    let runner = box_runner(local, dir, pid, "the command to start", |_| {
        std::fs::read_to_string(marker).is_ok_and(|s| s.ends_with('\n'))
    });
    let command = std::fs::read_to_string(marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (runner, command)
}

fn kill(signal: &str, pid: u32) {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
}

fn resource_pid(o: &Object) -> u32 {
    o.get("@resourceId")
        .and_then(|id| id.strip_prefix("local-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{} has no @resourceId local-<pid>: {:?}", o.id, o.fields))
}

/// The echo of a helloworld-shaped definition runs on a launched resource; resource and activity end FINISHED,
/// the output is in the resource's folder, and the runner is gone once its work is done.
#[test]
fn an_activity_runs_on_the_resource_dp_local_launches() {
    let dir = Scratch::new("hello");
    let state = dir.path("state.db");
    let local = Local::start(&["--state", state.to_str().unwrap()], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "hello",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "terminateAfter": "1 hour", "workerGroup": "ignored"},
            {"id": "Hello", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "command": "echo hello from #{runsOn} at #{format(@scheduledStartTime,'YYYY')}"}
        ])),
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Hello", "Box"]);
    let hello = of(&instances, "Hello")[0];
    let resource = of(&instances, "Box")[0];
    assert_eq!(hello.status(), "FINISHED", "{:?}", hello.fields);
    assert_eq!(resource.status(), "FINISHED", "{:?}", resource.fields);
    assert!(resource.get("@actualStartTime").is_some());
    assert!(resource.get("@actualEndTime").is_some());
    let runner = resource_pid(resource);
    wait_until(
        Duration::from_secs(20),
        "the released runner to exit",
        || !alive(runner),
    );
    // The echo's output sits under dp-local's data folder, in the resource attempt's own folder.
    let data = dir.path("state.db.resources");
    let found = find_files(&data, "StdOutput");
    let year = &hello.get("@scheduledStartTime").unwrap()[..4];
    assert!(
        found
            .iter()
            .any(|f| std::fs::read_to_string(f).unwrap() == format!("hello from Box at {year}\n")),
        "no StdOutput with the echo under {}: {found:?}",
        data.display()
    );
    let attempts = objects(&local, &dir.0, &pid, "ATTEMPT");
    let hello_attempt = attempts
        .iter()
        .find(|a| a.get("@componentParent") == Some("Hello"))
        .unwrap();
    assert!(hello_attempt.get("@actualStartTime").is_some());
}

fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(find_files(&p, name));
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
    out
}

/// Two activities on one resource in one period share one launch; a runner killed with SIGKILL fails the
/// resource attempt, and with `retryAll` (the default) a new runner takes the retried work.
#[test]
fn a_shared_resource_launches_once_and_a_killed_runner_is_replaced() {
    let dir = Scratch::new("shared");
    let local = Local::start(&[], &[]);
    let marker = dir.path("marker");
    let pid = run_definition(
        &local,
        &dir.0,
        "shared",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "maximumRetries": "2"},
            {"id": "Quick", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "true"},
            // The first run waits until it is killed with its runner; the retry finds the marker and ends.
            {"id": "Slow", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "command": format!("if [ -e {m} ]; then echo again; else touch {m}; sleep 300; fi", m = marker.display())}
        ])),
    );
    let runner = box_runner(&local, &dir.0, &pid, "the slow command to start", |_| {
        marker.exists()
    });
    assert!(alive(runner));
    kill("-KILL", runner);
    let instances = until_ended(&local, &dir.0, &pid, &["Quick", "Slow", "Box"]);
    assert_eq!(
        of(&instances, "Box").len(),
        1,
        "one resource instance per period"
    );
    assert_eq!(of(&instances, "Quick")[0].status(), "FINISHED");
    assert_eq!(of(&instances, "Slow")[0].status(), "FINISHED");
    let attempts = objects(&local, &dir.0, &pid, "ATTEMPT");
    let box_attempts: Vec<&Object> = of(&attempts, "Box");
    assert_eq!(box_attempts.len(), 2, "{box_attempts:?}");
    let failed = box_attempts
        .iter()
        .find(|a| a.get("@attemptNumber") == Some("1"))
        .unwrap();
    assert_eq!(failed.status(), "FAILED");
    assert_eq!(failed.get("errorId"), Some("ResourceFailed"));
    assert!(
        failed.get("errorMessage").unwrap().contains("signal 9"),
        "{:?}",
        failed.fields
    );
    let slow: Vec<&Object> = of(&attempts, "Slow");
    assert_eq!(slow.len(), 2, "the killed attempt and its retry");
}

/// `actionOnResourceFailure: retrynone`: a runner that dies ends the resource and its work FAILED, no relaunch.
#[test]
fn retry_none_ends_the_resource_and_its_work() {
    let dir = Scratch::new("retrynone");
    let local = Local::start(&[], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "retrynone",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "actionOnResourceFailure": "retrynone"},
            {"id": "Work", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "sleep 300"}
        ])),
    );
    let runner = runner_of_running_work(&local, &dir.0, &pid);
    kill("-KILL", runner);
    let instances = until_ended(&local, &dir.0, &pid, &["Work", "Box"]);
    let resource = of(&instances, "Box")[0];
    assert_eq!(resource.status(), "FAILED");
    assert_eq!(of(&instances, "Work")[0].status(), "FAILED");
    let attempts = objects(&local, &dir.0, &pid, "ATTEMPT");
    assert_eq!(of(&attempts, "Box").len(), 1, "no relaunch under retrynone");
}

/// `terminateAfter` stops the runner and ends the resource TIMEDOUT; the work still running on it fails.
#[test]
fn terminate_after_stops_the_runner() {
    let dir = Scratch::new("terminate");
    let local = Local::start(&[], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "terminate",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "terminateAfter": "3 minutes"},
            {"id": "Long", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "sleep 300"}
        ])),
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Long", "Box"]);
    let resource = of(&instances, "Box")[0];
    assert_eq!(resource.status(), "TIMEDOUT", "{:?}", resource.fields);
    let long = of(&instances, "Long")[0];
    assert_eq!(long.status(), "FAILED");
    assert!(
        long.get("errorMessage")
            .unwrap_or_default()
            .contains("terminateAfter"),
        "{:?}",
        long.fields
    );
    let runner = resource_pid(resource);
    wait_until(
        Duration::from_secs(20),
        "the stopped runner to exit",
        || !alive(runner),
    );
}

/// `--max-resources 1`: a second resource waits in CREATING until the first is released.
#[test]
fn max_resources_holds_later_resources_in_creating() {
    let dir = Scratch::new("max");
    let local = Local::start(&["--max-resources", "1"], &[]);
    let gate = dir.path("gate");
    let pid = run_definition(
        &local,
        &dir.0,
        "max",
        &once(json!([
            {"id": "A", "type": "Ec2Resource"},
            {"id": "B", "type": "Ec2Resource"},
            {"id": "OnA", "type": "ShellCommandActivity", "runsOn": {"ref": "A"},
             "command": format!("while [ ! -e {} ]; do sleep 0.1; done", gate.display())},
            {"id": "OnB", "type": "ShellCommandActivity", "runsOn": {"ref": "B"},
             "command": format!("while [ ! -e {} ]; do sleep 0.1; done", gate.display())}
        ])),
    );
    // One runs, the other waits to be created, and stays so while the first holds the only slot.
    wait_until(Duration::from_secs(30), "one resource running", || {
        let list = objects(&local, &dir.0, &pid, "INSTANCE");
        let statuses: Vec<&str> = ["A", "B"]
            .iter()
            .filter_map(|c| of(&list, c).first().map(|o| o.status()))
            .collect();
        statuses.contains(&"RUNNING") && statuses.contains(&"CREATING")
    });
    std::fs::write(&gate, "").unwrap();
    let instances = until_ended(&local, &dir.0, &pid, &["OnA", "OnB", "A", "B"]);
    for c in ["OnA", "OnB", "A", "B"] {
        assert_eq!(of(&instances, c)[0].status(), "FINISHED", "{c}");
    }
}

/// A runner that cannot be launched fails the resource attempt with the reason, visible in describe-objects,
/// and dp-local keeps serving.
#[test]
fn a_runner_that_cannot_start_fails_the_resource_with_the_reason() {
    let dir = Scratch::new("nobin");
    let local = Local::start(&["--runner-bin", "/nonexistent/dp-task-runner"], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "nobin",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "maximumRetries": "0"},
            {"id": "Work", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "true"}
        ])),
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Work", "Box"]);
    assert_eq!(of(&instances, "Box")[0].status(), "FAILED");
    assert_eq!(of(&instances, "Work")[0].status(), "FAILED");
    let attempts = objects(&local, &dir.0, &pid, "ATTEMPT");
    let attempt = of(&attempts, "Box")[0];
    let message = attempt.get("errorMessage").unwrap();
    assert!(message.contains("/nonexistent/dp-task-runner"), "{message}");
    call(&local, &dir.0, &["list-pipelines"]);
}

/// dp-local SIGKILLed while a resource runs: its runner and the runner's command die with it; a restart on the
/// same state launches the resource again and the work is retried to the end.
#[test]
fn no_runner_outlives_a_killed_dp_local_and_a_restart_resumes() {
    let dir = Scratch::new("restart");
    let state = dir.path("state.db");
    let marker = dir.path("marker");
    let mut local = Local::start(&["--state", state.to_str().unwrap()], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "restart",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource"},
            {"id": "Work", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "reportProgressTimeout": "1 minutes",
             "command": format!("if [ -e {m} ]; then echo again; else echo $$ > {m}; sleep 300; fi", m = marker.display())}
        ])),
    );
    let (runner, command) = runner_and_command(&local, &dir.0, &pid, &marker);
    kill("-KILL", local.pid());
    let _ = local.child.wait();
    wait_until(
        Duration::from_secs(20),
        "the runner to exit with dp-local",
        || !alive(runner),
    );
    wait_until(
        Duration::from_secs(20),
        "the runner's command to be stopped",
        || !alive(command),
    );
    drop(local);
    let local = Local::start(&["--state", state.to_str().unwrap()], &[]);
    let instances = until_ended(&local, &dir.0, &pid, &["Work", "Box"]);
    assert_eq!(of(&instances, "Work")[0].status(), "FINISHED");
    let resource = of(&instances, "Box")[0];
    assert_eq!(resource.status(), "FINISHED");
    assert_ne!(
        resource_pid(resource),
        runner,
        "a new runner after the restart"
    );
}

/// moto's server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install 'moto[server]')");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_until(Duration::from_secs(60), "moto's server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        moto
    }

    fn s3(&self, args: &[&str]) {
        let out = Command::new("aws")
            .args(["s3api", "--endpoint-url", &self.url])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("the AWS CLI must be installed");
        assert!(
            out.status.success(),
            "aws s3api {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An S3 input guarded by `S3KeyExists`: checked (by the runner dp-local launches for its own work) until the
/// key appears in S3 mid-run, then the activity runs; a key that never appears ends the check TIMEDOUT after its
/// `preconditionTimeout`, and the data node and its activity CASCADE_FAILED.
#[test]
fn s3_preconditions_wait_for_their_key_or_time_out() {
    let dir = Scratch::new("precondition");
    let moto = Moto::start();
    moto.s3(&["create-bucket", "--bucket", "inputs"]);
    let local = Local::start(
        &[],
        &[
            ("AWS_ENDPOINT_URL_S3", moto.url.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto.url.as_str()),
        ],
    );
    let definition = |key: &str, timeout: &str| {
        once(json!([
            {"id": "Box", "type": "Ec2Resource"},
            {"id": "Ready", "type": "S3KeyExists", "s3Key": "#{node.filePath}",
             "preconditionTimeout": timeout, "retryDelay": "1 minutes"},
            {"id": "Input", "type": "S3DataNode", "filePath": format!("s3://inputs/{key}"),
             "precondition": {"ref": "Ready"}},
            {"id": "Use", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "input": {"ref": "Input"}, "command": "echo #{input.filePath}"}
        ]))
    };
    let waits = run_definition(
        &local,
        &dir.0,
        "waits",
        &definition("day/data.tsv", "1 hour"),
    );
    let never = run_definition(
        &local,
        &dir.0,
        "never",
        &definition("nothing/here", "3 minutes"),
    );
    // The check has run (and not held) at least once before the key exists.
    wait_until(Duration::from_secs(30), "a first check", || {
        let attempts = objects(&local, &dir.0, &waits, "ATTEMPT");
        of(&attempts, "Ready")
            .iter()
            .any(|a| a.status() == "FAILED")
    });
    let list = objects(&local, &dir.0, &waits, "INSTANCE");
    assert_eq!(of(&list, "Use")[0].status(), "WAITING_ON_DEPENDENCIES");
    assert_eq!(of(&list, "Input")[0].status(), "WAITING_ON_DEPENDENCIES");
    let body = dir.path("data.tsv");
    std::fs::write(&body, "a\tb\n").unwrap();
    moto.s3(&[
        "put-object",
        "--bucket",
        "inputs",
        "--key",
        "day/data.tsv",
        "--body",
        body.to_str().unwrap(),
    ]);
    let done = until_ended(&local, &dir.0, &waits, &["Use", "Input", "Ready"]);
    assert_eq!(of(&done, "Ready")[0].status(), "FINISHED");
    assert_eq!(of(&done, "Input")[0].status(), "FINISHED");
    assert_eq!(of(&done, "Use")[0].status(), "FINISHED");

    // `Exists` on a data node checks the node itself (its filePath here), on dp-local's own runner.
    let exists = run_definition(
        &local,
        &dir.0,
        "exists",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource"},
            {"id": "Ready", "type": "Exists", "preconditionTimeout": "1 hour", "retryDelay": "1 minutes"},
            {"id": "Input", "type": "S3DataNode", "filePath": "s3://inputs/day/data.tsv",
             "precondition": {"ref": "Ready"}},
            {"id": "Use", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "input": {"ref": "Input"}, "command": "true"}
        ])),
    );
    let checked = until_ended(&local, &dir.0, &exists, &["Use", "Input", "Ready"]);
    for c in ["Ready", "Input", "Use"] {
        assert_eq!(of(&checked, c)[0].status(), "FINISHED", "{c}");
    }

    let failed = until_ended(&local, &dir.0, &never, &["Use", "Input", "Ready"]);
    let ready = of(&failed, "Ready")[0];
    assert_eq!(ready.status(), "TIMEDOUT", "{:?}", ready.fields);
    assert_eq!(of(&failed, "Input")[0].status(), "CASCADE_FAILED");
    assert_eq!(of(&failed, "Use")[0].status(), "CASCADE_FAILED");
    // The resource was never needed: nothing ran on it.
    let resource = of(&failed, "Box");
    assert!(resource.iter().all(|r| r.all("@resourceId").is_empty()));
}

/// Activities that need Hadoop run on the runner that stands in for their `EmrCluster` and end FAILED naming
/// their type; what depends on them cascades.
#[test]
fn hadoop_activities_fail_naming_their_type() {
    let dir = Scratch::new("hadoop");
    let local = Local::start(&[], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "hadoop",
        &once(json!([
            {"id": "Cluster", "type": "EmrCluster", "terminateAfter": "2 hours"},
            {"id": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"}, "maximumRetries": "0",
             "hiveScript": "select 1;"},
            {"id": "After", "type": "ShellCommandActivity", "runsOn": {"ref": "Cluster"},
             "dependsOn": {"ref": "Hive"}, "command": "true"}
        ])),
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Hive", "After", "Cluster"]);
    let hive = of(&instances, "Hive")[0];
    assert_eq!(hive.status(), "FAILED");
    assert_eq!(hive.get("errorId"), Some("HiveActivityNotRunLocally"));
    assert!(
        hive.get("errorMessage")
            .unwrap_or_default()
            .contains("no Hadoop")
            || hive
                .get("errorMessage")
                .unwrap_or_default()
                .contains("none exists locally"),
        "{:?}",
        hive.fields
    );
    assert_eq!(of(&instances, "After")[0].status(), "CASCADE_FAILED");
    assert_eq!(of(&instances, "Cluster")[0].status(), "FINISHED");
}

/// A secret parameter (`*myPassword`, given at put time as the READMEs do) reaches the work evaluated, and its
/// value stays out of the runner's log.
#[test]
fn secret_parameters_reach_the_work_and_not_the_log() {
    let dir = Scratch::new("secret");
    let state = dir.path("state.db");
    let local = Local::start(&["--state", state.to_str().unwrap()], &[]);
    let mut definition = once(json!([
        {"id": "Box", "type": "Ec2Resource"},
        {"id": "Check", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
         "*password": "#{*myPassword}",
         "command": "test \"#{*myPassword}\" = s3cret-Value && echo matched"}
    ]));
    definition["parameters"] =
        json!([{"id": "*myPassword", "type": "String", "description": "a secret"}]);
    let file = dir.path("secret.json");
    std::fs::write(&file, serde_json::to_string(&definition).unwrap()).unwrap();
    let created = call(
        &local,
        &dir.0,
        &[
            "create-pipeline",
            "--name",
            "secret",
            "--unique-id",
            "secret",
        ],
    );
    let pid = created["pipelineId"].as_str().unwrap().to_string();
    let put = call(
        &local,
        &dir.0,
        &[
            "put-pipeline-definition",
            "--pipeline-id",
            &pid,
            "--pipeline-definition",
            &format!("file://{}", file.display()),
            "--parameter-values",
            "*myPassword=s3cret-Value",
        ],
    );
    assert_eq!(put["errored"], false, "{put}");
    call(
        &local,
        &dir.0,
        &["activate-pipeline", "--pipeline-id", &pid],
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Check", "Box"]);
    assert_eq!(of(&instances, "Check")[0].status(), "FINISHED");
    let data = dir.path("state.db.resources");
    let outputs = find_files(&data, "StdOutput");
    assert!(
        outputs
            .iter()
            .any(|f| std::fs::read_to_string(f).unwrap() == "matched\n"),
        "{outputs:?}"
    );
    let logs = find_files(&data, "dp-task-runner.log");
    assert!(!logs.is_empty(), "no runner log under {}", data.display());
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains("s3cret-Value"),
            "{} shows the secret",
            log.display()
        );
    }
}

/// `actionOnTaskFailure: terminate`: a failed task terminates its resource's runner; the retry runs on a new
/// launch of the resource.
#[test]
fn action_on_task_failure_terminate_relaunches_for_the_retry() {
    let dir = Scratch::new("taskfailure");
    let local = Local::start(&[], &[]);
    let marker = dir.path("marker");
    let pid = run_definition(
        &local,
        &dir.0,
        "taskfailure",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource", "actionOnTaskFailure": "terminate"},
            {"id": "Flaky", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "maximumRetries": "1",
             "command": format!("if [ -e {m} ]; then echo second; else touch {m}; exit 3; fi", m = marker.display())}
        ])),
    );
    let instances = until_ended(&local, &dir.0, &pid, &["Flaky", "Box"]);
    assert_eq!(of(&instances, "Flaky")[0].status(), "FINISHED");
    let attempts = objects(&local, &dir.0, &pid, "ATTEMPT");
    let boxes = of(&attempts, "Box");
    assert_eq!(boxes.len(), 2, "{boxes:?}");
    let first = boxes
        .iter()
        .find(|a| a.get("@attemptNumber") == Some("1"))
        .unwrap();
    assert_eq!(first.get("errorId"), Some("TerminatedAfterTaskFailure"));
    assert_ne!(
        resource_pid(boxes[0]),
        resource_pid(boxes[1]),
        "the retry ran on a new runner"
    );
}

/// SIGTERM stops dp-local in order: its runners, and their commands, are gone when it has exited 0.
#[test]
fn sigterm_stops_the_launched_runners_first() {
    let dir = Scratch::new("sigterm");
    let marker = dir.path("marker");
    let mut local = Local::start(&[], &[]);
    let pid = run_definition(
        &local,
        &dir.0,
        "sigterm",
        &once(json!([
            {"id": "Box", "type": "Ec2Resource"},
            {"id": "Work", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"},
             "command": format!("echo $$ > {m}; sleep 300", m = marker.display())}
        ])),
    );
    let (runner, command) = runner_and_command(&local, &dir.0, &pid, &marker);
    kill("-TERM", local.pid());
    let status = local.child.wait().unwrap();
    assert!(status.success(), "dp-local exited with {status}");
    assert!(!alive(runner), "runner {runner} outlived dp-local");
    wait_until(Duration::from_secs(10), "the command to be gone", || {
        !alive(command)
    });
}

/// Deleting a pipeline (and deactivating one, which cancels what runs) stops the runners of its resources.
#[test]
fn deleting_or_deactivating_a_pipeline_stops_its_runners() {
    let dir = Scratch::new("delete");
    let local = Local::start(&[], &[]);
    let definition = once(json!([
        {"id": "Box", "type": "Ec2Resource"},
        {"id": "Work", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "sleep 300"}
    ]));
    let deleted = run_definition(&local, &dir.0, "deleted", &definition);
    let deactivated = run_definition(&local, &dir.0, "deactivated", &definition);
    let running = |pid: &str| runner_of_running_work(&local, &dir.0, pid);
    let first = running(&deleted);
    let second = running(&deactivated);
    call(
        &local,
        &dir.0,
        &["delete-pipeline", "--pipeline-id", &deleted],
    );
    call(
        &local,
        &dir.0,
        &["deactivate-pipeline", "--pipeline-id", &deactivated],
    );
    wait_until(Duration::from_secs(20), "both runners to stop", || {
        !alive(first) && !alive(second)
    });
    let list = objects(&local, &dir.0, &deactivated, "INSTANCE");
    assert_eq!(of(&list, "Work")[0].status(), "CANCELED");
    assert!(TERMINAL.contains(&of(&list, "Box")[0].status()));
}
