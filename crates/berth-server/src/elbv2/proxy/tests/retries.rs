//! Requests sent again after their target failed them: refused connections, connections
//! reset after the request went out, and which methods may be sent twice.

use super::*;

/// A data plane whose listener round-robins between `failing` and a working target `a`:
/// both stay `initial` (thresholds out of reach), so traffic fails open to both and every
/// other request meets `failing` first. Returns `a` and the data plane (both to keep alive)
/// and the listener's address.
async fn beside_a(failing: TargetConfig) -> (Arc<Backend>, Arc<DataPlane>, SocketAddr) {
    let a = Backend::start("a").await;
    let mut tg = group("tg", Algorithm::RoundRobin, vec![failing, a.target()]);
    tg.health_check.interval = Duration::from_secs(60);
    tg.health_check.healthy_threshold = 10;
    tg.health_check.unhealthy_threshold = 10;
    let (plane, _board, addr) = start(simple(vec![tg])).await;
    (a, plane, addr)
}

#[tokio::test]
async fn an_idempotent_request_is_retried_on_another_target_when_refused() {
    let dead = dead_addr().await;
    let (_a, _plane, addr) = beside_a(dead_target("dead", dead)).await;
    let client = user();
    for _ in 0..6 {
        let answer = get(&client, addr, "/").await;
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    }
    let mut posts = Vec::new();
    for _ in 0..4 {
        let answer = call(&client, Method::POST, format!("http://{addr}/"), None).await;
        posts.push(answer.status);
    }
    assert!(posts.contains(&StatusCode::BAD_GATEWAY), "{posts:?}");
    assert!(posts.contains(&StatusCode::OK), "{posts:?}");
}

/// A target that reads each request and closes the connection without answering.
async fn hang_up_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = Vec::new();
                while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                }
                drop(tcp);
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_get_whose_connection_drops_after_sending_is_sent_to_another_target() {
    let hang_up = hang_up_target().await;
    let (_a, _plane, addr) = beside_a(dead_target("hangs-up", hang_up)).await;
    let client = user();
    for _ in 0..6 {
        let request = Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let answer = answer(&client, request).await;
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    }
    // A GET with a body, or a POST, that went out cannot be sent again: its body is gone
    // (and a POST may have done its work).
    let with_body = call(&client, Method::GET, format!("http://{addr}/"), None).await;
    let again = call(&client, Method::GET, format!("http://{addr}/"), None).await;
    let mut statuses = [with_body.status, again.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_GATEWAY]);
    // A POST that went out may have done its work: it is not sent twice.
    let mut posts = Vec::new();
    for _ in 0..4 {
        posts.push(
            call(&client, Method::POST, format!("http://{addr}/"), None)
                .await
                .status,
        );
    }
    assert!(posts.contains(&StatusCode::BAD_GATEWAY), "{posts:?}");
    assert!(posts.contains(&StatusCode::OK), "{posts:?}");
}
