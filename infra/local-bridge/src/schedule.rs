//! `Schedule` events: the EventBridge rule that invokes a function every `rate(...)`.
//!
//! - Each tick sends the "Scheduled Event" EventBridge sends (`detail-type`, `source: aws.events`,
//!   the rule's ARN in `resources`, `time` of the tick), or the event's `Input` when it has one.
//! - EventBridge invokes asynchronously, so a failed run is retried as Lambda retries an
//!   asynchronous invocation (`1 + MaximumRetryAttempts` attempts), then its invocation record
//!   goes to the function's `OnFailure` destination, if any.
//! - One run at a time per schedule: a tick that comes while the previous run (retries included)
//!   is still going is skipped, and said so in the log.
//! - The period can be shortened locally for every schedule (`serve --schedule-seconds`,
//!   `LOCAL_SCHEDULE_SECONDS`), so tests need not wait a minute.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use serde_json::{Value, json};
use time::macros::format_description;
use tokio::time::{Instant, MissedTickBehavior};

use crate::destination::{self, Outcome};
use crate::invoke::{InvokeError, Invoker};
use crate::provision::{ACCOUNT, REGION, Schedule};

/// Fires one schedule.
pub struct Scheduler {
    pub schedule: Schedule,
    pub invoker: Arc<dyn Invoker>,
    /// For the invocation records of the function's destinations.
    pub sqs: Client,
    /// The schedule's period, or the local override.
    pub period: Duration,
    /// Delay before a failed run is retried, times the attempt (AWS: 1 then 2 minutes).
    pub retry_delay: Duration,
}

/// The EventBridge "Scheduled Event" for a tick at `time`.
pub fn scheduled_event(rule_arn: &str, time: time::OffsetDateTime) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time
            .format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
            .unwrap_or_default(),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    })
}

impl Scheduler {
    /// Fires every period until `shutdown` flips; the first tick comes one period after the start,
    /// as a new rule's does.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(
            schedule = %self.schedule.id,
            function = %self.schedule.function,
            period_secs = self.period.as_secs_f64(),
            "schedule started"
        );
        let mut ticks = tokio::time::interval_at(Instant::now() + self.period, self.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut running: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = ticks.tick() => {
                    if running.as_ref().is_some_and(|r| !r.is_finished()) {
                        tracing::warn!(schedule = %self.schedule.id, "tick skipped: the previous run is still going");
                        continue;
                    }
                    let me = self.clone();
                    running = Some(tokio::spawn(async move {
                        let _ = me.fire().await;
                    }));
                }
            }
        }
        if let Some(r) = running {
            r.abort();
        }
    }

    /// One scheduled run: the event, its retries, then the destination's record.
    pub async fn fire(&self) -> Result<Value, InvokeError> {
        let event = self
            .schedule
            .input
            .clone()
            .unwrap_or_else(|| scheduled_event(&self.schedule.rule_arn, time::OffsetDateTime::now_utc()));
        let request_id = uuid::Uuid::new_v4().to_string();
        let config = &self.schedule.async_config;
        let mut attempt = 1;
        let result = loop {
            match self.invoker.invoke(&self.schedule.function, &event).await {
                Ok(v) => break Ok(v),
                Err(e) => {
                    tracing::warn!(schedule = %self.schedule.id, function = %self.schedule.function, attempt, error = %e, "scheduled run failed");
                    if attempt >= config.attempts() {
                        break Err(e);
                    }
                    tokio::time::sleep(self.retry_delay * attempt).await;
                    attempt += 1;
                }
            }
        };
        let (destination, outcome) = match &result {
            Ok(v) => (config.on_success.as_ref(), Outcome::Success(v)),
            Err(e) => (config.on_failure.as_ref(), Outcome::RetriesExhausted(e)),
        };
        if let Some(destination) = destination {
            let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.schedule.function);
            let record = destination::record(&arn, &request_id, &event, attempt, outcome);
            if let Err(e) = destination::send(&self.sqs, destination, &record).await {
                tracing::error!(schedule = %self.schedule.id, error = %e, "invocation record not sent");
            }
        } else if result.is_err() {
            tracing::error!(schedule = %self.schedule.id, attempts = attempt, "scheduled run dropped after every attempt failed");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduled_event_has_eventbridges_shape() {
        let t = time::macros::datetime!(2026-11-30 12:00:05 UTC);
        let e = scheduled_event("arn:aws:events:us-east-1:000000000000:rule/sweep", t);
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["time"], "2026-11-30T12:00:05Z");
        assert_eq!(
            e["resources"],
            json!(["arn:aws:events:us-east-1:000000000000:rule/sweep"])
        );
        assert_eq!(e["detail"], json!({}));
        assert_eq!(e["version"], "0");
        assert_eq!(e["account"], ACCOUNT);
        assert_eq!(e["region"], REGION);
        assert_eq!(e["id"].as_str().unwrap().len(), 36);
    }
}
