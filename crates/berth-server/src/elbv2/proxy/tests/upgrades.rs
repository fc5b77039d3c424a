//! Requests that switch protocols (WebSocket's handshake) through an HTTP listener: the
//! target's 101 comes back and bytes then flow both ways; a refused switch is a response.

use super::*;

/// A target speaking raw HTTP/1.1: to a request upgrading to `echo` it answers 101 and then
/// echoes bytes; to any other it answers 200 `plain`. It records the request heads it read.
async fn echo_target() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Some(head) = read_head(&mut tcp).await else {
                    return;
                };
                let upgrade = head.to_ascii_lowercase().contains("\r\nupgrade: echo\r\n");
                seen.lock().expect("heads").push(head);
                if !upgrade {
                    let _ = tcp
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain")
                        .await;
                    return;
                }
                let switched = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
                if tcp.write_all(switched).await.is_err() {
                    return;
                }
                let (mut reader, mut writer) = tcp.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    (addr, heads)
}

/// Opens a connection to the listener at `addr`, sends the request head `head` and reads the
/// answer's head: the connection and that head.
async fn send_head(addr: SocketAddr, head: &[u8]) -> (tokio::net::TcpStream, String) {
    let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    client.write_all(head).await.expect("send the request head");
    let answer = tokio::time::timeout(PATIENCE, read_head(&mut client))
        .await
        .expect("an answer in time")
        .expect("an answer");
    (client, answer)
}

/// Reads an HTTP head (through the blank line) from `tcp`, byte by byte so that nothing
/// after it is consumed.
async fn read_head(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

#[tokio::test]
async fn an_upgrade_is_switched_through_and_bytes_flow_both_ways() {
    let (target, heads) = echo_target().await;
    let mut tg = group(
        "tg",
        Algorithm::RoundRobin,
        vec![dead_target("echo", target)],
    );
    tg.health_check.enabled = false;
    let (plane, _board, addr) = start(simple(vec![tg])).await;

    let handshake = b"GET /chat HTTP/1.1\r\nhost: chat.test\r\nconnection: keep-alive, Upgrade\r\nupgrade: echo\r\n\r\n";
    let (mut client, answer) = send_head(addr, handshake).await;
    let lower = answer.to_ascii_lowercase();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(
        lower.contains("upgrade: echo") && lower.contains("connection: upgrade"),
        "{answer}"
    );

    for message in ["ping", "a longer message"] {
        client.write_all(message.as_bytes()).await.expect("send");
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(PATIENCE, client.read_exact(&mut echoed))
            .await
            .expect("the echo in time")
            .expect("the echo");
        assert_eq!(echoed, message.as_bytes());
    }
    // The tunnel counts as a request in flight on its target until it closes.
    assert_eq!(plane.in_flight("tg", target), 1);
    drop(client);
    eventually("the tunnel to close", || plane.in_flight("tg", target) == 0).await;

    let head = heads.lock().expect("heads")[0].to_ascii_lowercase();
    assert!(head.starts_with("get /chat http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: chat.test\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn a_target_that_does_not_switch_answers_as_usual() {
    let (target, _heads) = echo_target().await;
    let mut tg = group(
        "tg",
        Algorithm::RoundRobin,
        vec![dead_target("echo", target)],
    );
    tg.health_check.enabled = false;
    let (_plane, _board, addr) = start(simple(vec![tg])).await;
    let (mut client, answer) = send_head(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: other\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut body = [0u8; 5];
    client.read_exact(&mut body).await.expect("the body");
    assert_eq!(&body, b"plain");
}

#[tokio::test]
async fn an_upgrade_to_a_target_that_is_down_is_a_502() {
    let dead = dead_addr().await;
    let mut tg = group("tg", Algorithm::RoundRobin, vec![dead_target("dead", dead)]);
    tg.health_check.enabled = false;
    let (_plane, _board, addr) = start(simple(vec![tg])).await;
    let (_client, answer) = send_head(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
}

#[tokio::test]
async fn target_group_stickiness_holds_for_upgrades_too() {
    let (first, first_heads) = echo_target().await;
    let (second, second_heads) = echo_target().await;
    let mut one = group("g1", Algorithm::RoundRobin, vec![dead_target("one", first)]);
    let mut two = group(
        "g2",
        Algorithm::RoundRobin,
        vec![dead_target("two", second)],
    );
    one.health_check.enabled = false;
    two.health_check.enabled = false;
    let mut config = simple(vec![one, two]);
    config.listeners[0].rules[0].action = ActionConfig::Forward(
        vec![("g1".to_owned(), 1), ("g2".to_owned(), 1)],
        Some(Duration::from_secs(60)),
    );
    let (_plane, _board, addr) = start(config).await;
    let handshake = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
    let (_client, answer) = send_head(addr, handshake).await;
    let cookie = answer
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next())
        .find(|pair| pair.starts_with("AWSALBTG="))
        .unwrap_or_else(|| panic!("no AWSALBTG cookie in {answer}"))
        .to_owned();
    let with_cookie = format!(
        "GET / HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n"
    );
    for _ in 0..4 {
        let (_client, answer) = send_head(addr, with_cookie.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    }
    let counts = (
        first_heads.lock().expect("heads").len(),
        second_heads.lock().expect("heads").len(),
    );
    assert!(counts == (5, 0) || counts == (0, 5), "{counts:?}");
}
