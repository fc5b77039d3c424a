//! `berth store migrate` and `berth store checksum` as an operator runs them: the binary
//! copying a SQLite data dir into a local etcd cluster, proving the copy, and refusing what
//! it must refuse.
#![cfg(feature = "etcd")]

use berth_store::etcd::local::LocalEtcd;
use berth_store::etcd::EtcdStore;
use berth_store::location::Location;
use berth_store::{KeyValue, SqliteStore, Store, Txn};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `berth ARGS…` to completion.
fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("berth runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `sha256=` figure of the output line that starts with `label`.
fn sha256_of(output: &str, label: &str) -> String {
    output
        .lines()
        .find(|line| line.starts_with(label))
        .and_then(|line| line.split("sha256=").nth(1))
        .unwrap_or_else(|| panic!("no {label} checksum in:\n{output}"))
        .trim()
        .to_string()
}

/// A data dir whose database holds `keys` small records under several prefixes, plus
/// `extra` (key, value) pairs.
async fn data_dir(dir: &Path, keys: usize, extra: &[(&str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).expect("data dir");
    let store = SqliteStore::open(&dir.join("berth.db")).expect("database");
    let mut written = Vec::new();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(50) {
        let mut txn = Txn::new();
        for i in chunk {
            let key = match i % 3 {
                0 => format!("/clusters/c{i:04}"),
                1 => format!("/taskdefs/family{i:04}/1"),
                _ => format!("/iam/users/user{i:04}"),
            };
            let value = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50)).into_bytes();
            written.push((key.clone(), value.clone()));
            txn = txn.put(key, value);
        }
        store.txn(txn).await.expect("write");
    }
    for (key, value) in extra {
        store
            .txn(Txn::new().put(*key, value.clone()))
            .await
            .expect("write");
        written.push((key.to_string(), value.clone()));
    }
    written.sort();
    written
}

async fn etcd_store(url: &str) -> EtcdStore {
    let Ok(Location::Etcd(config)) = Location::parse(url) else {
        panic!("{url} is an etcd URL");
    };
    EtcdStore::connect(&config).await.expect("etcd answers")
}

fn pairs(items: Vec<KeyValue>) -> Vec<(String, Vec<u8>)> {
    items.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_migrates_to_etcd_and_both_checksums_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let large = (0..1_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>();
    let written = data_dir(&data, 400, &[("/taskdefs/large/1", large)]).await;
    let etcd = LocalEtcd::start(1).expect("etcd starts");
    let url = etcd.url("migrated");
    let from = format!("sqlite://{}", data.display());

    let migrated = berth(&["store", "migrate", "--from", &from, "--to", &url]);
    let out = text(&migrated.stdout);
    assert!(
        migrated.status.success(),
        "{out}\n{}",
        text(&migrated.stderr)
    );
    let source = sha256_of(&out, "source");
    assert_eq!(source, sha256_of(&out, "target"), "{out}");
    assert!(out.contains("keys=401 "), "{out}");
    assert!(out.contains("checksums match"), "{out}");
    // 401 keys are more than three etcd transactions of 128 writes.
    assert!(
        text(&migrated.stderr).contains("in 4 transactions"),
        "{}",
        text(&migrated.stderr)
    );

    let copied = etcd_store(&url).await.list("/").await.expect("list").0;
    assert_eq!(pairs(copied), written);

    for store in [&from, &url] {
        let checked = berth(&["store", "checksum", "--store", store]);
        assert!(checked.status.success(), "{}", text(&checked.stderr));
        assert_eq!(sha256_of(&text(&checked.stdout), "store"), source);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_into_a_store_that_holds_keys_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    data_dir(&data, 20, &[]).await;
    let etcd = LocalEtcd::start(1).expect("etcd starts");
    let url = etcd.url("taken");
    let target = etcd_store(&url).await;
    target
        .txn(Txn::new().put("/clusters/already-here", b"{}".to_vec()))
        .await
        .expect("write");
    let before = target.list("/").await.expect("list").0;

    let from = format!("sqlite://{}", data.display());
    let refused = berth(&["store", "migrate", "--from", &from, "--to", &url]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("already holds 1 key "), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
    assert_eq!(target.list("/").await.expect("list").0, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_larger_than_etcd_takes_fails_naming_its_key_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    data_dir(
        &data,
        200,
        &[("/taskdefs/too-large/1", vec![b'a'; 2 << 20])],
    )
    .await;
    let etcd = LocalEtcd::start(1).expect("etcd starts");
    let url = etcd.url("small");

    let from = format!("sqlite://{}", data.display());
    let refused = berth(&["store", "migrate", "--from", &from, "--to", &url]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("/taskdefs/too-large/1"), "{message}");
    assert!(!text(&refused.stdout).contains("checksums match"));
    assert!(etcd_store(&url)
        .await
        .list("/")
        .await
        .expect("list")
        .0
        .is_empty());
}

#[test]
fn a_data_dir_without_a_database_is_no_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = format!("sqlite://{}", dir.path().join("empty").display());
    let refused = berth(&[
        "store",
        "migrate",
        "--from",
        &from,
        "--to",
        "etcd://127.0.0.1:9/x",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("no Berth store"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!dir.path().join("empty").exists());
}
