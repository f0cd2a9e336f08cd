//! The template's `AWS::CloudWatch::Alarm` and `AWS::CloudWatch::Dashboard` resources, created in
//! LocalStack's CloudWatch (`PutMetricAlarm`, `PutDashboard`) with their `Ref`s already resolved to
//! the local queue and function names.
//!
//! What LocalStack 4.13.1 (host mode) does with them: it evaluates single-metric alarms (Namespace,
//! MetricName, Statistic) every `Period x EvaluationPeriods` seconds and moves them between OK,
//! ALARM and INSUFFICIENT_DATA; it stores metric-math alarms (`Metrics`) without evaluating them,
//! and runs no alarm actions we rely on. Its SQS publishes `ApproximateNumberOfMessagesVisible`
//! (and NotVisible, Delayed) every `SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL` seconds, but not
//! `ApproximateAgeOfOldestMessage`; nothing publishes `AWS/Lambda` metrics locally.
//!
//! Locally the alarms may evaluate faster than on AWS ([`AlarmMode::Create`]'s `period`): the
//! template keeps AWS's periods, the local stack replaces them (`LOCAL_ALARM_PERIOD_SECONDS`).

use anyhow::{Context, anyhow, bail};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit, Statistic,
};
use serde_json::Value;

use crate::provision::{ACCOUNT, REGION};

/// Whether provisioning creates the alarms and dashboards in CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlarmMode {
    /// Left out (test stacks that do not look at alarms: hundreds of them would keep LocalStack's
    /// alarm scheduler busy). `Ref` and `Fn::GetAtt` still resolve.
    #[default]
    Skip,
    /// Created; with `period`, every alarm's period (and its metric-math metrics') is that many
    /// seconds instead of the template's.
    Create { period: Option<u32> },
}

/// An alarm's ARN as CloudWatch spells it.
pub fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}

/// The `PutMetricAlarm` call for an alarm's evaluated properties (`AlarmName` already set).
pub fn put_alarm_request(
    client: &aws_sdk_cloudwatch::Client,
    name: &str,
    props: &Value,
    period: Option<u32>,
) -> anyhow::Result<aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmFluentBuilder> {
    let object = props.as_object().ok_or_else(|| anyhow!("Properties must be a map"))?;
    let mut req = client.put_metric_alarm().alarm_name(name);
    for (key, value) in object {
        req = match key.as_str() {
            "AlarmName" => req,
            "AlarmDescription" => req.alarm_description(text(value, key)?),
            "ActionsEnabled" => req.actions_enabled(value.as_bool().unwrap_or(true)),
            "Namespace" => req.namespace(text(value, key)?),
            "MetricName" => req.metric_name(text(value, key)?),
            "Dimensions" => {
                let mut req = req;
                for d in dimensions(value)? {
                    req = req.dimensions(d);
                }
                req
            }
            "Statistic" => req.statistic(Statistic::from(text(value, key)?.as_str())),
            "ExtendedStatistic" => req.extended_statistic(text(value, key)?),
            "Period" => req.period(match period {
                Some(p) => p as i32,
                None => number(value, key)? as i32,
            }),
            "EvaluationPeriods" => req.evaluation_periods(number(value, key)? as i32),
            "DatapointsToAlarm" => req.datapoints_to_alarm(number(value, key)? as i32),
            "Threshold" => req.threshold(number(value, key)?),
            "ComparisonOperator" => req.comparison_operator(ComparisonOperator::from(text(value, key)?.as_str())),
            "TreatMissingData" => req.treat_missing_data(text(value, key)?),
            "Unit" => req.unit(StandardUnit::from(text(value, key)?.as_str())),
            "AlarmActions" | "OKActions" | "InsufficientDataActions" => {
                let mut req = req;
                for action in strings(value, key)? {
                    req = match key.as_str() {
                        "AlarmActions" => req.alarm_actions(action),
                        "OKActions" => req.ok_actions(action),
                        _ => req.insufficient_data_actions(action),
                    };
                }
                req
            }
            "Metrics" => {
                let mut req = req;
                for query in value.as_array().ok_or_else(|| anyhow!("Metrics must be a list"))? {
                    req = req.metrics(metric_query(query, period)?);
                }
                req
            }
            other => {
                bail!("alarm property {other} is not supported by the local stack (infra/local-bridge/src/alarms.rs)")
            }
        };
    }
    Ok(req)
}

/// One entry of an alarm's `Metrics` (metric math).
fn metric_query(query: &Value, period: Option<u32>) -> anyhow::Result<MetricDataQuery> {
    let mut q = MetricDataQuery::builder().id(text(&query["Id"], "Metrics.Id")?);
    if let Some(expression) = query.get("Expression") {
        q = q.expression(text(expression, "Expression")?);
    }
    if let Some(label) = query.get("Label") {
        q = q.label(text(label, "Label")?);
    }
    if let Some(r) = query.get("ReturnData") {
        q = q.return_data(r.as_bool().unwrap_or(matches!(r.as_str(), Some("true"))));
    }
    if let Some(stat) = query.get("MetricStat") {
        let m = &stat["Metric"];
        let mut metric = Metric::builder()
            .namespace(text(&m["Namespace"], "Metric.Namespace")?)
            .metric_name(text(&m["MetricName"], "Metric.MetricName")?);
        if let Some(d) = m.get("Dimensions") {
            for d in dimensions(d)? {
                metric = metric.dimensions(d);
            }
        }
        let seconds = match period {
            Some(p) => p as i32,
            None => number(&stat["Period"], "MetricStat.Period")? as i32,
        };
        q = q.metric_stat(
            MetricStat::builder()
                .metric(metric.build())
                .period(seconds)
                .stat(text(&stat["Stat"], "MetricStat.Stat")?)
                .build(),
        );
    }
    Ok(q.build())
}

fn dimensions(value: &Value) -> anyhow::Result<Vec<Dimension>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("Dimensions must be a list"))?
        .iter()
        .map(|d| {
            Ok(Dimension::builder()
                .name(text(&d["Name"], "Dimensions.Name")?)
                .value(text(&d["Value"], "Dimensions.Value")?)
                .build())
        })
        .collect()
}

fn text(value: &Value, what: &str) -> anyhow::Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => bail!("{what} must be a string, not {other}"),
    }
}

fn number(value: &Value, what: &str) -> anyhow::Result<f64> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| anyhow!("{what}: {n}")),
        Value::String(s) => s.parse().with_context(|| format!("{what}: {s:?}")),
        other => bail!("{what} must be a number, not {other}"),
    }
}

fn strings(value: &Value, what: &str) -> anyhow::Result<Vec<String>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("{what} must be a list"))?
        .iter()
        .map(|v| text(v, what))
        .collect()
}

/// Creates (or replaces) the alarm `name`.
pub async fn put_alarm(
    client: &aws_sdk_cloudwatch::Client,
    name: &str,
    props: &Value,
    period: Option<u32>,
) -> anyhow::Result<()> {
    put_alarm_request(client, name, props, period)?
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("PutMetricAlarm {name}"))?;
    Ok(())
}

/// Creates (or replaces) the dashboard `name` from its `DashboardBody` (a JSON string).
pub async fn put_dashboard(client: &aws_sdk_cloudwatch::Client, name: &str, props: &Value) -> anyhow::Result<()> {
    let body = text(&props["DashboardBody"], "DashboardBody")?;
    serde_json::from_str::<Value>(&body).with_context(|| format!("{name}: DashboardBody is not JSON"))?;
    client
        .put_dashboard()
        .dashboard_name(name)
        .dashboard_body(body)
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("PutDashboard {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client() -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new(REGION))
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    #[test]
    fn a_single_metric_alarm_takes_the_local_period() {
        let props = json!({
            "AlarmDescription": "dlq", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": "s-HighDeadLetterQueue"}], "Statistic": "Maximum",
            "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0,
            "TreatMissingData": "notBreaching", "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:t"],
            "OKActions": ["arn:aws:sns:us-east-1:000000000000:t"]
        });
        let req = put_alarm_request(&client(), "s-A", &props, Some(10)).unwrap();
        let input = req.as_input();
        assert_eq!(input.get_period(), &Some(10));
        assert_eq!(input.get_alarm_name().as_deref(), Some("s-A"));
        assert_eq!(
            input.get_dimensions().as_ref().unwrap()[0].value(),
            Some("s-HighDeadLetterQueue")
        );
        assert_eq!(input.get_statistic(), &Some(Statistic::Maximum));
        assert_eq!(input.get_ok_actions().as_ref().unwrap().len(), 1);
        let kept = put_alarm_request(&client(), "s-A", &props, None).unwrap();
        assert_eq!(kept.as_input().get_period(), &Some(60));
    }

    #[test]
    fn metric_math_keeps_its_expression_and_unknown_properties_fail_loudly() {
        let props = json!({
            "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10,
            "Metrics": [
                {"Id": "failed", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "JobsFailed",
                  "Dimensions": [{"Name": "Kind", "Value": "image"}]}, "Period": 300, "Stat": "Sum"}},
                {"Id": "rate", "Expression": "100 * failed", "ReturnData": true}
            ]
        });
        let req = put_alarm_request(&client(), "s-B", &props, Some(10)).unwrap();
        let metrics = req.as_input().get_metrics().clone().unwrap();
        assert_eq!(metrics[0].metric_stat().unwrap().period(), Some(10));
        assert_eq!(metrics[1].expression(), Some("100 * failed"));
        let err = put_alarm_request(&client(), "s-B", &json!({"Bogus": 1}), None).unwrap_err();
        assert!(err.to_string().contains("Bogus"), "{err}");
    }
}
