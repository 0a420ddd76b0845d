//! Idle and slow clients cannot wear dp-local down: connections without a complete request head are closed after
//! the head timeout, and the connection cap holds extra connections back instead of serving them all.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use dp_local::Config;
use serde_json::json;

use crate::pgmode::TestServer;
use crate::support::*;

fn server(header_timeout: Duration, max_connections: usize) -> TestServer {
    crate::pgmode::bind(Config {
        header_timeout,
        max_connections,
        ..Config::default()
    })
}

/// Whether the server has closed `stream` (end of file or reset), waiting up to `wait` for it.
fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // hyper may answer a half-sent head with an error status before closing; keep reading to the end.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_are_closed_while_others_are_served() {
    let server = server(Duration::from_secs(1), 4096);
    let addr = server.addr();
    let mut idle = Vec::new();
    for i in 0..2000 {
        let mut stream = TcpStream::connect(addr).unwrap();
        // Half of them start a request line and never finish it.
        if i % 2 == 1 {
            stream.write_all(b"POST / HT").unwrap();
        }
        idle.push(stream);
    }
    let client = Client::new(&server.url());
    for i in 0..20 {
        let name = format!("busy-{i}");
        client
            .ok("CreatePipeline", json!({"name": name, "uniqueId": name}))
            .await;
    }
    let listed = client.ok("ListPipelines", json!({})).await;
    assert_eq!(listed["pipelineIdList"].as_array().unwrap().len(), 20);
    let still_open = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        idle.into_iter()
            .filter(|s| {
                let mut s = s.try_clone().unwrap();
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                !closed(&mut s, left.max(Duration::from_millis(1)))
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(still_open, 0, "every idle connection is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_extra_connections_until_a_slot_frees() {
    let server = server(Duration::from_millis(500), 4);
    let addr = server.addr();
    let mut idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Give the server a moment to take all four (they are accepted in order; the request below comes fifth).
    std::thread::sleep(Duration::from_millis(100));
    let client = Client::new(&server.url());
    let answered = client.ok("ListPipelines", json!({})).await;
    assert_eq!(answered["hasMoreResults"], json!(false));
    // The request could only be served once the idle connections had been closed by the head timeout.
    for stream in &mut idle {
        assert!(
            closed(stream, Duration::from_millis(1)),
            "the fifth connection was served while four idle ones held every slot"
        );
    }
}
