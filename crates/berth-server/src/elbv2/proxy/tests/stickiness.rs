//! Sticky sessions: ALB's `lb_cookie` (the `AWSALB` cookie names the target a client keeps
//! going to while it may take traffic) and NLB's `source_ip`.

use super::*;

/// GET / with `cookie` as the `Cookie` header (if any): the answer.
async fn get_with_cookie(client: &UserClient, addr: SocketAddr, cookie: Option<&str>) -> Answer {
    get_path_with_cookie(client, addr, "/", cookie).await
}

/// GET `path` with `cookie` as the `Cookie` header (if any): the answer.
async fn get_path_with_cookie(
    client: &UserClient,
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> Answer {
    let mut request = Request::get(format!("http://{addr}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    answer(
        client,
        request.body(Full::new(Bytes::new())).expect("a request"),
    )
    .await
}

/// The `AWSALB=…` pair of an answer's Set-Cookie, and the whole header.
fn sticky_cookie(answer: &Answer) -> (String, String) {
    set_cookie(answer, "AWSALB")
        .unwrap_or_else(|| panic!("no AWSALB cookie in {:?}", answer.headers))
}

/// The `name=…` pair of an answer's Set-Cookie headers, and the whole header, if any.
fn set_cookie(answer: &Answer, name: &str) -> Option<(String, String)> {
    let set = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.split('=').next() == Some(name))?
        .to_owned();
    let pair = set.split(';').next().unwrap_or_default().to_owned();
    Some((pair, set))
}

#[tokio::test]
async fn the_lb_cookie_keeps_a_client_on_its_target_until_that_target_drains() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut tg = group("tg", Algorithm::RoundRobin, vec![a.target(), b.target()]);
    tg.stickiness = Stickiness::LbCookie(Duration::from_secs(600));
    let mut config = simple(vec![tg]);
    let (plane, board, addr) = start(config.clone()).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "healthy").await;
    let client = user();

    let first = get_with_cookie(&client, addr, None).await;
    let (cookie, header) = sticky_cookie(&first);
    assert!(
        header.contains("; Expires=") && header.ends_with("; Path=/"),
        "{header}"
    );
    // With its cookie (among others) a client stays on its target...
    for _ in 0..6 {
        let again = get_with_cookie(&client, addr, Some(&format!("theme=dark; {cookie}"))).await;
        assert_eq!(again.body, first.body);
        assert_eq!(sticky_cookie(&again).0, cookie);
    }
    // ...while requests without one are spread over both.
    let spread: HashSet<String> = {
        let mut seen = HashSet::new();
        for _ in 0..4 {
            seen.insert(get_with_cookie(&client, addr, None).await.body);
        }
        seen
    };
    assert_eq!(spread.len(), 2, "{spread:?}");
    // A cookie Berth did not give is ignored.
    let bogus = get_with_cookie(&client, addr, Some("AWSALB=0123")).await;
    assert_eq!(bogus.status, StatusCode::OK);
    assert_ne!(sticky_cookie(&bogus).0, "AWSALB=0123");

    // Its target draining, the client moves to the other one and gets its cookie.
    let stuck_on = if first.body == "a" { &a } else { &b };
    for target in &mut config.target_groups[0].targets {
        target.draining = target.addr == stuck_on.addr;
    }
    assert!(plane.apply(config).await.is_empty());
    let moved = get_with_cookie(&client, addr, Some(&cookie)).await;
    assert_ne!(moved.body, first.body);
    let (new_cookie, _) = sticky_cookie(&moved);
    assert_ne!(new_cookie, cookie);
    assert_eq!(
        get_with_cookie(&client, addr, Some(&new_cookie)).await.body,
        moved.body
    );
}

#[tokio::test]
async fn source_ip_stickiness_sends_every_connection_of_a_client_to_one_target() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut tg = group("tg", Algorithm::RoundRobin, vec![a.target(), b.target()]);
    tg.protocol = Protocol::Tcp;
    tg.health_check.protocol = Protocol::Tcp;
    tg.stickiness = Stickiness::SourceIp;
    let mut config = simple(vec![tg]);
    config.listeners[0].protocol = Protocol::Tcp;
    let (_plane, board, addr) = start(config).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "healthy").await;
    let mut served = HashSet::new();
    for _ in 0..8 {
        // A new connection (a new client port) each time.
        let mut flow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        flow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, flow.read_to_end(&mut answer))
            .await
            .expect("an answer in time")
            .expect("an answer");
        let text = String::from_utf8_lossy(&answer).into_owned();
        served.insert(
            text.rsplit("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(served.len(), 1, "{served:?}");
}

#[tokio::test]
async fn target_group_stickiness_keeps_a_client_on_one_group_of_a_weighted_forward() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut config = simple(vec![
        group("ga", Algorithm::RoundRobin, vec![a.target()]),
        group("gb", Algorithm::RoundRobin, vec![b.target()]),
    ]);
    config.listeners[0].rules[0].action = ActionConfig::Forward(
        vec![("ga".to_owned(), 1), ("gb".to_owned(), 1)],
        Some(Duration::from_secs(60)),
    );
    let (_plane, board, addr) = start(config).await;
    until_state(&board, &a.key("ga"), "healthy").await;
    until_state(&board, &b.key("gb"), "healthy").await;
    let client = user();
    let first = get_with_cookie(&client, addr, None).await;
    let (cookie, _) = set_cookie(&first, "AWSALBTG")
        .unwrap_or_else(|| panic!("no AWSALBTG cookie in {:?}", first.headers));
    for _ in 0..6 {
        assert_eq!(
            get_with_cookie(&client, addr, Some(&cookie)).await.body,
            first.body
        );
    }
    let mut spread = HashSet::new();
    for _ in 0..4 {
        spread.insert(get_with_cookie(&client, addr, None).await.body);
    }
    assert_eq!(spread.len(), 2, "{spread:?}");
}

#[tokio::test]
async fn app_cookie_stickiness_begins_when_the_application_sets_its_cookie() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut tg = group("tg", Algorithm::RoundRobin, vec![a.target(), b.target()]);
    tg.stickiness = Stickiness::AppCookie {
        name: "SESSION".into(),
        duration: Duration::from_secs(60),
    };
    let (_plane, board, addr) = start(simple(vec![tg])).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "healthy").await;
    let client = user();
    // No application cookie set: no stickiness cookie either.
    let plain = get_with_cookie(&client, addr, None).await;
    assert!(
        set_cookie(&plain, "AWSALBAPP-0").is_none(),
        "{:?}",
        plain.headers
    );
    // The target sets SESSION: the load balancer adds AWSALBAPP-0 naming it.
    let login = get_path_with_cookie(&client, addr, "/login", None).await;
    assert!(
        set_cookie(&login, "SESSION").is_some(),
        "{:?}",
        login.headers
    );
    let (sticky, header) = set_cookie(&login, "AWSALBAPP-0")
        .unwrap_or_else(|| panic!("no AWSALBAPP-0 cookie in {:?}", login.headers));
    assert!(header.contains("; Expires="), "{header}");
    let both = format!("SESSION=s1; {sticky}");
    for _ in 0..6 {
        assert_eq!(
            get_with_cookie(&client, addr, Some(&both)).await.body,
            login.body
        );
    }
}
