//! DynamoDB stream event source mappings (`Type: DynamoDB` events), as Lambda runs them: the
//! table's stream read through the DynamoDB Streams API only (`DescribeStream`,
//! `GetShardIterator`, `GetRecords` at `AWS_ENDPOINT_URL_DYNAMODB`, whichever emulator serves it),
//! batches of up to `BatchSize` records in the `DynamodbEvent` shape, in order per shard.
//!
//! - A function error: with `BisectBatchOnFunctionError` the batch is split in two and each half
//!   tried on its own (a split does not count as a retry); otherwise the batch is retried.
//! - `ReportBatchItemFailures`: the records before the first failed sequence number are done,
//!   the rest is retried. An empty or unknown `itemIdentifier` fails the whole batch.
//! - After `MaximumRetryAttempts` retries (-1 or absent: until the records expire, here for ever)
//!   the batch's invocation record (`DDBStreamBatchInfo`) goes to the `OnFailure` SQS
//!   destination, and the shard moves on.
//! - `StartingPosition`: `LATEST` (records after the bridge started) or `TRIM_HORIZON`; shards that
//!   appear later are read from their start.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::invoke::{InvokeError, Invoker};
use crate::provision::{Destination, Function, Physical, REGION};

/// A DynamoDB event source mapping.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub function: String,
    pub function_arn: String,
    pub stream_arn: String,
    pub batch_size: usize,
    pub trim_horizon: bool,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    /// `None`: retry until the records expire.
    pub maximum_retry_attempts: Option<u32>,
    pub on_failure: Option<Destination>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `DynamoDB` event's properties (evaluated), as SAM declares them.
pub fn from_event(
    function: &Function,
    props: &Value,
    created: &BTreeMap<String, Physical>,
) -> anyhow::Result<StreamSource> {
    let stream_arn = props
        .get("Stream")
        .map(scalar)
        .ok_or_else(|| anyhow!("a DynamoDB event needs Stream (!GetAtt Table.StreamArn)"))?;
    if !created
        .values()
        .any(|p| p.attributes.get("StreamArn") == Some(&stream_arn))
    {
        bail!("Stream {stream_arn} is not the stream of a table of the template");
    }
    let starting = props.get("StartingPosition").map(scalar).unwrap_or_default();
    let trim_horizon = match starting.as_str() {
        "LATEST" => false,
        "TRIM_HORIZON" => true,
        other => bail!("StartingPosition {other:?}: LATEST or TRIM_HORIZON"),
    };
    let flag = |k: &str| props.get(k).map(scalar).as_deref() == Some("true");
    let types: Vec<String> = props
        .get("FunctionResponseTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(scalar).collect())
        .unwrap_or_default();
    let retries: i64 = props
        .get("MaximumRetryAttempts")
        .map(scalar)
        .unwrap_or("-1".into())
        .parse()
        .context("MaximumRetryAttempts")?;
    let on_failure = match props.pointer("/DestinationConfig/OnFailure") {
        None => None,
        Some(d) => {
            let kind = d.get("Type").map(scalar).unwrap_or("SQS".into());
            if kind != "SQS" {
                bail!("OnFailure destination type {kind:?} is not supported by the local stack (only SQS)");
            }
            let arn = d.get("Destination").map(scalar).unwrap_or_default();
            let queue = created
                .values()
                .find(|p| p.kind == "AWS::SQS::Queue" && p.attributes.get("Arn") == Some(&arn))
                .ok_or_else(|| anyhow!("OnFailure: {arn} is not a queue of the template"))?;
            Some(Destination {
                queue_arn: arn,
                queue_url: queue.reference.clone(),
            })
        }
    };
    Ok(StreamSource {
        function: function.name.clone(),
        function_arn: function.arn(),
        stream_arn,
        batch_size: props
            .get("BatchSize")
            .map(scalar)
            .unwrap_or("100".into())
            .parse()
            .context("BatchSize")?,
        trim_horizon,
        bisect_on_error: flag("BisectBatchOnFunctionError"),
        report_batch_item_failures: types.iter().any(|t| t == "ReportBatchItemFailures"),
        maximum_retry_attempts: u32::try_from(retries).ok(),
        on_failure,
    })
}

/// An attribute value in the stream's JSON shape (`{"S": "..."}`, `{"N": "1"}`, ...).
pub fn attribute_json(v: &AttributeValue) -> Value {
    let b64 =
        |b: &aws_sdk_dynamodbstreams::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => json!({"BS": v.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": item_json(m)}),
        _ => json!({"NULL": true}),
    }
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// One stream record as Lambda passes it (`aws_lambda_events::dynamodb::EventRecord`).
pub fn record_json(r: &Record, stream_arn: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(d) = &r.dynamodb {
        if let Some(t) = d.approximate_creation_date_time {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        for (name, item) in [
            ("Keys", &d.keys),
            ("NewImage", &d.new_image),
            ("OldImage", &d.old_image),
        ] {
            if let Some(item) = item {
                dynamodb.insert(name.into(), item_json(item));
            }
        }
        if let Some(s) = &d.sequence_number {
            dynamodb.insert("SequenceNumber".into(), json!(s));
        }
        dynamodb.insert("SizeBytes".into(), json!(d.size_bytes.unwrap_or(0)));
        if let Some(v) = &d.stream_view_type {
            dynamodb.insert("StreamViewType".into(), json!(v.as_str()));
        }
    }
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": r.event_version.clone().unwrap_or("1.1".into()),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region.clone().unwrap_or(REGION.into()),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn sequence(r: &Record) -> &str {
    r.dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.as_deref())
        .unwrap_or_default()
}

/// What one invocation said about its batch.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Done,
    /// Retry from this index of the batch.
    RetryFrom(usize),
    FunctionError,
}

/// Reads a function's answer for a batch with these sequence numbers.
pub fn verdict(result: &Result<Value, InvokeError>, sequences: &[&str], report_failures: bool) -> Verdict {
    let response = match result {
        Err(_) => return Verdict::FunctionError,
        Ok(r) => r,
    };
    if !report_failures {
        return Verdict::Done;
    }
    let failures = response
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if failures.is_empty() {
        return Verdict::Done;
    }
    let mut first = None;
    for f in &failures {
        let id = f.get("itemIdentifier").and_then(Value::as_str).unwrap_or_default();
        match sequences.iter().position(|s| !id.is_empty() && *s == id) {
            Some(i) => first = Some(first.map_or(i, |f: usize| f.min(i))),
            // Lambda treats an empty or unknown identifier as a failure of the whole batch.
            None => return Verdict::RetryFrom(0),
        }
    }
    Verdict::RetryFrom(first.unwrap_or(0))
}

/// Polls one stream and invokes the function.
pub struct StreamPoller {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub source: StreamSource,
    pub invoker: Arc<dyn Invoker>,
    /// Wait between polls of a shard that had nothing (Lambda polls each shard about 4 times a second).
    pub idle: Duration,
}

#[derive(Default)]
struct Shard {
    iterator: Option<String>,
    /// The sequence number of the last record handed to the function (delivered or given up on),
    /// or passed over when the shard was started at `LATEST`; none: nothing before the iterator.
    last: Option<String>,
}

impl StreamPoller {
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
        let mut first = true;
        let mut last_describe = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if *shutdown.borrow() {
                return;
            }
            if last_describe.elapsed() > Duration::from_secs(5) || shards.values().all(|s| s.iterator.is_none()) {
                if let Err(e) = self.discover(&mut shards, first).await {
                    tracing::warn!(stream = %self.source.stream_arn, error = %e, "DescribeStream failed");
                } else {
                    first = false;
                }
                last_describe = std::time::Instant::now();
            }
            let mut got_any = false;
            for (id, shard) in shards.iter_mut() {
                let Some(iterator) = shard.iterator.clone() else {
                    continue;
                };
                match self.records(&iterator, self.source.batch_size).await {
                    Ok(out) => {
                        let records = out.records().to_vec();
                        shard.iterator = out.next_shard_iterator;
                        if let Some(last) = records.last() {
                            got_any = true;
                            let last = sequence(last).to_string();
                            self.deliver(id, records).await;
                            shard.last = Some(last);
                        }
                    }
                    Err(e) => {
                        // Lambda resumes where it was; so does this (after the last record handed
                        // over or passed over, or from the shard's start when there was none).
                        tracing::warn!(shard = %id, error = %e, "GetRecords failed: resuming the shard after its last record");
                        shard.iterator = match &shard.last {
                            Some(seq) => {
                                self.iterator(id, ShardIteratorType::AfterSequenceNumber, Some(seq))
                                    .await
                            }
                            None => self.iterator(id, ShardIteratorType::TrimHorizon, None).await,
                        }
                        .ok();
                    }
                }
            }
            if !got_any {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(self.idle) => {}
                }
            }
        }
    }

    /// The records at `iterator` (at most `limit`) and the iterator after them (none: the shard
    /// is closed and read to its end).
    async fn records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> anyhow::Result<aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput> {
        self.streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string()))
    }

    /// `LATEST` as Lambda means it: after the last record the shard holds now. Read there from
    /// `TRIM_HORIZON` (the records passed over, not delivered) rather than asked for as `LATEST`:
    /// DynamoDB Local, restarted after a shard rolled over, numbers new records below the open
    /// shard's starting sequence number, and a `LATEST` iterator then passes over them (seen: the
    /// first ~100 changes after `infra/up` never reached `notify`).
    async fn at_latest(&self, shard: &str) -> anyhow::Result<Shard> {
        let mut iterator = self.iterator(shard, ShardIteratorType::TrimHorizon, None).await?;
        let mut last = None;
        loop {
            let out = self.records(&iterator, 1000).await?;
            iterator = out
                .next_shard_iterator
                .ok_or_else(|| anyhow!("shard {shard} is closed"))?;
            match out.records.as_deref().and_then(<[Record]>::last) {
                Some(record) => last = Some(sequence(record).to_string()),
                None => {
                    return Ok(Shard {
                        iterator: Some(iterator),
                        last,
                    });
                }
            }
        }
    }

    async fn iterator(&self, shard: &str, kind: ShardIteratorType, sequence: Option<&str>) -> anyhow::Result<String> {
        self.streams
            .get_shard_iterator()
            .stream_arn(&self.source.stream_arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence.map(str::to_owned))
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string()))?
            .shard_iterator
            .ok_or_else(|| anyhow!("GetShardIterator answered no iterator"))
    }

    /// Finds the stream's shards; new ones get an iterator (at the start: `StartingPosition`).
    async fn discover(&self, shards: &mut BTreeMap<String, Shard>, first: bool) -> anyhow::Result<()> {
        let mut start = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.source.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|e| anyhow!(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string()))?;
            let Some(desc) = out.stream_description else {
                return Ok(());
            };
            for s in desc.shards() {
                let Some(id) = s.shard_id() else { continue };
                if shards.contains_key(id) {
                    continue;
                }
                let closed = s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                let shard = if first && !self.source.trim_horizon {
                    if closed {
                        shards.insert(id.to_string(), Shard::default());
                        continue;
                    }
                    self.at_latest(id).await?
                } else {
                    Shard {
                        iterator: Some(self.iterator(id, ShardIteratorType::TrimHorizon, None).await?),
                        last: None,
                    }
                };
                tracing::info!(stream = %self.source.stream_arn, shard = id, function = %self.source.function, "reading shard");
                shards.insert(id.to_string(), shard);
            }
            start = desc.last_evaluated_shard_id;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// Invokes the function with `records` until each record is done or given up on.
    async fn deliver(&self, shard: &str, records: Vec<Record>) {
        let src = &self.source;
        let mut pending: VecDeque<(Vec<Record>, u32)> = VecDeque::from([(records, 0)]);
        while let Some((batch, retries)) = pending.pop_front() {
            let event = json!({"Records": batch.iter().map(|r| record_json(r, &src.stream_arn)).collect::<Vec<_>>()});
            let result = self.invoker.invoke(&src.function, &event).await;
            let sequences: Vec<&str> = batch.iter().map(sequence).collect();
            let (rest, error) = match verdict(&result, &sequences, src.report_batch_item_failures) {
                Verdict::Done => continue,
                Verdict::RetryFrom(i) => (batch[i..].to_vec(), false),
                Verdict::FunctionError if src.bisect_on_error && batch.len() > 1 => {
                    // Split in two; a split is not a retry.
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    tracing::info!(function = %src.function, sizes = ?(first.len(), second.len()), "function error: bisecting the batch");
                    pending.push_front((second, retries));
                    pending.push_front((first, retries));
                    continue;
                }
                Verdict::FunctionError => (batch, true),
            };
            if let Err(e) = &result {
                tracing::warn!(function = %src.function, error = %e, "stream batch failed");
            }
            if src.maximum_retry_attempts.is_some_and(|max| retries >= max) {
                self.give_up(shard, &rest, retries + 1, error).await;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(retries + 1).min(10))).await;
            pending.push_front((rest, retries + 1));
        }
    }

    /// Retries exhausted: the batch's record to the on-failure destination (or dropped).
    async fn give_up(&self, shard: &str, batch: &[Record], attempts: u32, function_error: bool) {
        let src = &self.source;
        let when = |r: Option<&Record>| {
            r.and_then(|r| r.dynamodb.as_ref())
                .and_then(|d| d.approximate_creation_date_time)
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                .map(shared_format)
        };
        let mut response = json!({"statusCode": 200, "executedVersion": "$LATEST"});
        if function_error {
            response["functionError"] = json!("Unhandled");
        }
        let record = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": format!("{}:$LATEST", src.function_arn),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": shared_format(time::OffsetDateTime::now_utc()),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": batch.first().map(sequence),
                "endSequenceNumber": batch.last().map(sequence),
                "approximateArrivalOfFirstRecord": when(batch.first()),
                "approximateArrivalOfLastRecord": when(batch.last()),
                "batchSize": batch.len(),
                "streamArn": src.stream_arn,
            },
        });
        tracing::error!(function = %src.function, records = batch.len(), destination = ?src.on_failure.as_ref().map(|d| &d.queue_arn), "stream batch given up after its retries");
        if let Some(d) = &src.on_failure
            && let Err(e) = crate::destination::send(&self.sqs, d, &record).await
        {
            tracing::error!(error = %e, "the on-failure record was not sent");
        }
    }
}

fn shared_format(t: time::OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_lambdas_rules() {
        let seqs = ["100", "200", "300"];
        let ok = |v: Value| -> Result<Value, InvokeError> { Ok(v) };
        assert_eq!(
            verdict(&ok(json!({"batchItemFailures": []})), &seqs, true),
            Verdict::Done
        );
        assert_eq!(verdict(&ok(json!(null)), &seqs, true), Verdict::Done);
        assert_eq!(
            verdict(
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "300"}, {"itemIdentifier": "200"}]})),
                &seqs,
                true
            ),
            Verdict::RetryFrom(1),
            "from the lowest failed sequence number"
        );
        assert_eq!(
            verdict(&ok(json!({"batchItemFailures": [{"itemIdentifier": ""}]})), &seqs, true),
            Verdict::RetryFrom(0),
            "an empty identifier fails the whole batch"
        );
        assert_eq!(
            verdict(
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "999"}]})),
                &seqs,
                true
            ),
            Verdict::RetryFrom(0)
        );
        assert_eq!(
            verdict(
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "200"}]})),
                &seqs,
                false
            ),
            Verdict::Done,
            "without ReportBatchItemFailures the answer is ignored"
        );
        let err: Result<Value, InvokeError> = Err(InvokeError::Transport("x".into()));
        assert_eq!(verdict(&err, &seqs, true), Verdict::FunctionError);
    }

    #[test]
    fn records_have_the_dynamodb_event_shape() {
        use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};
        let r = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Modify)
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", AttributeValue::S("JOB#1".into()))
                    .new_image("pk", AttributeValue::S("JOB#1".into()))
                    .new_image(
                        "progress",
                        AttributeValue::M(HashMap::from([("percent".into(), AttributeValue::N("40".into()))])),
                    )
                    .sequence_number("100")
                    .size_bytes(10)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build();
        let v = record_json(&r, "arn:stream");
        let parsed: aws_lambda_events::dynamodb::EventRecord = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(parsed.event_name, "MODIFY");
        assert_eq!(parsed.change.sequence_number.as_deref(), Some("100"));
        assert_eq!(
            v["dynamodb"]["NewImage"]["progress"],
            json!({"M": {"percent": {"N": "40"}}})
        );
        assert_eq!(v["eventSourceARN"], "arn:stream");
    }
}
