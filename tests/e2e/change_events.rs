//! Told at once: the platform's change events — an alias updated (CloudTrail through EventBridge), a CodeDeploy
//! deployment's state, a Cloud Run service updated (Cloud Audit Logs through Eventarc) — check the guards of the
//! deployment that changed at once, in function mode and with `check --changed`, instead of waiting for the next
//! scheduled cycle.

use crate::containment::{SCENARIO, write_guards};
use crate::function::Function;
use crate::support::{SimHarness, stderr, stdout};
use serde_json::{Value, json};

fn harness() -> SimHarness {
    let h = SimHarness::start(SCENARIO);
    h.sim.advance(5 * 60_000);
    let search = "[[guard]]\nname = \"search-api\"\nplatform = \"aws-lambda\"\nfunction = \"search\"\nalias = \"live\"\npolicies = [{ use = \"builtin:error-rate\" }]\n";
    write_guards(&h, "", search);
    h
}

/// The guards an answer covers.
fn guards(body: &Value) -> Vec<String> {
    let guards = body["guards"].as_array().cloned().unwrap_or_default();
    guards.iter().filter_map(|g| g["guard"].as_str().map(str::to_string)).collect()
}

/// EventBridge's delivery of CloudTrail's record of an UpdateAlias call.
fn alias_updated(function: &str, alias: &str) -> Value {
    json!({
        "version": "0", "id": "6a7e8feb", "detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda",
        "account": "123456789012", "time": "2026-11-26T09:05:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventSource": "lambda.amazonaws.com", "eventName": "UpdateAlias20150331",
            "awsRegion": "us-east-1",
            "requestParameters": {"functionName": function, "name": alias, "functionVersion": "1",
                                  "routingConfig": {"additionalVersionWeights": {"2": 0.1}}},
            "responseElements": null
        }
    })
}

#[test]
fn an_alias_update_checks_its_guard_at_once_and_only_it() {
    let h = harness();
    let mut function = Function::start(&h);
    let answer = function.invoke(alias_updated("arn:aws:lambda:us-east-1:123456789012:function:checkout", "live"));
    assert!(answer.ok, "{:?}\n{}", answer.body, function.logs());
    assert_eq!(guards(&answer.body), ["checkout-api"], "{}", answer.body);
    assert_eq!(answer.body["exit_code"], 2, "the failing canary is rolled back: {}", answer.body);
    assert_eq!(h.alias(), (1, None));
    // An alias no guard watches: nothing to check, nothing called.
    let calls = h.sim.api_log().len();
    let other = function.invoke(alias_updated("billing", "live"));
    assert!(other.ok && guards(&other.body).is_empty(), "{:?}", other.body);
    assert_eq!(h.sim.api_log().len(), calls, "nothing called for an alias no guard watches");
}

#[test]
fn a_codedeploy_state_change_checks_every_guard() {
    let h = harness();
    let mut function = Function::start(&h);
    let event = json!({
        "version": "0", "id": "c071bfbf", "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy", "account": "123456789012", "time": "2026-11-26T09:05:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"region": "us-east-1", "deploymentId": "d-ABCDEF123", "instanceGroupId": "x",
                   "deploymentGroup": "checkout-live", "state": "START", "application": "checkout"}
    });
    let answer = function.invoke(event);
    assert!(answer.ok, "{:?}", answer.body);
    assert_eq!(guards(&answer.body), ["checkout-api", "search-api"], "{}", answer.body);
}

#[test]
fn check_changed_selects_the_guards_of_a_resource() {
    let h = harness();
    let output = h.ripcord(&["check", "--json", "--changed", "search:live"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    let summary: Value = serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guards(&summary), ["search-api"]);
    let calls = h.sim.api_log().len();
    let none = h.ripcord(&["check", "--changed", "projects/acme/locations/europe-west1/services/billing"]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(stderr(&none).contains("no guard watches"), "{}", stderr(&none));
    assert_eq!(h.sim.api_log().len(), calls, "nothing called");
}

/// Eventarc delivers a Cloud Audit Log entry as a CloudEvent; the Cloud Run Job's workflow passes its resource
/// name to `check --changed` (deploy/gcp/eventarc-workflow.yaml).
#[test]
fn a_cloud_run_update_service_audit_entry_checks_its_guard() {
    let h = SimHarness::start(&crate::support::run_scenario(
        "[[service.traffic]]\nrevision = \"search-00001-aaa\"\npercent = 100\n",
        "",
        "",
    ));
    h.sim.advance(5 * 60_000);
    h.cloud_run_guards("", "");
    let entry = "projects/acme/locations/europe-west1/services/search";
    let output = h.ripcord(&["check", "--json", "--changed", entry]);
    assert_ne!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    let summary: Value = serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guards(&summary), ["search-api"]);
    // The CloudEvent as Eventarc sends it, read the way function mode reads every event.
    let event = json!({
        "specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "source": "//cloudaudit.googleapis.com/projects/acme/logs/activity",
        "data": {"protoPayload": {"methodName": "google.cloud.run.v2.Services.UpdateService", "resourceName": entry,
                                   "serviceName": "run.googleapis.com"}}
    });
    let parsed = ripcord::function::Event::parse(event.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        parsed,
        ripcord::function::Event::Changed {
            resources: vec![entry.to_string()],
            what: format!("google.cloud.run.v2.Services.UpdateService on {entry}")
        }
    );
}
