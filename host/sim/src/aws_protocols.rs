//! The three wire protocols an AWS RPC service such as CloudWatch speaks, read and written in one place so each
//! operation is written once: Smithy RPC v2 CBOR (the current Rust SDK), AWS JSON 1.0 (boto3, the AWS CLI) and
//! the AWS query protocol (form-encoded in, XML out; older SDKs). The request picks the protocol, as at the real
//! endpoint: a `smithy-protocol: rpc-v2-cbor` header on `/service/{Service}/operation/{Operation}`, an
//! `X-Amz-Target: {Service}.{Operation}` header, or a form body with `Action` and `Version`.
//!
//! Inputs arrive as one JSON-like tree whatever the protocol (query lists `member.N` become arrays, CBOR timestamps
//! become epoch seconds), read with the lenient accessors below; outputs are an [`Out`] tree each protocol encodes
//! its own way (timestamps as CBOR tag 1, epoch seconds in JSON, ISO 8601 in XML).

use crate::http::{Request, Response};
use crate::simulator::ApiError;
use ciborium::value::Value as Cbor;
use serde_json::{Map, Value};

/// What names one AWS RPC service on the wire.
#[derive(Debug)]
pub(crate) struct Service {
    /// The Smithy service shape name, also the JSON target prefix (`GraniteServiceVersion20100801`).
    pub(crate) shape: &'static str,
    /// The query protocol's `Version` (`2010-08-01`).
    pub(crate) version: &'static str,
    /// The XML namespace of query answers.
    pub(crate) xmlns: &'static str,
    /// The namespace of error types in CBOR and JSON bodies (`com.amazonaws.cloudwatch`).
    pub(crate) error_namespace: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    RpcV2Cbor,
    Json10,
    Query,
}

/// One decoded call: the protocol it came in, the operation and its input (or why it could not be read).
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) protocol: Protocol,
    pub(crate) operation: String,
    pub(crate) input: Result<Value, ApiError>,
}

/// An operation's output, for any protocol.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Struct(Vec<(&'static str, Out)>),
    /// A map with keys from the data (`ExtendedStatistics`: `{"p99": 812.0}`).
    Map(Vec<(String, Out)>),
    List(Vec<Out>),
    Text(String),
    Double(f64),
    /// Epoch milliseconds.
    Time(i64),
}

/// Recognises a request to `service` and decodes it; `None` when the request is not for this service. A request
/// that is for the service but cannot be decoded comes back as the call's protocol with the error.
pub(crate) fn read(service: &Service, request: &Request) -> Option<Call> {
    let path = request.path();
    if let ["service", shape, "operation", operation] = path.as_slice() {
        if *shape != service.shape {
            return None;
        }
        let input = if request.header("smithy-protocol") != Some("rpc-v2-cbor") {
            Err(ApiError::new(400, "InvalidAction", "expected header smithy-protocol: rpc-v2-cbor"))
        } else {
            cbor_input(&request.body)
        };
        return Some(Call { protocol: Protocol::RpcV2Cbor, operation: operation.to_string(), input });
    }
    if !path.is_empty() {
        return None;
    }
    if let Some(target) = request.header("x-amz-target") {
        let operation = target.strip_prefix(service.shape)?.strip_prefix('.')?;
        let input = if request.body.is_empty() {
            Ok(Value::Object(Map::new()))
        } else {
            serde_json::from_slice(&request.body)
                .map_err(|e| ApiError::new(400, "SerializationException", format!("request body is not JSON: {e}")))
        };
        return Some(Call { protocol: Protocol::Json10, operation: operation.to_string(), input });
    }
    let form = match request.method.as_str() {
        "POST" => crate::http::parse_query(&String::from_utf8_lossy(&request.body)),
        _ => request.query.clone(),
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("Version").as_deref() != Some(service.version) {
        return None;
    }
    let operation = field("Action").unwrap_or_default();
    Some(Call { protocol: Protocol::Query, operation, input: Ok(query_input(&form)) })
}

/// Encodes an operation's answer (or error) the way `protocol` does.
pub(crate) fn write(
    service: &Service,
    protocol: Protocol,
    operation: &str,
    request_id: &str,
    result: Result<Out, ApiError>,
) -> Response {
    let mut response = match (&result, protocol) {
        (Ok(out), Protocol::RpcV2Cbor) => cbor_response(200, &cbor(out)),
        (Ok(out), Protocol::Json10) => json_response(200, &json(out)),
        (Ok(out), Protocol::Query) => xml_response(
            200,
            format!(
                "<{operation}Response xmlns=\"{}\"><{operation}Result>{}</{operation}Result>\
                 <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>",
                service.xmlns,
                xml_members(out)
            ),
        ),
        (Err(error), protocol) => error_response(service, protocol, request_id, error),
    };
    response.headers.push(("x-amzn-RequestId", request_id.to_string()));
    response
}

fn error_response(service: &Service, protocol: Protocol, request_id: &str, error: &ApiError) -> Response {
    let fault = if error.status >= 500 { "Receiver" } else { "Sender" };
    let mut response = match protocol {
        Protocol::Query => xml_response(
            error.status,
            format!(
                "<ErrorResponse xmlns=\"{}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message>\
                 </Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                service.xmlns,
                xml_escape(&error.code),
                xml_escape(&error.message)
            ),
        ),
        Protocol::RpcV2Cbor | Protocol::Json10 => {
            let kind = format!("{}#{}", service.error_namespace, error.code);
            let body = Out::Struct(vec![("__type", Out::Text(kind)), ("message", Out::Text(error.message.clone()))]);
            match protocol {
                Protocol::RpcV2Cbor => cbor_response(error.status, &cbor(&body)),
                _ => json_response(error.status, &json(&body)),
            }
        }
    };
    // CloudWatch is query-compatible: the CBOR and JSON protocols also name the query error code in a header.
    if protocol != Protocol::Query {
        response.headers.push(("x-amzn-query-error", format!("{};{fault}", error.code)));
    }
    if error.status == 429 {
        response.headers.push(("retry-after", "1".into()));
    }
    response
}

// ---- inputs -------------------------------------------------------------------------------------------------

fn cbor_input(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Cbor = ciborium::de::from_reader(body)
        .map_err(|e| ApiError::new(400, "SerializationException", format!("malformed CBOR body: {e}")))?;
    Ok(from_cbor(&value))
}

/// CBOR to the common input tree; timestamps (tag 1) become epoch seconds.
fn from_cbor(value: &Cbor) -> Value {
    match value {
        Cbor::Map(entries) => {
            Value::Object(entries.iter().filter_map(|(k, v)| Some((k.as_text()?.to_string(), from_cbor(v)))).collect())
        }
        Cbor::Array(items) => Value::Array(items.iter().map(from_cbor).collect()),
        Cbor::Text(text) => Value::String(text.clone()),
        Cbor::Integer(i) => i64::try_from(i128::from(*i)).map_or(Value::Null, Value::from),
        Cbor::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Cbor::Bool(b) => Value::Bool(*b),
        Cbor::Tag(_, inner) => from_cbor(inner),
        _ => Value::Null,
    }
}

/// Query parameters to the common input tree: `A.member.2.B=x` becomes `{"A": [.., {"B": "x"}]}`.
fn query_input(form: &[(String, String)]) -> Value {
    let mut root = Map::new();
    for (key, value) in form {
        if key == "Action" || key == "Version" {
            continue;
        }
        let segments: Vec<&str> = key.split('.').collect();
        insert(&mut root, &segments, value);
    }
    lists_from_members(Value::Object(root))
}

fn insert(node: &mut Map<String, Value>, segments: &[&str], value: &str) {
    match segments {
        [] => {}
        [last] => {
            node.insert((*last).to_string(), Value::String(value.to_string()));
        }
        [first, rest @ ..] => {
            let child = node.entry((*first).to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert(child, rest, value);
            }
        }
    }
}

/// `{"member": {"1": a, "2": b}}` (and an empty `member` list) to `[a, b]`, ordered by number.
fn lists_from_members(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(Value::Object(members)) = map.get("member")
                && members.keys().all(|k| k.parse::<usize>().is_ok())
            {
                let mut items: Vec<(usize, Value)> = members
                    .iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, lists_from_members(v.clone()))))
                    .collect();
                items.sort_by_key(|(n, _)| *n);
                return Value::Array(items.into_iter().map(|(_, v)| v).collect());
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, lists_from_members(v))).collect())
        }
        // `Dimensions=` (an empty list in the query protocol).
        other => other,
    }
}

/// A member of an input structure.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.get(name).filter(|v| !v.is_null())
}

pub(crate) fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    field(value, name).and_then(Value::as_str)
}

/// A list member; the query protocol sends an empty list as an empty string.
pub(crate) fn list<'a>(value: &'a Value, name: &str) -> Option<&'a [Value]> {
    match field(value, name)? {
        Value::Array(items) => Some(items),
        Value::String(s) if s.is_empty() => Some(&[]),
        _ => None,
    }
}

/// An integer member, sent as a number or (query protocol) as text.
pub(crate) fn integer(value: &Value, name: &str) -> Option<i64> {
    match field(value, name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn boolean(value: &Value, name: &str) -> Option<bool> {
    match field(value, name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A timestamp member as epoch milliseconds: epoch seconds (CBOR, JSON) or ISO 8601 text (query).
pub(crate) fn timestamp_ms(value: &Value, name: &str) -> Option<i64> {
    match field(value, name)? {
        Value::Number(n) => n.as_f64().map(|seconds| (seconds * 1000.0).round() as i64),
        Value::String(s) => {
            crate::parse_time(s).ok().or_else(|| s.parse::<f64>().ok().map(|seconds| (seconds * 1000.0).round() as i64))
        }
        _ => None,
    }
}

// ---- outputs ------------------------------------------------------------------------------------------------

fn cbor(out: &Out) -> Cbor {
    match out {
        Out::Struct(fields) => Cbor::Map(fields.iter().map(|(k, v)| (Cbor::Text((*k).to_string()), cbor(v))).collect()),
        Out::Map(entries) => Cbor::Map(entries.iter().map(|(k, v)| (Cbor::Text(k.clone()), cbor(v))).collect()),
        Out::List(items) => Cbor::Array(items.iter().map(cbor).collect()),
        Out::Text(text) => Cbor::Text(text.clone()),
        Out::Double(f) => Cbor::Float(*f),
        Out::Time(ms) => Cbor::Tag(1, Box::new(Cbor::Float(*ms as f64 / 1000.0))),
    }
}

fn json(out: &Out) -> Value {
    match out {
        Out::Struct(fields) => Value::Object(fields.iter().map(|(k, v)| ((*k).to_string(), json(v))).collect()),
        Out::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        Out::List(items) => Value::Array(items.iter().map(json).collect()),
        Out::Text(text) => Value::String(text.clone()),
        Out::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Out::Time(ms) => serde_json::Number::from_f64(*ms as f64 / 1000.0).map_or(Value::Null, Value::Number),
    }
}

/// The members of a structure as XML elements (a list's items as `<member>`).
fn xml_members(out: &Out) -> String {
    match out {
        Out::Struct(fields) => {
            fields.iter().map(|(name, value)| format!("<{name}>{}</{name}>", xml_members(value))).collect()
        }
        Out::Map(entries) => entries
            .iter()
            .map(|(key, value)| {
                format!("<entry><key>{}</key><value>{}</value></entry>", xml_escape(key), xml_members(value))
            })
            .collect(),
        Out::List(items) => items.iter().map(|item| format!("<member>{}</member>", xml_members(item))).collect(),
        Out::Text(text) => xml_escape(text),
        Out::Double(f) => format!("{f}"),
        Out::Time(ms) => iso8601(*ms),
    }
}

/// `2026-11-27T10:00:00Z`, or with milliseconds when there are any.
fn iso8601(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    if ms % 1000 == 0 {
        humantime::format_rfc3339_seconds(time).to_string()
    } else {
        humantime::format_rfc3339_millis(time).to_string()
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn cbor_response(status: u16, body: &Cbor) -> Response {
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

fn json_response(status: u16, body: &Value) -> Response {
    let mut response = Response::json(status, body);
    response.headers = vec![("content-type", "application/x-amz-json-1.0".into())];
    response
}

fn xml_response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type", "text/xml".into())],
        body: body.into_bytes(),
        stall_ms: 0,
        long_poll: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_members_become_lists_in_order() {
        let form: Vec<(String, String)> = [
            ("Action", "GetMetricData"),
            ("Version", "2010-08-01"),
            ("Q.member.2.Id", "b"),
            ("Q.member.1.Id", "a"),
            ("Q.member.1.M.Dimensions.member.1.Name", "FunctionName"),
            ("Q.member.10.Id", "j"),
            ("Empty", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let input = query_input(&form);
        let ids: Vec<&str> = list(&input, "Q").unwrap_or_default().iter().filter_map(|q| text(q, "Id")).collect();
        assert_eq!(ids, ["a", "b", "j"]);
        let first = &list(&input, "Q").unwrap_or_default()[0];
        assert_eq!(first["M"]["Dimensions"][0]["Name"], "FunctionName");
        assert_eq!(list(&input, "Empty").map(<[Value]>::len), Some(0));
    }

    #[test]
    fn timestamps_read_from_every_protocol() {
        let input = serde_json::json!({"a": 1_700_000_000, "b": 1_700_000_000.5, "c": "2023-11-14T22:13:20Z"});
        assert_eq!(timestamp_ms(&input, "a"), Some(1_700_000_000_000));
        assert_eq!(timestamp_ms(&input, "b"), Some(1_700_000_000_500));
        assert_eq!(timestamp_ms(&input, "c"), Some(1_700_000_000_000));
    }

    #[test]
    fn xml_lists_and_escapes() {
        let out = Out::Struct(vec![(
            "Results",
            Out::List(vec![Out::Struct(vec![("Label", Out::Text("a<b".into())), ("At", Out::Time(60_000))])]),
        )]);
        assert_eq!(
            xml_members(&out),
            "<Results><member><Label>a&lt;b</Label><At>1970-01-01T00:01:00Z</At></member></Results>"
        );
    }
}
