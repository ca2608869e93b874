//! A circuit breaker per callback host — the talk's `:fuse`.
//!
//! When a receiver is down, every delivery to it would otherwise spend an
//! attempt, wait out a timeout and hold a worker. The breaker notices
//! repeated failures and, for a while, answers "not now" without touching
//! the network; the caller defers the delivery without counting an attempt.
//!
//! Per host (keyed by `host:port`):
//!
//! - **Closed**: deliveries go through. Failures — answers the caller will
//!   retry (5xx, 408, 429, 3xx) and timeouts or connection errors — are
//!   remembered for [`BreakerConfig::window`]; the
//!   [`BreakerConfig::failures`]-th within the window opens the breaker.
//!   Any other answer (2xx, 410, other 4xx) shows the host is up and forgets
//!   the failures.
//! - **Open** until [`BreakerConfig::open_for`] has passed: deliveries are not
//!   attempted.
//! - **Half-open**: one trial delivery at a time; the others are still turned
//!   away, and told to ask again shortly (so they follow soon after a trial
//!   that closes the breaker). The trial's success closes the breaker, its
//!   failure opens it again. A trial that is abandoned (cancelled, or refused
//!   before any request was sent) lets the next delivery try instead.
//!
//! The state machine takes the current time as an argument, so it is tested
//! with made-up instants; [`crate::Deliverer`] passes `Instant::now()`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// When a host's breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures within [`window`](Self::window) that open the breaker
    /// (default 3). `0` disables the breaker.
    pub failures: u32,
    /// How long a failure is remembered (default 10 s).
    pub window: Duration,
    /// How long the breaker stays open before a trial delivery (default 60 s).
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    /// The original's fuse: `{:standard, 2, 10_000}, {:reset, 60_000}`
    /// tolerates two failures in 10 s and blows on the third, for 60 s.
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(60),
        }
    }
}

/// A host's breaker as reported by [`crate::Deliverer::breaker_states`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Deliveries go through (the host has had failures recently, but not
    /// enough to open).
    Closed,
    /// Deliveries wait until `until`.
    Open {
        /// When a trial delivery will be let through.
        until: SystemTime,
    },
    /// The open period is over; the next delivery is a trial.
    HalfOpen,
}

/// What a finished delivery says about the host's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// The host answered with something other than a retryable status.
    Up,
    /// A retryable status, a timeout or a connection error.
    Down,
    /// Nothing was learnt about the host (nothing was sent).
    Unknown,
}

/// Permission to deliver to a host, returned by [`Breakers::acquire`] and
/// given back to [`Breakers::record`].
#[derive(Debug)]
#[must_use]
pub(crate) struct Ticket {
    key: String,
    trial: bool,
}

#[derive(Debug)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// `trial` is when the trial in flight, if any, is given up on.
    HalfOpen {
        trial: Option<Instant>,
    },
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Failure times within the window, oldest first (Closed only).
    failures: VecDeque<Instant>,
}

/// How soon a delivery turned away while a half-open trial is in flight may
/// ask again (at the latest when the trial is given up on).
const TRIAL_RECHECK: Duration = Duration::from_secs(1);

/// Entries beyond this many trigger a sweep of idle ones, so a stream of
/// one-off failing hosts cannot grow the map without bound.
const SWEEP_ABOVE: usize = 1024;

/// The breakers of all hosts.
#[derive(Debug)]
pub(crate) struct Breakers {
    config: BreakerConfig,
    /// How long a half-open trial may take before another delivery may try
    /// (the request timeout, plus slack for reading the files).
    trial_budget: Duration,
    /// Only hosts with recent failures have an entry: absence is Closed.
    entries: Mutex<HashMap<String, Entry>>,
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig, trial_budget: Duration) -> Breakers {
        Breakers {
            config,
            trial_budget,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // No code panics while holding the lock, and every update leaves an
        // entry consistent, so a poisoned map is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a delivery to `key` proceed, or says until when it must wait.
    pub(crate) fn acquire(&self, key: &str, now: Instant) -> Result<Ticket, Instant> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return Ok(Ticket {
                key: key.to_owned(),
                trial: false,
            });
        };
        match entry.state {
            State::Closed => Ok(Ticket {
                key: key.to_owned(),
                trial: false,
            }),
            State::Open { until } if now < until => Err(until),
            // Ask again shortly, not when the trial would be given up on:
            // a trial usually answers long before its budget, and the
            // deliveries behind it should follow as soon as it closes the
            // breaker.
            State::HalfOpen {
                trial: Some(give_up),
            } if now < give_up => Err(give_up.min(now + TRIAL_RECHECK)),
            State::Open { .. } | State::HalfOpen { .. } => {
                entry.state = State::HalfOpen {
                    trial: Some(now + self.trial_budget),
                };
                Ok(Ticket {
                    key: key.to_owned(),
                    trial: true,
                })
            }
        }
    }

    /// Records how the delivery behind `ticket` went.
    pub(crate) fn record(&self, ticket: Ticket, health: Health, now: Instant) {
        if self.config.failures == 0 {
            return;
        }
        let mut entries = self.lock();
        if !entries.contains_key(&ticket.key) {
            if health != Health::Down {
                return;
            }
            let fresh = Entry {
                state: State::Closed,
                failures: VecDeque::new(),
            };
            entries.insert(ticket.key.clone(), fresh);
        }
        let Some(entry) = entries.get_mut(&ticket.key) else {
            return;
        };
        let open = State::Open {
            until: now + self.config.open_for,
        };
        let close = match (&entry.state, health) {
            (State::Closed, Health::Up) => true,
            (State::Closed, Health::Down) => {
                entry.failures.push_back(now);
                self.forget_old(entry, now);
                if entry.failures.len() >= self.config.failures as usize {
                    entry.failures.clear();
                    entry.state = open;
                }
                false
            }
            (State::Closed, Health::Unknown) => false,
            // Results of deliveries that started before the breaker opened
            // change nothing: the open period runs its course.
            (State::Open { .. }, _) => false,
            (State::HalfOpen { .. }, _) if !ticket.trial => false,
            (State::HalfOpen { .. }, Health::Up) => true,
            (State::HalfOpen { .. }, Health::Down) => {
                entry.state = open;
                false
            }
            (State::HalfOpen { .. }, Health::Unknown) => {
                entry.state = State::HalfOpen { trial: None };
                false
            }
        };
        if close {
            entries.remove(&ticket.key);
        }
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, entry| {
                self.forget_old(entry, now);
                !matches!(entry.state, State::Closed) || !entry.failures.is_empty()
            });
        }
    }

    fn forget_old(&self, entry: &mut Entry, now: Instant) {
        while let Some(&oldest) = entry.failures.front() {
            if now.saturating_duration_since(oldest) >= self.config.window {
                entry.failures.pop_front();
            } else {
                break;
            }
        }
    }

    /// Every host with a breaker that is open, half-open, or closed with
    /// recent failures, sorted by host. `to_system` converts the instants.
    pub(crate) fn states(
        &self,
        now: Instant,
        to_system: impl Fn(Instant) -> SystemTime,
    ) -> Vec<(String, BreakerState)> {
        let mut entries = self.lock();
        let mut out: Vec<_> = entries
            .iter_mut()
            .filter_map(|(key, entry)| {
                let state = match entry.state {
                    State::Closed => {
                        self.forget_old(entry, now);
                        if entry.failures.is_empty() {
                            return None;
                        }
                        BreakerState::Closed
                    }
                    State::Open { until } if now < until => BreakerState::Open {
                        until: to_system(until),
                    },
                    State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
                };
                Some((key.clone(), state))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn breakers() -> Breakers {
        Breakers::new(
            BreakerConfig {
                failures: 3,
                window: 10_000 * MS,
                open_for: 60_000 * MS,
            },
            15_000 * MS,
        )
    }

    fn fail(b: &Breakers, key: &str, now: Instant) {
        let t = b.acquire(key, now).expect("closed");
        b.record(t, Health::Down, now);
    }

    fn state(b: &Breakers, key: &str, now: Instant) -> Option<BreakerState> {
        let t0 = SystemTime::UNIX_EPOCH;
        b.states(now, |i| t0 + i.saturating_duration_since(now))
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s)
    }

    #[test]
    fn opens_on_the_nth_failure_within_the_window() {
        let b = breakers();
        let t = Instant::now();
        fail(&b, "h:80", t);
        fail(&b, "h:80", t + 1000 * MS);
        assert_eq!(state(&b, "h:80", t + 1000 * MS), Some(BreakerState::Closed));
        fail(&b, "h:80", t + 2000 * MS);
        assert_eq!(
            b.acquire("h:80", t + 2001 * MS).map(|_| ()),
            Err(t + 62_000 * MS)
        );
        // Other hosts are unaffected.
        assert!(b.acquire("other:80", t + 2001 * MS).is_ok());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let b = breakers();
        let t = Instant::now();
        fail(&b, "h:80", t);
        fail(&b, "h:80", t + 5000 * MS);
        fail(&b, "h:80", t + 10_000 * MS); // the first has just expired
        assert!(b.acquire("h:80", t + 10_001 * MS).is_ok());
        fail(&b, "h:80", t + 11_000 * MS); // three within 10 s: 5, 10, 11
        assert!(b.acquire("h:80", t + 11_001 * MS).is_err());
    }

    #[test]
    fn an_answer_forgets_the_failures() {
        let b = breakers();
        let t = Instant::now();
        fail(&b, "h:80", t);
        fail(&b, "h:80", t);
        let ticket = b.acquire("h:80", t).expect("closed");
        b.record(ticket, Health::Up, t);
        assert_eq!(state(&b, "h:80", t), None);
        fail(&b, "h:80", t);
        fail(&b, "h:80", t);
        assert!(b.acquire("h:80", t).is_ok());
    }

    #[test]
    fn unknown_health_changes_nothing_when_closed() {
        let b = breakers();
        let t = Instant::now();
        fail(&b, "h:80", t);
        fail(&b, "h:80", t);
        let ticket = b.acquire("h:80", t).expect("closed");
        b.record(ticket, Health::Unknown, t);
        fail(&b, "h:80", t);
        assert!(b.acquire("h:80", t).is_err());
    }

    fn opened(b: &Breakers, t: Instant) {
        for _ in 0..3 {
            fail(b, "h:80", t);
        }
        assert!(b.acquire("h:80", t).is_err());
    }

    #[test]
    fn half_open_lets_one_trial_through_and_closes_on_success() {
        let b = breakers();
        let t = Instant::now();
        opened(&b, t);
        let later = t + 60_000 * MS;
        assert_eq!(state(&b, "h:80", later), Some(BreakerState::HalfOpen));
        let trial = b.acquire("h:80", later).expect("trial");
        // A second delivery waits for the trial: it asks again shortly, and
        // never later than the trial budget.
        assert_eq!(
            b.acquire("h:80", later + MS).map(|_| ()),
            Err(later + 1001 * MS)
        );
        assert_eq!(
            b.acquire("h:80", later + 14_500 * MS).map(|_| ()),
            Err(later + 15_000 * MS)
        );
        b.record(trial, Health::Up, later + 100 * MS);
        assert_eq!(state(&b, "h:80", later + 100 * MS), None);
        assert!(b.acquire("h:80", later + 100 * MS).is_ok());
    }

    #[test]
    fn a_failed_trial_opens_again() {
        let b = breakers();
        let t = Instant::now();
        opened(&b, t);
        let later = t + 60_000 * MS;
        let trial = b.acquire("h:80", later).expect("trial");
        b.record(trial, Health::Down, later);
        assert_eq!(
            b.acquire("h:80", later + MS).map(|_| ()),
            Err(later + 60_000 * MS)
        );
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_one_try() {
        let b = breakers();
        let t = Instant::now();
        opened(&b, t);
        let later = t + 60_000 * MS;
        let trial = b.acquire("h:80", later).expect("trial");
        b.record(trial, Health::Unknown, later);
        assert!(b.acquire("h:80", later).is_ok());
    }

    #[test]
    fn a_stuck_trial_is_given_up_on_after_the_budget() {
        let b = breakers();
        let t = Instant::now();
        opened(&b, t);
        let later = t + 60_000 * MS;
        let _stuck = b.acquire("h:80", later).expect("trial");
        assert!(b.acquire("h:80", later + 14_999 * MS).is_err());
        assert!(b.acquire("h:80", later + 15_000 * MS).is_ok());
    }

    #[test]
    fn late_results_do_not_move_an_open_breaker() {
        let b = breakers();
        let t = Instant::now();
        let slow = b.acquire("h:80", t).expect("closed");
        opened(&b, t);
        b.record(slow, Health::Up, t + MS);
        assert!(b.acquire("h:80", t + 2 * MS).is_err());
    }

    #[test]
    fn zero_failures_disables_the_breaker() {
        let b = Breakers::new(
            BreakerConfig {
                failures: 0,
                ..BreakerConfig::default()
            },
            MS,
        );
        let t = Instant::now();
        for _ in 0..10 {
            fail(&b, "h:80", t);
        }
        assert!(b.acquire("h:80", t).is_ok());
    }
}
