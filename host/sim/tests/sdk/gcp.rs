//! Cloud Run Admin v2 and Cloud Monitoring v3 through google-cloud-run-v2 and google-cloud-monitoring-v3.

use google_cloud_gax::paginator::ItemPaginator;
use google_cloud_lro::Poller;
use google_cloud_monitoring_v3::model::{Aggregation, TimeInterval, aggregation::Aligner, aggregation::Reducer};
use google_cloud_run_v2::model::{TrafficTarget, TrafficTargetAllocationType};
use ripcord_sim::{Server, Simulator, scenario};
use std::path::Path;
use std::time::Duration;

const SCENARIO: &str = r#"
seed = 5
start = "2026-11-26T09:00:00Z"
[settings]
operation_polls = 2
max_series_per_page = 2

[[service]]
name = "search"
project = "acme"
location = "europe-west1"
rps = 50
annotations = { team = "search" }
[[service.revision]]
name = "search-00001-aaa"
latency_ms = 80
concurrency = 10
[[service.revision]]
name = "search-00002-bbb"
latency_ms = 80
concurrency = 10
[[service.traffic]]
revision = "search-00001-aaa"
percent = 80
[[service.traffic]]
revision = "search-00002-bbb"
percent = 20
tag = "canary"

[[fault]]
service = "search"
revision = "search-00002-bbb"
from = "2m"
error_rate = 0.5
"#;

const NAME: &str = "projects/acme/locations/europe-west1/services/search";

fn start() -> (Simulator, Server) {
    let sim = scenario::parse(SCENARIO, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(sim.clone(), ([127, 0, 0, 1], 0).into()).unwrap_or_else(|e| panic!("{e}"));
    (sim, server)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"))
}

fn fast_polling() -> google_cloud_gax::exponential_backoff::ExponentialBackoff {
    google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
        .with_initial_delay(Duration::from_millis(5))
        .with_maximum_delay(Duration::from_millis(20))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn services(endpoint: &str) -> google_cloud_run_v2::client::Services {
    google_cloud_run_v2::client::Services::builder()
        .with_endpoint(endpoint)
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .with_polling_backoff_policy(fast_polling())
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn services_get_patch_with_etag_and_operation_polling() {
    let (sim, server) = start();
    runtime().block_on(async {
        let client = services(&server.endpoint()).await;
        let service = client.get_service().set_name(NAME).send().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(service.traffic.len(), 2);
        assert_eq!(service.traffic[0].r#type, TrafficTargetAllocationType::Revision);
        assert_eq!(service.traffic_statuses[1].tag, "canary");
        assert!(service.traffic_statuses[1].uri.contains("/tags/canary"), "{:?}", service.traffic_statuses[1]);
        assert_eq!(service.annotations.get("team").map(String::as_str), Some("team").map(|_| "search"));
        assert!(!service.etag.is_empty() && !service.reconciling);

        // Pin 100% to the first revision with the etag read; the operation is polled until done.
        let mut pinned = service.clone();
        pinned.traffic = vec![
            TrafficTarget::new()
                .set_type(TrafficTargetAllocationType::Revision)
                .set_revision("search-00001-aaa")
                .set_percent(100),
        ];
        let done = client
            .update_service()
            .set_service(pinned.clone())
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["traffic"]))
            .poller()
            .until_done()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(done.traffic_statuses.len(), 1);
        assert_eq!(done.observed_generation, done.generation);
        let polls = sim.api_log().iter().filter(|c| c.operation == "GetOperation").count();
        assert!(polls >= 2, "the operation reports done: false first ({polls} polls)");
        assert_eq!(sim.service("search").map(|s| s.statuses.len()), Some(1));

        // The etag read before is stale now: ABORTED.
        let stale = client.update_service().set_service(pinned).send().await;
        let error = stale.err().unwrap_or_else(|| panic!("stale etag accepted"));
        assert_eq!(error.status().map(|s| s.code), Some(google_cloud_gax::error::rpc::Code::Aborted), "{error:?}");

        let revisions: Vec<String> = {
            let revisions = google_cloud_run_v2::client::Revisions::builder()
                .with_endpoint(server.endpoint())
                .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
                .build()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut items = revisions.list_revisions().set_parent(NAME).by_item();
            let mut names = Vec::new();
            while let Some(item) = items.next().await {
                names.push(item.unwrap_or_else(|e| panic!("{e:?}")).name);
            }
            names
        };
        assert_eq!(
            revisions,
            [format!("{NAME}/revisions/search-00002-bbb"), format!("{NAME}/revisions/search-00001-aaa")]
        );
    });
}

#[test]
fn a_failed_operation_is_reported_and_the_split_is_kept() {
    let (sim, server) = start();
    sim.fail_operations(1, "revision failed to become ready");
    runtime().block_on(async {
        let client = services(&server.endpoint()).await;
        let mut service = client.get_service().set_name(NAME).send().await.unwrap_or_else(|e| panic!("{e:?}"));
        service.traffic = vec![TrafficTarget::new().set_type(TrafficTargetAllocationType::Latest).set_percent(100)];
        let outcome = client
            .update_service()
            .set_service(service)
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["traffic"]))
            .poller()
            .until_done()
            .await;
        let error = outcome.err().unwrap_or_else(|| panic!("the failed operation succeeded"));
        assert!(error.to_string().contains("revision failed to become ready"), "{error}");
    });
    assert_eq!(sim.service("search").map(|s| s.statuses.len()), Some(2), "the split stays as it was");
}

#[test]
fn monitoring_time_series_grouped_by_revision_with_paging() {
    let (sim, server) = start();
    sim.advance(6 * 60_000);
    let end = sim.now_ms();
    runtime().block_on(async {
        let client = google_cloud_monitoring_v3::client::MetricService::builder()
            .with_endpoint(server.endpoint())
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
            .build()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let interval = TimeInterval::new()
            .set_start_time(google_cloud_wkt::Timestamp::clamp((end - 6 * 60_000) / 1000, 0))
            .set_end_time(google_cloud_wkt::Timestamp::clamp(end / 1000, 0));
        let series = |metric: &str, aligner: Aligner, reducer: Reducer, fields: &[&str]| {
            client
                .list_time_series()
                .set_name("projects/acme")
                .set_filter(format!(
                    "metric.type = \"{metric}\" AND resource.type = \"cloud_run_revision\" AND resource.labels.service_name = one_of(\"search\")"
                ))
                .set_interval(interval.clone())
                .set_aggregation(
                    Aggregation::new()
                        .set_alignment_period(google_cloud_wkt::Duration::clamp(60, 0))
                        .set_per_series_aligner(aligner)
                        .set_cross_series_reducer(reducer)
                        .set_group_by_fields(fields.iter().map(|f| f.to_string())),
                )
                .by_item()
        };
        let mut counts = series(
            "run.googleapis.com/request_count",
            Aligner::AlignDelta,
            Reducer::ReduceSum,
            &["resource.labels.revision_name", "metric.labels.response_code_class"],
        );
        let mut totals: std::collections::BTreeMap<(String, String), i64> = Default::default();
        let mut count = 0;
        while let Some(ts) = counts.next().await {
            let ts = ts.unwrap_or_else(|e| panic!("{e:?}"));
            count += 1;
            let revision = ts.resource.as_ref().and_then(|r| r.labels.get("revision_name")).cloned().unwrap_or_default();
            let class = ts.metric.as_ref().and_then(|m| m.labels.get("response_code_class")).cloned().unwrap_or_default();
            for point in &ts.points {
                *totals.entry((revision.clone(), class.clone())).or_default() += point.value.as_ref().and_then(|v| v.int64_value()).copied().unwrap_or(0);
            }
        }
        assert!(count >= 3, "series per revision and class, across pages of 2: {totals:?}");
        let canary_errors = totals.get(&("search-00002-bbb".into(), "5xx".into())).copied().unwrap_or(0);
        let canary_ok = totals.get(&("search-00002-bbb".into(), "2xx".into())).copied().unwrap_or(0);
        assert!(canary_errors > 0 && canary_ok > 0, "{totals:?}");
        let stable: i64 = totals.iter().filter(|((r, _), _)| r == "search-00001-aaa").map(|(_, v)| v).sum();
        assert!((16_500..19_500).contains(&(stable + canary_errors + canary_ok)), "50 rps x 360 s: {totals:?}");

        let mut p95 = series("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile95, &["resource.labels.revision_name"]);
        let mut seen = 0;
        while let Some(ts) = p95.next().await {
            let ts = ts.unwrap_or_else(|e| panic!("{e:?}"));
            for point in &ts.points {
                let v = point.value.as_ref().and_then(|v| v.double_value()).copied().unwrap_or(0.0);
                assert!((50.0..2_000.0).contains(&v), "{v}");
                seen += 1;
            }
        }
        assert!(seen >= 10, "two revisions x 6 minutes of p95");
    });
}
