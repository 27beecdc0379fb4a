//! The simulator as other people's clients see it: boto3 (CloudWatch in its default AWS JSON 1.0, in Smithy RPC
//! v2 CBOR and in the query protocol; Lambda), the AWS CLI, google-cloud-run for Python and the Google API
//! discovery client for Monitoring, all pinned in the test venv, run by the scripts in `tests/conformance/`. A
//! difference from the real API is a failing test here. What the clients read is compared with the simulator's
//! own request log, not with ripcord's reading of it.

use crate::support::{
    BBB_FAILS, RUN_CANARY, SimHarness, V2_FAILS, lambda_scenario, repo_root, run_scenario, venv_python,
};
use ripcord_sim::lambda::RequestRecord;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const START_MS: i64 = 1_795_683_600_000; // 2026-11-26T09:00:00Z
const MINUTE_MS: i64 = 60_000;

/// Runs `tests/conformance/SCRIPT` with `args` and the path of its report; the report, or None when skipped.
fn run_client_script(module: &str, script: &str, args: &[String]) -> Option<Value> {
    let python = venv_python(module, &format!("the {script} conformance test"))?;
    let out = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(python)
        .arg(repo_root().join("tests/conformance").join(script))
        .args(args)
        .arg(out.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.path()).unwrap_or_else(|e| panic!("{e}"));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

/// v1 with v2 as a 10% canary through `live`; v2 fails from 2 minutes in, so there are errors to count.
fn lambda_canary() -> String {
    lambda_scenario("version = 1\nrouting = { version = 2, weight = 0.1 }", "", V2_FAILS)
}

/// `[[epoch seconds, value]]` per minute of `records` (those through the alias that ran `version`), as the
/// statistic `stat` of `value`, for minutes with requests.
fn expected(records: &[RequestRecord], version: u32, value: fn(&RequestRecord) -> f64, max: bool) -> Vec<(i64, f64)> {
    let mut minutes: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.version == version && r.alias.as_deref() == Some("live") && !r.throttled) {
        minutes.entry(r.at_ms.div_euclid(MINUTE_MS) * 60).or_default().push(value(r));
    }
    minutes
        .into_iter()
        .map(|(at, values)| {
            let stat = if max { values.iter().copied().fold(f64::MIN, f64::max) } else { values.iter().sum() };
            (at, stat)
        })
        .collect()
}

fn points(series: &Value, id: &str) -> Vec<(i64, f64)> {
    series[id]
        .as_array()
        .unwrap_or_else(|| panic!("no series {id} in {series}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap_or_default(), p[1].as_f64().unwrap_or(f64::NAN)))
        .collect()
}

#[test]
fn aws_clients_read_lambda_metrics_in_every_cloudwatch_protocol() {
    let h = SimHarness::start_for_other_clients(&lambda_canary());
    h.sim.advance(10 * MINUTE_MS);
    let (start, end) = (START_MS, START_MS + 5 * MINUTE_MS);
    let args: Vec<String> =
        [h.server.endpoint(), (start / 1000).to_string(), (end / 1000).to_string(), "checkout".into(), "live".into()]
            .into();
    let Some(report) = run_client_script("boto3", "aws_clients.py", &args) else { return };
    let records = h.sim.requests("checkout", start, end);
    let mut readers: Vec<(String, &Value)> = ["default", "smithy-rpc-v2-cbor", "query"]
        .iter()
        .map(|p| (format!("boto3 {p}"), &report["cloudwatch"][p]["series"]))
        .collect();
    readers.push(("aws cli".into(), &report["cli"]["series"]));
    for (reader, series) in readers {
        for version in [1, 2] {
            let want = expected(&records, version, |_| 1.0, false);
            assert_eq!(want.len(), 5, "five minutes of traffic on v{version}");
            assert_eq!(points(series, &format!("invocations_v{version}")), want, "{reader}: Invocations v{version}");
            let errors = expected(&records, version, |r| f64::from(u8::from(r.error)), false);
            assert_eq!(points(series, &format!("errors_v{version}")), errors, "{reader}: Errors v{version}");
            let slowest = expected(&records, version, |r| r.duration_ms, true);
            let got = points(series, &format!("duration_v{version}"));
            assert_eq!(got.len(), slowest.len(), "{reader}: Duration v{version}");
            for ((at, ours), (want_at, theirs)) in got.iter().zip(&slowest) {
                assert!(at == want_at && (ours - theirs).abs() < 1e-6, "{reader}: Duration {got:?} vs {slowest:?}");
            }
        }
        assert_eq!(points(series, "unpublished"), [], "{reader}: {{FunctionName, ExecutedVersion}} is not published");
    }
    // The protocol each boto3 client really spoke, and paging through NextToken (7 datapoints a page).
    for (p, want) in [("default", "json"), ("smithy-rpc-v2-cbor", "smithy-rpc-v2-cbor"), ("query", "query")] {
        assert_eq!(report["cloudwatch"][p]["protocol"], want);
        assert!(report["cloudwatch"][p]["pages"].as_u64() > Some(1), "{p} did not page: {}", report["cloudwatch"][p]);
        let errors = &report["errors"][p];
        assert!(errors["invalid"].as_str().is_some_and(|m| m.contains("Period")), "{p}: {errors}");
        assert!(errors["unsimulated"].as_str().is_some_and(|m| m.contains("not simulated")), "{p}: {errors}");
    }
    // ListMetrics: exactly the dimension sets Lambda publishes for this function, in every protocol.
    let published: Value = serde_json::json!([
        ["ExecutedVersion=1", "FunctionName=checkout", "Resource=checkout:live"],
        ["ExecutedVersion=2", "FunctionName=checkout", "Resource=checkout:live"],
        ["FunctionName=checkout"],
        ["FunctionName=checkout", "Resource=checkout:live"],
    ]);
    for p in ["default", "smithy-rpc-v2-cbor", "query"] {
        assert_eq!(report["list_metrics"][p], published, "ListMetrics in {p}");
    }
    // GetMetricStatistics in every protocol: Sum per minute as the request log counts it, the slowest request as
    // Maximum, p99 never above it.
    let v1 = expected(&records, 1, |_| 1.0, false);
    let v1_slowest = expected(&records, 1, |r| r.duration_ms, true);
    for p in ["default", "smithy-rpc-v2-cbor", "query"] {
        let statistics = &report["statistics"][p];
        let pairs = |key: &str| -> Vec<(i64, f64)> {
            statistics[key]
                .as_array()
                .unwrap_or_else(|| panic!("{p}: no {key} in {statistics}"))
                .iter()
                .map(|x| (x[0].as_i64().unwrap_or_default(), x[1].as_f64().unwrap_or(f64::NAN)))
                .collect()
        };
        assert_eq!(pairs("invocations"), v1, "GetMetricStatistics Sum in {p}");
        let counts: Vec<f64> = v1.iter().map(|(_, n)| *n).collect();
        assert_eq!(statistics["sample_counts"], serde_json::json!(counts), "SampleCount in {p}");
        let slowest = pairs("duration_max");
        assert_eq!(slowest.len(), v1_slowest.len(), "{p}");
        for ((at, ours), (want_at, theirs)) in slowest.iter().zip(&v1_slowest) {
            assert!(at == want_at && (ours - theirs).abs() < 1e-6, "Maximum in {p}: {slowest:?} vs {v1_slowest:?}");
        }
        let p99: Vec<f64> =
            statistics["duration_p99"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        assert!(p99.len() == slowest.len() && p99.iter().zip(&slowest).all(|(p, (_, max))| p <= max), "{statistics}");
        assert!(statistics["too_many"].as_str().is_some_and(|m| m.contains("1440")), "{statistics}");
    }
    // Lambda through boto3 and the AWS CLI.
    let lambda = &report["lambda"];
    assert_eq!(lambda["unqualified_arn"], "arn:aws:lambda:us-east-1:123456789012:function:checkout");
    assert_eq!(lambda["latest_arn"], "arn:aws:lambda:us-east-1:123456789012:function:checkout:$LATEST");
    assert_eq!(lambda["architectures"], serde_json::json!(["x86_64"]));
    assert_eq!(lambda["aliases_for_version"], serde_json::json!(["live"]));
    assert_eq!(lambda["aliases_for_other_version"], serde_json::json!([]));
    assert_eq!(lambda["provisioned"], serde_json::json!([]));
    assert!(lambda["missing_alias"].as_str().is_some_and(|m| m.contains("no-such-alias")), "{lambda}");
    assert_eq!(lambda["functions"], serde_json::json!(["checkout"]));
    assert_eq!(lambda["get_function_version"], "1", "GetFunction through the alias: its version");
    assert_eq!(report["cli"]["alias_version"], "1");
}

#[test]
fn google_clients_read_and_change_cloud_run_and_monitoring() {
    let h = SimHarness::start_for_other_clients(&run_scenario(RUN_CANARY, "", BBB_FAILS));
    h.sim.advance(10 * MINUTE_MS);
    let (start, end) = (START_MS, START_MS + 5 * MINUTE_MS);
    let args: Vec<String> = [
        h.server.endpoint(),
        "acme".into(),
        "europe-west1".into(),
        "search".into(),
        (start / 1000).to_string(),
        (end / 1000).to_string(),
    ]
    .into();
    let Some(report) = run_client_script("google.cloud.run_v2", "google_clients.py", &args) else { return };
    // Monitoring, read with the discovery client, against the simulator's own request log.
    let requests = h.sim.run_requests("search", start, end);
    let count = |revision: &str, keep: &dyn Fn(u16) -> bool| {
        requests.iter().filter(|r| r.revision == revision && keep(r.status)).count() as u64
    };
    let monitoring = &report["monitoring"];
    for revision in ["search-00001-aaa", "search-00002-bbb"] {
        let all = count(revision, &|_| true);
        assert!(all > 0, "no requests on {revision}");
        assert_eq!(monitoring["requests_by_revision"][revision].as_u64(), Some(all), "{revision}: {monitoring}");
        assert_eq!(monitoring["either_by_revision"][revision].as_u64(), Some(all), "OR without parentheses");
        let server_errors = count(revision, &|s| s >= 500);
        assert_eq!(monitoring["server_errors_by_revision"][revision].as_u64(), Some(server_errors), "{revision}");
        assert_eq!(monitoring["not_server_errors_by_revision"][revision].as_u64(), Some(all - server_errors), "!=");
    }
    // Enum names by default (the discovery client does not ask for numbers), value types kept.
    assert_eq!(monitoring["kinds"], serde_json::json!([["DELTA", "INT64"]]));
    assert_eq!(monitoring["max_value_types"], serde_json::json!(["INT64"]), "ALIGN_MAX keeps INT64");
    let distribution = &monitoring["distribution"];
    let buckets: u64 = distribution["bucket_counts"].as_array().map_or(0, |b| b.iter().filter_map(Value::as_u64).sum());
    assert_eq!(Some(buckets), distribution["count"].as_u64(), "bucket counts add up to the count: {distribution}");
    assert!(distribution["bucket_options"]["exponentialBuckets"].is_object(), "{distribution}");
    assert!(monitoring["pages_of_3_points"].as_u64() > monitoring["pages_unpaged"].as_u64(), "pageSize counts points");
    assert_eq!(monitoring["latest_points"], serde_json::json!([1]), "no startTime reads the period ending at endTime");
    assert_eq!(monitoring["regex_error"], "INVALID_ARGUMENT");
    assert_eq!(monitoring["no_metric_error"], "INVALID_ARGUMENT");
    // Cloud Run through google-cloud-run's REST transport (enums as numbers) and the discovery client (names).
    let run = &report["run_gapic"];
    let name = "projects/acme/locations/europe-west1/services/search";
    assert_eq!(run["traffic"][0][0], "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "{run}");
    assert_eq!(run["listed"], serde_json::json!([name]));
    assert_eq!(run["everywhere"], serde_json::json!([name]));
    assert_eq!(run["revisions"].as_array().map(Vec::len), Some(3));
    assert_eq!(run["revisions_across_services"], run["revisions"]);
    assert_eq!(run["revision"]["service"], name);
    assert_eq!(run["revision"]["ready"], "CONDITION_SUCCEEDED");
    assert!(run["missing_revision"].as_str().is_some_and(|m| m.contains("was not found")), "{run}");
    let validated = &run["validate_only"];
    assert_eq!(validated["would_be"], serde_json::json!([["search-00001-aaa", 100]]), "{validated}");
    assert_eq!(validated["generation_after"], validated["generation_before"], "validateOnly changed the service");
    assert_eq!(validated["traffic_after"], serde_json::json!([["search-00001-aaa", 90], ["search-00002-bbb", 10]]));
    assert!(validated["invalid"].as_str().is_some_and(|m| m.contains("add up to 100")), "{validated}");
    assert_eq!(run["moved"], serde_json::json!([["TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "search-00001-aaa", 100]]));
    assert!(run["unimplemented"].as_str().is_some_and(|m| m.contains("not simulated")), "{run}");
    let service = h.sim.service("search").unwrap_or_else(|| panic!("no service"));
    assert_eq!(service.traffic.len(), 1, "the real update moved the traffic");
    let discovery = &report["run_discovery"];
    assert_eq!(discovery["traffic_types"], serde_json::json!(["TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"]));
    assert_eq!(discovery["ready"], "CONDITION_SUCCEEDED");
}
