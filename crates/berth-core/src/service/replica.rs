//! The rolling-update step of a REPLICA service: given the live tasks of every deployment,
//! how many tasks the PRIMARY deployment starts now and which tasks stop now, so that at all
//! times tasks RUNNING or PENDING stay at most `max_total` and healthy tasks at least
//! `min_healthy` (tasks stopped for scale-in excepted: they are above the desired count).
//! Tasks protected from scale-in are never stopped to scale in or to replace them: the step
//! holds them back and says so, and a deployment waits for their protection to end.

use super::bounds::Bounds;

/// Where a live task of the service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not yet healthy (provisioning, pulling, starting, or waiting for its health checks).
    Starting,
    /// RUNNING and healthy.
    Healthy,
    /// Asked to stop, not yet STOPPED: it still holds its place.
    Stopping,
}

/// One live task (not STOPPED, on an instance that is not lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: String,
    /// Whether it belongs to the PRIMARY deployment.
    pub primary: bool,
    pub phase: Phase,
    /// Whether its instance is DRAINING, so the task has to move.
    pub draining: bool,
    /// Whether it is protected from scale-in (UpdateTaskProtection) right now.
    pub protected: bool,
}

/// Why the step stops a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWhy {
    /// The PRIMARY has more tasks than desired.
    ScaleIn,
    /// A task of an older deployment, replaced by the PRIMARY.
    Replaced,
    /// A task on a DRAINING instance, replaced elsewhere.
    Draining,
}

/// What one step does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Tasks the PRIMARY deployment starts.
    pub start: u32,
    /// Tasks to stop, and why.
    pub stop: Vec<(String, StopWhy)>,
    /// Protected tasks the step would have stopped to scale in or to replace them, and kept.
    pub held: Vec<String>,
}

/// One step of a rolling update towards `desired` PRIMARY tasks within `bounds`.
pub fn step(desired: u32, bounds: Bounds, slots: &[Slot]) -> Step {
    let mut out = Step::default();
    let occupying = count(slots.len());
    let wanted: Vec<&Slot> = slots
        .iter()
        .filter(|s| s.phase != Phase::Stopping)
        .collect();
    let mut healthy = count(wanted.iter().filter(|s| s.phase == Phase::Healthy).count());

    // Scale in: PRIMARY tasks above the desired count go, unprotected ones first and of
    // those the ones not yet healthy first; protected ones above the count are held.
    let mut keep: Vec<&Slot> = wanted
        .iter()
        .copied()
        .filter(|s| s.primary && !s.draining)
        .collect();
    keep.sort_by_key(|s| {
        (
            s.protected,
            s.phase == Phase::Healthy,
            std::cmp::Reverse(s.id.clone()),
        )
    });
    let excess = keep.len().saturating_sub(desired as usize);
    let mut held_above = Vec::new();
    for slot in keep.drain(..excess) {
        if slot.protected {
            out.held.push(slot.id.clone());
            held_above.push(slot);
            continue;
        }
        if slot.phase == Phase::Healthy {
            healthy -= 1;
        }
        out.stop.push((slot.id.clone(), StopWhy::ScaleIn));
    }
    // A held task still takes its place: the PRIMARY starts nothing to make up for it.
    keep.extend(held_above);

    // Scale out: start what the PRIMARY lacks, within the maximum.
    let need = desired.saturating_sub(count(keep.len()));
    let room = bounds.max_total.saturating_sub(occupying);
    out.start = need.min(room);

    // Replace: older deployments' tasks and tasks on DRAINING instances. Those not yet
    // healthy take nothing from the minimum and go at once; healthy ones go only as far as
    // the minimum allows, so they leave as the PRIMARY's tasks become healthy.
    let mut replaceable: Vec<&Slot> = wanted
        .iter()
        .copied()
        .filter(|s| !s.primary || s.draining)
        .collect();
    replaceable.sort_by_key(|s| (s.phase == Phase::Healthy, !s.draining, s.id.clone()));
    for slot in replaceable {
        let why = if slot.primary {
            StopWhy::Draining
        } else {
            StopWhy::Replaced
        };
        if slot.protected && why == StopWhy::Replaced {
            out.held.push(slot.id.clone());
            continue;
        }
        if slot.phase == Phase::Healthy {
            if healthy <= bounds.min_healthy {
                continue;
            }
            healthy -= 1;
        }
        out.stop.push((slot.id.clone(), why));
    }
    out
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, primary: bool, phase: Phase) -> Slot {
        Slot {
            id: id.into(),
            primary,
            phase,
            draining: false,
            protected: false,
        }
    }

    fn protected(id: &str, primary: bool, phase: Phase) -> Slot {
        Slot {
            protected: true,
            ..slot(id, primary, phase)
        }
    }

    fn bounds(min_healthy: u32, max_total: u32) -> Bounds {
        Bounds {
            min_healthy,
            max_total,
        }
    }

    fn stopped(step: &Step) -> Vec<&str> {
        step.stop.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn a_new_service_starts_its_desired_count_at_once() {
        let step = step(3, bounds(3, 6), &[]);
        assert_eq!(step.start, 3);
        assert!(step.stop.is_empty());
    }

    #[test]
    fn scale_up_starts_only_the_missing_tasks() {
        let slots = [
            slot("a", true, Phase::Healthy),
            slot("b", true, Phase::Starting),
        ];
        let step = step(5, bounds(5, 10), &slots);
        assert_eq!(step.start, 3);
    }

    #[test]
    fn scale_down_stops_tasks_not_yet_healthy_first() {
        let slots = [
            slot("a", true, Phase::Healthy),
            slot("b", true, Phase::Starting),
            slot("c", true, Phase::Healthy),
            slot("d", true, Phase::Healthy),
        ];
        let step = step(2, bounds(2, 4), &slots);
        assert_eq!(step.start, 0);
        assert_eq!(stopped(&step), vec!["b", "d"]);
        assert!(step.stop.iter().all(|(_, why)| *why == StopWhy::ScaleIn));
    }

    #[test]
    fn rollout_with_min_100_max_200_starts_all_new_tasks_and_keeps_the_old_ones() {
        let old: Vec<Slot> = ["o1", "o2", "o3"]
            .iter()
            .map(|id| slot(id, false, Phase::Healthy))
            .collect();
        let step = step(3, bounds(3, 6), &old);
        assert_eq!(step.start, 3);
        assert!(
            step.stop.is_empty(),
            "no old task may stop before a new one is healthy"
        );
    }

    #[test]
    fn old_tasks_stop_one_for_one_as_new_tasks_become_healthy() {
        let slots = [
            slot("o1", false, Phase::Healthy),
            slot("o2", false, Phase::Healthy),
            slot("o3", false, Phase::Healthy),
            slot("n1", true, Phase::Healthy),
            slot("n2", true, Phase::Starting),
            slot("n3", true, Phase::Starting),
        ];
        let step = step(3, bounds(3, 6), &slots);
        assert_eq!(step.start, 0);
        assert_eq!(stopped(&step), vec!["o1"]);
    }

    #[test]
    fn stopping_tasks_still_count_against_the_maximum() {
        let slots = [
            slot("o1", false, Phase::Stopping),
            slot("o2", false, Phase::Healthy),
            slot("o3", false, Phase::Healthy),
            slot("n1", true, Phase::Healthy),
        ];
        // Four places taken of four: nothing can start until o1 is gone.
        let step = step(3, bounds(2, 4), &slots);
        assert_eq!(step.start, 0);
        assert_eq!(stopped(&step), vec!["o2"]);
    }

    #[test]
    fn with_min_0_old_tasks_all_stop_at_once() {
        let slots = [
            slot("o1", false, Phase::Healthy),
            slot("o2", false, Phase::Healthy),
        ];
        let step = step(2, bounds(0, 2), &slots);
        assert_eq!(step.start, 0);
        assert_eq!(stopped(&step), vec!["o1", "o2"]);
    }

    #[test]
    fn old_tasks_that_never_became_healthy_stop_without_waiting() {
        let slots = [
            slot("o1", false, Phase::Starting),
            slot("o2", false, Phase::Healthy),
        ];
        let step = step(1, bounds(1, 2), &slots);
        assert_eq!(step.start, 0);
        assert_eq!(stopped(&step), vec!["o1"]);
    }

    #[test]
    fn a_task_on_a_draining_instance_is_replaced_before_it_stops() {
        let mut draining = slot("d", true, Phase::Healthy);
        draining.draining = true;
        let slots = [draining.clone(), slot("a", true, Phase::Healthy)];
        let first = step(2, bounds(2, 4), &slots);
        assert_eq!(first.start, 1);
        assert!(first.stop.is_empty());
        let slots = [
            draining,
            slot("a", true, Phase::Healthy),
            slot("r", true, Phase::Healthy),
        ];
        let second = step(2, bounds(2, 4), &slots);
        assert_eq!(second.start, 0);
        assert_eq!(second.stop, vec![("d".to_string(), StopWhy::Draining)]);
    }

    #[test]
    fn the_bounds_hold_over_a_whole_simulated_rollout() {
        // Desired 3, min 100 %, max 200 %: simulate tasks becoming healthy one per step and
        // stopped tasks going away one step later; check the bounds after every step.
        let b = bounds(3, 6);
        let mut slots: Vec<Slot> = (0..3)
            .map(|i| slot(&format!("o{i}"), false, Phase::Healthy))
            .collect();
        let mut next = 0;
        for _ in 0..30 {
            slots.retain(|s| s.phase != Phase::Stopping);
            if let Some(s) = slots
                .iter_mut()
                .find(|s| s.primary && s.phase == Phase::Starting)
            {
                s.phase = Phase::Healthy;
            }
            let step = step(3, b, &slots);
            for (id, _) in &step.stop {
                if let Some(s) = slots.iter_mut().find(|s| &s.id == id) {
                    s.phase = Phase::Stopping;
                }
            }
            for _ in 0..step.start {
                slots.push(slot(&format!("n{next}"), true, Phase::Starting));
                next += 1;
            }
            let live = slots.len() as u32;
            let healthy = slots.iter().filter(|s| s.phase == Phase::Healthy).count() as u32;
            assert!(live <= b.max_total, "{live} tasks live");
            assert!(healthy >= b.min_healthy, "{healthy} healthy");
        }
        assert!(slots.iter().all(|s| s.primary && s.phase == Phase::Healthy));
        assert_eq!(slots.len(), 3);
        assert_eq!(next, 3, "exactly three new tasks were started");
    }

    #[test]
    fn scale_in_stops_the_unprotected_task_and_keeps_the_protected_one() {
        let slots = [
            protected("a", true, Phase::Healthy),
            slot("b", true, Phase::Healthy),
        ];
        let step = step(1, bounds(1, 2), &slots);
        assert_eq!(step.stop, vec![("b".to_string(), StopWhy::ScaleIn)]);
        assert!(step.held.is_empty());
        assert_eq!(step.start, 0);
    }

    #[test]
    fn scale_in_below_the_protected_tasks_holds_them_and_starts_nothing() {
        let slots = [
            protected("a", true, Phase::Healthy),
            protected("b", true, Phase::Healthy),
            slot("c", true, Phase::Starting),
        ];
        let step = step(1, bounds(1, 2), &slots);
        assert_eq!(step.stop, vec![("c".to_string(), StopWhy::ScaleIn)]);
        assert_eq!(step.held, vec!["b".to_string()]);
        assert_eq!(step.start, 0);
    }

    #[test]
    fn a_deployment_replaces_unprotected_old_tasks_and_waits_for_protected_ones() {
        let slots = [
            protected("o1", false, Phase::Healthy),
            slot("o2", false, Phase::Healthy),
            slot("n1", true, Phase::Healthy),
            slot("n2", true, Phase::Healthy),
        ];
        let step = step(2, bounds(2, 4), &slots);
        assert_eq!(step.stop, vec![("o2".to_string(), StopWhy::Replaced)]);
        assert_eq!(step.held, vec!["o1".to_string()]);
        assert_eq!(step.start, 0);
    }

    #[test]
    fn protection_does_not_keep_a_task_on_a_draining_instance() {
        let mut draining = protected("d", true, Phase::Healthy);
        draining.draining = true;
        let slots = [
            draining,
            slot("a", true, Phase::Healthy),
            slot("r", true, Phase::Healthy),
        ];
        let step = step(2, bounds(2, 4), &slots);
        assert_eq!(step.stop, vec![("d".to_string(), StopWhy::Draining)]);
        assert!(step.held.is_empty());
    }
}
