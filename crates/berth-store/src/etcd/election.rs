//! Leader election on etcd: a candidate waits until the leader key is free, then creates it
//! bound to a short lease (only if it is still absent) and renews the lease for as long as
//! it leads. A leader that dies stops renewing; etcd deletes the key when the lease expires
//! and the next candidate takes it. The key's revision is the term's fence: every write the
//! leader's controllers make is guarded on it, so one from a deposed leader fails.

use super::{header_revision, timed, EtcdStore};
use crate::{keys, Compare, Elect, Result, Term};
use async_trait::async_trait;
use etcd_client as etcd;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Seconds a leader's lease lives without renewal: how long leadership stays with a leader
/// that died before another takes it.
const LEASE_TTL: i64 = 3;
/// How often the lease is renewed.
const RENEW_EVERY: Duration = Duration::from_millis(700);
/// A leader that has not renewed for this long stops leading (before etcd expires the lease).
const GIVE_UP_AFTER: Duration = Duration::from_millis(2_300);
/// How often a candidate looks whether the leader key is free.
const LOOK_EVERY: Duration = Duration::from_millis(200);

impl EtcdStore {
    /// The leader key's holder and its revision, if any.
    async fn holder(&self) -> Result<Option<(String, u64)>> {
        let response = timed(self.kv().get(self.full_key(keys::LEADER), None)).await?;
        Ok(response.kvs().first().map(|kv| {
            (
                String::from_utf8_lossy(kv.value()).into_owned(),
                kv.mod_revision().max(0) as u64,
            )
        }))
    }

    /// Tries once to take the free leader key with a new lease; the term's revision when won.
    async fn try_take(&self, candidate: &str) -> Result<Option<(i64, u64)>> {
        let mut leases = self.client.lease_client();
        let lease = timed(leases.grant(LEASE_TTL, None)).await?.id();
        let key = self.full_key(keys::LEADER);
        let txn = etcd::Txn::new()
            .when([etcd::Compare::create_revision(
                key.clone(),
                etcd::CompareOp::Equal,
                0,
            )])
            .and_then([etcd::TxnOp::put(
                key,
                candidate,
                Some(etcd::PutOptions::new().with_lease(lease)),
            )]);
        let response = timed(self.kv().txn(txn)).await?;
        if response.succeeded() {
            return Ok(Some((lease, header_revision(response.header()))));
        }
        let _ = timed(leases.revoke(lease)).await;
        Ok(None)
    }
}

/// Renews `lease` until the term is lost or resigned; then says so on `lost`. Resigning
/// revokes the lease, so the next leader need not wait for it to expire.
async fn hold(
    store: EtcdStore,
    lease: i64,
    lost: watch::Sender<bool>,
    mut resign: oneshot::Receiver<()>,
) {
    let mut leases = store.client.lease_client();
    let mut renewed = Instant::now();
    let mut keeper = None;
    let mut tick = tokio::time::interval(RENEW_EVERY);
    loop {
        tokio::select! {
            _ = &mut resign => {
                let _ = timed(leases.revoke(lease)).await;
                break;
            }
            _ = tick.tick() => {}
        }
        if keeper.is_none() {
            keeper = timed(leases.keep_alive(lease)).await.ok();
        }
        if let Some((k, stream)) = keeper.as_mut() {
            let answer = match k.keep_alive().await {
                Ok(()) => tokio::time::timeout(RENEW_EVERY, stream.message()).await,
                Err(e) => Ok(Err(e)),
            };
            match answer {
                Ok(Ok(Some(response))) if response.ttl() > 0 => renewed = Instant::now(),
                // etcd says the lease is gone: the term is over.
                Ok(Ok(Some(_))) => break,
                _ => keeper = None,
            }
        }
        if renewed.elapsed() >= GIVE_UP_AFTER {
            tracing::warn!("leader election: the lease could not be renewed in time");
            break;
        }
    }
    lost.send_replace(true);
}

#[async_trait]
impl Elect for EtcdStore {
    async fn campaign(&self, candidate: &str) -> Result<Term> {
        loop {
            if self.holder().await?.is_none() {
                if let Some((lease, revision)) = self.try_take(candidate).await? {
                    let (lost_tx, lost) = watch::channel(false);
                    let (resign, resigned) = oneshot::channel();
                    tokio::spawn(hold(self.clone(), lease, lost_tx, resigned));
                    return Ok(Term {
                        fence: Compare::at(keys::LEADER, revision),
                        lost,
                        resign: Some(resign),
                    });
                }
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    async fn leader(&self) -> Result<Option<String>> {
        Ok(self.holder().await?.map(|(name, _)| name))
    }
}
