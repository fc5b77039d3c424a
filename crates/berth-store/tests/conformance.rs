//! The store conformance suite: every check runs on each backend (SQLite always; etcd with
//! the `etcd` feature, on a one-member etcd started on loopback for each check), so the
//! server above sees one behaviour whichever store it is given. Revisions are asserted
//! relative to the store's revision when the check starts: etcd's start at 1, SQLite's at 0.

use berth_store::{Compare, EventKind, Store, StoreError, Txn};
use std::sync::Arc;
use std::time::Duration;

type Check = fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn put(store: &dyn Store, key: &str, value: &[u8]) -> u64 {
    let result = store
        .txn(Txn::new().put(key, value.to_vec()))
        .await
        .expect("put");
    assert!(result.succeeded);
    result.revision
}

/// The next batch of changes from `stream` (progress events, which change nothing, left out).
async fn next_batch(stream: &mut berth_store::WatchStream) -> Vec<berth_store::Event> {
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(10), stream.recv())
            .await
            .expect("a watch batch within 10s")
            .expect("the watch is open")
            .expect("a batch, not an error");
        let changes: Vec<_> = batch
            .into_iter()
            .filter(|e| e.kind != EventKind::Progress)
            .collect();
        if !changes.is_empty() {
            return changes;
        }
    }
}

/// Reads events from `stream` until `count` have come.
async fn events(stream: &mut berth_store::WatchStream, count: usize) -> Vec<berth_store::Event> {
    let mut out = Vec::new();
    while out.len() < count {
        out.extend(next_batch(stream).await);
    }
    out
}

mod checks {
    use super::*;

    pub async fn put_then_get_returns_value_and_revisions(store: Arc<dyn Store>) {
        let r0 = store.revision().await.expect("revision");
        let r1 = put(&*store, "/a", b"1").await;
        assert_eq!(r1, r0 + 1);
        let r2 = put(&*store, "/a", b"2").await;
        assert_eq!(r2, r0 + 2);
        let kv = store.get("/a").await.expect("get").expect("present");
        assert_eq!(kv.value, b"2");
        assert_eq!(kv.create_revision, r1);
        assert_eq!(kv.mod_revision, r2);
        assert_eq!(kv.version, 2);
        assert!(store.get("/missing").await.expect("get").is_none());
        assert_eq!(store.revision().await.expect("revision"), r2);
    }

    /// Every guard against every state of a key: absent, present at its revision, present
    /// since an older revision; a failed guard writes nothing and moves no revision.
    pub async fn txn_conflict_matrix(store: Arc<dyn Store>) {
        let created = put(&*store, "/m/k", b"v1").await;
        let current = put(&*store, "/m/k", b"v2").await;
        let cases: [(&str, Compare, bool); 6] = [
            (
                "absent key, must be absent",
                Compare::absent("/m/none"),
                true,
            ),
            (
                "absent key, must be at 1",
                Compare::at("/m/none", created),
                false,
            ),
            (
                "present key, must be absent",
                Compare::absent("/m/k"),
                false,
            ),
            (
                "present key, at its revision",
                Compare::at("/m/k", current),
                true,
            ),
            (
                "present key, at an older one",
                Compare::at("/m/k", created),
                false,
            ),
            (
                "present key, at a later one",
                Compare::at("/m/k", current + 5),
                false,
            ),
        ];
        for (what, compare, holds) in cases {
            let before = store.revision().await.expect("revision");
            let result = store
                .txn(
                    Txn::new()
                        .when(compare)
                        .put("/m/written", what.as_bytes().to_vec()),
                )
                .await
                .expect("txn");
            assert_eq!(result.succeeded, holds, "{what}");
            let written = store.get("/m/written").await.expect("get");
            if holds {
                assert_eq!(result.revision, before + 1, "{what}");
                assert_eq!(written.expect("written").value, what.as_bytes(), "{what}");
                store
                    .txn(Txn::new().delete("/m/written"))
                    .await
                    .expect("clean");
            } else {
                assert_eq!(
                    result.revision, before,
                    "{what}: a failed txn moves nothing"
                );
                assert!(written.is_none(), "{what}: a failed txn writes nothing");
                assert_eq!(store.revision().await.expect("revision"), before, "{what}");
            }
        }
        // Several guards: one failing fails them all, and none of the writes lands.
        let result = store
            .txn(
                Txn::new()
                    .when(Compare::at("/m/k", current))
                    .when(Compare::absent("/m/k"))
                    .put("/m/a", vec![])
                    .delete("/m/k"),
            )
            .await
            .expect("txn");
        assert!(!result.succeeded);
        assert!(store.get("/m/a").await.expect("get").is_none());
        assert_eq!(
            store.get("/m/k").await.expect("get").expect("kept").value,
            b"v2"
        );
    }

    pub async fn one_txn_applies_all_its_writes_at_one_revision(store: Arc<dyn Store>) {
        put(&*store, "/t/old", b"x").await;
        let result = store
            .txn(
                Txn::new()
                    .put("/t/a", b"a".to_vec())
                    .put("/t/b", b"b".to_vec())
                    .delete("/t/old")
                    // Two writes to one key: the last one stands.
                    .put("/t/twice", b"first".to_vec())
                    .put("/t/twice", b"second".to_vec())
                    .put("/t/gone", b"x".to_vec())
                    .delete("/t/gone"),
            )
            .await
            .expect("txn");
        assert!(result.succeeded);
        let (items, at) = store.list("/t/").await.expect("list");
        assert_eq!(at, result.revision);
        let keys: Vec<_> = items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, vec!["/t/a", "/t/b", "/t/twice"]);
        assert!(items.iter().all(|kv| kv.mod_revision == result.revision));
        assert_eq!(items[2].value, b"second");
    }

    pub async fn list_returns_only_keys_under_the_prefix_in_order(store: Arc<dyn Store>) {
        for key in ["/b/2", "/a/1", "/b/1", "/bb/1", "/c", "/b/\u{e9}"] {
            put(&*store, key, b"").await;
        }
        let head = store.revision().await.expect("revision");
        let (items, rev) = store.list("/b/").await.expect("list");
        let keys: Vec<_> = items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, vec!["/b/1", "/b/2", "/b/\u{e9}"]);
        assert_eq!(rev, head);
        let (all, _) = store.list("/").await.expect("list all");
        assert_eq!(all.len(), 6);
    }

    /// A list larger than one etcd page comes whole and in order, at one revision.
    pub async fn a_large_list_is_whole_and_at_one_revision(store: Arc<dyn Store>) {
        let value = vec![b'v'; 2048];
        for batch in 0..12 {
            let txn = (0..100).fold(Txn::new(), |txn, i| {
                txn.put(format!("/big/{:05}", batch * 100 + i), value.clone())
            });
            assert!(store.txn(txn).await.expect("txn").succeeded);
        }
        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..50 {
                    revisions.push(put(&*store, &format!("/big/z{i:03}"), b"late").await);
                }
                revisions
            })
        };
        let (items, at) = store.list("/big/").await.expect("list");
        let late_writes = writer.await.expect("writer");
        assert_eq!(
            items.len() - 1200,
            items
                .iter()
                .filter(|kv| kv.key.starts_with("/big/z"))
                .count()
        );
        assert!(items.windows(2).all(|w| w[0].key < w[1].key), "key order");
        assert!(
            items.iter().all(|kv| kv.mod_revision <= at),
            "every item is as of the list's revision"
        );
        // Exactly the writes made by the list's revision are in it, whatever page they fell on.
        let late = items
            .iter()
            .filter(|kv| kv.key.starts_with("/big/z"))
            .count();
        assert_eq!(late, late_writes.iter().filter(|&&r| r <= at).count());
    }

    pub async fn watch_replays_history_then_streams_new_writes(store: Arc<dyn Store>) {
        let first = put(&*store, "/w/1", b"a").await;
        put(&*store, "/other", b"x").await;
        let mut stream = store.watch("/w/", first).await.expect("watch");
        let replay = next_batch(&mut stream).await;
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].key, "/w/1");
        assert_eq!(replay[0].kind, EventKind::Put);
        assert_eq!(replay[0].value, b"a");
        let deleted = store.txn(Txn::new().delete("/w/1")).await.expect("txn");
        let batch = next_batch(&mut stream).await;
        assert_eq!(batch[0].kind, EventKind::Delete);
        assert_eq!(batch[0].key, "/w/1");
        assert_eq!(batch[0].revision, deleted.revision);
        // Many writes come in revision order, each once.
        let mut written = Vec::new();
        for i in 0..40 {
            written.push(put(&*store, &format!("/w/{i:02}"), b"n").await);
        }
        let seen: Vec<u64> = events(&mut stream, 40)
            .await
            .iter()
            .map(|e| e.revision)
            .collect();
        assert_eq!(seen, written);
    }

    /// A watch from a compacted revision ends with `Compacted`; one that was already
    /// following (it had read every write) goes on across the compaction; a relist and a
    /// watch from after it resume without losing a write. (A watch that has not yet read
    /// writes the compaction removes may end with `Compacted` instead: its reader lists
    /// again.)
    pub async fn watch_resumes_across_compaction(store: Arc<dyn Store>) {
        let start = put(&*store, "/c/0", b"0").await;
        let mut following = store.watch("/c/", start).await.expect("watch");
        assert_eq!(next_batch(&mut following).await[0].revision, start);
        for i in 1..=5 {
            put(&*store, &format!("/c/{i}"), b"x").await;
        }
        let head = store.revision().await.expect("revision");
        let caught_up: Vec<u64> = events(&mut following, 5)
            .await
            .iter()
            .map(|e| e.revision)
            .collect();
        assert_eq!(caught_up.last(), Some(&head), "{caught_up:?}");
        store.compact(head).await.expect("compact");
        // Compacting again, or below, is no error.
        store.compact(head - 1).await.expect("compact below");
        let late = put(&*store, "/c/6", b"x").await;
        let seen = next_batch(&mut following).await;
        assert_eq!(
            (seen[0].key.as_str(), seen[0].revision),
            ("/c/6", late),
            "the follower goes on: {seen:?}"
        );
        let mut stale = store.watch("/c/", start).await.expect("watch");
        match tokio::time::timeout(Duration::from_secs(10), stale.recv()).await {
            Ok(Some(Err(StoreError::Compacted { requested, oldest }))) => {
                assert_eq!(requested, start);
                assert!(oldest > start && oldest <= head, "oldest {oldest}");
            }
            other => panic!("a watch from a compacted revision must end: {other:?}"),
        }
        let (items, at) = store.list("/c/").await.expect("relist");
        assert_eq!(items.len(), 7);
        let mut resumed = store.watch("/c/", at + 1).await.expect("watch");
        let after = put(&*store, "/c/7", b"x").await;
        let batch = next_batch(&mut resumed).await;
        assert_eq!(batch[0].revision, after);
        assert_eq!(batch[0].key, "/c/7");
    }

    pub async fn concurrent_guarded_increments_lose_no_update(store: Arc<dyn Store>) {
        let mut handles = Vec::new();
        for _ in 0..8 {
            let store = Arc::clone(&store);
            handles.push(tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store.get("/n").await.expect("get");
                        let (n, rev) = current.map_or((0u64, 0), |kv| {
                            (
                                String::from_utf8_lossy(&kv.value).parse().unwrap_or(0),
                                kv.mod_revision,
                            )
                        });
                        let txn = Txn::new()
                            .when(Compare::at("/n", rev))
                            .put("/n", (n + 1).to_string().into_bytes());
                        if store.txn(txn).await.expect("txn").succeeded {
                            break;
                        }
                    }
                }
            }));
        }
        for handle in handles {
            handle.await.expect("task");
        }
        let kv = store.get("/n").await.expect("get").expect("kv");
        assert_eq!(String::from_utf8_lossy(&kv.value), "80");
    }

    pub async fn concurrent_claims_have_one_winner_and_distinct_revisions(store: Arc<dyn Store>) {
        let r0 = store.revision().await.expect("revision");
        let mut calls = Vec::new();
        for i in 0..100 {
            let store = Arc::clone(&store);
            calls.push(tokio::spawn(async move {
                let claim = store
                    .txn(
                        Txn::new()
                            .when(Compare::absent("/claimed"))
                            .put("/claimed", format!("{i}").into_bytes()),
                    )
                    .await
                    .expect("claim");
                let own = store
                    .txn(Txn::new().put(format!("/own/{i:03}"), b"x".to_vec()))
                    .await
                    .expect("own");
                (claim, own)
            }));
        }
        let mut revisions = std::collections::BTreeSet::new();
        let mut winners = 0;
        for call in calls {
            let (claim, own) = call.await.expect("join");
            winners += usize::from(claim.succeeded);
            if claim.succeeded {
                assert!(revisions.insert(claim.revision), "revision reused");
            }
            assert!(revisions.insert(own.revision), "revision reused");
        }
        assert_eq!(winners, 1, "exactly one claim wins");
        assert_eq!(revisions.len(), 101);
        assert_eq!(store.revision().await.expect("rev"), r0 + 101);
        let (own, _) = store.list("/own/").await.expect("list");
        assert_eq!(own.len(), 100);
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        const CHECKS: &[(&str, Check)] = &[
            $((stringify!($check), |store| Box::pin(checks::$check(store)))),*
        ];
        mod sqlite {
            $(
                #[test]
                fn $check() {
                    super::run_sqlite(stringify!($check));
                }
            )*
        }
        #[cfg(feature = "etcd")]
        mod etcd {
            $(
                #[test]
                fn $check() {
                    super::run_etcd(stringify!($check));
                }
            )*
        }
    };
}

conformance!(
    put_then_get_returns_value_and_revisions,
    txn_conflict_matrix,
    one_txn_applies_all_its_writes_at_one_revision,
    list_returns_only_keys_under_the_prefix_in_order,
    a_large_list_is_whole_and_at_one_revision,
    watch_replays_history_then_streams_new_writes,
    watch_resumes_across_compaction,
    concurrent_guarded_increments_lose_no_update,
    concurrent_claims_have_one_winner_and_distinct_revisions,
);

fn check(name: &str) -> Check {
    CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, check)| *check)
        .expect("a check of that name")
}

fn run_sqlite(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = check(name);
    runtime().block_on(async {
        let store = berth_store::SqliteStore::open(&dir.path().join("berth.db")).expect("open");
        check(Arc::new(store)).await;
    });
}

#[cfg(feature = "etcd")]
fn run_etcd(name: &str) {
    use berth_store::etcd::local::LocalEtcd;
    let cluster = LocalEtcd::start(1).expect("a local etcd (Debian etcd-server)");
    let check = check(name);
    runtime().block_on(async {
        check(Arc::new(etcd_store(&cluster, "conformance").await)).await;
    });
}

/// A store in the local etcd `cluster` under `prefix` (no TLS, no user).
#[cfg(feature = "etcd")]
async fn etcd_store(
    cluster: &berth_store::etcd::local::LocalEtcd,
    prefix: &str,
) -> berth_store::etcd::EtcdStore {
    let config = berth_store::etcd::EtcdConfig::from_url(&cluster.url(prefix)).expect("url");
    berth_store::etcd::EtcdStore::connect(&config)
        .await
        .expect("connect")
}

/// Asserts that a store with `config` does not connect, and says it is etcd that refused
/// (`what` names the attempt).
#[cfg(feature = "etcd")]
async fn refused(what: &str, config: &berth_store::etcd::EtcdConfig) {
    match berth_store::etcd::EtcdStore::connect(config).await {
        Err(e) => assert!(e.to_string().contains("etcd"), "{what}: {e}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

/// etcd-only: what etcd cannot take is refused before it is sent, with the reason.
#[cfg(feature = "etcd")]
#[test]
fn etcd_refuses_writes_beyond_its_limits_with_the_reason() {
    use berth_store::etcd::{local::LocalEtcd, MAX_TXN_OPS};
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    runtime().block_on(async {
        let store = etcd_store(&cluster, "").await;
        let before = store.revision().await.expect("revision");
        let huge = Txn::new().put("/huge", vec![0; 2 << 20]);
        match store.txn(huge).await {
            Err(StoreError::Refused(why)) => assert!(why.contains("/huge"), "{why}"),
            other => panic!("a 2 MiB value must be refused: {other:?}"),
        }
        let many = (0..=MAX_TXN_OPS).fold(Txn::new(), |txn, i| txn.put(format!("/k/{i}"), vec![]));
        match store.txn(many).await {
            Err(StoreError::Refused(why)) => assert!(why.contains("writes"), "{why}"),
            other => panic!("too many writes must be refused: {other:?}"),
        }
        assert_eq!(store.revision().await.expect("revision"), before);
        assert!(store.list("/").await.expect("list").0.is_empty());
    });
}

/// etcd-only: writes under another prefix move the store's revision without an event under
/// this one; asked for progress, a watch says when it has delivered everything up to the
/// revision the store answered (a progress event): a read of the head, or a transaction
/// whose guard failed.
#[cfg(feature = "etcd")]
#[test]
fn etcd_watches_report_progress_past_other_prefixes_writes() {
    use berth_store::etcd::local::LocalEtcd;
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    runtime().block_on(async {
        let a = etcd_store(&cluster, "a").await;
        let b = etcd_store(&cluster, "b").await;
        let mine = put(&a, "/clusters/x", b"a").await;
        let mut watch = a.watch("/", mine + 1).await.expect("watch");
        // Progress up to `at` or beyond, and no change under a's prefix, within 10 s.
        async fn progress_to(watch: &mut berth_store::WatchStream, at: u64) {
            loop {
                let batch = tokio::time::timeout(Duration::from_secs(10), watch.recv())
                    .await
                    .expect("progress within 10 s")
                    .expect("the watch is open")
                    .expect("a batch");
                for event in &batch {
                    assert_eq!(
                        event.kind,
                        EventKind::Progress,
                        "no change under a: {event:?}"
                    );
                }
                if batch.iter().any(|e| e.revision >= at) {
                    return;
                }
            }
        }
        for i in 0..3 {
            put(&b, &format!("/clusters/{i}"), b"b").await;
        }
        let head = a.revision().await.expect("revision");
        assert!(head > mine + 2, "b's writes moved the revision: {head}");
        a.request_progress();
        progress_to(&mut watch, head).await;
        // A guard that fails answers the store's revision: progress reaches it too.
        put(&b, "/clusters/9", b"b").await;
        let failed = a
            .txn(
                Txn::new()
                    .when(Compare::at("/clusters/x", 1))
                    .put("/clusters/x", b"z".to_vec()),
            )
            .await
            .expect("txn");
        assert!(!failed.succeeded);
        assert!(failed.revision > head);
        a.request_progress();
        progress_to(&mut watch, failed.revision).await;
        // Changes still come as changes.
        let later = put(&a, "/clusters/y", b"a").await;
        let batch = next_batch(&mut watch).await;
        assert_eq!(
            (batch[0].key.as_str(), batch[0].revision),
            ("/clusters/y", later)
        );
    });
}

/// etcd-only: keys live under the URL's prefix, so two installations share one cluster.
#[cfg(feature = "etcd")]
#[test]
fn etcd_prefixes_keep_installations_apart() {
    use berth_store::etcd::local::LocalEtcd;
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    runtime().block_on(async {
        let a = etcd_store(&cluster, "a").await;
        let b = etcd_store(&cluster, "b").await;
        put(&a, "/clusters/x", b"a").await;
        put(&b, "/clusters/x", b"b").await;
        let (items, _) = a.list("/").await.expect("list");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "/clusters/x");
        assert_eq!(items[0].value, b"a");
        assert_eq!(
            b.get("/clusters/x").await.expect("get").expect("b").value,
            b"b"
        );
    });
}

/// etcd-only: `etcds://` with `--etcd-ca` and a client certificate (`--etcd-cert`/`--etcd-key`)
/// against an etcd that serves TLS and asks for client certificates; without the client
/// certificate, or trusting another CA, the store does not connect and says why.
#[cfg(feature = "etcd")]
#[test]
fn etcd_over_tls_with_a_client_certificate() {
    use berth_store::etcd::local::{LocalEtcd, TlsFiles};
    use berth_store::etcd::{EtcdConfig, EtcdStore};
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let ca_params = |name: &str| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
    };
    let ca = |name: &str| {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = ca_params(name).self_signed(&key).expect("ca");
        (cert, key)
    };
    let (issuer, ca_key) = ca("test etcd CA");
    let ca_cert = &issuer;
    let leaf = |name: &str, purpose: rcgen::ExtendedKeyUsagePurpose| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
                127, 0, 0, 1,
            ])));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &issuer, &ca_key).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("etcd", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("berth", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let tls = TlsFiles {
        cert: write("server.pem", server_cert),
        key: write("server-key.pem", server_key),
        ca: write("ca.pem", ca_cert.pem()),
    };
    let client = (
        write("client.pem", client_cert),
        write("client-key.pem", client_key),
    );
    let other_ca = write("other-ca.pem", ca("another CA").0.pem());
    let cluster = LocalEtcd::start_tls(tls.clone()).expect("a local etcd over TLS");
    let url = cluster.url("tls");
    assert!(url.starts_with("etcds://"), "{url}");
    runtime().block_on(async {
        let config = |ca: &std::path::Path,
                      cert: Option<(std::path::PathBuf, std::path::PathBuf)>| {
            let mut config = EtcdConfig::from_url(&url).expect("url");
            config.ca = Some(ca.to_path_buf());
            config.client_cert = cert;
            config
        };
        let store = EtcdStore::connect(&config(&tls.ca, Some(client.clone())))
            .await
            .expect("connects over TLS with its certificate");
        let written = put(&store, "/secure", b"1").await;
        let read = store.get("/secure").await.expect("get").expect("present");
        assert_eq!(
            (read.value.as_slice(), read.mod_revision),
            (&b"1"[..], written)
        );
        for (what, attempt) in [
            ("no client certificate", config(&tls.ca, None)),
            (
                "another CA trusted",
                config(&other_ca, Some(client.clone())),
            ),
        ] {
            refused(what, &attempt).await;
        }
    });
}

/// etcd-only: etcd's own authentication (`--etcd-user`, the password from
/// `$BERTH_ETCD_PASSWORD`). With auth enabled, a user whose role may read and write only the
/// installation's prefix keeps a store there (writes, reads, watches, guards); a wrong
/// password, no user, or a user without a grant on the prefix is refused and says why. The
/// store's own compaction needs no more than that grant.
#[cfg(feature = "etcd")]
#[test]
fn etcd_authentication_with_a_user_limited_to_its_prefix() {
    use berth_store::etcd::{local::LocalEtcd, EtcdConfig, EtcdStore};
    use etcd_client::{Client, Permission};
    let cluster = LocalEtcd::start(1).expect("a local etcd");
    let url = cluster.url("auth");
    let with_user = |user: Option<(&str, &str)>| {
        let mut config = EtcdConfig::from_url(&url).expect("url");
        config.user = user.map(|(u, p)| (u.to_string(), p.to_string()));
        config
    };
    runtime().block_on(async {
        let endpoint = EtcdConfig::from_url(&url).expect("url").endpoints;
        let mut admin = Client::connect(&endpoint, None)
            .await
            .expect("admin client");
        admin
            .user_add("root", "root-secret", None)
            .await
            .expect("root user");
        admin
            .user_grant_role("root", "root")
            .await
            .expect("root role");
        admin.role_add("berth").await.expect("role");
        admin
            .role_grant_permission("berth", Permission::read_write("/auth").with_prefix())
            .await
            .expect("grant on the prefix");
        admin
            .user_add("berth", "berth-secret", None)
            .await
            .expect("user");
        admin
            .user_grant_role("berth", "berth")
            .await
            .expect("user's role");
        admin
            .user_add("stranger", "stranger-secret", None)
            .await
            .expect("stranger");
        admin.auth_enable().await.expect("auth on");

        let store = EtcdStore::connect(&with_user(Some(("berth", "berth-secret"))))
            .await
            .expect("the prefix's user connects");
        let mut stream = store.watch("/clusters/", 0).await.expect("watch");
        let written = put(&store, "/clusters/a", b"1").await;
        let read = store
            .get("/clusters/a")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(
            (read.value.as_slice(), read.mod_revision),
            (&b"1"[..], written)
        );
        let seen = events(&mut stream, 1).await;
        assert_eq!(seen[0].key, "/clusters/a");
        let stale = Txn::new()
            .when(Compare::at("/clusters/a", written - 1))
            .put("/clusters/a", b"2".to_vec());
        assert!(!store.txn(stale).await.expect("txn").succeeded);
        store
            .compact(written)
            .await
            .expect("the prefix's user compacts");
        let mut stale = store.watch("/clusters/", written - 1).await.expect("watch");
        match tokio::time::timeout(Duration::from_secs(10), stale.recv()).await {
            Ok(Some(Err(StoreError::Compacted { .. }))) => {}
            other => panic!("a watch from before the compaction: {other:?}"),
        }

        for (what, user) in [
            ("a wrong password", Some(("berth", "wrong"))),
            ("no user", None),
            (
                "a user without a grant",
                Some(("stranger", "stranger-secret")),
            ),
        ] {
            refused(what, &with_user(user)).await;
        }
    });
}
