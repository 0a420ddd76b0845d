//! The web console in a real browser: headless Chromium driven through chromedriver (WebDriver, with fantoccini).
//! `.ci/run` installs Debian's `chromium` and `chromium-driver` when they are missing; the tests start both
//! themselves. Set `DP_CONSOLE_SCREENSHOT=PATH` to keep the screenshot of the pipeline page (docs/ has one).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    profile: std::path::PathBuf,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: apt-get install chromium chromium-driver)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile =
            std::env::temp_dir().join(format!("dp-local-console-{}-{port}", std::process::id()));
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1200", format!("--user-data-dir={}", self.profile.display()),
                ]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium outlives a killed chromedriver (it is handed to init): its processes are found by the profile
        // folder this driver gave it, and killed, so that no browser outlives the test.
        let profile = format!("--user-data-dir={}", self.profile.display());
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == profile.as_bytes())
                {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn client(server: &dp_local::Server) -> dp_wire::Client {
    dp_wire::Client::with_environment(
        dp_wire::Settings::default(),
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
            ("AWS_ENDPOINT_URL_DATA_PIPELINE", server.url().as_str()),
        ]),
    )
    .unwrap()
}

async fn call(client: &dp_wire::Client, operation: &str, input: Value) -> Value {
    client
        .call_json(dp_model::operation(operation).unwrap(), &input)
        .await
        .unwrap_or_else(|e| panic!("{operation}: {e}"))
}

fn text(key: &str, value: &str) -> Value {
    json!({"key": key, "stringValue": value})
}

fn reference(key: &str, id: &str) -> Value {
    json!({"key": key, "refValue": id})
}

/// A pipeline with 5 objects and 3 references; Extract finishes, Load fails with "table locked".
async fn nightly(client: &dp_wire::Client) -> String {
    let id = call(
        client,
        "CreatePipeline",
        json!({"name": "nightly-etl", "uniqueId": "n1"}),
    )
    .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let objects = json!([
        {"id": "Default", "name": "Default", "fields": [text("scheduleType", "ondemand")]},
        {"id": "Input", "name": "Input", "fields": [text("type", "S3DataNode"), text("directoryPath", "s3://b/in/")]},
        {"id": "Output", "name": "Output", "fields": [text("type", "S3DataNode"), text("directoryPath", "s3://b/out/")]},
        {"id": "Extract", "name": "Extract", "fields": [
            text("type", "ShellCommandActivity"), text("workerGroup", "etl"), text("command", "true"),
            reference("input", "Input"), reference("output", "Output")]},
        {"id": "Load", "name": "Load", "fields": [
            text("type", "ShellCommandActivity"), text("workerGroup", "etl"), text("command", "false"),
            text("maximumRetries", "0"), reference("dependsOn", "Extract")]},
    ]);
    let put = call(
        client,
        "PutPipelineDefinition",
        json!({"pipelineId": id, "pipelineObjects": objects}),
    )
    .await;
    assert_eq!(put["errored"], false, "{put}");
    call(client, "ActivatePipeline", json!({"pipelineId": id})).await;
    for (status, error) in [
        ("FINISHED", None),
        ("FAILED", Some("table locked by another load")),
    ] {
        let task = loop {
            let polled = call(client, "PollForTask", json!({"workerGroup": "etl"})).await;
            if let Some(task) = polled.get("taskObject") {
                break task.clone();
            }
        };
        let mut input = json!({"taskId": task["taskId"], "taskStatus": status});
        if let Some(message) = error {
            input["errorId"] = json!("ExitCode_1");
            input["errorMessage"] = json!(message);
        }
        call(
            client,
            "ReportTaskProgress",
            json!({"taskId": task["taskId"]}),
        )
        .await;
        call(client, "SetTaskStatus", input).await;
    }
    id
}

/// A raw HTTP/1.1 request to the server: `(status, body)`.
fn raw(server: &dp_local::Server, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Clicks the element, waiting for it to appear. The page replaces its content every 3 s, so an element found just
/// before a refresh can be gone when it is clicked: then it is looked up again (within a bound, not a timing test).
async fn click(browser: &Client, locator: Locator<'_>) {
    let start = Instant::now();
    loop {
        let clicked = async { browser.find(locator).await?.click().await }.await;
        match clicked {
            Ok(()) => return,
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("click {locator:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The element's text, waiting for it to appear and looking it up again after a refresh (see [`click`]).
async fn text_of(browser: &Client, locator: Locator<'_>) -> String {
    let start = Instant::now();
    loop {
        let text = async { browser.find(locator).await?.text().await }.await;
        match text {
            Ok(text) => return text,
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                panic!("text of {locator:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn count(browser: &Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn wait_for(browser: &Client, what: &str, script: &str) {
    let start = Instant::now();
    loop {
        if browser.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let server = crate::pgmode::bind(dp_local::Config {
        time_scale: 60.0,
        ..Default::default()
    });
    let console = server.console_url().expect("the console is on by default");
    let token = console.rsplit("token=").next().unwrap().to_string();
    let api = client(&server);
    let pipeline = nightly(&api).await;
    call(
        &api,
        "CreatePipeline",
        json!({"name": HOSTILE, "uniqueId": "h1"}),
    )
    .await;

    // Without the token: 401 and nothing shown, for pages, assets and actions alike.
    for path in [
        "/console",
        &format!("/console/pipeline?id={pipeline}"),
        "/console/assets/app.js",
    ] {
        let (status, body) = raw(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 401, "{path}");
        assert!(!body.contains("nightly-etl"), "{body}");
    }
    let (status, _) = raw(
        &server,
        &format!(
            "GET /console?token=wrong{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 401);
    // With the cookie but without a CSRF value from a page, an action is refused and changes nothing.
    let form = format!("action=rerun&pipeline={pipeline}&object=x&confirmed=yes");
    let (status, _) = raw(
        &server,
        &format!(
            "POST /console/action HTTP/1.1\r\nHost: x\r\nCookie: dp_console={token}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 403);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "GET {console} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.contains(
            "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'"
        ),
        "{head}"
    );
    assert!(
        head.contains("set-cookie: dp_console=") && head.contains("httponly; samesite=strict"),
        "{head}"
    );

    let driver = Driver::start();
    let browser = driver.browser().await;

    browser
        .goto(&format!("{}/console", server.url()))
        .await
        .unwrap();
    let body = text_of(&browser, Locator::Css("body")).await;
    assert!(
        body.contains("401") && !body.contains("nightly-etl"),
        "{body}"
    );

    browser.goto(&console).await.unwrap();
    // Read in one script: the page refreshes itself, and elements found one by one could be replaced meanwhile.
    let names: Vec<String> = serde_json::from_value(
        browser
            .execute(
                "return Array.from(document.querySelectorAll('a.name')).map(a => a.textContent)",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(names.contains(&"nightly-etl".to_string()), "{names:?}");
    assert!(
        names.contains(&HOSTILE.to_string()),
        "the hostile name shows as text: {names:?}"
    );
    assert_eq!(
        count(&browser, "img").await,
        0,
        "no element was made from the name"
    );
    assert!(browser.get_alert_text().await.is_err(), "no script ran");

    // The pipeline page: one node per object, one edge per reference.
    click(&browser, Locator::LinkText("nightly-etl")).await;
    wait_for(
        &browser,
        "the pipeline page",
        "return !!document.querySelector('svg.graph')",
    )
    .await;
    assert_eq!(count(&browser, "svg.graph g.node").await, 5);
    assert_eq!(count(&browser, "svg.graph g.edge").await, 3);
    let fields: Value = browser
        .execute(
            "return Array.from(document.querySelectorAll('svg.graph g.edge')).map(e => e.dataset.from + ' ' + e.dataset.field + ' ' + e.dataset.to).sort()",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fields,
        json!([
            "Extract input Input",
            "Extract output Output",
            "Load dependsOn Extract"
        ])
    );

    // The failed attempt shows its errorMessage once its run is opened.
    let load = "li.run[data-id^='@Load_']";
    assert_eq!(
        text_of(&browser, Locator::Css(&format!("{load} .status"))).await,
        "FAILED"
    );
    click(&browser, Locator::Css(&format!("{load} summary"))).await;
    wait_for(
        &browser,
        "the run's attempts",
        &format!("return !!document.querySelector(\"{load} .attempt .error-message\")"),
    )
    .await;
    let message = text_of(
        &browser,
        Locator::Css(&format!("{load} .attempt .error-message")),
    )
    .await;
    assert_eq!(message, "table locked by another load");

    // The page refreshes by itself and keeps the opened run open. A refresh replaces every element of the live
    // part, so the mark put on the opened run's element now is gone once a refresh has come after the click (an
    // earlier one's "refreshed" note proves nothing).
    let marked: Value = browser
        .execute(
            &format!(
                "var d = document.querySelector(\"{load} details\"); d.dataset.beforeRefresh = 'yes'; return d.open"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(marked, Value::Bool(true), "the run was opened by the click");
    wait_for(
        &browser,
        "a refresh after the click",
        &format!(
            "var d = document.querySelector(\"{load} details\"); return !!d && d.dataset.beforeRefresh === undefined \
             && document.getElementById('refresh-note').textContent.startsWith('refreshed')"
        ),
    )
    .await;
    let open: Value = browser
        .execute(
            &format!("return document.querySelector(\"{load} details\").open"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(open, Value::Bool(true), "the reader's place is kept");

    if let Some(path) = std::env::var_os("DP_CONSOLE_SCREENSHOT") {
        std::fs::write(path, browser.screenshot().await.unwrap()).unwrap();
    }

    // The same run on a page of its own, for a browser without JavaScript.
    let link: Value = browser
        .execute(
            &format!("return document.querySelector(\"{load} details\").dataset.fragment"),
            vec![],
        )
        .await
        .unwrap();
    let (status, html) = raw(
        &server,
        &format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nCookie: dp_console={token}\r\nConnection: close\r\n\r\n",
            link.as_str().unwrap()
        ),
    );
    assert_eq!(status, 200);
    assert!(
        html.contains("<html") && html.contains("table locked by another load"),
        "{html}"
    );

    // Rerun from the console: a confirmation, then a new attempt that the API sees.
    click(
        &browser,
        Locator::Css(&format!("{load} button[data-action='rerun']")),
    )
    .await;
    let question = text_of(&browser, Locator::Css(".confirm-text")).await;
    assert!(question.starts_with("Rerun instance @Load_"), "{question}");
    let before = attempts(&api, &pipeline).await;
    assert_eq!(before, 2, "Extract's and Load's attempts");
    click(&browser, Locator::Id("confirm")).await;
    wait_for(
        &browser,
        "the notice",
        "return !!document.querySelector('p.notice')",
    )
    .await;
    let notice = text_of(&browser, Locator::Css("p.notice")).await;
    assert!(
        notice.starts_with("Done: Rerun instance @Load_"),
        "{notice}"
    );
    assert_eq!(
        attempts(&api, &pipeline).await,
        3,
        "the rerun made a new attempt"
    );

    // Runners: the one that sent a heartbeat, and a task waiting for a worker group nobody serves, flagged.
    call(
        &api,
        "ReportTaskRunnerHeartbeat",
        json!({"taskrunnerId": "runner-1", "workerGroup": "etl", "hostname": "builder-7"}),
    )
    .await;
    let orphan = call(
        &api,
        "CreatePipeline",
        json!({"name": "orphan", "uniqueId": "o1"}),
    )
    .await["pipelineId"]
        .clone();
    let objects = json!([
        {"id": "Default", "name": "Default", "fields": [text("scheduleType", "ondemand")]},
        {"id": "Wait", "name": "Wait", "fields": [
            text("type", "ShellCommandActivity"), text("workerGroup", "nobody-polls"), text("command", "true")]},
    ]);
    call(
        &api,
        "PutPipelineDefinition",
        json!({"pipelineId": orphan, "pipelineObjects": objects}),
    )
    .await;
    call(&api, "ActivatePipeline", json!({"pipelineId": orphan})).await;
    click(&browser, Locator::LinkText("Runners")).await;
    wait_for(
        &browser,
        "the runners page",
        "return !!document.querySelector('table.waiting')",
    )
    .await;
    let runner = text_of(&browser, Locator::Css("tr.runner")).await;
    assert!(
        runner.contains("runner-1") && runner.contains("etl") && runner.contains("builder-7"),
        "{runner}"
    );
    let flagged = text_of(&browser, Locator::Css("tr.flagged")).await;
    assert!(
        flagged.contains("nobody-polls") && flagged.contains("no runner has sent a heartbeat"),
        "{flagged}"
    );

    browser.close().await.unwrap();
    server.shutdown();
}

/// How many attempts the API lists for `pipeline`.
async fn attempts(client: &dp_wire::Client, pipeline: &str) -> usize {
    let ids = call(
        client,
        "QueryObjects",
        json!({"pipelineId": pipeline, "sphere": "ATTEMPT"}),
    )
    .await;
    ids["ids"].as_array().map_or(0, Vec::len)
}

#[test]
fn no_console_turns_it_off() {
    let server = crate::pgmode::bind(dp_local::Config {
        console: false,
        ..Default::default()
    });
    assert_eq!(server.console_url(), None);
    let (status, body) = raw(
        &server,
        "GET /console HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_ne!(status, 200);
    assert!(!body.contains("<html"), "{body}");
}

#[test]
fn the_binary_prints_the_console_url_second_and_no_console_turns_it_off() {
    use std::io::BufRead;
    let state = crate::pgmode::ChildState::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args(state.args(&["--port", "0"]))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut api, mut console) = (String::new(), String::new());
    lines.read_line(&mut api).unwrap();
    lines.read_line(&mut console).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (api, console) = (api.trim(), console.trim());
    let token = console
        .strip_prefix(&format!("{api}/console?token="))
        .unwrap_or_else(|| panic!("second line {console:?} is not {api}/console?token=…"));
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");

    let state = crate::pgmode::ChildState::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dp-local"))
        .args(state.args(&["--port", "0", "--no-console"]))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut api = String::new();
    lines.read_line(&mut api).unwrap();
    let addr = api.trim().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /console HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("<html"), "{answer}");
}

/// Resource and data node instances are runs like any other in the console: a resource whose runner could not be
/// started shows FAILED with its type, its opened run shows why, and the graph marks its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_data_nodes_in_the_console() {
    let server = crate::pgmode::bind(dp_local::Config {
        time_scale: 60.0,
        runner_bin: Some("/nonexistent/dp-task-runner".into()),
        ..Default::default()
    });
    let console = server.console_url().unwrap();
    let api = client(&server);
    let pipeline = call(
        &api,
        "CreatePipeline",
        json!({"name": "on-a-box", "uniqueId": "box"}),
    )
    .await["pipelineId"]
        .as_str()
        .unwrap()
        .to_string();
    let objects = json!([
        {"id": "Default", "name": "Default", "fields": [text("scheduleType", "ondemand")]},
        {"id": "Box", "name": "Box", "fields": [text("type", "Ec2Resource"), text("maximumRetries", "0")]},
        {"id": "Out", "name": "Out", "fields": [text("type", "S3DataNode"), text("filePath", "s3://b/out")]},
        {"id": "Work", "name": "Work", "fields": [
            text("type", "ShellCommandActivity"), text("command", "true"),
            reference("runsOn", "Box"), reference("output", "Out")]},
    ]);
    let put = call(
        &api,
        "PutPipelineDefinition",
        json!({"pipelineId": pipeline, "pipelineObjects": objects}),
    )
    .await;
    assert_eq!(put["errored"], false, "{put}");
    call(&api, "ActivatePipeline", json!({"pipelineId": pipeline})).await;

    let driver = Driver::start();
    let browser = driver.browser().await;
    browser.goto(&console).await.unwrap();
    browser
        .goto(&format!("{}/console/pipeline?id={pipeline}", server.url()))
        .await
        .unwrap();
    let resource = "li.run[data-id^='@Box_']";
    wait_for(
        &browser,
        "the resource to fail",
        &format!("var r = document.querySelector(\"{resource}\"); return !!r && r.dataset.status === 'FAILED'"),
    )
    .await;
    assert_eq!(
        text_of(&browser, Locator::Css(&format!("{resource} .kind"))).await,
        "Ec2Resource"
    );
    // The data node the activity would have written never became ready.
    wait_for(
        &browser,
        "the output data node's run",
        "var r = document.querySelector(\"li.run[data-id^='@Out_']\"); return !!r && r.dataset.status === 'CASCADE_FAILED'",
    )
    .await;
    wait_for(
        &browser,
        "the graph's state marks",
        "var n = document.querySelector(\"svg.graph g.node[data-id='Box']\"); return !!n && n.dataset.status === 'FAILED'",
    )
    .await;
    click(&browser, Locator::Css(&format!("{resource} summary"))).await;
    wait_for(
        &browser,
        "the resource's attempt",
        &format!("return !!document.querySelector(\"{resource} .attempt .error-message\")"),
    )
    .await;
    let message = text_of(
        &browser,
        Locator::Css(&format!("{resource} .attempt .error-message")),
    )
    .await;
    assert!(message.contains("/nonexistent/dp-task-runner"), "{message}");
}
