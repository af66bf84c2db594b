//! The HTTP server against slow and abusive clients: a request head that
//! never ends, a body that never arrives, more connections than allowed.

use std::time::{Duration, Instant};
use switchboard_tests::harness::{HostConfig, bitrix_channel, plugin_table};
use switchboard_tests::{FakeBitrix, TestHost, WAIT, components};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn host(server: &str) -> TestHost {
    let bitrix = FakeBitrix::start().await;
    HostConfig::default().toml(server).plugin("echo", components::ECHO).connector("support", &bitrix_channel(&bitrix), &plugin_table("echo", &[])).start().await
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.expect("the server closed the connection").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_cut_off() {
    let host = host("[server]\nheader_timeout_ms = 500").await;
    let mut stream = TcpStream::connect(host.addr()).await.unwrap();
    stream.write_all(b"POST /hooks/support HTTP/1.1\r\nHost: switchboard\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    read_until_closed(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "closed only after the header deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_408() {
    let host = host("[server]\nbody_timeout_ms = 500").await;
    let mut stream = TcpStream::connect(host.addr()).await.unwrap();
    let head = "POST /hooks/support HTTP/1.1\r\nHost: switchboard\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nevent=ONIM";
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503_with_retry_after() {
    let host = host("[server]\nmax_connections = 2").await;
    let idle = [TcpStream::connect(host.addr()).await.unwrap(), TcpStream::connect(host.addr()).await.unwrap()];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(host.addr()).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchboard\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = host.get("/healthz").await;
    assert_eq!(status, reqwest::StatusCode::OK, "served again once the idle connections closed");
}
