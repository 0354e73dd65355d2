//! The closed vocabulary of states and kinds, spelled the same in SQL,
//! proto, logs and JSON (DESIGN §3, §6).

use std::fmt;
use std::str::FromStr;

/// Declares a vocabulary enum with its snake_case names.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The glossary name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| format!("unknown {} `{s}`", stringify!($name)))
            }
        }
    };
}

vocabulary! {
    /// Where a job is in its life.
    JobState {
        /// Waiting until `available_at`, then leasable.
        Queued => "queued",
        /// Held by a worker under a lease token.
        Leased => "leased",
        /// Finished successfully.
        Done => "done",
        /// Failed for good.
        Dead => "dead",
        /// Cancelled by a user.
        Cancelled => "cancelled",
    }
}

impl JobState {
    /// Whether no worker will ever run the job again without a requeue.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Dead | JobState::Cancelled)
    }
}

vocabulary! {
    /// Where an execution is in its life.
    ExecutionState {
        /// Some of its jobs are not final yet.
        Running => "running",
        /// Everything it reached finished.
        Completed => "completed",
        /// One of its steps failed.
        Failed => "failed",
        /// Cancelled by a user.
        Cancelled => "cancelled",
    }
}

vocabulary! {
    /// What an execution event records (DESIGN §6).
    EventKind {
        /// The execution was created.
        ExecutionStarted => "execution_started",
        /// A step was reached and its job enqueued.
        StepStarted => "step_started",
        /// A worker leased the step's job for an attempt.
        ActionStarted => "action_started",
        /// An attempt failed.
        ActionError => "action_error",
        /// The job was rescheduled.
        ActionRetry => "action_retry",
        /// An attempt succeeded.
        ActionCompleted => "action_completed",
        /// The step's job is done.
        StepCompleted => "step_completed",
        /// The step's job is dead or cancelled, or could not be enqueued.
        StepFailed => "step_failed",
        /// Nothing is left to run and nothing failed.
        ExecutionCompleted => "execution_completed",
        /// A step failed, so the execution did.
        ExecutionFailed => "execution_failed",
        /// A lease expired before its worker answered.
        LeaseExpired => "lease_expired",
        /// A user cancelled the execution.
        ExecutionCancelled => "execution_cancelled",
    }
}

vocabulary! {
    /// How an attempt ended.
    AttemptOutcome {
        /// The task succeeded.
        Succeeded => "succeeded",
        /// The task failed.
        Failed => "failed",
        /// The lease expired first.
        LeaseExpired => "lease_expired",
        /// The worker handed the job back; not charged.
        Released => "released",
        /// The job was cancelled while the attempt ran.
        Cancelled => "cancelled",
    }
}

vocabulary! {
    /// What kind of failure ended an attempt.
    ErrorKind {
        /// No kind given.
        Unspecified => "unspecified",
        /// The task's code raised.
        Exception => "exception",
        /// An HTTP status outside 2xx.
        HttpStatus => "http_status",
        /// The task ran past its timeout.
        Timeout => "timeout",
        /// The lease expired before the worker finished.
        LeaseExpired => "lease_expired",
        /// A connection or protocol error.
        Transport => "transport",
        /// The task's definition could not be used.
        InvalidTask => "invalid_task",
        /// The worker failed for a reason of its own.
        Internal => "internal",
    }
}

vocabulary! {
    /// Who evaluated a retry decision.
    DecidedBy {
        /// The worker, and sent it with its report.
        Worker => "worker",
        /// The broker, from the job's stored policy.
        Broker => "broker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_to_the_same_value() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(*state));
        }
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
        }
    }

    #[test]
    fn serde_uses_the_glossary_names() {
        let json = serde_json::to_value(ErrorKind::LeaseExpired).unwrap();
        assert_eq!(json, serde_json::json!("lease_expired"));
    }
}
