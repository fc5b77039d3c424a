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

/// Runs `pass` for as long as the app lives: at once, within [`MIN_GAP`] of a change the
/// state cache reports (changes that arrive meanwhile are covered by the same pass), and
/// every `period` when nothing changes. The loop of the glue that follows the tasks of services
/// (load balancer targets, Cloud Map instances). It holds the app weakly, so it ends with it.
pub fn on_changes<F, Fut>(app: Arc<App>, period: Duration, mut pass: F)
where
    F: FnMut(Arc<App>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(&app);
    let mut changes = app.state.changes();
    let mut closing = app.closing();
    drop(app);
    tokio::spawn(async move {
        loop {
            {
                let Some(app) = weak.upgrade() else { return };
                pass(app).await;
            }
            tokio::select! {
                touched = changes.recv() => {
                    if touched.is_none() {
                        return;
                    }
                    // At most one pass per gap under a stream of changes (a busy fleet):
                    // what arrives meanwhile is covered by the next pass.
                    tokio::time::sleep(MIN_GAP).await;
                    while changes.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(period) => {}
                _ = closing.changed() => return,
            }
        }
    });
}

/// The least time between two passes of [`on_changes`].
const MIN_GAP: Duration = Duration::from_millis(100);
