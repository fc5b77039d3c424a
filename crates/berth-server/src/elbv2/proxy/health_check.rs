//! Health checks: the state machine ELB documents (`initial` → `healthy`/`unhealthy` by
//! consecutive results against the thresholds), one probe of a target, and the loop that
//! probes a target every interval and reports to the [`HealthBoard`].

use super::config::{HealthCheckConfig, Protocol};
use super::pattern::StatusMatcher;
use super::targets::{Health, Target};
use crate::elbv2::health::{HealthBoard, TargetHealth};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The client of HTTP checks: a fresh connection per check, as ELB's checker makes.
pub(super) type CheckClient = Client<HttpConnector, Empty<Bytes>>;

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// No answer within the check's timeout.
    Timeout,
    /// An answer whose code the matcher does not accept.
    Code(u16),
    /// The connection was refused or broke.
    Connection,
}

/// What the checks of one target have concluded so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Registered, not yet through `healthy_threshold` successes or `unhealthy_threshold`
    /// failures.
    Initial,
    /// Passed its checks.
    Healthy,
    /// Failed its checks, for this (latest) reason.
    Unhealthy(Failure),
}

/// Consecutive check results of one target and the verdict they lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tracker {
    pub(super) verdict: Verdict,
    successes: u32,
    failures: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            verdict: Verdict::Initial,
            successes: 0,
            failures: 0,
        }
    }
}

impl Tracker {
    /// Counts one check's `outcome`; the verdict changes once a threshold (at least 1) of
    /// consecutive like results is reached. An unhealthy target keeps its latest reason.
    pub(super) fn observe(
        &mut self,
        outcome: Result<(), Failure>,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) {
        match outcome {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes >= healthy_threshold.max(1) {
                    self.verdict = Verdict::Healthy;
                }
            }
            Err(failure) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= unhealthy_threshold.max(1)
                    || matches!(self.verdict, Verdict::Unhealthy(_))
                {
                    self.verdict = Verdict::Unhealthy(failure);
                }
            }
        }
    }
}

impl Verdict {
    /// How routing treats the target.
    pub(super) fn health(self) -> Health {
        match self {
            Verdict::Initial => Health::Initial,
            Verdict::Healthy => Health::Healthy,
            Verdict::Unhealthy(_) => Health::Unhealthy,
        }
    }

    /// What DescribeTargetHealth reports, in ELB's words.
    pub(super) fn report(self) -> TargetHealth {
        let (state, reason, description) = match self {
            Verdict::Initial => (
                "initial",
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress".to_owned()),
            ),
            Verdict::Healthy => ("healthy", None, None),
            Verdict::Unhealthy(Failure::Timeout) => (
                "unhealthy",
                Some("Target.Timeout"),
                Some("Request timed out".to_owned()),
            ),
            Verdict::Unhealthy(Failure::Code(code)) => (
                "unhealthy",
                Some("Target.ResponseCodeMismatch"),
                Some(format!("Health checks failed with these codes: [{code}]")),
            ),
            Verdict::Unhealthy(Failure::Connection) => (
                "unhealthy",
                Some("Target.FailedHealthChecks"),
                Some("Health checks failed".to_owned()),
            ),
        };
        TargetHealth {
            state,
            reason,
            description,
        }
    }
}

/// What a target of a group whose checks are off reports.
pub(super) fn disabled_report() -> TargetHealth {
    TargetHealth {
        state: "unavailable",
        reason: Some("Target.HealthCheckDisabled"),
        description: Some("Health checks are disabled".to_owned()),
    }
}

/// A group's check settings, parsed once per apply.
#[derive(Debug)]
pub(super) struct CheckPlan {
    pub(super) config: HealthCheckConfig,
    pub(super) matcher: StatusMatcher,
}

/// Checks `target` now and then every `plan.config.interval`, forever (the group aborts the
/// task when the target goes or the check changes), reporting each change to `board`.
pub(super) async fn run(
    target: Arc<Target>,
    plan: Arc<CheckPlan>,
    client: CheckClient,
    board: Arc<HealthBoard>,
) {
    let mut ticks = tokio::time::interval(plan.config.interval.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let addr = SocketAddr::new(
            target.addr.ip(),
            plan.config.port.unwrap_or(target.addr.port()),
        );
        let outcome = probe(&plan, &client, addr).await;
        target.observe(outcome, &plan.config, &board);
    }
}

/// One check of `addr`.
async fn probe(plan: &CheckPlan, client: &CheckClient, addr: SocketAddr) -> Result<(), Failure> {
    let timeout = plan.config.timeout;
    match plan.config.protocol {
        Protocol::Tcp => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(Failure::Connection),
                Err(_) => Err(Failure::Timeout),
            }
        }
        Protocol::Http => {
            let path = if plan.config.path.starts_with('/') {
                plan.config.path.clone()
            } else {
                format!("/{}", plan.config.path)
            };
            let request = hyper::Request::get(format!("http://{addr}{path}"))
                .header(hyper::header::HOST, addr.to_string())
                .header(hyper::header::USER_AGENT, "ELB-HealthChecker/2.0")
                .body(Empty::new())
                .map_err(|_| Failure::Connection)?;
            match tokio::time::timeout(timeout, client.request(request)).await {
                Ok(Ok(response)) if plan.matcher.accepts(response.status().as_u16()) => Ok(()),
                Ok(Ok(response)) => Err(Failure::Code(response.status().as_u16())),
                Ok(Err(_)) => Err(Failure::Connection),
                Err(_) => Err(Failure::Timeout),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_through(outcomes: &[Result<(), Failure>]) -> Vec<Verdict> {
        let mut tracker = Tracker::default();
        outcomes
            .iter()
            .map(|outcome| {
                tracker.observe(*outcome, 2, 3);
                tracker.verdict
            })
            .collect()
    }

    #[test]
    fn a_new_target_turns_healthy_after_the_healthy_threshold() {
        let verdicts = run_through(&[Ok(()), Ok(())]);
        assert_eq!(verdicts, [Verdict::Initial, Verdict::Healthy]);
    }

    #[test]
    fn a_new_target_turns_unhealthy_after_the_unhealthy_threshold_with_the_last_reason() {
        let timeout = Err(Failure::Timeout);
        let verdicts = run_through(&[timeout, timeout, Err(Failure::Code(503))]);
        assert_eq!(
            verdicts,
            [
                Verdict::Initial,
                Verdict::Initial,
                Verdict::Unhealthy(Failure::Code(503))
            ]
        );
    }

    #[test]
    fn a_healthy_target_survives_fewer_failures_than_the_threshold() {
        let fail = Err(Failure::Connection);
        let verdicts = run_through(&[Ok(()), Ok(()), fail, fail, Ok(()), fail, fail, fail]);
        assert_eq!(verdicts[4], Verdict::Healthy);
        assert_eq!(verdicts[6], Verdict::Healthy);
        assert_eq!(verdicts[7], Verdict::Unhealthy(Failure::Connection));
    }

    #[test]
    fn an_unhealthy_target_needs_the_healthy_threshold_to_come_back() {
        let fail = Err(Failure::Timeout);
        let verdicts = run_through(&[fail, fail, fail, Ok(()), fail, Ok(()), Ok(())]);
        assert_eq!(verdicts[3], Verdict::Unhealthy(Failure::Timeout));
        assert_eq!(verdicts[5], Verdict::Unhealthy(Failure::Timeout));
        assert_eq!(verdicts[6], Verdict::Healthy);
    }

    #[test]
    fn reports_use_elb_reason_codes_and_descriptions() {
        let report = Verdict::Unhealthy(Failure::Code(503)).report();
        assert_eq!(report.reason, Some("Target.ResponseCodeMismatch"));
        assert_eq!(
            report.description.as_deref(),
            Some("Health checks failed with these codes: [503]")
        );
        assert_eq!(Verdict::Initial.report().state, "initial");
        assert_eq!(Verdict::Healthy.report().reason, None);
    }
}
