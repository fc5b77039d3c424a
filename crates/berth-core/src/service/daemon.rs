//! The step of a DAEMON service: exactly one task of the PRIMARY deployment on every eligible
//! instance (ACTIVE, agent connected, meeting the placement constraints), instances that join
//! later included; none anywhere else. On an instance, an older deployment's task stops before
//! the new one starts (a daemon's maximumPercent is 100 by default).

use super::facts::InstanceFact;
use super::replica::{Phase, StopWhy};

/// One live task of a DAEMON service (not STOPPED, on an instance that is not lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSlot {
    pub id: String,
    pub primary: bool,
    pub phase: Phase,
    pub instance_id: String,
}

/// What one step does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonStep {
    /// Instances (ids) that get a task of the PRIMARY deployment.
    pub start_on: Vec<String>,
    /// Tasks to stop, and why.
    pub stop: Vec<(String, StopWhy)>,
    /// How many tasks the service should run: one per eligible instance.
    pub desired: u32,
}

/// One step of a DAEMON service over `instances`.
pub fn step(instances: &[InstanceFact], slots: &[DaemonSlot]) -> DaemonStep {
    let mut out = DaemonStep::default();
    for instance in instances {
        let here: Vec<&DaemonSlot> = slots
            .iter()
            .filter(|s| s.instance_id == instance.id)
            .collect();
        let wanted: Vec<&DaemonSlot> = here
            .iter()
            .copied()
            .filter(|s| s.phase != Phase::Stopping)
            .collect();
        if !instance.eligible {
            for slot in &wanted {
                out.stop.push((slot.id.clone(), StopWhy::Draining));
            }
            continue;
        }
        out.desired += 1;
        let mut primary: Vec<&DaemonSlot> = wanted.iter().copied().filter(|s| s.primary).collect();
        // Keep the healthiest (then oldest by id) PRIMARY task; any other goes.
        primary.sort_by_key(|s| (s.phase != Phase::Healthy, s.id.clone()));
        for extra in primary.iter().skip(1) {
            out.stop.push((extra.id.clone(), StopWhy::ScaleIn));
        }
        for slot in wanted.iter().filter(|s| !s.primary) {
            out.stop.push((slot.id.clone(), StopWhy::Replaced));
        }
        if here.is_empty() {
            out.start_on.push(instance.id.clone());
        }
    }
    // Tasks on instances that are not listed (deregistered, lost) are the caller's to stop.
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::facts::InstanceState;

    fn instance(id: &str, eligible: bool) -> InstanceFact {
        InstanceFact {
            id: id.into(),
            state: if eligible {
                InstanceState::Active
            } else {
                InstanceState::Draining
            },
            eligible,
        }
    }

    fn slot(id: &str, primary: bool, phase: Phase, on: &str) -> DaemonSlot {
        DaemonSlot {
            id: id.into(),
            primary,
            phase,
            instance_id: on.into(),
        }
    }

    #[test]
    fn every_eligible_instance_without_a_task_gets_one() {
        let instances = [
            instance("i1", true),
            instance("i2", true),
            instance("i3", false),
        ];
        let slots = [slot("t1", true, Phase::Healthy, "i1")];
        let step = step(&instances, &slots);
        assert_eq!(step.start_on, vec!["i2".to_string()]);
        assert!(step.stop.is_empty());
        assert_eq!(step.desired, 2);
    }

    #[test]
    fn a_draining_instance_loses_its_daemon_task() {
        let instances = [instance("i1", false)];
        let slots = [slot("t1", true, Phase::Healthy, "i1")];
        let step = step(&instances, &slots);
        assert_eq!(step.stop, vec![("t1".to_string(), StopWhy::Draining)]);
        assert!(step.start_on.is_empty());
        assert_eq!(step.desired, 0);
    }

    #[test]
    fn a_new_revision_replaces_the_old_task_after_it_has_stopped() {
        let instances = [instance("i1", true)];
        let old = [slot("o1", false, Phase::Healthy, "i1")];
        let first = step(&instances, &old);
        assert_eq!(first.stop, vec![("o1".to_string(), StopWhy::Replaced)]);
        assert!(first.start_on.is_empty());
        let stopping = [slot("o1", false, Phase::Stopping, "i1")];
        assert!(step(&instances, &stopping).start_on.is_empty());
        assert_eq!(step(&instances, &[]).start_on, vec!["i1".to_string()]);
    }

    #[test]
    fn a_second_primary_task_on_one_instance_is_stopped() {
        let instances = [instance("i1", true)];
        let slots = [
            slot("b", true, Phase::Starting, "i1"),
            slot("a", true, Phase::Healthy, "i1"),
        ];
        let step = step(&instances, &slots);
        assert_eq!(step.stop, vec![("b".to_string(), StopWhy::ScaleIn)]);
    }
}
