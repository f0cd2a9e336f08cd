//! What CloudWatch Logs does with Embedded Metric Format lines: the functions write EMF JSON lines
//! on stdout (`shared::metrics`); `cargo lambda watch` passes their output to its own, which
//! `infra/up` appends to `.local/logs/watch.log`. [`EmfFollower`] follows that file from its end,
//! parses each EMF line into metric data (one datum per metric and dimension set, as CloudWatch
//! does) and sends them to CloudWatch (LocalStack) with `PutMetricData`: batched (at most
//! [`MAX_PER_CALL`] data per call, one call per namespace) and bounded (at most [`MAX_PENDING`] data
//! waiting; beyond that the oldest are dropped and counted in the log). The functions know
//! nothing of this.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Data per `PutMetricData` call (AWS takes up to 1,000).
pub const MAX_PER_CALL: usize = 500;
/// Data waiting to be sent; older ones are dropped beyond this.
pub const MAX_PENDING: usize = 20_000;
/// Values per datum (AWS takes up to 150 distinct values per datum).
const MAX_VALUES: usize = 150;

/// One metric of one dimension set of an EMF line.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    pub dimensions: Vec<(String, String)>,
    /// Distinct values and how often each occurred.
    pub values: Vec<(f64, f64)>,
    pub timestamp_ms: i64,
}

/// The data of one output line, if it is an EMF line (the JSON object may follow a prefix);
/// `Err` names what is wrong with a line that has `_aws` but is not valid EMF.
pub fn parse_line(line: &str) -> Result<Vec<Datum>, String> {
    let Some(start) = line.find('{') else {
        return Ok(Vec::new());
    };
    if !line.contains("\"_aws\"") {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_str(line[start..].trim_end()).map_err(|e| format!("not JSON: {e}"))?;
    let Some(aws) = doc.get("_aws") else {
        return Ok(Vec::new());
    };
    let timestamp_ms = aws
        .get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("no _aws.Timestamp")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no _aws.CloudWatchMetrics")?;
    let mut out = Vec::new();
    for d in directives {
        let namespace = d.get("Namespace").and_then(Value::as_str).ok_or("no Namespace")?;
        let sets = d.get("Dimensions").and_then(Value::as_array).ok_or("no Dimensions")?;
        let metrics = d.get("Metrics").and_then(Value::as_array).ok_or("no Metrics")?;
        for m in metrics {
            let name = m.get("Name").and_then(Value::as_str).ok_or("a metric without a Name")?;
            let unit = m.get("Unit").and_then(Value::as_str).unwrap_or("None");
            let raw: Vec<f64> = match doc.get(name) {
                Some(Value::Array(vs)) => vs.iter().filter_map(Value::as_f64).collect(),
                Some(v) => v.as_f64().into_iter().collect(),
                None => return Err(format!("metric {name} has no value")),
            };
            if raw.is_empty() {
                continue;
            }
            let mut counted: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
            for v in raw {
                counted.entry(v.to_bits()).or_insert((v, 0.0)).1 += 1.0;
            }
            let values: Vec<(f64, f64)> = counted.into_values().collect();
            for set in sets {
                let names = set.as_array().ok_or("a dimension set is not an array")?;
                let mut dimensions = Vec::new();
                for n in names {
                    let n = n.as_str().ok_or("a dimension name is not a string")?;
                    let v = doc
                        .get(n)
                        .and_then(Value::as_str)
                        .ok_or(format!("dimension {n} has no string value"))?;
                    dimensions.push((n.to_string(), v.to_string()));
                }
                out.push(Datum {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    unit: unit.to_string(),
                    dimensions,
                    values: values.clone(),
                    timestamp_ms,
                });
            }
        }
    }
    Ok(out)
}

impl Datum {
    /// The SDK's data for this one (more than one when it has over 150 distinct values).
    pub fn to_sdk(&self) -> Vec<MetricDatum> {
        let dims: Vec<Dimension> = self
            .dimensions
            .iter()
            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
            .collect();
        self.values
            .chunks(MAX_VALUES)
            .map(|chunk| {
                MetricDatum::builder()
                    .metric_name(&self.name)
                    .set_dimensions(Some(dims.clone()))
                    .set_values(Some(chunk.iter().map(|(v, _)| *v).collect()))
                    .set_counts(Some(chunk.iter().map(|(_, c)| *c).collect()))
                    .unit(StandardUnit::from(self.unit.as_str()))
                    .timestamp(DateTime::from_millis(self.timestamp_ms))
                    .build()
            })
            .collect()
    }
}

/// Follows a log file and sends the EMF lines in it to CloudWatch.
pub struct EmfFollower {
    pub path: PathBuf,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// How often the file is looked at.
    pub every: Duration,
}

impl EmfFollower {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        // From the end: lines written before the bridge started were sent by an earlier one.
        let mut offset = tokio::fs::metadata(&self.path).await.map(|m| m.len()).unwrap_or(0);
        let mut partial = String::new();
        let mut pending: Vec<Datum> = Vec::new();
        let mut dropped = 0u64;
        tracing::info!(file = %self.path.display(), "EMF lines of the functions' output go to CloudWatch");
        loop {
            match self.read_from(&mut offset, &mut partial).await {
                Ok(lines) => {
                    for line in lines {
                        match parse_line(&line) {
                            Ok(data) => pending.extend(data),
                            Err(e) => tracing::warn!(error = %e, "an EMF line CloudWatch would reject; skipped"),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "could not read the functions' output")
                }
            }
            if pending.len() > MAX_PENDING {
                let over = pending.len() - MAX_PENDING;
                pending.drain(..over);
                dropped += over as u64;
                tracing::warn!(dropped, "CloudWatch is behind: oldest metric data dropped");
            }
            if !pending.is_empty() {
                let sent = self.send(&pending).await;
                pending.drain(..sent);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// New complete lines since `offset` (a file that shrank was truncated: read from its start).
    async fn read_from(&self, offset: &mut u64, partial: &mut String) -> std::io::Result<Vec<String>> {
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata().await?.len();
        if len < *offset {
            *offset = 0;
            partial.clear();
        }
        if len == *offset {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(*offset)).await?;
        // At most 8 MiB a look: the rest next time.
        let mut buf = Vec::new();
        (&mut file).take(8 << 20).read_to_end(&mut buf).await?;
        *offset += buf.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines: Vec<String> = partial.split('\n').map(str::to_string).collect();
        *partial = lines.pop().unwrap_or_default();
        Ok(lines)
    }

    /// Sends the oldest data, a call per namespace and batch; returns how many were handled
    /// (sent, or refused for good); a failed call stops the round (tried again next time).
    async fn send(&self, pending: &[Datum]) -> usize {
        let mut handled = 0;
        while handled < pending.len() {
            let namespace = &pending[handled].namespace;
            let batch: Vec<&Datum> = pending[handled..]
                .iter()
                .take(MAX_PER_CALL)
                .take_while(|d| &d.namespace == namespace)
                .collect();
            let data: Vec<MetricDatum> = batch.iter().flat_map(|d| d.to_sdk()).collect();
            let put = self
                .cloudwatch
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(data))
                .send()
                .await;
            match put {
                Ok(_) => handled += batch.len(),
                Err(e) => {
                    let e = aws_sdk_cloudwatch::error::DisplayErrorContext(e);
                    tracing::warn!(error = %e, data = batch.len(), "PutMetricData failed; trying again");
                    break;
                }
            }
        }
        handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_becomes_one_datum_per_metric_and_dimension_set() {
        let line = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"Ns","Dimensions":[["Kind","Band"],["Kind"]],"Metrics":[{"Name":"JobsCompleted","Unit":"Count"},{"Name":"RunTime","Unit":"Milliseconds"}]}]},"Kind":"email","Band":"high","JobsCompleted":2,"RunTime":[5,5,9]}"#;
        let data = parse_line(line).unwrap();
        assert_eq!(data.len(), 4);
        let run_by_kind = data
            .iter()
            .find(|d| d.name == "RunTime" && d.dimensions.len() == 1)
            .unwrap();
        assert_eq!(run_by_kind.dimensions, vec![("Kind".to_string(), "email".to_string())]);
        assert_eq!(run_by_kind.values, vec![(5.0, 2.0), (9.0, 1.0)]);
        assert_eq!(run_by_kind.unit, "Milliseconds");
        assert_eq!(run_by_kind.timestamp_ms, 1_700_000_000_000);
        let done = data
            .iter()
            .find(|d| d.name == "JobsCompleted" && d.dimensions.len() == 2)
            .unwrap();
        assert_eq!(done.values, vec![(2.0, 1.0)]);
        assert_eq!(done.namespace, "Ns");
        assert_eq!(done.to_sdk().len(), 1);
    }

    #[test]
    fn other_lines_are_not_metrics_and_broken_emf_is_named() {
        assert_eq!(parse_line("compiling worker").unwrap(), vec![]);
        assert_eq!(
            parse_line(r#"{"level":"INFO","fields":{"message":"x"}}"#).unwrap(),
            vec![]
        );
        // a prefix before the object (a process's tag) is fine
        let prefixed = r#"worker | {"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"A","Unit":"Count"}]}]},"A":1}"#;
        assert_eq!(parse_line(prefixed).unwrap().len(), 1);
        let e = parse_line(r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Kind"]],"Metrics":[{"Name":"A","Unit":"Count"}]}]},"A":1}"#).unwrap_err();
        assert!(e.contains("dimension Kind"), "{e}");
    }
}
