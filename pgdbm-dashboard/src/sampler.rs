//! Pool utilisation over time: a ring buffer of [`PoolSample`]s filled by a background task that
//! ends when the [`Dashboard`](crate::Dashboard) (every clone, and every router made from it) is
//! dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pgdbm::SharedPool;
use tokio::task::JoinHandle;

/// One reading of the pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSample {
    /// When it was taken.
    pub at: SystemTime,
    /// Open connections.
    pub size: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// Idle connections.
    pub idle: u32,
    /// The pool's maximum size.
    pub max_size: u32,
    /// Tasks waiting for a connection.
    pub waiting: u32,
}

impl PoolSample {
    /// Reads `pool`'s state now.
    pub(crate) fn read(pool: &SharedPool) -> Self {
        let stats = pool.stats();
        PoolSample {
            at: SystemTime::now(),
            size: stats.size,
            in_use: stats.in_use,
            idle: stats.idle,
            max_size: stats.max_size,
            waiting: stats.waiting,
        }
    }
}

/// The samples, oldest first, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct Ring {
    samples: Mutex<VecDeque<PoolSample>>,
    capacity: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Ring {
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    pub(crate) fn push(&self, sample: PoolSample) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() >= self.capacity {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    pub(crate) fn snapshot(&self) -> Vec<PoolSample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().copied().collect()
    }
}

/// The sampling task; aborted when dropped (it only reads the pool's in-memory counters, so
/// stopping it at any await leaves nothing behind).
#[derive(Debug)]
pub(crate) struct Sampler {
    task: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pool` into `ring` every `interval` on the current Tokio runtime; without
    /// one nothing runs (the chart then shows only the reading taken at each page load).
    pub(crate) fn start(pool: SharedPool, ring: Arc<Ring>, interval: Duration) -> Self {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Sampler { task: None };
        };
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if pool.is_closed() {
                    break;
                }
                ring.push(PoolSample::read(&pool));
            }
        });
        Sampler { task: Some(task) }
    }

    /// Whether the task was started (inside a Tokio runtime).
    pub(crate) fn started(&self) -> bool {
        self.task.is_some()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(in_use: u32) -> PoolSample {
        PoolSample {
            at: SystemTime::UNIX_EPOCH,
            size: 4,
            in_use,
            idle: 4 - in_use,
            max_size: 4,
            waiting: 0,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let ring = Ring::new(3);
        for n in 0..5 {
            ring.push(sample(n % 4));
        }
        let kept: Vec<u32> = ring.snapshot().iter().map(|s| s.in_use).collect();
        assert_eq!(kept, [2, 3, 0]);
    }
}
