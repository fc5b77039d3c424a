//! Client tests against a hand-written HTTP/1.1 peer on a loopback port.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIDBERTH".into(),
        secret_access_key: "test-secret".into(),
        session_token: None,
    }
}

async fn listener() -> (TcpListener, ServerClient) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client =
        ServerClient::new(&format!("http://{addr}"), "us-east-1", credentials()).expect("client");
    (listener, client)
}

/// Checks the SigV4 signature of a request as received (head and body), with the test secret.
fn verify(request: &str) -> Result<(), sigv4::Refusal> {
    let (head, body) = request.split_once("\r\n\r\n").expect("head");
    let mut lines = head.lines();
    let line: Vec<&str> = lines.next().expect("request line").split(' ').collect();
    let (path, query) = line[1].split_once('?').unwrap_or((line[1], ""));
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let parts = RequestParts {
        method: line[0],
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    sigv4::Signed::parse(&parts)?.verify(&parts, "test-secret", now, sigv4::PathRules::SERVICES)
}

/// Reads one request (head and a content-length body) from `stream`.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "peer closed before a full request");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Answers one request with `status` and a JSON `body`; returns the request text.
async fn answer(listener: &TcpListener, status: &str, body: &str) -> String {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let request = read_request(&mut stream).await;
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await.expect("write");
    request
}

#[test]
fn only_plain_http_urls_with_a_host_are_accepted() {
    assert!(ServerClient::new("http://127.0.0.1:7700", "us-east-1", credentials()).is_ok());
    assert!(ServerClient::new("http://127.0.0.1:7700/", "us-east-1", credentials()).is_ok());
    assert!(ServerClient::new("https://127.0.0.1:7700", "us-east-1", credentials()).is_ok());
    for bad in ["127.0.0.1:7700", "ftp://x", "http://x:1/api", "not a url"] {
        let err = ServerClient::new(bad, "us-east-1", credentials()).expect_err(bad);
        assert!(
            matches!(err, ClientError::InvalidUrl { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn server_faults_and_transport_errors_are_retried_but_rejections_are_not() {
    assert!(ClientError::Transport("refused".into()).is_retryable());
    assert!(ClientError::Api {
        status: 500,
        kind: "ServerException".into(),
        message: String::new()
    }
    .is_retryable());
    assert!(ClientError::Api {
        status: 429,
        kind: "ThrottlingException".into(),
        message: String::new()
    }
    .is_retryable());
    assert!(ClientError::Api {
        status: 400,
        kind: "ThrottlingException".into(),
        message: "Rate exceeded".into()
    }
    .is_retryable());
    assert!(!ClientError::Api {
        status: 400,
        kind: "ClientException".into(),
        message: String::new()
    }
    .is_retryable());
}

#[tokio::test]
async fn ecs_calls_carry_the_target_content_type_and_authorization() {
    let (listener, client) = listener().await;
    let server =
        tokio::spawn(
            async move { answer(&listener, "200 OK", r#"{"acknowledgment":"ok"}"#).await },
        );
    let report = SubmitTaskStateChange {
        cluster: Some("demo".into()),
        task: Some("t".into()),
        status: Some("RUNNING".into()),
        ..Default::default()
    };
    client
        .submit_task_state_change(&report)
        .await
        .expect("submitted");
    let request = server.await.expect("server");
    verify(&request).expect("the request verifies with the client's secret");
    let tampered = request.replacen("RUNNING", "STOPPED", 1);
    assert!(
        verify(&tampered).is_err(),
        "a changed report does not verify"
    );
    let request = request.to_ascii_lowercase();
    assert!(request.starts_with("post / http/1.1"), "{request}");
    assert!(
        request.contains("x-amz-target: amazonec2containerservicev20141113.submittaskstatechange")
    );
    assert!(request.contains("content-type: application/x-amz-json-1.1"));
    assert!(request.contains("authorization: aws4-hmac-sha256 credential=akidberth/"));
    assert!(request.contains(r#""status":"running""#), "{request}");
}

#[tokio::test]
async fn ecs_errors_come_back_with_their_exception_name() {
    let (listener, client) = listener().await;
    tokio::spawn(async move {
        answer(
            &listener,
            "400 Bad Request",
            r#"{"__type":"com.amazonaws.ecs#ClientException","message":"no such task"}"#,
        )
        .await
    });
    let err = client
        .submit_task_state_change(&SubmitTaskStateChange::default())
        .await
        .expect_err("rejected");
    assert_eq!(
        err,
        ClientError::Api {
            status: 400,
            kind: "ClientException".into(),
            message: "no such task".into()
        }
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let (listener, client) = listener().await;
    drop(listener);
    let err = client
        .heartbeat(&Heartbeat {
            cluster: "c".into(),
            container_instance: "i".into(),
        })
        .await
        .expect_err("down");
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
}

#[tokio::test]
async fn the_desired_stream_yields_each_line_and_ends_at_eof() {
    let (listener, client) = listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let request = read_request(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n")
            .await
            .expect("head");
        stream
            .write_all(b"{\"revision\":7,\"assigned\":[],\"tasks\":[]}\n\n{\"revi")
            .await
            .expect("line");
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream
            .write_all(b"sion\":9,\"assigned\":[]}\n")
            .await
            .expect("line");
        request
    });
    let mut stream = client
        .desired_stream("demo", "abc123", Some(5))
        .await
        .expect("stream");
    assert_eq!(
        stream
            .next_update()
            .await
            .expect("line")
            .map(|s| s.revision),
        Some(7)
    );
    assert_eq!(
        stream
            .next_update()
            .await
            .expect("line")
            .map(|s| s.revision),
        Some(9)
    );
    assert_eq!(stream.next_update().await.expect("eof"), None);
    let request = server.await.expect("server");
    assert!(
        request.starts_with(
            "GET /v1/agent/desired?cluster=demo&containerInstance=abc123&protocol=2&since=5 HTTP/1.1"
        ),
        "{request}"
    );
    verify(&request).expect("the stream request is signed, query included");
    let other = request.replacen("abc123", "abc124", 1);
    assert!(
        verify(&other).is_err(),
        "another instance's stream needs its own signature"
    );
}

#[tokio::test]
async fn a_refused_desired_stream_is_an_api_error() {
    let (listener, client) = listener().await;
    tokio::spawn(async move {
        answer(
            &listener,
            "404 Not Found",
            r#"{"__type":"ClusterNotFoundException","message":"nope"}"#,
        )
        .await
    });
    let err = client
        .desired_stream("x", "y", None)
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Api { status: 404, .. }), "{err}");
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

#[tokio::test]
async fn a_client_of_replicas_moves_to_the_next_when_one_is_unreachable_but_not_on_an_error_answer()
{
    let dead = dead_url().await;
    let live = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let live_url = format!("http://{}", live.local_addr().expect("addr"));
    let client = ServerClient::with_servers(&[&dead, &live_url], "us-east-1", credentials(), None)
        .expect("client");
    assert_eq!(client.server_urls(), [dead.as_str(), live_url.as_str()]);
    assert_eq!(client.base_url(), dead);
    let heartbeat = Heartbeat {
        cluster: "c".into(),
        container_instance: "i".into(),
    };
    let err = client.heartbeat(&heartbeat).await.expect_err("down");
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert_eq!(client.base_url(), live_url, "moved on");
    let clone = client.clone();
    assert_eq!(clone.base_url(), live_url, "clones move together");

    let server = tokio::spawn(async move {
        let ok = answer(&live, "200 OK", "{}").await;
        let refused = answer(
            &live,
            "400 Bad Request",
            r#"{"__type":"ClientException","message":"no"}"#,
        )
        .await;
        (ok, refused)
    });
    client
        .heartbeat(&heartbeat)
        .await
        .expect("the live one answers");
    let err = client.heartbeat(&heartbeat).await.expect_err("refused");
    assert!(matches!(err, ClientError::Api { status: 400, .. }), "{err}");
    assert_eq!(client.base_url(), live_url, "an error answer moves nothing");
    let (ok, _) = server.await.expect("server");
    let host = format!("host: {}", live_url.trim_start_matches("http://"));
    assert!(ok.to_ascii_lowercase().contains(&host), "{ok}");
    verify(&ok).expect("signed for the server it went to");
}

#[tokio::test]
async fn a_broken_or_silent_desired_stream_moves_the_client_to_the_next_server() {
    let (a, client) = listener().await;
    let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b_url = format!("http://{}", b.local_addr().expect("addr"));
    let client = ServerClient::with_servers(
        &[client.base_url(), b_url.as_str()],
        "us-east-1",
        credentials(),
        None,
    )
    .expect("client");
    let a_url = client.base_url().to_string();
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
    // a sends one line, then its connection breaks in the middle of a chunk.
    tokio::spawn(async move {
        let (mut stream, _) = a.accept().await.expect("accept");
        read_request(&mut stream).await;
        let line = "{\"revision\":7,\"assigned\":[]}\n";
        let chunk = format!("{head}{:x}\r\n{line}\r\n10\r\n{{\"rev", line.len());
        stream.write_all(chunk.as_bytes()).await.expect("write");
    });
    let mut stream = client
        .desired_stream("demo", "abc", None)
        .await
        .expect("stream");
    assert_eq!(stream.server_url(), a_url);
    let first = stream
        .next_update()
        .await
        .expect("line")
        .map(|u| u.revision);
    assert_eq!(first, Some(7));
    let err = stream.next_update().await.expect_err("broken");
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert_eq!(client.base_url(), b_url, "moved on from a");

    // b holds the stream open but says nothing.
    let held = tokio::spawn(async move {
        let (mut stream, _) = b.accept().await.expect("accept");
        let request = read_request(&mut stream).await;
        stream.write_all(head.as_bytes()).await.expect("head");
        tokio::time::sleep(Duration::from_secs(5)).await;
        request
    });
    let mut stream = client
        .desired_stream("demo", "abc", Some(7))
        .await
        .expect("stream");
    let err = stream
        .next_update_within(Duration::from_millis(100))
        .await
        .expect_err("silent");
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert_eq!(client.base_url(), a_url, "round robin, back to a");
    held.abort();
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(encode("a b/c"), "a%20b%2Fc");
    assert_eq!(encode("demo-1_x"), "demo-1_x");
}

#[test]
fn xml_text_reads_the_first_element_of_a_name() {
    let xml = "<CreateRoleResponse><CreateRoleResult><Role><Arn>arn:aws:iam::1:role/r</Arn>\
               </Role></CreateRoleResult></CreateRoleResponse>";
    assert_eq!(
        super::xml_text(xml, "Arn").as_deref(),
        Some("arn:aws:iam::1:role/r")
    );
    assert_eq!(super::xml_text(xml, "Code"), None);
}
