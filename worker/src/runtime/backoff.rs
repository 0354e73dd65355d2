//! Capped, jittered exponential backoff for reconnecting and redelivering.

use std::time::Duration;

use rand::Rng;

/// The first pause after a failure.
const FIRST: Duration = Duration::from_millis(100);

/// The longest pause, whatever the number of failures.
const CAP: Duration = Duration::from_secs(5);

/// Pauses of 100 ms doubling to 5 s, each drawn from [half, whole] of its
/// step so that many workers losing one broker do not come back in step.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { step: FIRST }
    }
}

impl Backoff {
    /// The pause before the next try; grows the step for the one after.
    pub(super) fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(CAP);
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Starts again from the first step, after a success.
    pub(super) fn reset(&mut self) {
        self.step = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_first_step_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let mut step = FIRST;
        for _ in 0..12 {
            let pause = backoff.next_pause();
            assert!(
                pause >= step / 2 && pause <= step,
                "{pause:?} outside {step:?}"
            );
            step = (step * 2).min(CAP);
        }
        assert_eq!(backoff.step, CAP);
    }

    #[test]
    fn a_reset_starts_from_the_first_step_again() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_pause();
        }
        backoff.reset();
        assert!(backoff.next_pause() <= FIRST);
    }
}
