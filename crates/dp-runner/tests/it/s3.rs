//! S3 through aws-sdk-s3 against moto's server mode on loopback (`python3 -m moto.server`; `.ci/run` installs
//! `moto[server]` when it is missing): `scriptUri`, `stage: true` inputs and outputs, `stdout` to S3, and `--logUri`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(90);

/// moto's server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
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
        let mut moto = Moto {
            child,
            url: format!("http://localhost:{port}"),
        };
        wait_until(Duration::from_secs(60), "moto's server to listen", || {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto.server exited with {status}: is moto[server] installed? (pip install 'moto[server]')"
                );
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dp-wire client with the test key pair and nothing from this machine's AWS configuration.
pub fn wire_client() -> dp_wire::Client {
    let env = dp_wire::Environment::from_vars([
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_DATA_PIPELINE", "http://127.0.0.1:9"),
    ]);
    dp_wire::Client::with_environment(dp_wire::Settings::default(), env).unwrap()
}

/// An S3 client for the test's own set-up and checks, on the same stack the runner uses.
pub fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let wire = wire_client();
    let http = block_on(wire.sdk_http_client()).unwrap();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .http_client(http)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            KEY_ID, SECRET, None, None, "test",
        ))
        .endpoint_url(&moto.url)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn put(s3: &aws_sdk_s3::Client, key: &str, body: &str) {
    block_on(
        s3.put_object()
            .bucket("bkt")
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send(),
    )
    .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

pub fn get(s3: &aws_sdk_s3::Client, key: &str) -> Option<String> {
    block_on(async {
        let out = s3.get_object().bucket("bkt").key(key).send().await.ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    block_on(s3.list_objects_v2().bucket("bkt").prefix(prefix).send())
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

#[test]
fn script_uri_staging_stdout_and_log_uri_through_s3() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    put(
        &s3,
        "scripts/shout.sh",
        "#!/bin/sh\ncat \"$INPUT1_STAGING_DIR\"/*.txt | tr a-z A-Z > \"$OUTPUT1_STAGING_DIR/result.txt\"\n\
         echo \"args: $1 $2\"\necho \"inputs: $(ls \"$INPUT1_STAGING_DIR\" | tr '\\n' ' ')\"\n",
    );
    put(&s3, "in/a.txt", "alpha\n");
    put(&s3, "in/b.txt", "beta\n");

    let endpoint = Endpoint::start();
    let dir = TempDir::new("s3");
    let objects = vec![
        object(
            "Work",
            vec![
                text("type", "ShellCommandActivity"),
                text("workerGroup", "wg-s3"),
                text("scriptUri", "s3://bkt/scripts/shout.sh"),
                text("scriptArgument", "one"),
                text("scriptArgument", "two"),
                text("stage", "true"),
                reference("input", "In"),
                reference("output", "Out"),
                text("stdout", "s3://bkt/results/stdout.txt"),
            ],
        ),
        object(
            "In",
            vec![
                text("type", "S3DataNode"),
                text("directoryPath", "s3://bkt/in/"),
            ],
        ),
        object(
            "Out",
            vec![
                text("type", "S3DataNode"),
                text("directoryPath", "s3://bkt/out"),
            ],
        ),
    ];
    let pipeline = dp_runner::testing::pipeline(&endpoint.url(), "s3", objects).unwrap();
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &[
            "--workerGroup=wg-s3",
            "--once",
            "--logUri=s3://bkt/runner-logs",
        ],
        &[
            ("AWS_ENDPOINT_URL_S3", &moto.url),
            ("NO_PROXY", "localhost"),
        ],
    );
    let code = runner.wait(LIMIT).code();
    let attempts = attempts(&endpoint, &pipeline);
    assert_eq!(
        code,
        Some(0),
        "{attempts:?}\n{}\n{}",
        runner.log(),
        runner.stderr_text()
    );
    assert_eq!(field(&attempts[0], "@status"), "FINISHED");

    assert_eq!(get(&s3, "out/result.txt").as_deref(), Some("ALPHA\nBETA\n"));
    assert_eq!(
        get(&s3, "results/stdout.txt").as_deref(),
        Some("args: one two\ninputs: a.txt b.txt \n")
    );
    let attempt_logs = keys(&s3, &format!("runner-logs/{pipeline}/Work/"));
    assert_eq!(attempt_logs.len(), 2, "{attempt_logs:?}");
    assert!(
        attempt_logs
            .iter()
            .any(|k| k.ends_with(&format!("{}/StdOutput", attempts[0].id)))
    );
    assert!(attempt_logs.iter().any(|k| k.ends_with("/StdError")));
    let runner_logs = keys(&s3, "runner-logs/TaskRunner/");
    assert_eq!(
        runner_logs.len(),
        1,
        "the runner log at exit: {runner_logs:?}"
    );
    let uploaded = get(&s3, &runner_logs[0]).unwrap();
    assert!(uploaded.contains("task ended FINISHED"), "{uploaded}");
}

#[test]
fn a_missing_script_fails_the_task_with_the_s3_error() {
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let endpoint = Endpoint::start();
    let dir = TempDir::new("s3-missing");
    let pipeline = shell_pipeline(
        &endpoint,
        "wg-s3-missing",
        &[
            ("scriptUri", "s3://bkt/scripts/none.sh"),
            ("maximumRetries", "0"),
        ],
    );
    let mut runner = RunnerProcess::start_with(
        &endpoint,
        dir.path(),
        &["--workerGroup=wg-s3-missing", "--once"],
        &[
            ("AWS_ENDPOINT_URL_S3", &moto.url),
            ("NO_PROXY", "localhost"),
        ],
    );
    assert_eq!(runner.wait(LIMIT).code(), Some(1));
    let attempt = &attempts(&endpoint, &pipeline)[0];
    assert_eq!(field(attempt, "errorId"), "ScriptDownloadFailed");
    assert!(
        field(attempt, "errorMessage").contains("s3://bkt/scripts/none.sh")
            && field(attempt, "errorMessage").contains("NoSuchKey"),
        "{attempt:?}"
    );
}

/// `dp_runner::storage::Storage` as a library user calls it: a file of many chunks goes to S3 and back byte for
/// byte, a failed download leaves no file under the target's name nor a `.part` file, and errors name the location.
///
/// The file is written and compared in 1 MiB pieces, so the test itself holds little, and the transfers must
/// stream: the process's peak RSS during them (the peak is reset just before, through `/proc/self/clear_refs`) may
/// grow by at most half the object's size (32 MiB by default, `DP_S3_TEST_BYTES` to change it), where holding the
/// object whole would grow it by the whole size at least (docs/PERFORMANCE.md).
#[test]
fn storage_streams_files_to_s3_and_back() {
    use std::io::{Read as _, Write as _};
    let moto = Moto::start();
    let s3 = s3(&moto);
    block_on(s3.create_bucket().bucket("bkt").send()).expect("bucket created");
    let dir = TempDir::new("storage");
    let size: usize = std::env::var("DP_S3_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32 << 20);
    let piece = |i: usize| -> Vec<u8> {
        (0..1usize << 20)
            .map(|j| ((i * 31 + j).wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    };
    let mut file = std::fs::File::create(dir.path().join("in.bin")).unwrap();
    let (mut left, mut i) = (size, 0);
    while left > 0 {
        let n = left.min(1 << 20);
        file.write_all(&piece(i)[..n]).unwrap();
        (left, i) = (left - n, i + 1);
    }
    drop(file);
    let wire = wire_client();
    let storage =
        dp_runner::storage::Storage::new(std::sync::Arc::new(wire), Some(moto.url.clone()));
    let out = dir.path().join("out");
    // VmRSS and VmHWM (the peak), in bytes.
    let memory = |key: &str| -> usize {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/self/status"))
            * 1024
    };
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("the peak RSS can be reset (Linux 4.0 or later)");
    let before = memory("VmRSS:");
    block_on(async {
        storage
            .upload_file(&dir.path().join("in.bin"), "s3://bkt/big/in.bin")
            .await
            .expect("upload");
        storage
            .download_file("s3://bkt/big/in.bin", &out.join("copy.bin"))
            .await
            .expect("download");
        let missing = storage
            .download_file("s3://bkt/big/missing.bin", &out.join("missing.bin"))
            .await
            .expect_err("a missing object is an error");
        assert!(
            missing
                .to_string()
                .starts_with("cannot download s3://bkt/big/missing.bin: NoSuchKey"),
            "{missing}"
        );
        let unreadable = storage
            .upload_file(&dir.path().join("absent.bin"), "s3://bkt/x")
            .await
            .expect_err("an absent file is an error");
        assert!(
            unreadable.to_string().contains("absent.bin"),
            "{unreadable}"
        );
    });
    let growth = memory("VmHWM:").saturating_sub(before);
    assert!(
        growth < size / 2,
        "the peak RSS grew by {growth} bytes while {size} bytes went to S3 and back: the transfers do not stream"
    );
    let mut copy = std::fs::File::open(out.join("copy.bin")).unwrap();
    assert_eq!(copy.metadata().unwrap().len() as usize, size);
    let (mut left, mut i) = (size, 0);
    let mut buffer = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(1 << 20);
        copy.read_exact(&mut buffer[..n]).unwrap();
        assert!(
            buffer[..n] == piece(i)[..n],
            "the downloaded bytes differ from the uploaded ones in MiB {i}"
        );
        (left, i) = (left - n, i + 1);
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["copy.bin"], "no partial or failed file is left");
}
