//! The HTTP front's limits, fallbacks and refusals, on a served server.
use super::*;

use crate::limits::Limits;
use crate::test_support::{now, send_ecs, served_with, Signing};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let served = served_with(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(served.server.addr())
        .await
        .expect("connect");
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("half a head");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection, not the test's timeout")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "no request was served: {answer}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "cut off by the timeout"
    );
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let served = served_with(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut idle = tokio::net::TcpStream::connect(served.server.addr())
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("a whole request");
    let mut answer = [0u8; 512];
    let read = idle.read(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    // Kept alive, then silent: the server closes it.
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("the server closes an idle connection")
        .ok();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed by the timeout"
    );
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let served = served_with(Limits {
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let holder = tokio::net::TcpStream::connect(served.server.addr())
        .await
        .expect("connect");
    let credentials = served.credentials.clone();
    let waiting = tokio::spawn({
        let addr = served.server.addr();
        async move {
            crate::test_support::send(
                addr,
                "POST",
                "/",
                &[(
                    "x-amz-target",
                    "AmazonEC2ContainerServiceV20141113.ListClusters",
                )],
                b"{}",
                Signing::As(&credentials, now()),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the second connection is not served yet"
    );
    drop(holder);
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once the first connection closed")
        .expect("task");
    assert_eq!(answer.status, 200, "{answer:?}");
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_beyond_its_rate_is_throttled_as_ecs_throttles() {
    let served = served_with(Limits {
        requests_per_second: 0.5,
        burst: 3.0,
        ..Limits::default()
    })
    .await;
    let good = &served.credentials;
    let body = serde_json::json!({});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answer = send_ecs(&served, "ListClusters", &body, Signing::As(good, now())).await;
        statuses.push((answer.status, answer.error_type()));
    }
    assert_eq!(
        statuses[..3],
        [
            (200, String::new()),
            (200, String::new()),
            (200, String::new())
        ]
    );
    assert_eq!(
        statuses[3],
        (400, "ThrottlingException".to_string()),
        "{statuses:?}"
    );
    served.server.shutdown().await.expect("shutdown");
}

#[test]
fn a_server_fault_reaches_the_client_as_its_request_id_only() {
    let fault = ApiError::server("disk I/O error in /var/lib/berth/berth.db");
    let told = client_facing(fault, "req-42");
    assert_eq!(told.name, "ServerException");
    assert!(told.message.contains("req-42"), "{}", told.message);
    assert!(!told.message.contains("berth.db"), "{}", told.message);
    let mistake = ApiError::invalid_parameter("maxResults must be between 1 and 100, got 0.");
    let told = client_facing(mistake, "req-43");
    assert_eq!(told.name, "InvalidParameterException");
    assert_eq!(told.message, "maxResults must be between 1 and 100, got 0.");
}
