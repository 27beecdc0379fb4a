//! CloudWatch's `GetMetricData`, `GetMetricStatistics` and `ListMetrics` for the `AWS/Lambda` namespace, in each
//! protocol the real endpoint serves ([`crate::aws_protocols`]): up to 500 queries a call, period alignment,
//! newest-first by default, MaxDatapoints with NextToken paging; statistics and percentiles per period (at most
//! 1,440 datapoints a call); metrics listed per dimension set Lambda publishes. Any other CloudWatch operation
//! answers `501 NotImplemented` in the caller's protocol.

use crate::aws_protocols::{self, Out, Service, boolean, field, integer, list, text, timestamp_ms};
use crate::http::{Request, Response};
use crate::lambda::{RequestLog, RequestRecord};
use crate::metrics::{MetricStat, datapoints, dimension_sets};
use crate::simulator::{ApiError, Simulator, State};
use serde_json::Value;
use std::collections::BTreeSet;

const CLOUDWATCH: Service = Service {
    shape: "GraniteServiceVersion20100801",
    version: "2010-08-01",
    xmlns: "http://monitoring.amazonaws.com/doc/2010-08-01/",
    error_namespace: "com.amazonaws.cloudwatch",
};
const MAX_QUERIES: usize = 500;
/// ListMetrics answers at most this many metrics a page, as CloudWatch does.
const LIST_PAGE: usize = 500;
/// The metrics Lambda publishes for every function, under every dimension set.
const LAMBDA_METRICS: [&str; 5] = ["ConcurrentExecutions", "Duration", "Errors", "Invocations", "Throttles"];
/// ListMetrics lists metrics with data in the past two weeks (or three hours with `RecentlyActive = PT3H`).
const LISTED_FOR_MS: i64 = 14 * 24 * 3_600_000;
const RECENTLY_ACTIVE_MS: i64 = 3 * 3_600_000;

/// Handles a CloudWatch request in any of its protocols, or `None` when the request is not for CloudWatch.
pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let aws_protocols::Call { protocol, operation, input } = aws_protocols::read(&CLOUDWATCH, request)?;
    let mut state = sim.lock();
    let request_id = state.request_id();
    let outcome = match input {
        Err(error) => Err(error),
        Ok(_) if !matches!(operation.as_str(), "GetMetricData" | "GetMetricStatistics" | "ListMetrics") => {
            Err(ApiError::new(
                501,
                "NotImplemented",
                format!(
                    "CloudWatch {operation} is not simulated \
                     (ripcord sim serves GetMetricData, GetMetricStatistics and ListMetrics)"
                ),
            ))
        }
        Ok(input) => match state.take_api_fault(&operation) {
            Some(error) => Err(error),
            None if operation == "GetMetricData" => get_metric_data(&state, &input),
            None if operation == "GetMetricStatistics" => get_metric_statistics(&state, &input),
            None => list_metrics(&state, &input),
        },
    };
    let detail = match &outcome {
        Ok((_, detail)) => detail.clone(),
        Err(error) => error.code.clone(),
    };
    let response = aws_protocols::write(&CLOUDWATCH, protocol, &operation, &request_id, outcome.map(|(out, _)| out));
    state.answer(&operation, "", detail, response)
}

/// Whether a request's metrics are published by now (the publication delay and any injected gaps).
fn published<'a>(state: &'a State) -> impl Fn(&RequestRecord) -> bool + 'a {
    let (delay, now, gapless) = (state.settings.publication_delay_ms, state.now_ms, state.gaps.is_empty());
    move |r: &RequestRecord| {
        r.at_ms + delay <= now && (gapless || state.published(&r.function, &r.version.to_string(), r.at_ms))
    }
}

fn get_metric_data(state: &State, input: &Value) -> Result<(Out, String), ApiError> {
    let queries = list(input, "MetricDataQueries").ok_or_else(|| invalid("MetricDataQueries is required"))?;
    if queries.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let queries = queries.iter().map(query).collect::<Result<Vec<_>, _>>()?;
    let start_ms = timestamp_ms(input, "StartTime").ok_or_else(|| invalid("StartTime is required"))?;
    let end_ms = timestamp_ms(input, "EndTime").ok_or_else(|| invalid("EndTime is required"))?;
    if end_ms <= start_ms {
        return Err(invalid("The parameter EndTime must be greater than StartTime."));
    }
    let skip = match text(input, "NextToken") {
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| ApiError::new(400, "InvalidNextToken", "The service couldn't process the NextToken"))?,
        None => 0,
    };
    let descending = text(input, "ScanBy") != Some("TimestampAscending");
    let page_size = state.settings.max_datapoints;
    let page_size = integer(input, "MaxDatapoints").map_or(page_size, |n| (n.max(1) as usize).min(page_size)).max(1);
    let published = published(state);
    let stats: std::collections::BTreeSet<&str> = queries.iter().map(|(_, stat, _)| stat.stat.as_str()).collect();
    let detail = format!("{} queries ({})", queries.len(), stats.into_iter().collect::<Vec<_>>().join(", "));
    let mut seen = 0usize;
    let mut results = Vec::new();
    for (id, stat, return_data) in &queries {
        let mut points = datapoints(&state.requests, &published, stat, start_ms, end_ms)?;
        if !return_data {
            continue;
        }
        if descending {
            points.reverse();
        }
        // This query's datapoints are numbers seen..seen+len of the whole answer; the page is skip..skip+size.
        let (lo, hi) = (skip.max(seen), (skip + page_size).min(seen + points.len()));
        let page: &[(i64, f64)] = if hi > lo { &points[lo - seen..hi - seen] } else { &[] };
        let complete = hi >= seen + points.len();
        seen += points.len();
        results.push(Out::Struct(vec![
            ("Id", Out::Text(id.clone())),
            ("Label", Out::Text(stat.metric_name.clone())),
            ("Timestamps", Out::List(page.iter().map(|(at, _)| Out::Time(*at)).collect())),
            ("Values", Out::List(page.iter().map(|(_, v)| Out::Double(*v)).collect())),
            ("StatusCode", Out::Text(if complete { "Complete" } else { "PartialData" }.into())),
            ("Messages", Out::List(Vec::new())),
        ]));
    }
    let mut body = vec![("MetricDataResults", Out::List(results)), ("Messages", Out::List(Vec::new()))];
    if seen > skip + page_size {
        body.push(("NextToken", Out::Text((skip + page_size).to_string())));
    }
    Ok((Out::Struct(body), detail))
}

fn query(value: &Value) -> Result<(String, MetricStat, bool), ApiError> {
    let id = text(value, "Id").ok_or_else(|| invalid("MetricDataQuery.Id is required"))?;
    if field(value, "Expression").is_some() {
        return Err(invalid(format!("query {id}: metric math expressions are not simulated")));
    }
    let stat = field(value, "MetricStat").ok_or_else(|| invalid(format!("query {id}: MetricStat is required")))?;
    let metric = field(stat, "Metric").ok_or_else(|| invalid(format!("query {id}: MetricStat.Metric is required")))?;
    let stat = MetricStat {
        namespace: text(metric, "Namespace").unwrap_or_default().to_string(),
        metric_name: text(metric, "MetricName")
            .ok_or_else(|| invalid(format!("query {id}: MetricName is required")))?
            .to_string(),
        dimensions: dimensions(metric)?,
        period_s: integer(stat, "Period").ok_or_else(|| invalid(format!("query {id}: Period is required")))?,
        stat: text(stat, "Stat").ok_or_else(|| invalid(format!("query {id}: Stat is required")))?.to_string(),
    };
    let return_data = boolean(value, "ReturnData").unwrap_or(true);
    Ok((id.to_string(), stat, return_data))
}

/// Most datapoints one GetMetricStatistics call may ask for.
const MAX_STATISTICS_DATAPOINTS: i64 = 1440;
const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
/// One period's answer: the statistics asked for, and the percentiles (`ExtendedStatistics`).
type PeriodStatistics = (Vec<(&'static str, Out)>, Vec<(String, Out)>);

/// GetMetricStatistics: per period, each statistic asked for (and each percentile, as `ExtendedStatistics`).
fn get_metric_statistics(state: &State, input: &Value) -> Result<(Out, String), ApiError> {
    let combination = |message: String| ApiError::new(400, "InvalidParameterCombination", message);
    let metric_name = text(input, "MetricName").ok_or_else(|| invalid("MetricName is required"))?;
    let namespace = text(input, "Namespace").ok_or_else(|| invalid("Namespace is required"))?;
    let period_s = integer(input, "Period").ok_or_else(|| invalid("Period is required"))?;
    let start_ms = timestamp_ms(input, "StartTime").ok_or_else(|| invalid("StartTime is required"))?;
    let end_ms = timestamp_ms(input, "EndTime").ok_or_else(|| invalid("EndTime is required"))?;
    if end_ms <= start_ms {
        return Err(invalid("The parameter EndTime must be greater than StartTime."));
    }
    let names = |member: &str| -> Vec<String> {
        list(input, member).unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
    };
    let (statistics, extended) = (names("Statistics"), names("ExtendedStatistics"));
    if statistics.is_empty() && extended.is_empty() {
        return Err(combination("Must specify either Statistics or ExtendedStatistics".into()));
    }
    if let Some(unknown) = statistics.iter().find(|s| !STATISTICS.contains(&s.as_str())) {
        return Err(invalid(format!("Statistics must be among {STATISTICS:?}, got {unknown:?}")));
    }
    if period_s > 0 {
        let asked = (end_ms - start_ms) / (period_s * 1000);
        if asked > MAX_STATISTICS_DATAPOINTS {
            return Err(combination(format!(
                "You have requested up to {asked} datapoints, which exceeds the limit of {MAX_STATISTICS_DATAPOINTS}."
            )));
        }
    }
    let published = published(state);
    let dimensions = dimensions(input)?;
    let mut periods: std::collections::BTreeMap<i64, PeriodStatistics> = std::collections::BTreeMap::new();
    for (statistic, is_extended) in statistics.iter().map(|s| (s, false)).chain(extended.iter().map(|s| (s, true))) {
        let stat = MetricStat {
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions: dimensions.clone(),
            period_s,
            stat: statistic.clone(),
        };
        for (at, value) in datapoints(&state.requests, &published, &stat, start_ms, end_ms)? {
            let (plain, percentiles) = periods.entry(at).or_default();
            match STATISTICS.iter().find(|s| **s == statistic) {
                Some(name) if !is_extended => plain.push((name, Out::Double(value))),
                _ => percentiles.push((statistic.clone(), Out::Double(value))),
            }
        }
    }
    let unit = if metric_name == "Duration" { "Milliseconds" } else { "Count" };
    let datapoints: Vec<Out> = periods
        .into_iter()
        .map(|(at, (plain, percentiles))| {
            let mut fields = vec![("Timestamp", Out::Time(at))];
            fields.extend(plain);
            fields.push(("Unit", Out::Text(unit.into())));
            if !percentiles.is_empty() {
                fields.push(("ExtendedStatistics", Out::Map(percentiles)));
            }
            Out::Struct(fields)
        })
        .collect();
    let detail = format!("{metric_name} {} datapoints", datapoints.len());
    Ok((
        Out::Struct(vec![("Label", Out::Text(metric_name.to_string())), ("Datapoints", Out::List(datapoints))]),
        detail,
    ))
}

/// A metric's `Dimensions`: each needs a name and a value.
fn dimensions(metric: &Value) -> Result<Vec<(String, String)>, ApiError> {
    list(metric, "Dimensions")
        .unwrap_or_default()
        .iter()
        .map(|d| match (text(d, "Name"), text(d, "Value")) {
            (Some(name), Some(value)) => Ok((name.to_string(), value.to_string())),
            _ => Err(invalid("Each dimension needs a Name and a Value")),
        })
        .collect()
}

/// ListMetrics: the metrics with published data in the last two weeks (or three hours), filtered by namespace,
/// metric name and dimensions (a filter without a value matches any value; a metric may have more dimensions).
fn list_metrics(state: &State, input: &Value) -> Result<(Out, String), ApiError> {
    let namespace = text(input, "Namespace");
    let metric_name = text(input, "MetricName");
    let filters: Vec<(&str, Option<&str>)> = list(input, "Dimensions")
        .unwrap_or_default()
        .iter()
        .map(|d| {
            text(d, "Name").map(|name| (name, text(d, "Value"))).ok_or_else(|| invalid("Dimension Name is required"))
        })
        .collect::<Result<_, _>>()?;
    let skip = match text(input, "NextToken") {
        Some(token) => token.parse::<usize>().map_err(|_| invalid("Invalid NextToken"))?,
        None => 0,
    };
    let since = state.now_ms
        - match text(input, "RecentlyActive") {
            Some("PT3H") => RECENTLY_ACTIVE_MS,
            Some(other) => return Err(invalid(format!("RecentlyActive must be PT3H, got {other:?}"))),
            None => LISTED_FOR_MS,
        };
    let sets = if namespace.is_none_or(|n| n == "AWS/Lambda") {
        published_sets(&state.requests, &published(state), since, state.now_ms)
    } else {
        BTreeSet::new()
    };
    let wanted = |set: &Vec<(&'static str, String)>| {
        filters.iter().all(|(name, value)| set.iter().any(|(n, v)| n == name && value.is_none_or(|value| value == v)))
    };
    let metrics: Vec<Out> = LAMBDA_METRICS
        .iter()
        .filter(|name| metric_name.is_none_or(|wanted| wanted == **name))
        .flat_map(|name| sets.iter().filter(|set| wanted(set)).map(move |set| (*name, set)))
        .skip(skip)
        .take(LIST_PAGE + 1)
        .map(|(name, set)| {
            let dimensions = set
                .iter()
                .map(|(n, v)| Out::Struct(vec![("Name", Out::Text((*n).to_string())), ("Value", Out::Text(v.clone()))]))
                .collect();
            Out::Struct(vec![
                ("Namespace", Out::Text("AWS/Lambda".into())),
                ("MetricName", Out::Text(name.to_string())),
                ("Dimensions", Out::List(dimensions)),
            ])
        })
        .collect();
    let more = metrics.len() > LIST_PAGE;
    let metrics: Vec<Out> = metrics.into_iter().take(LIST_PAGE).collect();
    let detail = format!("{} metrics", metrics.len());
    let mut body = vec![("Metrics", Out::List(metrics))];
    if more {
        body.push(("NextToken", Out::Text((skip + LIST_PAGE).to_string())));
    }
    Ok((Out::Struct(body), detail))
}

/// The distinct dimension sets published for requests in `[since, until)`.
fn published_sets(
    requests: &RequestLog,
    published: &dyn Fn(&RequestRecord) -> bool,
    since: i64,
    until: i64,
) -> BTreeSet<Vec<(&'static str, String)>> {
    let mut seen = BTreeSet::new();
    let mut sets = BTreeSet::new();
    for record in requests.window(None, since, until).filter(|r| published(r)) {
        if seen.insert((record.function.as_str(), record.alias.as_deref(), record.version)) {
            sets.extend(dimension_sets(record));
        }
    }
    sets
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterValue", message)
}
