//! Controllers: reconcile loops the server runs beside the API.

pub mod gc;
pub mod instance_health;
pub mod queue;
pub mod services;

use crate::app::App;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs `tick` every `period` (a late tick is delayed, never doubled) until the server
/// closes: the loop of the periodic controllers.
pub fn every<F, Fut>(app: Arc<App>, period: Duration, mut tick: F)
where
    F: FnMut(Arc<App>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut closing = app.closing();
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = closing.changed() => return,
            }
            tick(Arc::clone(&app)).await;
        }
    });
}
