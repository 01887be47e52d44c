//! Per-host politeness: a concurrency cap per host, a minimum spacing between
//! request starts to one host, a "not before" time after a host rate-limits
//! us, and a global cap. The map lock is only held for bookkeeping, never
//! across an await, so one slow host cannot block fetches to another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Rate-limit waits up to this long are slept through; longer ones make the
/// fetch return `RateLimited` at once, without a request, so a worker is not
/// parked for minutes and the scheduler can move the feed's next poll.
pub const MAX_POLITE_WAIT: Duration = Duration::from_secs(5);

/// Used when a host rate-limits without a usable Retry-After.
pub const DEFAULT_HOST_BACKOFF: Duration = Duration::from_secs(60);

/// Host back-off is capped so a hostile Retry-After cannot silence a host
/// for good within one process.
pub const MAX_HOST_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// Host-table size past which idle hosts are forgotten.
const PRUNE_AT: usize = 4096;

struct HostState {
    permits: Arc<Semaphore>,
    next_start: Instant,
    /// Set when the host answered 429/503: (not before, that status).
    not_before: Option<(Instant, u16)>,
}

/// Held for the duration of one request (one redirect hop).
pub struct Slot {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// The host is rate-limiting us for longer than we are willing to wait.
pub struct StillLimited {
    pub status: u16,
    pub remaining: Duration,
}

pub struct Politeness {
    hosts: Mutex<HashMap<String, HostState>>,
    global: Arc<Semaphore>,
    per_host: usize,
    spacing: Duration,
}

impl Politeness {
    pub fn new(per_host: usize, global: usize, spacing: Duration) -> Politeness {
        Politeness {
            hosts: Mutex::new(HashMap::new()),
            global: Arc::new(Semaphore::new(global)),
            per_host,
            // Clamped so `Instant + spacing` cannot overflow on silly config.
            spacing: spacing.min(Duration::from_secs(3600)),
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        // A poisoned lock only means another fetch panicked mid-bookkeeping;
        // the map is still usable, and fetch must never panic itself.
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PRUNE_AT && !map.contains_key(host) {
            // Forget idle hosts so a daemon polling many hosts does not grow
            // the table forever. Runs rarely: only past PRUNE_AT entries.
            let now = Instant::now();
            map.retain(|_, s| {
                s.permits.available_permits() < self.per_host
                    || s.next_start > now
                    || s.not_before.is_some_and(|(t, _)| t > now)
            });
        }
        let state = map.entry(host.to_owned()).or_insert_with(|| HostState {
            permits: Arc::new(Semaphore::new(self.per_host)),
            next_start: Instant::now(),
            not_before: None,
        });
        f(state)
    }

    /// Waits for a per-host permit, the host's spacing and any short
    /// rate-limit pause, then a global permit. Global permits are taken last
    /// so requests queued behind a slow host do not hold them.
    pub async fn acquire(&self, host: &str) -> Result<Slot, StillLimited> {
        let permits = self.with_host(host, |s| Arc::clone(&s.permits));
        let Ok(host_permit) = permits.acquire_owned().await else {
            // The semaphore is never closed; treat the impossible as "wait".
            return Err(StillLimited {
                status: 503,
                remaining: DEFAULT_HOST_BACKOFF,
            });
        };

        let now = Instant::now();
        let limited = self.with_host(host, |s| match s.not_before {
            Some((t, status)) if t > now => Some((t - now, status)),
            _ => {
                s.not_before = None;
                None
            }
        });
        if let Some((remaining, status)) = limited {
            if remaining > MAX_POLITE_WAIT {
                return Err(StillLimited { status, remaining });
            }
            tokio::time::sleep(remaining).await;
        }

        let start = self.with_host(host, |s| {
            let now = Instant::now();
            let start = s.next_start.max(now);
            s.next_start = start + self.spacing;
            start
        });
        tokio::time::sleep_until(start).await;

        let Ok(global) = Arc::clone(&self.global).acquire_owned().await else {
            return Err(StillLimited {
                status: 503,
                remaining: DEFAULT_HOST_BACKOFF,
            });
        };
        Ok(Slot {
            _host: host_permit,
            _global: global,
        })
    }

    /// Records that `host` asked us to slow down.
    pub fn rate_limited(&self, host: &str, status: u16, retry_after: Option<Duration>) {
        let wait = retry_after
            .unwrap_or(DEFAULT_HOST_BACKOFF)
            .min(MAX_HOST_BACKOFF);
        let until = Instant::now() + wait;
        self.with_host(host, |s| {
            let later = match s.not_before {
                Some((t, _)) => until > t,
                None => true,
            };
            if later {
                s.not_before = Some((until, status));
            }
        });
    }
}
