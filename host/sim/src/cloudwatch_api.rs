//! CloudWatch GetMetricData in Smithy RPC v2 CBOR, as the current aws-sdk-cloudwatch sends it
//! (`POST /service/GraniteServiceVersion20100801/operation/GetMetricData`, `smithy-protocol: rpc-v2-cbor`):
//! up to 500 queries a call, period alignment, newest-first by default, MaxDatapoints with NextToken paging.
//! Errors carry `__type` in the body and, CloudWatch being query-compatible, an `x-amzn-query-error` header.

use crate::http::{Request, Response};
use crate::metrics::{MetricStat, datapoints};
use crate::simulator::{ApiError, Simulator};
use ciborium::value::Value;

const MAX_QUERIES: usize = 500;
const OPERATION: &str = "GetMetricData";

/// Handles a CloudWatch request, or `None` when the path is not the CloudWatch RPC endpoint.
pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let ["service", "GraniteServiceVersion20100801", "operation", operation] = path.as_slice() else {
        return None;
    };
    let mut state = sim.lock();
    let outcome = if request.header("smithy-protocol") != Some("rpc-v2-cbor") {
        Err(ApiError::new(400, "InvalidAction", "expected header smithy-protocol: rpc-v2-cbor"))
    } else if *operation != OPERATION {
        Err(ApiError::new(400, "UnknownOperationException", format!("{operation} is not simulated")))
    } else if let Some(error) = state.take_api_fault(OPERATION) {
        Err(error)
    } else {
        decode(&request.body).and_then(|input| {
            let queries = input.queries.len();
            let (delay, now, gapless) = (state.settings.publication_delay_ms, state.now_ms, state.gaps.is_empty());
            let published = |r: &crate::lambda::RequestRecord| {
                r.at_ms + delay <= now && (gapless || state.published(&r.function, &r.version.to_string(), r.at_ms))
            };
            get_metric_data(&state.requests, &published, &input, state.settings.max_datapoints).map(|r| (r, queries))
        })
    };
    let (response, detail) = match outcome {
        Ok((body, queries)) => (cbor_response(200, &body), format!("{queries} queries")),
        Err(error) => (error_response(&error), error.code.clone()),
    };
    state.answer(OPERATION, "", detail, response)
}

struct Input {
    queries: Vec<(String, MetricStat, bool)>,
    start_ms: i64,
    end_ms: i64,
    next_token: Option<usize>,
    descending: bool,
    max_datapoints: Option<usize>,
}

fn decode(body: &[u8]) -> Result<Input, ApiError> {
    let value: Value = ciborium::de::from_reader(body).map_err(|e| invalid(format!("malformed CBOR body: {e}")))?;
    let queries = field(&value, "MetricDataQueries")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("MetricDataQueries is required"))?;
    if queries.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let queries = queries.iter().map(query).collect::<Result<Vec<_>, _>>()?;
    let start_ms = field(&value, "StartTime").and_then(timestamp_ms).ok_or_else(|| invalid("StartTime is required"))?;
    let end_ms = field(&value, "EndTime").and_then(timestamp_ms).ok_or_else(|| invalid("EndTime is required"))?;
    if end_ms <= start_ms {
        return Err(invalid("The parameter EndTime must be greater than StartTime."));
    }
    let next_token = match field(&value, "NextToken").and_then(Value::as_text) {
        Some(token) => Some(
            token
                .parse()
                .map_err(|_| ApiError::new(400, "InvalidNextToken", "The service couldn't process the NextToken"))?,
        ),
        None => None,
    };
    let descending = field(&value, "ScanBy").and_then(Value::as_text) != Some("TimestampAscending");
    let max_datapoints = field(&value, "MaxDatapoints").and_then(integer).map(|n| n.max(1) as usize);
    Ok(Input { queries, start_ms, end_ms, next_token, descending, max_datapoints })
}

fn query(value: &Value) -> Result<(String, MetricStat, bool), ApiError> {
    let id = field(value, "Id").and_then(Value::as_text).ok_or_else(|| invalid("MetricDataQuery.Id is required"))?;
    if field(value, "Expression").is_some() {
        return Err(invalid(format!("query {id}: metric math expressions are not simulated")));
    }
    let stat = field(value, "MetricStat").ok_or_else(|| invalid(format!("query {id}: MetricStat is required")))?;
    let metric = field(stat, "Metric").ok_or_else(|| invalid(format!("query {id}: MetricStat.Metric is required")))?;
    let dimensions = field(metric, "Dimensions")
        .and_then(Value::as_array)
        .map(|dims| {
            dims.iter()
                .filter_map(|d| {
                    Some((field(d, "Name")?.as_text()?.to_string(), field(d, "Value")?.as_text()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |v: &Value, name: &str| field(v, name).and_then(Value::as_text).map(str::to_string);
    let stat = MetricStat {
        namespace: text(metric, "Namespace").unwrap_or_default(),
        metric_name: text(metric, "MetricName")
            .ok_or_else(|| invalid(format!("query {id}: MetricName is required")))?,
        dimensions,
        period_s: field(stat, "Period")
            .and_then(integer)
            .ok_or_else(|| invalid(format!("query {id}: Period is required")))?,
        stat: text(stat, "Stat").ok_or_else(|| invalid(format!("query {id}: Stat is required")))?,
    };
    let return_data = field(value, "ReturnData").and_then(Value::as_bool).unwrap_or(true);
    Ok((id.to_string(), stat, return_data))
}

/// Builds the response body: one result per returned query; datapoints beyond the page size continue on the
/// next page (NextToken = how many datapoints earlier pages carried).
fn get_metric_data(
    requests: &crate::lambda::RequestLog,
    published: &dyn Fn(&crate::lambda::RequestRecord) -> bool,
    input: &Input,
    page_size: usize,
) -> Result<Value, ApiError> {
    let page_size = input.max_datapoints.unwrap_or(page_size).min(page_size).max(1);
    let skip = input.next_token.unwrap_or(0);
    let mut seen = 0usize;
    let mut results = Vec::new();
    for (id, stat, return_data) in &input.queries {
        let mut points = datapoints(requests, published, stat, input.start_ms, input.end_ms)?;
        if !return_data {
            continue;
        }
        if input.descending {
            points.reverse();
        }
        // This query's datapoints are numbers seen..seen+len of the whole answer; the page is skip..skip+size.
        let (lo, hi) = (skip.max(seen), (skip + page_size).min(seen + points.len()));
        let page: &[(i64, f64)] = if hi > lo { &points[lo - seen..hi - seen] } else { &[] };
        let complete = hi >= seen + points.len();
        seen += points.len();
        results.push(text_map(vec![
            ("Id", Value::Text(id.clone())),
            ("Label", Value::Text(stat.metric_name.clone())),
            ("Timestamps", Value::Array(page.iter().map(|(at, _)| epoch_seconds(*at)).collect())),
            ("Values", Value::Array(page.iter().map(|(_, v)| Value::Float(*v)).collect())),
            ("StatusCode", Value::Text(if complete { "Complete" } else { "PartialData" }.into())),
            ("Messages", Value::Array(Vec::new())),
        ]));
    }
    let mut body = vec![("MetricDataResults", Value::Array(results)), ("Messages", Value::Array(Vec::new()))];
    if seen > skip + page_size {
        body.push(("NextToken", Value::Text((skip + page_size).to_string())));
    }
    Ok(text_map(body))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterValue", message)
}

fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.as_map()?.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v)
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// A timestamp as the SDK encodes it: CBOR tag 1 around epoch seconds (integer or float).
fn timestamp_ms(value: &Value) -> Option<i64> {
    let inner = match value {
        Value::Tag(1, inner) => inner.as_ref(),
        other => other,
    };
    match inner {
        Value::Float(seconds) => Some((seconds * 1000.0).round() as i64),
        other => integer(other).map(|s| s * 1000),
    }
}

fn epoch_seconds(ms: i64) -> Value {
    Value::Tag(1, Box::new(Value::Float(ms as f64 / 1000.0)))
}

fn text_map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.to_string()), v)).collect())
}

fn cbor_response(status: u16, body: &Value) -> Response {
    let mut bytes = Vec::new();
    // Writing CBOR into a Vec cannot fail for these values; an empty body would surface as a client error.
    let _ = ciborium::ser::into_writer(body, &mut bytes);
    Response {
        status,
        headers: vec![("content-type", "application/cbor".into()), ("smithy-protocol", "rpc-v2-cbor".into())],
        body: bytes,
        stall_ms: 0,
        long_poll: false,
    }
}

fn error_response(error: &ApiError) -> Response {
    let body = text_map(vec![
        ("__type", Value::Text(format!("com.amazonaws.cloudwatch#{}", error.code))),
        ("message", Value::Text(error.message.clone())),
    ]);
    let mut response = cbor_response(error.status, &body);
    let fault = if error.status >= 500 { "Receiver" } else { "Sender" };
    response.headers.push(("x-amzn-query-error", format!("{};{fault}", error.code)));
    response
}
