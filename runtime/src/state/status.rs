//! The container lifecycle as an explicit state machine.
//!
//! ```text
//! creating ──▶ created ──▶ running ◀──▶ paused
//!     │           │           │           │
//!     └───────────┴───────────┴───────────┴──▶ stopped
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a container is in its life, with the OCI status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Its sandbox is being set up; nothing runs yet.
    Creating,
    /// Created, the user program not started yet.
    Created,
    /// The user program runs.
    Running,
    /// The user program exited (or the sandbox is gone).
    Stopped,
    /// Frozen by `pause`.
    Paused,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("container cannot go from {from} to {to}")]
pub struct BadTransition {
    pub from: ContainerStatus,
    pub to: ContainerStatus,
}

impl ContainerStatus {
    /// The OCI name (`created`, `running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Paused => "paused",
        }
    }

    /// `start` runs the user program of a created container only.
    pub fn can_start(self) -> bool {
        self == Self::Created
    }

    /// Signals go to a container whose init exists and has not exited.
    pub fn can_kill(self) -> bool {
        matches!(self, Self::Created | Self::Running | Self::Paused)
    }

    /// Like runc: a stopped or a created container is deleted as is, any
    /// other only with `--force` (which kills it first).
    pub fn can_delete(self, force: bool) -> bool {
        force || matches!(self, Self::Stopped | Self::Created)
    }

    /// `exec` needs a created or running, unfrozen container (as runc: an
    /// exec into a created one joins the namespaces its init waits in).
    pub fn can_exec(self) -> bool {
        matches!(self, Self::Created | Self::Running)
    }

    pub fn can_pause(self) -> bool {
        self == Self::Running
    }

    pub fn can_resume(self) -> bool {
        self == Self::Paused
    }

    /// The status after moving to `to`, if the move is allowed.
    pub fn transition(self, to: Self) -> Result<Self, BadTransition> {
        use ContainerStatus::*;
        let ok = match (self, to) {
            (Creating, Created) | (Created, Running) => true,
            (Running, Paused) | (Paused, Running) => true,
            (from, Stopped) => from != Stopped,
            _ => false,
        };
        if ok {
            Ok(to)
        } else {
            Err(BadTransition { from: self, to })
        }
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerStatus::*;
    use super::*;

    const ALL: [ContainerStatus; 5] = [Creating, Created, Running, Stopped, Paused];

    #[test]
    fn guards() {
        let allowed = |f: fn(ContainerStatus) -> bool| -> Vec<_> {
            ALL.into_iter().filter(|&s| f(s)).collect()
        };
        assert_eq!(allowed(ContainerStatus::can_start), [Created]);
        assert_eq!(
            allowed(ContainerStatus::can_kill),
            [Created, Running, Paused]
        );
        assert_eq!(allowed(|s| s.can_delete(false)), [Created, Stopped]);
        assert_eq!(allowed(|s| s.can_delete(true)), ALL);
        assert_eq!(allowed(ContainerStatus::can_exec), [Created, Running]);
        assert_eq!(allowed(ContainerStatus::can_pause), [Running]);
        assert_eq!(allowed(ContainerStatus::can_resume), [Paused]);
    }

    #[test]
    fn transitions() {
        let path = [Creating, Created, Running, Paused, Running, Stopped];
        for pair in path.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
        }
        for from in [Creating, Created, Running, Paused] {
            assert_eq!(from.transition(Stopped), Ok(Stopped));
        }
        for (from, to) in [
            (Stopped, Running),
            (Stopped, Stopped),
            (Created, Paused),
            (Creating, Running),
            (Running, Created),
        ] {
            let e = from.transition(to).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("container cannot go from {from} to {to}")
            );
        }
    }

    #[test]
    fn oci_names_on_the_wire() {
        for s in ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ContainerStatus>(&json).unwrap(), s);
        }
    }
}
