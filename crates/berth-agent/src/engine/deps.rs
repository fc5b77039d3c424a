//! Container dependencies (`dependsOn`, and the implicit ones of links, volumesFrom and shared
//! namespaces) as pure functions: whether a container may start now, must keep waiting, or
//! can never start; dependency cycles; the order to create containers in; and the reverse
//! order for stops.

use crate::runtime::Health;
use berth_core::model::task_definition::ContainerDependency;

/// What the dependency check needs to know about one container of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: String,
    /// It has been started (it may have exited since).
    pub started: bool,
    /// It has exited.
    pub exited: bool,
    pub exit_code: Option<i64>,
    pub health: Health,
    pub has_health_check: bool,
}

/// The verdict on a container's dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every dependency is met: start it.
    Ready,
    /// Some dependency may still be met later.
    Waiting,
    /// Some dependency can never be met; the reason says which and why.
    Never(String),
}

/// Evaluates the dependencies of container `name` against the current `views`.
pub fn readiness(name: &str, depends_on: &[ContainerDependency], views: &[View]) -> Readiness {
    let mut waiting = false;
    for dependency in depends_on {
        let target = dependency.container_name.as_str();
        let condition = dependency.condition.as_str();
        let Some(view) = views.iter().find(|v| v.name == target) else {
            return Readiness::Never(unmet(name, target, condition, "it is not in the task"));
        };
        match condition_state(view, condition) {
            Ok(true) => {}
            Ok(false) => waiting = true,
            Err(why) => return Readiness::Never(unmet(name, target, condition, &why)),
        }
    }
    if waiting {
        Readiness::Waiting
    } else {
        Readiness::Ready
    }
}

fn unmet(name: &str, target: &str, condition: &str, why: &str) -> String {
    format!(
        "DependencyConditionUnmet: container '{name}' depends on '{target}' with condition \
         {condition}, but {why}"
    )
}

/// `Ok(true)`: met; `Ok(false)`: not yet; `Err(why)`: never.
fn condition_state(view: &View, condition: &str) -> Result<bool, String> {
    match condition {
        "START" => Ok(view.started || view.exited),
        "COMPLETE" => Ok(view.exited),
        "SUCCESS" => match (view.exited, view.exit_code) {
            (false, _) => Ok(false),
            (true, Some(0)) => Ok(true),
            (true, Some(code)) => Err(format!("it exited with code {code}")),
            (true, None) => Err("it exited without an exit code".to_string()),
        },
        "HEALTHY" => {
            if !view.has_health_check {
                Err("it has no health check".to_string())
            } else if view.exited {
                Err(match view.exit_code {
                    Some(code) => format!("it exited with code {code} before it was healthy"),
                    None => "it exited before it was healthy".to_string(),
                })
            } else {
                match view.health {
                    Health::Healthy => Ok(true),
                    Health::Unhealthy => Err("it became UNHEALTHY".to_string()),
                    Health::Starting | Health::Unknown => Ok(false),
                }
            }
        }
        other => Err(format!(
            "'{other}' is not a dependency condition (use START, COMPLETE, SUCCESS or HEALTHY)"
        )),
    }
}

/// A dependency cycle among `containers` (name, dependencies), as the list of names that
/// closes it (`a -> b -> a`), or `None`.
pub fn find_cycle(containers: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        at: usize,
        containers: &[(String, Vec<String>)],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        marks[at] = Mark::Open;
        path.push(at);
        for dependency in &containers[at].1 {
            let Some(next) = containers.iter().position(|(n, _)| n == dependency) else {
                continue;
            };
            match marks[next] {
                Mark::Open => {
                    let start = path.iter().position(|&p| p == next).unwrap_or(0);
                    let mut cycle: Vec<String> = path[start..]
                        .iter()
                        .map(|&p| containers[p].0.clone())
                        .collect();
                    cycle.push(containers[next].0.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, containers, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[at] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; containers.len()];
    for start in 0..containers.len() {
        if marks[start] == Mark::New {
            if let Some(cycle) = visit(start, containers, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// Which of the `running` containers may be stopped now: those no other running container
/// depends on (dependents stop before what they depend on). Falls back to all of them when a
/// cycle leaves none.
pub fn stop_wave(running: &[(String, Vec<String>)]) -> Vec<String> {
    let wave: Vec<String> = running
        .iter()
        .filter(|(name, _)| !running.iter().any(|(_, deps)| deps.contains(name)))
        .map(|(name, _)| name.clone())
        .collect();
    if wave.is_empty() {
        running.iter().map(|(name, _)| name.clone()).collect()
    } else {
        wave
    }
}

/// The order (indexes into `containers`: name, containers it needs created first) in which to
/// create the containers: definition order, except that each comes after what it needs. Names
/// outside the list are ignored; a cycle (see [`find_cycle`]) leaves its members in definition
/// order at the end.
pub fn create_order(containers: &[(String, Vec<String>)]) -> Vec<usize> {
    let mut placed = vec![false; containers.len()];
    let mut order = Vec::with_capacity(containers.len());
    while order.len() < containers.len() {
        let ready = (0..containers.len()).find(|&i| {
            !placed[i]
                && containers[i].1.iter().all(|dep| {
                    containers
                        .iter()
                        .position(|(name, _)| name == dep)
                        .is_none_or(|d| placed[d] || d == i)
                })
        });
        match ready {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                order.extend((0..containers.len()).filter(|&i| !placed[i]));
                break;
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str) -> View {
        View {
            name: name.into(),
            started: false,
            exited: false,
            exit_code: None,
            health: Health::Unknown,
            has_health_check: false,
        }
    }

    fn dep(name: &str, condition: &str) -> ContainerDependency {
        ContainerDependency {
            container_name: name.into(),
            condition: condition.into(),
        }
    }

    #[test]
    fn start_is_met_once_the_dependency_started() {
        let mut db = view("db");
        assert_eq!(
            readiness("app", &[dep("db", "START")], &[db.clone()]),
            Readiness::Waiting
        );
        db.started = true;
        assert_eq!(
            readiness("app", &[dep("db", "START")], &[db]),
            Readiness::Ready
        );
    }

    #[test]
    fn complete_waits_for_any_exit_and_success_for_exit_zero() {
        let mut init = view("init");
        init.started = true;
        assert_eq!(
            readiness("app", &[dep("init", "COMPLETE")], &[init.clone()]),
            Readiness::Waiting
        );
        init.exited = true;
        init.exit_code = Some(2);
        assert_eq!(
            readiness("app", &[dep("init", "COMPLETE")], &[init.clone()]),
            Readiness::Ready
        );
        match readiness("app", &[dep("init", "SUCCESS")], &[init.clone()]) {
            Readiness::Never(reason) => assert!(reason.contains("exited with code 2"), "{reason}"),
            other => panic!("expected never, got {other:?}"),
        }
        init.exit_code = Some(0);
        assert_eq!(
            readiness("app", &[dep("init", "SUCCESS")], &[init]),
            Readiness::Ready
        );
    }

    #[test]
    fn healthy_waits_for_health_and_fails_on_unhealthy_exit_or_no_check() {
        let mut db = view("db");
        assert!(
            matches!(readiness("app", &[dep("db", "HEALTHY")], &[db.clone()]), Readiness::Never(r) if r.contains("no health check"))
        );
        db.has_health_check = true;
        db.started = true;
        db.health = Health::Starting;
        assert_eq!(
            readiness("app", &[dep("db", "HEALTHY")], &[db.clone()]),
            Readiness::Waiting
        );
        db.health = Health::Healthy;
        assert_eq!(
            readiness("app", &[dep("db", "HEALTHY")], &[db.clone()]),
            Readiness::Ready
        );
        db.health = Health::Unhealthy;
        assert!(
            matches!(readiness("app", &[dep("db", "HEALTHY")], &[db.clone()]), Readiness::Never(r) if r.contains("UNHEALTHY"))
        );
        db.health = Health::Starting;
        db.exited = true;
        db.exit_code = Some(1);
        assert!(
            matches!(readiness("app", &[dep("db", "HEALTHY")], &[db]), Readiness::Never(r) if r.contains("exited with code 1"))
        );
    }

    #[test]
    fn unknown_containers_and_conditions_can_never_be_met() {
        assert!(
            matches!(readiness("app", &[dep("ghost", "START")], &[]), Readiness::Never(r) if r.contains("not in the task"))
        );
        let db = view("db");
        assert!(
            matches!(readiness("app", &[dep("db", "SOON")], &[db]), Readiness::Never(r) if r.contains("'SOON'"))
        );
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let containers = vec![
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["c".to_string()]),
            ("c".to_string(), vec!["a".to_string()]),
            ("d".to_string(), vec![]),
        ];
        assert_eq!(
            find_cycle(&containers),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let acyclic = vec![
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec![]),
        ];
        assert_eq!(find_cycle(&acyclic), None);
    }

    #[test]
    fn dependents_stop_before_their_dependencies() {
        let running = vec![
            ("db".to_string(), vec![]),
            ("app".to_string(), vec!["db".to_string()]),
            ("sidecar".to_string(), vec![]),
        ];
        assert_eq!(
            stop_wave(&running),
            vec!["app".to_string(), "sidecar".to_string()]
        );
        let cycle = vec![
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["a".to_string()]),
        ];
        assert_eq!(stop_wave(&cycle).len(), 2);
    }

    #[test]
    fn containers_are_created_after_what_they_need_and_otherwise_in_order() {
        let containers = vec![
            (
                "app".to_string(),
                vec!["data".to_string(), "db".to_string()],
            ),
            ("db".to_string(), vec![]),
            ("data".to_string(), vec!["ghost".to_string()]),
            ("log".to_string(), vec![]),
        ];
        assert_eq!(create_order(&containers), vec![1, 2, 0, 3]);
        let cycle = vec![
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["a".to_string()]),
            ("c".to_string(), vec![]),
        ];
        assert_eq!(create_order(&cycle), vec![2, 0, 1]);
    }
}
