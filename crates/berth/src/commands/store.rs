//! `berth store`: copies a store from one backend to another (`migrate`: a single server's
//! SQLite database to etcd, or any other direction) and proves the copy, and fingerprints a
//! store (`checksum`) so a copy or a backup can be checked later.
//!
//! Both work on the `Store` trait only. The fingerprint is a SHA-256 over every key and value
//! in key order, each preceded by its length (8 bytes, big-endian), so no two different
//! stores can share it by moving bytes between a key and its value; revisions are left out,
//! since no copy can keep them.

use anyhow::{bail, Context};
use berth_store::location::Location;
use berth_store::{KeyValue, Store, Txn, WriteLimits};
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Where every key of a Berth store lives: the server reads and watches this and nothing else.
const KEY_SPACE: &str = "/";
/// Writes one copying transaction carries at most, whatever the target takes.
const COPY_MAX_OPS: usize = 1_000;
/// Bytes one copying transaction carries at most, whatever the target takes (SQLite takes
/// any size; this keeps each of its commits reasonable).
const COPY_MAX_BYTES: usize = 64 << 20;
/// Keys named when a copy differs from its source.
const DIFFERENCES_SHOWN: usize = 10;

/// `berth store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a store to another backend (a single server's SQLite database to etcd), then read
    /// both back and compare their checksums.
    ///
    /// Stop the server first: the source must not change while it is copied. A SQLite
    /// database in use by a running server is not locked against this command, but a write
    /// to the source during the copy makes it fail.
    ///
    /// The target must hold no keys (under its prefix, for etcd): otherwise the command
    /// refuses and changes nothing. There is no --force; empty the target yourself (etcd:
    /// `etcdctl del --prefix PREFIX/`) or name another prefix. Keys and values are written in
    /// transactions within what the target takes (etcd: 128 writes and 1.5 MiB each); a value
    /// too large for the target fails the command, naming its key, before anything is
    /// written. A failure part way leaves an incomplete target, which the error says: empty
    /// it before migrating again.
    ///
    /// Revisions are not copied, and cannot be: the target numbers its writes itself, so every
    /// key gets a new revision and nothing can resume a watch across the move (servers list
    /// the store afresh when they start).
    ///
    /// Then both stores are read back and, for each, the number of keys, the bytes of keys and
    /// values, and the SHA-256 of its keys and values (as `berth store checksum` prints it)
    /// are printed; the command exits non-zero when they differ.
    ///
    /// Only the store moves. The data dir's own files (the root credentials, the master and
    /// vault keys, logs, metrics, the TLS CA) stay where they are: start the new server with
    /// the same --data-dir, e.g. `berth server --data-dir DIR --store etcd://HOST:PORT/PREFIX`.
    Migrate(MigrateArgs),
    /// Print a store's number of keys, bytes of keys and values, and the SHA-256 of its keys
    /// and values, to check a copy (`berth store migrate`) or a backup against its source.
    ///
    /// The checksum covers keys and values only (each preceded by its length, in key order),
    /// not revisions, so a store and its copy on another backend have the same one. For a
    /// result that means anything, nothing may write to the store meanwhile.
    Checksum(ChecksumArgs),
    /// Check that store operations recorded by servers run with BERTH_STORE_HISTORY=FILE
    /// (one file per server process) are linearizable: no stale or future read, no lost
    /// update, no revision given twice, no guard judged wrongly. Exits non-zero on any
    /// anomaly, listing them.
    CheckHistory(super::store_history::CheckHistoryArgs),
}

/// Options of `berth store migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy: `sqlite://DIR` (the data dir of a stopped server) or
    /// `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (`etcds://` for TLS).
    #[arg(long, value_name = "URL", value_parser = Location::parse)]
    pub from: Location,
    /// The empty store to copy into, as --from names one.
    #[arg(long, value_name = "URL", value_parser = Location::parse)]
    pub to: Location,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// Options of `berth store checksum`.
#[derive(Debug, Args)]
pub struct ChecksumArgs {
    /// The store: `sqlite://DIR` or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
    #[arg(long, value_name = "URL", value_parser = Location::parse)]
    pub store: Location,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// How to reach etcd, as `berth server` takes it; applied to every etcd side of a command.
#[derive(Debug, Args)]
pub struct EtcdArgs {
    /// The CA certificate (PEM) that signs the etcd members' certificates.
    #[arg(long, value_name = "PEM")]
    pub etcd_ca: Option<PathBuf>,
    /// A client certificate (PEM) for etcd members that ask for one; with --etcd-key.
    #[arg(long, value_name = "PEM", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(long, value_name = "PEM", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// etcd auth user; the password comes from $BERTH_ETCD_PASSWORD.
    #[arg(long, value_name = "USER")]
    pub etcd_user: Option<String>,
}

impl EtcdArgs {
    pub(crate) fn given(&self) -> bool {
        self.etcd_ca.is_some() || self.etcd_cert.is_some() || self.etcd_user.is_some()
    }

    /// `location` with these options when it is an etcd cluster (as `berth server` fills its
    /// `EtcdConfig`); other locations as they are.
    pub(crate) fn apply(&self, location: &Location) -> anyhow::Result<Location> {
        let Location::Etcd(config) = location else {
            return Ok(location.clone());
        };
        let mut config = config.clone();
        config.ca = self.etcd_ca.clone();
        config.client_cert = self.etcd_cert.clone().zip(self.etcd_key.clone());
        if let Some(user) = &self.etcd_user {
            let password = std::env::var("BERTH_ETCD_PASSWORD").map_err(|_| {
                anyhow::anyhow!("--etcd-user needs the password in $BERTH_ETCD_PASSWORD")
            })?;
            config.user = Some((user.clone(), password));
        }
        Ok(Location::Etcd(config))
    }

    /// The locations with these options, refusing the options when no location is etcd.
    fn apply_all<const N: usize>(
        &self,
        locations: [&Location; N],
    ) -> anyhow::Result<[Location; N]> {
        if self.given() && !locations.iter().any(|l| matches!(l, Location::Etcd(_))) {
            bail!("--etcd-ca, --etcd-cert and --etcd-user need an etcd:// store");
        }
        let mut applied = Vec::with_capacity(N);
        for location in locations {
            applied.push(self.apply(location)?);
        }
        applied
            .try_into()
            .map_err(|_| anyhow::anyhow!("as many locations as given"))
    }
}

/// The keys that make an installation: not the leader key (held with a lease by a running
/// replica) nor the replicas' records of the agents they heard lately.
fn durable(items: Vec<berth_store::KeyValue>) -> Vec<berth_store::KeyValue> {
    use berth_store::keys;
    items
        .into_iter()
        .filter(|kv| kv.key != keys::LEADER && !kv.key.starts_with(keys::REPLICAS))
        .collect()
}

/// Runs `berth store …`; its exit code.
pub async fn run(command: StoreCommand) -> anyhow::Result<i32> {
    match command {
        StoreCommand::Migrate(args) => migrate_command(args).await,
        StoreCommand::Checksum(args) => checksum_command(args).await,
        StoreCommand::CheckHistory(args) => super::store_history::run(&args),
    }
}

async fn checksum_command(args: ChecksumArgs) -> anyhow::Result<i32> {
    let [location] = args.etcd.apply_all([&args.store])?;
    let store = open(&location, Side::Existing).await?;
    let (items, _) = store
        .list(KEY_SPACE)
        .await
        .with_context(|| format!("cannot read {location}"))?;
    let items = durable(items);
    let fingerprint = Fingerprint::of(&items);
    println!("{}", fingerprint.line("store", &location));
    Ok(0)
}

async fn migrate_command(args: MigrateArgs) -> anyhow::Result<i32> {
    if args.from == args.to {
        bail!("--from and --to both name {}: nothing to copy", args.from);
    }
    let [from, to] = args.etcd.apply_all([&args.from, &args.to])?;
    let source = open(&from, Side::Existing).await?;
    let target = open(&to, Side::Created).await?;
    let budget = Budget::of(&*target, &to);
    let done = migrate(&*source, &*target, budget, &from, &to).await?;
    println!("{}", done.source.line("source", &from));
    println!("{}", done.target.line("target", &to));
    if done.target != done.source {
        for difference in &done.differences {
            eprintln!("  {difference}");
        }
        bail!(
            "the copy in {to} does not match {from}: the checksums differ ({} keys and {} bytes \
             against {} keys and {} bytes); the target is not a good copy",
            done.target.keys,
            done.target.bytes,
            done.source.keys,
            done.source.bytes
        );
    }
    println!(
        "checksums match: {} copied in {} (revisions are not copied; {to} numbers its own)",
        count(done.source.keys, "key"),
        count(done.transactions, "transaction")
    );
    Ok(0)
}

/// Whether a command reads a store that must already exist, or may make a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Existing,
    Created,
}

/// Opens the store at `location`. A SQLite source must already hold a database: opening one
/// creates it, and an empty new database is no source.
async fn open(location: &Location, side: Side) -> anyhow::Result<Arc<dyn Store>> {
    match location {
        Location::Sqlite(dir) => {
            let file = dir.join(berth_server::app::DATABASE_FILE);
            if side == Side::Existing && !file.is_file() {
                bail!(
                    "there is no Berth store at {location}: {} does not exist (is {} a \
                     server's data dir?)",
                    file.display(),
                    dir.display()
                );
            }
            if side == Side::Created {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let store = berth_store::SqliteStore::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            Ok(Arc::new(store))
        }
        Location::Etcd(config) => open_etcd(location, config).await,
    }
}

#[cfg(feature = "etcd")]
async fn open_etcd(
    location: &Location,
    config: &berth_store::location::EtcdConfig,
) -> anyhow::Result<Arc<dyn Store>> {
    let store = berth_store::etcd::EtcdStore::connect(config)
        .await
        .with_context(|| format!("cannot open {location}"))?;
    Ok(Arc::new(store))
}

/// Without the `etcd` feature there is no etcd store: say how to get one.
#[cfg(not(feature = "etcd"))]
async fn open_etcd(
    location: &Location,
    _: &berth_store::location::EtcdConfig,
) -> anyhow::Result<Arc<dyn Store>> {
    bail!(
        "cannot open {location}: this berth was built without etcd support; build it with \
         `cargo build --release --features etcd` (which needs protoc: Debian's \
         protobuf-compiler)"
    )
}

/// A store's keys and values, fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// How many keys.
    pub keys: usize,
    /// Bytes of keys and values together.
    pub bytes: u64,
    /// SHA-256, in hex, over each key and value in key order, each preceded by its length as
    /// 8 bytes big-endian.
    pub sha256: String,
}

impl Fingerprint {
    /// The fingerprint of `items`, in whatever order they come.
    pub fn of(items: &[KeyValue]) -> Self {
        let mut sorted = items.iter().collect::<Vec<_>>();
        sorted.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        for item in sorted {
            for part in [item.key.as_bytes(), item.value.as_slice()] {
                hash.update((part.len() as u64).to_be_bytes());
                hash.update(part);
                bytes += part.len() as u64;
            }
        }
        Self {
            keys: items.len(),
            bytes,
            sha256: hex::encode(hash.finalize()),
        }
    }

    /// One line of output: what, where, and the figures.
    fn line(&self, label: &str, location: &Location) -> String {
        format!(
            "{label} {location}: keys={} bytes={} sha256={}",
            self.keys, self.bytes, self.sha256
        )
    }
}

/// What one copying transaction may carry on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    max_ops: usize,
    max_bytes: usize,
    /// Bytes the target counts for each write beside its key and value.
    per_write: usize,
}

impl Budget {
    /// The target's write limits (capped to a reasonable transaction), counting each write as
    /// the etcd backend does: its key and value, the prefix, and 16 bytes.
    fn of(target: &dyn Store, location: &Location) -> Self {
        let limits: WriteLimits = target.write_limits();
        let per_write = match location {
            Location::Etcd(config) => config.prefix.len() + 16,
            Location::Sqlite(_) => 0,
        };
        Self {
            max_ops: limits.max_ops.clamp(1, COPY_MAX_OPS),
            max_bytes: limits.max_bytes.min(COPY_MAX_BYTES),
            per_write,
        }
    }

    fn cost(&self, item: &KeyValue) -> usize {
        item.key.len() + item.value.len() + self.per_write
    }
}

/// A value the target cannot take in one transaction, even alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TooLarge {
    key: String,
    bytes: usize,
    max: usize,
}

/// `items` split into consecutive transactions within `budget`; the first item too large for
/// any transaction is an error, found before anything is written.
fn plan(items: &[KeyValue], budget: Budget) -> Result<Vec<Range<usize>>, TooLarge> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let cost = budget.cost(item);
        if cost > budget.max_bytes {
            return Err(TooLarge {
                key: item.key.clone(),
                bytes: cost,
                max: budget.max_bytes,
            });
        }
        if i > start && (i - start == budget.max_ops || bytes + cost > budget.max_bytes) {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    if start < items.len() {
        batches.push(start..items.len());
    }
    Ok(batches)
}

/// What a migration did.
#[derive(Debug)]
struct Migration {
    source: Fingerprint,
    target: Fingerprint,
    transactions: usize,
    /// How the target differs from the source, a few keys of it (empty: an exact copy).
    differences: Vec<String>,
}

/// Copies every key of `source` into the empty `target`, in transactions within `budget`,
/// then reads the target back and compares. `from` and `to` name the stores in messages.
async fn migrate(
    source: &dyn Store,
    target: &dyn Store,
    budget: Budget,
    from: &Location,
    to: &Location,
) -> anyhow::Result<Migration> {
    let (items, _) = source
        .list(KEY_SPACE)
        .await
        .with_context(|| format!("cannot read {from}"))?;
    let items = durable(items);
    if items.is_empty() {
        bail!("{from} holds no keys: nothing to migrate (is it the right store?)");
    }
    let (present, _) = target
        .list(KEY_SPACE)
        .await
        .with_context(|| format!("cannot read {to}"))?;
    let present = durable(present);
    if let Some(first) = present.first() {
        bail!(
            "{to} already holds {} (the first: {}): migrate copies only into an empty store, \
             and nothing was written; empty it or name another place",
            count(present.len(), "key"),
            first.key
        );
    }
    let batches = plan(&items, budget).map_err(|e| {
        anyhow::anyhow!(
            "{} is {} bytes with its key, more than one transaction of {to} takes ({} bytes): \
             it cannot be migrated there, and nothing was written",
            e.key,
            e.bytes,
            e.max
        )
    })?;
    let source_print = Fingerprint::of(&items);
    eprintln!(
        "copying {} ({} bytes) from {from} to {to} in {}",
        count(source_print.keys, "key"),
        source_print.bytes,
        count(batches.len(), "transaction")
    );
    let mut copied = 0;
    for batch in &batches {
        let txn = items[batch.clone()].iter().fold(Txn::new(), |txn, item| {
            txn.put(&item.key, item.value.clone())
        });
        let failed = match target.txn(txn).await {
            Ok(result) if result.succeeded => None,
            Ok(_) => Some("the target refused the transaction".to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            bail!(
                "writing keys {}..{} to {to} failed: {why}; {copied} of {} keys were copied, so \
                 {to} is incomplete: empty it before migrating again",
                batch.start + 1,
                batch.end,
                items.len()
            );
        }
        copied = batch.end;
    }
    // Read again rather than compare revisions: an etcd cluster's revision also moves with
    // the writes of other installations under other prefixes.
    let (now, _) = source
        .list(KEY_SPACE)
        .await
        .with_context(|| format!("cannot read {from} again"))?;
    let now = durable(now);
    if Fingerprint::of(&now) != source_print {
        bail!(
            "{from} changed while it was copied: is a server still running on it? Stop it, \
             empty {to} and migrate again"
        );
    }
    let (written, _) = target
        .list(KEY_SPACE)
        .await
        .with_context(|| format!("cannot read {to} back"))?;
    let written = durable(written);
    let target_print = Fingerprint::of(&written);
    let differences = if target_print == source_print {
        Vec::new()
    } else {
        differences(&items, &written)
    };
    Ok(Migration {
        source: source_print,
        target: target_print,
        transactions: batches.len(),
        differences,
    })
}

/// `n` and the noun, in the plural unless `n` is 1.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The first keys at which `target` differs from `source`, in words, and how many in all.
fn differences(source: &[KeyValue], target: &[KeyValue]) -> Vec<String> {
    fn values(items: &[KeyValue]) -> std::collections::BTreeMap<&str, &[u8]> {
        items
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
            .collect()
    }
    let (source_values, target_values) = (values(source), values(target));
    let mut found = Vec::new();
    for (key, value) in &source_values {
        match target_values.get(key) {
            None => found.push(format!("missing in the target: {key}")),
            Some(copy) if copy != value => found.push(format!(
                "differs: {key} ({} bytes in the source, {} in the target)",
                value.len(),
                copy.len()
            )),
            Some(_) => {}
        }
    }
    for key in target_values.keys() {
        if !source_values.contains_key(key) {
            found.push(format!("not in the source: {key}"));
        }
    }
    if found.len() > DIFFERENCES_SHOWN {
        let more = found.len() - DIFFERENCES_SHOWN;
        found.truncate(DIFFERENCES_SHOWN);
        found.push(format!("… and {more} more"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use berth_store::{SqliteStore, StoreError, TxnResult, WatchStream};

    fn kv(key: &str, value: &[u8]) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        }
    }

    /// An in-memory store that takes only transactions within `limits`, as etcd does, and,
    /// when `busy`, is written to whenever it is listed (a server still running).
    struct Limited {
        inner: SqliteStore,
        limits: WriteLimits,
        busy: bool,
        lists: std::sync::atomic::AtomicU64,
    }

    impl Limited {
        fn new(max_ops: usize, max_bytes: usize) -> Self {
            Self {
                inner: SqliteStore::open_in_memory().expect("in-memory store"),
                limits: WriteLimits { max_ops, max_bytes },
                busy: false,
                lists: Default::default(),
            }
        }
    }

    #[async_trait]
    impl Store for Limited {
        async fn get(&self, key: &str) -> berth_store::Result<Option<KeyValue>> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> berth_store::Result<(Vec<KeyValue>, u64)> {
            if self.busy {
                let n = self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let heartbeat = Txn::new().put("/heartbeat", n.to_string().into_bytes());
                self.inner.txn(heartbeat).await?;
            }
            self.inner.list(prefix).await
        }
        async fn txn(&self, txn: Txn) -> berth_store::Result<TxnResult> {
            let bytes = txn
                .ops
                .iter()
                .map(|op| match op {
                    berth_store::Op::Put { key, value } => key.len() + value.len(),
                    berth_store::Op::Delete { key } => key.len(),
                })
                .sum::<usize>();
            if txn.ops.len() > self.limits.max_ops || bytes > self.limits.max_bytes {
                return Err(StoreError::Refused(format!(
                    "{} ops and {bytes} bytes",
                    txn.ops.len()
                )));
            }
            self.inner.txn(txn).await
        }
        async fn watch(&self, prefix: &str, from: u64) -> berth_store::Result<WatchStream> {
            self.inner.watch(prefix, from).await
        }
        async fn revision(&self) -> berth_store::Result<u64> {
            self.inner.revision().await
        }
        async fn compact(&self, revision: u64) -> berth_store::Result<()> {
            self.inner.compact(revision).await
        }
        fn write_limits(&self) -> WriteLimits {
            self.limits
        }
        fn request_progress(&self) {
            self.inner.request_progress();
        }
    }

    async fn filled(keys: usize) -> Limited {
        let store = Limited::new(usize::MAX, usize::MAX);
        for i in 0..keys {
            let value = format!("value of key {i}").repeat(i % 7 + 1).into_bytes();
            store
                .inner
                .txn(Txn::new().put(format!("/things/{i:04}"), value))
                .await
                .expect("write");
        }
        store
    }

    fn sqlite(name: &str) -> Location {
        Location::Sqlite(PathBuf::from(name))
    }

    #[test]
    fn transactions_stay_within_the_writes_and_bytes_the_target_takes() {
        let items = (0..10)
            .map(|i| kv(&format!("/k{i}"), &[0; 97]))
            .collect::<Vec<_>>();
        let budget = |max_ops, max_bytes| Budget {
            max_ops,
            max_bytes,
            per_write: 0,
        };
        // Each item costs 100 bytes.
        assert_eq!(
            plan(&items, budget(4, 10_000)).expect("fits"),
            vec![0..4, 4..8, 8..10]
        );
        assert_eq!(
            plan(&items, budget(100, 350)).expect("fits"),
            vec![0..3, 3..6, 6..9, 9..10]
        );
        assert_eq!(plan(&items, budget(1, 100)).expect("fits").len(), 10);
        assert!(plan(&[], budget(1, 100)).expect("fits").is_empty());
    }

    #[test]
    fn a_value_no_transaction_can_hold_is_refused_by_its_key() {
        let items = vec![kv("/small", b"x"), kv("/large", &[0; 200]), kv("/z", b"y")];
        let budget = Budget {
            max_ops: 10,
            max_bytes: 150,
            per_write: 10,
        };
        let refused = plan(&items, budget).expect_err("too large");
        assert_eq!(refused.key, "/large");
        assert_eq!(refused.bytes, 216);
    }

    #[test]
    fn the_checksum_tells_keys_from_values_and_ignores_order_and_revisions() {
        let one = Fingerprint::of(&[kv("/a", b"bc"), kv("/d", b"")]);
        let moved = Fingerprint::of(&[kv("/ab", b"c"), kv("/d", b"")]);
        assert_ne!(one.sha256, moved.sha256);
        assert_eq!((one.keys, one.bytes), (2, 6));
        let mut reordered = [kv("/d", b""), kv("/a", b"bc")];
        reordered[1].mod_revision = 99;
        assert_eq!(Fingerprint::of(&reordered), one);
        assert_eq!(one.sha256.len(), 64);
    }

    #[tokio::test]
    async fn every_key_is_copied_in_small_transactions_and_the_checksums_match() {
        let source = filled(100).await;
        let target = Limited::new(8, 1_000);
        let budget = Budget::of(&target, &sqlite("to"));
        let done = migrate(&source, &target, budget, &sqlite("from"), &sqlite("to"))
            .await
            .expect("migrates");
        assert_eq!(done.source, done.target);
        assert!(done.differences.is_empty(), "{:?}", done.differences);
        assert_eq!(done.source.keys, 100);
        assert!(done.transactions >= 100 / 8, "{}", done.transactions);
        let (copied, _) = target.list("/").await.expect("list");
        let (original, _) = source.list("/").await.expect("list");
        let pairs = |items: &[KeyValue]| {
            items
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&copied), pairs(&original));
    }

    #[tokio::test]
    async fn a_target_that_holds_keys_is_refused_and_left_as_it_was() {
        let source = filled(5).await;
        let target = Limited::new(100, 100_000);
        target
            .txn(Txn::new().put("/clusters/mine", b"{}".to_vec()))
            .await
            .expect("write");
        let before = target.list("/").await.expect("list");
        let budget = Budget::of(&target, &sqlite("to"));
        let refused = migrate(&source, &target, budget, &sqlite("from"), &sqlite("to"))
            .await
            .expect_err("refused");
        assert!(
            refused.to_string().contains("already holds 1 key "),
            "{refused}"
        );
        assert_eq!(target.list("/").await.expect("list"), before);
    }

    #[tokio::test]
    async fn a_value_too_large_for_the_target_fails_naming_it_before_any_write() {
        let source = filled(20).await;
        source
            .inner
            .txn(Txn::new().put("/taskdefs/huge", vec![7; 5_000]))
            .await
            .expect("write");
        let target = Limited::new(8, 4_096);
        let budget = Budget::of(&target, &sqlite("to"));
        let refused = migrate(&source, &target, budget, &sqlite("from"), &sqlite("to"))
            .await
            .expect_err("refused");
        let message = refused.to_string();
        assert!(message.contains("/taskdefs/huge"), "{message}");
        assert!(message.contains("nothing was written"), "{message}");
        assert!(target.list("/").await.expect("list").0.is_empty());
    }

    #[tokio::test]
    async fn a_source_written_to_during_the_copy_fails_the_migration() {
        let mut source = filled(5).await;
        source.busy = true;
        let target = Limited::new(100, 100_000);
        let budget = Budget::of(&target, &sqlite("to"));
        let refused = migrate(&source, &target, budget, &sqlite("from"), &sqlite("to"))
            .await
            .expect_err("refused");
        assert!(refused.to_string().contains("changed while"), "{refused}");
    }

    #[test]
    fn differences_name_missing_extra_and_changed_keys() {
        let source = [kv("/a", b"1"), kv("/b", b"2"), kv("/c", b"3")];
        let target = [kv("/a", b"1"), kv("/b", b"22"), kv("/d", b"4")];
        assert_eq!(
            differences(&source, &target),
            vec![
                "differs: /b (1 bytes in the source, 2 in the target)",
                "missing in the target: /c",
                "not in the source: /d",
            ]
        );
    }

    #[tokio::test]
    async fn a_sqlite_source_must_already_be_a_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::Sqlite(dir.path().join("nothing"));
        let refused = open(&location, Side::Existing)
            .await
            .expect_err("no database");
        assert!(refused.to_string().contains("no Berth store"), "{refused}");
        assert!(!dir.path().join("nothing").exists());
    }

    #[cfg(not(feature = "etcd"))]
    #[tokio::test]
    async fn an_etcd_store_without_the_etcd_feature_says_how_to_build_one() {
        let location = Location::parse("etcd://127.0.0.1:2379/berth").expect("url");
        let refused = open(&location, Side::Existing).await.expect_err("no etcd");
        assert!(refused.to_string().contains("--features etcd"), "{refused}");
    }
}
