//! The AWS Lambda REST-JSON API as aws-sdk-lambda calls it: aliases (RevisionId checked and changed on every
//! update), versions, configuration, provisioned concurrency, Invoke with a qualifier, and tags. Errors carry
//! `x-amzn-errortype` and a JSON body, so the SDK yields its typed errors.

use crate::http::{Request, Response};
use crate::lambda::{Alias, Function, Provisioned, Version};
use crate::simulator::{ApiError, Simulator, State, alias_of, function_name, uuid_text};
use serde_json::{Value, json};

/// Handles a Lambda API request, or `None` when the path is not part of the Lambda API.
pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let (operation, function) = match (request.method.as_str(), path.as_slice()) {
        ("GET", ["2015-03-31", "functions"]) => ("ListFunctions", ""),
        ("GET", ["2015-03-31", "functions", f]) => ("GetFunction", *f),
        ("GET", ["2015-03-31", "functions", f, "aliases", _]) => ("GetAlias", *f),
        ("PUT", ["2015-03-31", "functions", f, "aliases", _]) => ("UpdateAlias", *f),
        ("GET", ["2015-03-31", "functions", f, "aliases"]) => ("ListAliases", *f),
        ("GET", ["2015-03-31", "functions", f, "versions"]) => ("ListVersionsByFunction", *f),
        ("GET", ["2015-03-31", "functions", f, "configuration"]) => ("GetFunctionConfiguration", *f),
        ("POST", ["2015-03-31", "functions", f, "invocations"]) => ("Invoke", *f),
        ("PUT", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => ("PutProvisionedConcurrencyConfig", *f),
        ("GET", ["2019-09-30", "functions", f, "provisioned-concurrency"]) if request.query("List") == Some("ALL") => {
            ("ListProvisionedConcurrencyConfigs", *f)
        }
        ("GET", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => ("GetProvisionedConcurrencyConfig", *f),
        ("DELETE", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            ("DeleteProvisionedConcurrencyConfig", *f)
        }
        ("POST", ["2017-03-31", "tags", arn]) => ("TagResource", *arn),
        ("DELETE", ["2017-03-31", "tags", arn]) => ("UntagResource", *arn),
        ("GET", ["2017-03-31", "tags", arn]) => ("ListTags", *arn),
        _ => return None,
    };
    let mut state = sim.lock();
    let request_id = state.request_id();
    state.apply_interference(operation);
    let outcome = match state.take_api_fault(operation) {
        Some(error) => Err(error),
        None => serve(&mut state, operation, function, request),
    };
    let name = function_name(function).0.to_string();
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => error_response(&error),
    };
    response.headers.push(("x-amzn-RequestId", request_id));
    let detail = describe(operation, request);
    state.answer(operation, &name, detail, response)
}

fn describe(operation: &str, request: &Request) -> String {
    let qualifier = request.query("Qualifier").map(|q| format!("Qualifier={q} ")).unwrap_or_default();
    let body = String::from_utf8_lossy(&request.body);
    match operation {
        "UpdateAlias" | "PutProvisionedConcurrencyConfig" | "TagResource" => format!("{qualifier}{body}"),
        "UntagResource" => format!("tagKeys={}", request.query_all("tagKeys").join(",")),
        _ => qualifier.trim_end().to_string(),
    }
}

/// An error as Lambda answers it: the code in `x-amzn-errortype`, `Type` and `Message` in the body (the model's
/// member names).
pub(crate) fn error_response(error: &ApiError) -> Response {
    let kind = if error.status >= 500 { "Service" } else { "User" };
    let mut response = Response::json(error.status, &json!({"Type": kind, "Message": error.message}));
    response.headers.push(("x-amzn-errortype", error.code.clone()));
    if error.status == 429 {
        response.headers.push(("retry-after", "1".into()));
    }
    response
}

fn body(request: &Request) -> Result<Value, ApiError> {
    if request.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&request.body).map_err(|e| {
        ApiError::new(400, "InvalidRequestContentException", format!("Could not parse request body into json: {e}"))
    })
}

/// The operation table: one arm per simulated Lambda operation, so the whole API reads in one place (about 100
/// lines, on purpose); arms longer than a few lines are functions below.
fn serve(state: &mut State, operation: &str, function: &str, request: &Request) -> Result<Response, ApiError> {
    let now = state.now_ms;
    let allocation_ms = state.settings.provisioned_allocation_ms;
    let arn = state.function_arn(function_name(function).0);
    let endpoint = state.endpoint.clone().unwrap_or_default();
    match operation {
        "GetAlias" => {
            let alias = request.segments.get(4).cloned().unwrap_or_default();
            let f = state.function_mut(function)?;
            Ok(Response::json(200, &alias_json(&arn, alias_of(f, &alias)?)))
        }
        "UpdateAlias" => update_alias(state, function, request, &arn),
        "ListAliases" => {
            let f = state.function_mut(function)?;
            let version = request.query("FunctionVersion");
            let aliases: Vec<Value> = f
                .aliases
                .values()
                .filter(|a| version.is_none_or(|v| v == a.version.to_string()))
                .map(|a| alias_json(&arn, a))
                .collect();
            Ok(Response::json(200, &json!({"Aliases": aliases})))
        }
        "ListVersionsByFunction" => {
            let f = state.function_mut(function)?;
            let mut versions = vec![configuration_json(&arn, f, None)];
            versions.extend(f.versions.values().map(|v| configuration_json(&arn, f, Some(v))));
            Ok(Response::json(200, &marker_page(request, "Versions", versions)))
        }
        "GetFunctionConfiguration" => {
            let f = state.function_mut(function)?;
            Ok(Response::json(200, &qualified_configuration(&arn, f, function, request)?))
        }
        "GetFunction" => {
            let f = state.function_mut(function)?;
            let configuration = qualified_configuration(&arn, f, function, request)?;
            let code = json!({
                "RepositoryType": "S3",
                "Location": format!("{endpoint}/_sim/code/{}", f.name),
            });
            Ok(Response::json(200, &json!({"Configuration": configuration, "Code": code, "Tags": f.tags})))
        }
        "ListFunctions" => {
            let functions: Vec<Value> =
                state.functions.values().map(|f| configuration_json(&state.function_arn(&f.name), f, None)).collect();
            Ok(Response::json(200, &marker_page(request, "Functions", functions)))
        }
        "PutProvisionedConcurrencyConfig" => {
            let input = body(request)?;
            let requested = input
                .get("ProvisionedConcurrentExecutions")
                .and_then(Value::as_u64)
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::invalid("ProvisionedConcurrentExecutions must be at least 1"))?;
            let f = state.function_mut(function)?;
            let version = qualified_version(f, request)?;
            let config = f.put_provisioned(version, requested as u32, now, allocation_ms);
            Ok(Response::json(202, &provisioned_json(&config)))
        }
        "GetProvisionedConcurrencyConfig" => get_provisioned(state, function, request, now),
        "ListProvisionedConcurrencyConfigs" => list_provisioned(state, function, now, &arn),
        "DeleteProvisionedConcurrencyConfig" => {
            let f = state.function_mut(function)?;
            let version = qualified_version(f, request)?;
            f.delete_provisioned(version);
            Ok(Response::empty(204))
        }
        "Invoke" => {
            let reap = state.settings.reap_after_ms;
            let qualifier = request.query("Qualifier").map(str::to_string);
            let mut rng = std::mem::replace(&mut state.rng, crate::rng::Rng::new(0));
            let result = invoke(state, function, qualifier.as_deref(), now, reap, &mut rng);
            state.rng = rng;
            result
        }
        "TagResource" => {
            let input = body(request)?;
            let tags =
                input.get("Tags").and_then(Value::as_object).ok_or_else(|| ApiError::invalid("Tags is required"))?;
            let f = state.function_mut(function)?;
            for (key, value) in tags {
                f.tags.insert(key.clone(), value.as_str().unwrap_or_default().to_string());
            }
            Ok(Response::empty(204))
        }
        "UntagResource" => {
            let keys: Vec<String> = request.query_all("tagKeys").into_iter().map(str::to_string).collect();
            let f = state.function_mut(function)?;
            for key in keys {
                f.tags.remove(&key);
            }
            Ok(Response::empty(204))
        }
        "ListTags" => {
            let f = state.function_mut(function)?;
            Ok(Response::json(200, &json!({"Tags": f.tags})))
        }
        _ => Err(ApiError::new(400, "UnknownOperationException", operation)),
    }
}

/// UpdateAlias: moves the alias when the caller's RevisionId (if any) is the current one, as Lambda does.
fn update_alias(state: &mut State, function: &str, request: &Request, arn: &str) -> Result<Response, ApiError> {
    let alias = request.segments.get(4).cloned().unwrap_or_default();
    let input = body(request)?;
    let revision = state.next_revision_id();
    let f = state.function_mut(function)?;
    let current = alias_of(f, &alias)?.clone();
    if let Some(expected) = input.get("RevisionId").and_then(Value::as_str)
        && expected != current.revision_id
    {
        return Err(ApiError::new(
            412,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. \
             Call the GetAlias API to retrieve the latest Revision Id",
        ));
    }
    let version = match input.get("FunctionVersion").and_then(Value::as_str) {
        Some(v) => parse_version(f, v)?,
        None => current.version,
    };
    let routing = match input.get("RoutingConfig") {
        None => current.routing,
        Some(config) => parse_routing(f, config, version)?,
    };
    let description =
        input.get("Description").and_then(Value::as_str).map_or(current.description.clone(), str::to_string);
    let updated = Alias { name: alias.clone(), version, routing, description, revision_id: revision };
    f.aliases.insert(alias, updated.clone());
    Ok(Response::json(200, &alias_json(arn, &updated)))
}

/// ListProvisionedConcurrencyConfigs (`?List=ALL`): every version's configuration, settled to now.
fn list_provisioned(state: &mut State, function: &str, now: i64, arn: &str) -> Result<Response, ApiError> {
    let f = state.function_mut(function)?;
    f.settle_provisioned(now);
    let configs: Vec<Value> = f
        .provisioned
        .iter()
        .map(|(version, config)| {
            let mut out = provisioned_json(config);
            out["FunctionArn"] = json!(format!("{arn}:{version}"));
            out
        })
        .collect();
    Ok(Response::json(200, &json!({"ProvisionedConcurrencyConfigs": configs})))
}

/// GetProvisionedConcurrencyConfig: the qualified version's configuration, settled to now.
fn get_provisioned(state: &mut State, function: &str, request: &Request, now: i64) -> Result<Response, ApiError> {
    let f = state.function_mut(function)?;
    let version = qualified_version(f, request)?;
    f.settle_provisioned(now);
    let config = f.provisioned.get(&version).ok_or_else(|| {
        ApiError::new(
            404,
            "ProvisionedConcurrencyConfigNotFoundException",
            "No Provisioned Concurrency Config found for this function",
        )
    })?;
    Ok(Response::json(200, &provisioned_json(config)))
}

/// One page of a listing paged the Lambda way: `MaxItems` (default 50) from the `Marker` (an offset here), with
/// `NextMarker` when more remain.
fn marker_page(request: &Request, key: &str, items: Vec<Value>) -> Value {
    let max = request.query("MaxItems").and_then(|m| m.parse::<usize>().ok()).unwrap_or(50).clamp(1, 10_000);
    let start = request.query("Marker").and_then(|m| m.parse::<usize>().ok()).unwrap_or(0);
    let more = start.saturating_add(max) < items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let mut out = json!({ key: page });
    if more {
        out["NextMarker"] = json!((start + max).to_string());
    }
    out
}

fn invoke(
    state: &mut State,
    function: &str,
    qualifier: Option<&str>,
    now: i64,
    reap: i64,
    rng: &mut crate::rng::Rng,
) -> Result<Response, ApiError> {
    let f = state.function_mut(function)?;
    let (alias, version) = match qualifier.or(function_name(function).1) {
        None | Some("$LATEST") => (None, f.versions.keys().next_back().copied().unwrap_or(0)),
        Some(q) => match f.aliases.contains_key(q) {
            true => (Some(q.to_string()), f.route(q, rng).unwrap_or(0)),
            false => (None, parse_version(f, q)?),
        },
    };
    f.settle_provisioned(now);
    let record = f.execute(now, alias.as_deref(), version, rng, reap);
    let throttled = record.throttled;
    let error = record.error;
    state.requests.push(record);
    if throttled {
        return Err(ApiError::new(429, "TooManyRequestsException", "Rate Exceeded."));
    }
    let mut response = Response::json(200, &json!({"ok": !error}));
    response.headers.push(("x-amz-executed-version", version.to_string()));
    if error {
        response.headers.push(("x-amz-function-error", "Unhandled".into()));
    }
    Ok(response)
}

/// A function's configuration as GetFunctionConfiguration and GetFunction answer it: unqualified, the function's
/// own ARN (no `:$LATEST`); qualified by `$LATEST`, an alias or a version, that one's.
fn qualified_configuration(arn: &str, f: &Function, function: &str, request: &Request) -> Result<Value, ApiError> {
    let version = match request.query("Qualifier").or(function_name(function).1) {
        None => {
            let mut configuration = configuration_json(arn, f, None);
            configuration["FunctionArn"] = json!(arn);
            return Ok(configuration);
        }
        Some("$LATEST") => None,
        Some(q) => match f.aliases.get(q) {
            Some(alias) => f.versions.get(&alias.version),
            None => Some(
                f.versions
                    .get(&parse_version(f, q)?)
                    .ok_or_else(|| ApiError::not_found(format!("Function not found: {arn}:{q}")))?,
            ),
        },
    };
    Ok(configuration_json(arn, f, version))
}

fn qualified_version(f: &Function, request: &Request) -> Result<u32, ApiError> {
    let qualifier = request.query("Qualifier").ok_or_else(|| ApiError::invalid("Qualifier is required"))?;
    match f.aliases.get(qualifier) {
        Some(alias) if alias.routing.is_none() => Ok(alias.version),
        Some(_) => Err(ApiError::new(
            409,
            "ResourceConflictException",
            "Alias with weights can not be used with Provisioned Concurrency",
        )),
        None => parse_version(f, qualifier),
    }
}

fn parse_version(f: &Function, text: &str) -> Result<u32, ApiError> {
    let version: u32 = text.parse().map_err(|_| ApiError::invalid(format!("Invalid function version {text:?}")))?;
    if f.versions.contains_key(&version) {
        Ok(version)
    } else {
        Err(ApiError::not_found(format!("Function not found: {}:{version}", f.name)))
    }
}

fn parse_routing(f: &Function, config: &Value, primary: u32) -> Result<Option<(u32, f64)>, ApiError> {
    let Some(weights) = config.get("AdditionalVersionWeights").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut entries = weights.iter();
    let Some((version, weight)) = entries.next() else { return Ok(None) };
    if entries.next().is_some() {
        return Err(ApiError::invalid("Only one additional version is supported in RoutingConfig"));
    }
    let version = parse_version(f, version)?;
    let weight = weight
        .as_f64()
        .filter(|w| (0.0..1.0).contains(w))
        .ok_or_else(|| ApiError::invalid("Weight must be in [0, 1)"))?;
    if version == primary {
        return Err(ApiError::invalid("The additional version must differ from the alias version"));
    }
    Ok(Some((version, weight)))
}

fn alias_json(function_arn: &str, alias: &Alias) -> Value {
    let mut out = json!({
        "AliasArn": format!("{function_arn}:{}", alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.version.to_string(),
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    });
    if let Some((version, weight)) = alias.routing {
        out["RoutingConfig"] = json!({"AdditionalVersionWeights": {version.to_string(): weight}});
    }
    out
}

fn configuration_json(function_arn: &str, f: &Function, version: Option<&Version>) -> Value {
    let (label, sha, description) = match version {
        Some(v) => (v.number.to_string(), v.code_sha256.clone(), v.description.clone()),
        None => ("$LATEST".to_string(), String::new(), String::new()),
    };
    json!({
        "FunctionName": f.name,
        "FunctionArn": format!("{function_arn}:{label}"),
        "Runtime": "provided.al2023",
        "Role": "arn:aws:iam::123456789012:role/simulated",
        "Handler": "bootstrap",
        "CodeSize": 1024,
        "Description": description,
        "Timeout": f.timeout_s,
        "MemorySize": f.memory_mb,
        "LastModified": "2026-01-01T00:00:00.000+0000",
        "CodeSha256": sha,
        "Version": label,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "RevisionId": configuration_revision(&f.name, &label, &sha),
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "TracingConfig": {"Mode": "PassThrough"},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", f.name)},
    })
}

/// A configuration's RevisionId: stable while the version's code is unchanged (versions are immutable).
fn configuration_revision(function: &str, label: &str, code_sha256: &str) -> String {
    let mut n: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in function.bytes().chain(label.bytes()).chain(code_sha256.bytes()) {
        n = (n ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    uuid_text(n, n >> 20)
}

fn provisioned_json(config: &Provisioned) -> Value {
    let available = if State::pc_ready(config) { config.requested } else { config.allocated };
    json!({
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": available,
        "AllocatedProvisionedConcurrentExecutions": config.allocated,
        "Status": config.status.as_str(),
        "LastModified": crate::format_time(config.last_modified_ms),
    })
}
