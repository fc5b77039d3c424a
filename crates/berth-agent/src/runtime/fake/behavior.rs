//! What a fake container is scripted to do (`Behavior`) and the record of calls made to the
//! fake (`Call`).

use crate::runtime::Health;
use std::time::Duration;

/// Exit code of a process killed by SIGKILL.
pub const SIGKILL_EXIT_CODE: i64 = 137;

/// How a fake container behaves once created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// Creating the container fails with this message.
    pub create_error: Option<String>,
    /// Starting the container fails with this message.
    pub start_error: Option<String>,
    /// Exit this long after start with this code; `None`: run until stopped.
    pub exit_after: Option<(Duration, i64)>,
    /// Health changes after start: (delay since start, new health), in order.
    pub health: Vec<(Duration, Health)>,
    /// Ignores SIGTERM: a stop waits for its whole timeout, then kills (exit 137).
    pub ignore_sigterm: bool,
    /// Exit code when it honours SIGTERM.
    pub sigterm_exit_code: i64,
    /// A stop call never returns (a hung `docker stop`); a kill still works.
    pub stop_hangs: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            create_error: None,
            start_error: None,
            exit_after: None,
            health: Vec::new(),
            ignore_sigterm: false,
            sigterm_exit_code: 143,
            stop_hangs: false,
        }
    }
}

impl Behavior {
    /// A container that runs until it is stopped.
    pub fn running() -> Behavior {
        Behavior::default()
    }

    /// A container that exits `after` its start with `code`.
    pub fn exits(after: Duration, code: i64) -> Behavior {
        Behavior {
            exit_after: Some((after, code)),
            ..Behavior::default()
        }
    }

    /// A container whose creation fails with `message`.
    pub fn create_fails(message: &str) -> Behavior {
        Behavior {
            create_error: Some(message.to_string()),
            ..Behavior::default()
        }
    }

    /// A container whose start fails with `message`.
    pub fn start_fails(message: &str) -> Behavior {
        Behavior {
            start_error: Some(message.to_string()),
            ..Behavior::default()
        }
    }

    /// Adds health changes: `(delay since start, health)`.
    pub fn with_health(mut self, sequence: &[(Duration, Health)]) -> Behavior {
        self.health = sequence.to_vec();
        self
    }

    /// Makes the container ignore SIGTERM.
    pub fn ignoring_sigterm(mut self) -> Behavior {
        self.ignore_sigterm = true;
        self
    }

    /// Makes stop calls on the container hang forever (kills still work).
    pub fn with_hanging_stop(mut self) -> Behavior {
        self.stop_hangs = true;
        self
    }
}

/// One call made to the fake, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Ping,
    ImagePresent(String),
    Pull(String),
    /// Create, with the container's runtime name.
    Create(String),
    Start(String),
    Stop {
        id: String,
        timeout: Duration,
    },
    Kill(String),
    Remove(String),
    /// Removal of the named volume.
    RemoveVolume(String),
    Inspect(String),
    List,
    Events,
}
