//! The simulator's wire APIs as the official AWS SDK clients call them: every answer must be accepted and
//! decoded by aws-sdk-lambda and aws-sdk-cloudwatch, errors must come out as the SDK's typed errors.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use ripcord_sim::{Server, Simulator, scenario};
use std::path::Path;

const SCENARIO: &str = r#"
seed = 11
start = "2026-11-26T09:00:00Z"
[settings]
provisioned_allocation = "30s"
max_datapoints = 7

[[function]]
name = "checkout"
tags = { team = "payments" }
traffic = { alias = "live", rps = 20 }
[[function.version]]
number = 1
latency_ms = 100
[[function.version]]
number = 2
latency_ms = 100
[[function.alias]]
name = "live"
version = 1
routing = { version = 2, weight = 0.2 }

[[fault]]
function = "checkout"
version = 2
from = "2m"
error_rate = 0.5
"#;

fn start() -> (Simulator, Server) {
    let sim = scenario::parse(SCENARIO, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(sim.clone(), "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    (sim, server)
}

async fn config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn lambda_alias_update_checks_and_changes_the_revision_id() {
    let (sim, server) = start();
    runtime().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&config(&server.endpoint()).await);
        let alias =
            lambda.get_alias().function_name("checkout").name("live").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(alias.function_version(), Some("1"));
        let weights = alias.routing_config().and_then(|r| r.additional_version_weights()).cloned().unwrap_or_default();
        assert_eq!(weights.get("2"), Some(&0.2));
        let revision = alias.revision_id().unwrap_or_default().to_string();

        // Pin to 1 and clear the routing, with the RevisionId read.
        let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder().build();
        let updated = lambda
            .update_alias()
            .function_name("checkout")
            .name("live")
            .function_version("1")
            .routing_config(routing.clone())
            .revision_id(&revision)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(updated.routing_config().and_then(|r| r.additional_version_weights()).is_none_or(|w| w.is_empty()));
        assert_ne!(updated.revision_id(), Some(revision.as_str()));
        assert_eq!(sim.function("checkout").and_then(|f| f.aliases.get("live").map(|a| a.routing)), Some(None));

        // The old RevisionId is now stale: the SDK yields its typed PreconditionFailedException.
        let stale = lambda
            .update_alias()
            .function_name("checkout")
            .name("live")
            .function_version("2")
            .revision_id(&revision)
            .send()
            .await;
        let error = stale.err().map(|e| e.into_service_error());
        assert!(
            matches!(
                error,
                Some(aws_sdk_lambda::operation::update_alias::UpdateAliasError::PreconditionFailedException(_))
            ),
            "{error:?}"
        );

        let missing = lambda.get_alias().function_name("nope").name("live").send().await;
        let error = missing.err().map(|e| e.into_service_error());
        assert!(
            matches!(error, Some(aws_sdk_lambda::operation::get_alias::GetAliasError::ResourceNotFoundException(_))),
            "{error:?}"
        );
    });
}

#[test]
fn lambda_versions_tags_invoke_and_provisioned_concurrency() {
    let (sim, server) = start();
    runtime().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&config(&server.endpoint()).await);
        let versions = lambda.list_versions_by_function().function_name("checkout").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = versions.versions().iter().filter_map(|v| v.version()).collect();
        assert_eq!(names, ["$LATEST", "1", "2"]);

        let arn = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        lambda.tag_resource().resource(arn).tags("ripcord:lkg:live", "1").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        lambda.untag_resource().resource(arn).tag_keys("team").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        let tags = lambda.list_tags().resource(arn).send().await.unwrap_or_else(|e| panic!("{e:?}"));
        let tags = tags.tags().cloned().unwrap_or_default();
        assert_eq!(tags.get("ripcord:lkg:live").map(String::as_str), Some("1"));
        assert!(!tags.contains_key("team"));

        let invoked = lambda.invoke().function_name("checkout").qualifier("1").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(invoked.executed_version(), Some("1"));

        let put = lambda
            .put_provisioned_concurrency_config()
            .function_name("checkout")
            .qualifier("1")
            .provisioned_concurrent_executions(5)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(put.status().map(|s| s.as_str()), Some("IN_PROGRESS"));
        sim.advance(31_000);
        let got = lambda.get_provisioned_concurrency_config().function_name("checkout").qualifier("1").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(got.status().map(|s| s.as_str()), Some("READY"));
        assert_eq!(got.available_provisioned_concurrent_executions(), Some(5));
        assert!(sim.function("checkout").is_some_and(|f| f.instance_count(1) >= 5));
        lambda.delete_provisioned_concurrency_config().function_name("checkout").qualifier("1").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        let gone = lambda.get_provisioned_concurrency_config().function_name("checkout").qualifier("1").send().await;
        let error = gone.err().map(|e| e.into_service_error());
        assert!(matches!(error, Some(aws_sdk_lambda::operation::get_provisioned_concurrency_config::GetProvisionedConcurrencyConfigError::ProvisionedConcurrencyConfigNotFoundException(_))), "{error:?}");

        let order: Vec<String> = sim.api_log().into_iter().map(|c| c.operation).collect();
        assert!(order.iter().any(|o| o == "PutProvisionedConcurrencyConfig"), "{order:?}");
    });
}

#[test]
fn lambda_throttling_and_server_errors_are_retried_by_the_sdk() {
    let (sim, server) = start();
    sim.inject_api_fault("GetAlias", 1, ripcord_sim::ApiError::new(429, "TooManyRequestsException", "Rate exceeded"));
    sim.inject_api_fault("GetAlias", 1, ripcord_sim::ApiError::new(500, "ServiceException", "boom"));
    runtime().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&config(&server.endpoint()).await);
        let alias = lambda.get_alias().function_name("checkout").name("live").send().await;
        assert!(alias.is_ok(), "{alias:?}");
    });
    let statuses: Vec<u16> = sim.api_log().iter().filter(|c| c.operation == "GetAlias").map(|c| c.status).collect();
    assert_eq!(statuses, [429, 500, 200]);
}

#[test]
fn cloudwatch_get_metric_data_pages_and_reports_per_version() {
    let (sim, server) = start();
    sim.advance(10 * 60_000);
    let start = sim.now_ms() - 10 * 60_000;
    runtime().block_on(async {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config(&server.endpoint()).await);
        let query = |id: &str, metric: &str, stat: &str, version: &str| {
            let dims = [("FunctionName", "checkout"), ("Resource", "checkout:live"), ("ExecutedVersion", version)]
                .map(|(n, v)| Dimension::builder().name(n).value(v).build());
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace("AWS/Lambda")
                                .metric_name(metric)
                                .set_dimensions(Some(dims.to_vec()))
                                .build(),
                        )
                        .period(60)
                        .stat(stat)
                        .build(),
                )
                .build()
        };
        let pages = cloudwatch
            .get_metric_data()
            .metric_data_queries(query("inv2", "Invocations", "Sum", "2"))
            .metric_data_queries(query("err2", "Errors", "Sum", "2"))
            .metric_data_queries(query("p95v1", "Duration", "p95", "1"))
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(start + 10 * 60_000))
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(pages.len() > 1, "7 datapoints a page must page 30 datapoints");
        let mut series: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
        for page in &pages {
            for result in page.metric_data_results() {
                let points =
                    result.timestamps().iter().map(|t| t.to_millis().unwrap_or(0)).zip(result.values().iter().copied());
                series.entry(result.id().unwrap_or_default().to_string()).or_default().extend(points);
            }
        }
        let invocations = &series["inv2"];
        assert_eq!(invocations.len(), 10, "{invocations:?}");
        assert!(invocations.iter().all(|(at, _)| at % 60_000 == 0));
        let total: f64 = invocations.iter().map(|(_, v)| v).sum();
        assert!((2000.0..2800.0).contains(&total), "20 rps x 20% x 600 s ~ 2400, got {total}");
        let errors_after_fault: f64 =
            series["err2"].iter().filter(|(at, _)| *at >= start + 3 * 60_000).map(|(_, v)| v).sum();
        let invocations_after_fault: f64 =
            invocations.iter().filter(|(at, _)| *at >= start + 3 * 60_000).map(|(_, v)| v).sum();
        let rate = errors_after_fault / invocations_after_fault;
        assert!((0.3..0.7).contains(&rate), "fault error rate 0.5, got {rate}");
        assert!(series["p95v1"].iter().all(|(_, v)| (80.0..400.0).contains(v)), "{:?}", series["p95v1"]);
    });
}

#[test]
fn cloudwatch_errors_are_typed_and_throttling_is_retried() {
    let (sim, server) = start();
    sim.inject_api_fault("GetMetricData", 1, ripcord_sim::ApiError::new(400, "Throttling", "Rate exceeded"));
    runtime().block_on(async {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config(&server.endpoint()).await);
        let q = MetricDataQuery::builder()
            .id("a")
            .metric_stat(
                MetricStat::builder()
                    .metric(Metric::builder().namespace("AWS/Lambda").metric_name("Invocations").build())
                    .period(90)
                    .stat("Sum")
                    .build(),
            )
            .build();
        let now = sim.now_ms();
        let result = cloudwatch
            .get_metric_data()
            .metric_data_queries(q)
            .start_time(DateTime::from_millis(now - 60_000))
            .end_time(DateTime::from_millis(now))
            .send()
            .await;
        let error = result.err().map(|e| e.into_service_error());
        let code =
            error.as_ref().and_then(|e| aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(e)).map(str::to_string);
        assert_eq!(code.as_deref(), Some("InvalidParameterValue"), "{error:?}");
    });
    let statuses: Vec<u16> =
        sim.api_log().iter().filter(|c| c.operation == "GetMetricData").map(|c| c.status).collect();
    assert_eq!(statuses, [400, 400], "the throttled call is retried, the invalid one is not");
}
