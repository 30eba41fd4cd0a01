//! A circuit breaker per provider, so a provider that keeps failing is
//! skipped at once instead of costing every step its timeouts and retries.
//!
//! [`Circuit`] is the pure state machine; it takes the time as a parameter,
//! so it is tested with tables and no clock. [`Breaker`] wraps a
//! [`ChatModel`] with one.
//!
//! - **Closed**: calls go through. `failure_threshold` provider failures in a
//!   row (see [`LlmError::is_provider_failure`]) open it. An answer, even a
//!   4xx rejecting the request, shows the provider is up and resets the count.
//! - **Open**: calls fail fast with [`LlmError::CircuitOpen`] for `cooldown`.
//! - **Half-open**: after the cool-down one call (the probe) goes through and
//!   the others still fail fast. The probe's success closes the circuit, its
//!   failure opens it for another cool-down.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Provider failures in a row that open the circuit (0 is taken as 1).
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before it lets a probe through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// What a circuit looks like from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call.
    Allowed,
    /// The one trial call of a half-open circuit; report its outcome with
    /// `probe = true`.
    Probe,
    /// Fail fast; a probe is let through in `retry_in` (zero while a probe is
    /// already under way).
    Rejected { retry_in: Duration },
}

/// How a call ended, as far as the provider's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered (possibly rejecting the request).
    Success,
    /// The provider looks unhealthy.
    Failure,
    /// Says nothing about the provider: the call never reached it, or was
    /// abandoned.
    Neutral,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, LlmError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(e) if e.is_provider_failure() => Self::Failure,
            Err(
                LlmError::InvalidConfig(_)
                | LlmError::InvalidRequest(_)
                | LlmError::CircuitOpen { .. },
            ) => Self::Neutral,
            // A 4xx: the provider is up and said no.
            Err(_) => Self::Success,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker's state machine. Pure: every method takes the time.
#[derive(Debug, Clone)]
pub struct Circuit {
    config: BreakerConfig,
    phase: Phase,
}

impl Circuit {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                ..config
            },
            phase: Phase::Closed { failures: 0 },
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Asks to make a call at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.phase {
            Phase::Closed { .. } => Admission::Allowed,
            Phase::Open { until } if now < until => Admission::Rejected {
                retry_in: until - now,
            },
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                self.phase = Phase::HalfOpen { probing: true };
                Admission::Probe
            }
            Phase::HalfOpen { probing: true } => Admission::Rejected {
                retry_in: Duration::ZERO,
            },
        }
    }

    /// Reports how an admitted call ended. Returns the new state when it
    /// changed, for logging.
    pub fn record(&mut self, probe: bool, outcome: Outcome, now: Instant) -> Option<CircuitState> {
        let before = self.state(now);
        self.phase = match (self.phase, probe, outcome) {
            (Phase::Closed { .. }, _, Outcome::Success) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, _, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.failure_threshold {
                    self.open_at(now)
                } else {
                    Phase::Closed { failures }
                }
            }
            (Phase::HalfOpen { .. }, true, Outcome::Success) => Phase::Closed { failures: 0 },
            (Phase::HalfOpen { .. }, true, Outcome::Failure) => self.open_at(now),
            // The probe told nothing: let the next call probe instead.
            (Phase::HalfOpen { .. }, true, Outcome::Neutral) => Phase::HalfOpen { probing: false },
            // Calls admitted before the circuit opened, finishing late, do
            // not move an open or half-open circuit; neutral calls never do.
            (phase, _, _) => phase,
        };
        let after = self.state(now);
        (after != before).then_some(after)
    }

    /// The state at `now`: an open circuit whose cool-down is over reads as
    /// half-open, since the next call will probe.
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.phase {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until } if now < until => CircuitState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether a call at `now` would be admitted.
    pub fn is_healthy(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Closed { .. } | Phase::HalfOpen { probing: false } => true,
            Phase::Open { until } => now >= until,
            Phase::HalfOpen { probing: true } => false,
        }
    }

    fn open_at(&self, now: Instant) -> Phase {
        Phase::Open {
            until: now + self.config.cooldown,
        }
    }
}

/// Where a [`Breaker`] gets the time; tests pass a clock they move by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The monotonic system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A [`ChatModel`] behind a circuit breaker. `healthy()` is false while the
/// circuit refuses calls, so the engine can go straight to another agent.
pub struct Breaker<M> {
    provider: String,
    inner: M,
    circuit: Mutex<Circuit>,
    clock: Arc<dyn Clock>,
}

impl<M: fmt::Debug> fmt::Debug for Breaker<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("provider", &self.provider)
            .field("state", &self.state())
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<M> Breaker<M> {
    /// `provider` names it in errors and logs.
    pub fn new(provider: impl Into<String>, inner: M, config: BreakerConfig) -> Self {
        Self::with_clock(provider, inner, config, Arc::new(SystemClock))
    }

    pub fn with_clock(
        provider: impl Into<String>,
        inner: M,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider: provider.into(),
            inner,
            circuit: Mutex::new(Circuit::new(config)),
            clock,
        }
    }

    pub fn state(&self) -> CircuitState {
        self.lock().state(self.clock.now())
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, Circuit> {
        // The circuit is a few plain fields, valid even if a holder panicked.
        self.circuit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<M: ChatModel> Breaker<M> {
    fn record(&self, probe: bool, outcome: Outcome) {
        let changed = self.lock().record(probe, outcome, self.clock.now());
        match changed {
            Some(CircuitState::Open) => {
                let config = self.lock().config();
                tracing::warn!(
                    provider = %self.provider,
                    threshold = config.failure_threshold,
                    cooldown = ?config.cooldown,
                    "model provider failing: circuit breaker opened, calls fail fast until the cool-down ends"
                );
            }
            Some(CircuitState::Closed) => {
                tracing::info!(provider = %self.provider, "model provider recovered: circuit breaker closed");
            }
            Some(CircuitState::HalfOpen) | None => {}
        }
    }

    async fn call(&self, req: ChatRequest, ctx: CallContext) -> Result<ChatResponse, LlmError> {
        let admission = self.lock().admit(self.clock.now());
        let probe = match admission {
            Admission::Allowed => false,
            Admission::Probe => {
                tracing::info!(provider = %self.provider, "circuit breaker half-open: sending a trial call");
                true
            }
            Admission::Rejected { retry_in } => {
                return Err(LlmError::CircuitOpen {
                    provider: self.provider.clone(),
                    retry_in,
                });
            }
        };
        // Reports a neutral outcome if the call is dropped half-way, so an
        // abandoned probe cannot leave the circuit half-open for good.
        let mut pending = Pending {
            breaker: self,
            probe,
            done: false,
        };
        let result = self.inner.chat(req, ctx).await;
        pending.done = true;
        self.record(probe, Outcome::of(&result));
        result
    }
}

struct Pending<'a, M: ChatModel> {
    breaker: &'a Breaker<M>,
    probe: bool,
    done: bool,
}

impl<M: ChatModel> Drop for Pending<'_, M> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record(self.probe, Outcome::Neutral);
        }
    }
}

impl<M: ChatModel> ChatModel for Breaker<M> {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.call(req, ctx))
    }

    fn healthy(&self) -> bool {
        self.lock().is_healthy(self.clock.now()) && self.inner.healthy()
    }

    fn system(&self) -> &'static str {
        self.inner.system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Ask to call; expect this admission.
        Admit(Admission),
        /// Report a call's outcome (`probe`, outcome).
        Record(bool, Outcome),
        /// Expect this state and health.
        Expect(CircuitState, bool),
    }

    use Admission::{Allowed, Probe, Rejected};
    use CircuitState::{Closed, HalfOpen, Open};
    use Outcome::{Failure, Neutral, Success};
    use Step::{Admit, Expect, Record};

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn run(name: &str, threshold: u32, steps: &[(u64, Step)]) {
        let t0 = Instant::now();
        let mut circuit = Circuit::new(BreakerConfig {
            failure_threshold: threshold,
            cooldown: secs(30),
        });
        for (i, (at, step)) in steps.iter().enumerate() {
            let now = t0 + secs(*at);
            match *step {
                Admit(expected) => {
                    assert_eq!(circuit.admit(now), expected, "{name}: step {i} at {at}s");
                }
                Record(probe, outcome) => {
                    circuit.record(probe, outcome, now);
                }
                Expect(state, healthy) => {
                    assert_eq!(circuit.state(now), state, "{name}: step {i} at {at}s");
                    assert_eq!(
                        circuit.is_healthy(now),
                        healthy,
                        "{name}: step {i} at {at}s"
                    );
                }
            }
        }
    }

    #[test]
    fn transitions() {
        // (name, failure threshold, steps at seconds after the start)
        type Case<'a> = (&'a str, u32, &'a [(u64, Step)]);
        let table: &[Case<'_>] = &[
            (
                "opens after N failures in a row",
                3,
                &[
                    (0, Expect(Closed, true)),
                    (0, Admit(Allowed)),
                    (0, Record(false, Failure)),
                    (1, Record(false, Failure)),
                    (2, Expect(Closed, true)),
                    (2, Record(false, Failure)),
                    (2, Expect(Open, false)),
                    (2, Admit(Rejected { retry_in: secs(30) })),
                    (12, Admit(Rejected { retry_in: secs(20) })),
                ],
            ),
            (
                "a success resets the count",
                3,
                &[
                    (0, Record(false, Failure)),
                    (0, Record(false, Failure)),
                    (0, Record(false, Success)),
                    (0, Record(false, Failure)),
                    (0, Record(false, Failure)),
                    (0, Expect(Closed, true)),
                    (0, Record(false, Failure)),
                    (0, Expect(Open, false)),
                ],
            ),
            (
                "neutral outcomes neither count nor reset",
                2,
                &[
                    (0, Record(false, Failure)),
                    (0, Record(false, Neutral)),
                    (0, Expect(Closed, true)),
                    (0, Record(false, Failure)),
                    (0, Expect(Open, false)),
                ],
            ),
            (
                "after the cool-down one probe goes through and success closes",
                1,
                &[
                    (0, Record(false, Failure)),
                    (29, Expect(Open, false)),
                    (30, Expect(HalfOpen, true)),
                    (30, Admit(Probe)),
                    (30, Expect(HalfOpen, false)),
                    (
                        31,
                        Admit(Rejected {
                            retry_in: Duration::ZERO,
                        }),
                    ),
                    (32, Record(true, Success)),
                    (32, Expect(Closed, true)),
                    (32, Admit(Allowed)),
                ],
            ),
            (
                "a failed probe re-opens for a full cool-down",
                1,
                &[
                    (0, Record(false, Failure)),
                    (40, Admit(Probe)),
                    (45, Record(true, Failure)),
                    (45, Expect(Open, false)),
                    (50, Admit(Rejected { retry_in: secs(25) })),
                    (75, Admit(Probe)),
                ],
            ),
            (
                "a probe that told nothing lets the next call probe",
                1,
                &[
                    (0, Record(false, Failure)),
                    (30, Admit(Probe)),
                    (31, Record(true, Neutral)),
                    (31, Expect(HalfOpen, true)),
                    (31, Admit(Probe)),
                    (32, Record(true, Success)),
                    (32, Expect(Closed, true)),
                ],
            ),
            (
                "late results of calls admitted before opening are ignored",
                2,
                &[
                    (0, Record(false, Failure)),
                    (0, Record(false, Failure)),
                    (1, Record(false, Success)),
                    (1, Expect(Open, false)),
                    (30, Admit(Probe)),
                    (31, Record(false, Failure)),
                    (31, Record(false, Success)),
                    (31, Expect(HalfOpen, false)),
                    (32, Record(true, Success)),
                    (32, Expect(Closed, true)),
                ],
            ),
            (
                "a threshold of zero acts as one",
                0,
                &[
                    (0, Expect(Closed, true)),
                    (0, Record(false, Failure)),
                    (0, Expect(Open, false)),
                ],
            ),
        ];
        for (name, threshold, steps) in table {
            run(name, *threshold, steps);
        }
    }

    #[test]
    fn record_reports_changes() {
        let t0 = Instant::now();
        let mut c = Circuit::new(BreakerConfig {
            failure_threshold: 1,
            cooldown: secs(5),
        });
        assert_eq!(c.record(false, Success, t0), None);
        assert_eq!(c.record(false, Failure, t0), Some(Open));
        assert_eq!(c.admit(t0 + secs(5)), Probe);
        assert_eq!(c.record(true, Success, t0 + secs(6)), Some(Closed));
    }

    #[test]
    fn outcomes_of_errors() {
        let status = |status| {
            Err::<(), _>(LlmError::Status {
                status,
                message: String::new(),
            })
        };
        let table = [
            (Ok(()), Success),
            (status(400), Success),
            (status(401), Success),
            (status(404), Success),
            (status(429), Failure),
            (status(500), Failure),
            (status(503), Failure),
            (status(529), Failure),
            (Err(LlmError::Connect(String::new())), Failure),
            (Err(LlmError::Timeout { limit: secs(1) }), Failure),
            (Err(LlmError::StreamCut(String::new())), Failure),
            (
                Err(LlmError::RetriesExhausted {
                    attempts: 2,
                    last: Box::new(LlmError::Transport(String::new())),
                }),
                Failure,
            ),
            (Err(LlmError::InvalidRequest(String::new())), Neutral),
            (
                Err(LlmError::CircuitOpen {
                    provider: "p".to_owned(),
                    retry_in: secs(1),
                }),
                Neutral,
            ),
        ];
        for (result, expected) in table {
            assert_eq!(Outcome::of(&result), expected, "{result:?}");
        }
    }
}
