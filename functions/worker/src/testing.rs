//! What the worker's two test tiers share (the fast tier in `src/tests`, the emulator tier in
//! `tests/emulator`): a scripted attempt, so failures and crashes can be staged. Behind the
//! `testing` feature (and `cfg(test)`).

use std::sync::Mutex;
use std::time::Duration;

use shared::job::{ArchiveResult, Job, JobId, JobResult};

use crate::handler::{ProcessError, Runner};

/// A scripted attempt: waits `delay`, then answers `outcome(call number)`; logs who started when.
pub struct Scripted {
    delay: Duration,
    outcome: fn(usize) -> Result<JobResult, ProcessError>,
    pub started: Mutex<Vec<JobId>>,
}

impl Scripted {
    pub fn new(delay_ms: u64, outcome: fn(usize) -> Result<JobResult, ProcessError>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Scripted {
            delay: Duration::from_millis(delay_ms),
            outcome,
            started: Mutex::default(),
        })
    }

    pub fn calls(&self) -> usize {
        self.started.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Runner for Scripted {
    async fn run(&self, job: &Job) -> Result<JobResult, ProcessError> {
        let n = {
            let mut s = self.started.lock().unwrap();
            s.push(job.id);
            s.len()
        };
        tokio::time::sleep(self.delay).await;
        (self.outcome)(n)
    }
}

/// An attempt that succeeds.
pub fn ok(_: usize) -> Result<JobResult, ProcessError> {
    Ok(ArchiveResult::example())
}
