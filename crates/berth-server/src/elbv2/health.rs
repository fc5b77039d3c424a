//! What the data plane's health checks found, per target: the proxy writes it, and
//! DescribeTargetHealth reads it. In memory: after a restart every target starts again from
//! `initial`, as a newly registered one does.

use std::collections::HashMap;
use std::sync::Mutex;

/// A target of a target group: (target group ARN, target id, port).
pub type TargetKey = (String, String, u16);

/// One target's health as its checks found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// `initial`, `healthy` or `unhealthy` (the API adds `draining`, `unused`).
    pub state: &'static str,
    /// ELB's reason code (`Elb.RegistrationInProgress`, `Target.Timeout`, ...), unless healthy.
    pub reason: Option<&'static str>,
    /// ELB's description of the reason.
    pub description: Option<String>,
}

/// The health of every checked target.
#[derive(Debug, Default)]
pub struct HealthBoard {
    targets: Mutex<HashMap<TargetKey, TargetHealth>>,
}

impl HealthBoard {
    /// What the checks found of `key`, if it has been checked.
    pub fn get(&self, key: &TargetKey) -> Option<TargetHealth> {
        self.targets.lock().ok()?.get(key).cloned()
    }

    /// Records `health` for `key`.
    pub fn set(&self, key: TargetKey, health: TargetHealth) {
        if let Ok(mut targets) = self.targets.lock() {
            targets.insert(key, health);
        }
    }

    /// Forgets `key` (no longer registered).
    pub fn remove(&self, key: &TargetKey) {
        if let Ok(mut targets) = self.targets.lock() {
            targets.remove(key);
        }
    }

    /// Keeps only the targets `keep` says yes to.
    pub fn retain(&self, mut keep: impl FnMut(&TargetKey) -> bool) {
        if let Ok(mut targets) = self.targets.lock() {
            targets.retain(|k, _| keep(k));
        }
    }
}
