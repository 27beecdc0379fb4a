"""Reads and changes the simulator with Google clients nobody on the project wrote: google-cloud-run for Python
over REST (it asks for enums as integers) for Cloud Run Admin v2, and the Google API discovery client
(google-api-python-client, enums as names) for Cloud Monitoring v3 and Cloud Run.

Usage: google_clients.py ENDPOINT PROJECT LOCATION SERVICE START END OUT.json

Checks what a client checks itself (errors, shapes, enum names) and writes what it read to OUT.json, for the Rust
test to compare with the simulator's own request log.
"""

import json
import sys
import urllib.request
from datetime import datetime, timezone

import httplib2
from google.api_core import exceptions, retry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

ENDPOINT, PROJECT, LOCATION, SERVICE, START, END, OUT = sys.argv[1:8]
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
NAME = f"{PARENT}/services/{SERVICE}"


def rfc3339(epoch):
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


START_TIME, END_TIME = rfc3339(START), rfc3339(END)
OPTIONS = ClientOptions(api_endpoint=ENDPOINT)
FAST_POLLING = retry.Retry(initial=0.05, maximum=0.2, multiplier=1.5, timeout=60)


def advance_clock(ms):
    """Moves the simulator's virtual clock (its control API, not part of any Google API)."""
    request = urllib.request.Request(f"{ENDPOINT}/_sim/advance", data=json.dumps({"ms": ms}).encode(), method="POST")
    urllib.request.urlopen(request).read()


def expect_http_error(call, status, *named):
    try:
        call()
    except HttpError as e:
        assert e.resp.status == status, f"expected {status}, got {e.resp.status}: {e}"
        error = json.loads(e.content)["error"]
        assert error["code"] == status and error["message"], error
        for name in named:
            assert name in error["message"], f"{name!r} not named in {error['message']!r}"
        return error
    raise AssertionError(f"expected HTTP {status}")


def cloud_run_gapic():
    services = run_v2.ServicesClient(credentials=AnonymousCredentials(), transport="rest", client_options=OPTIONS)
    revisions = run_v2.RevisionsClient(credentials=AnonymousCredentials(), transport="rest", client_options=OPTIONS)
    service = services.get_service(name=NAME)
    traffic = [(t.type_.name, t.revision, t.percent) for t in service.traffic]
    listed = [s.name for s in services.list_services(parent=PARENT)]
    everywhere = [s.name for s in services.list_services(parent=f"projects/{PROJECT}/locations/-")]
    revision_names = [r.name for r in revisions.list_revisions(parent=NAME)]
    across = [r.name for r in revisions.list_revisions(parent=f"{PARENT}/services/-")]
    revision = revisions.get_revision(name=revision_names[-1])
    missing = None
    try:
        revisions.get_revision(name=f"{NAME}/revisions/{SERVICE}-nope")
    except exceptions.NotFound as e:
        missing = e.message

    # validate_only checks the change and moves nothing.
    target = revision_names[-1].rsplit("/", 1)[1]
    all_to_oldest = run_v2.Service(
        name=NAME,
        traffic=[run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision=target, percent=100)],
    )
    validated = services.update_service(request={"service": all_to_oldest, "validate_only": True})
    would_be = validated.result(polling=FAST_POLLING)
    after_validation = services.get_service(name=NAME)
    bad = run_v2.Service(name=NAME, traffic=[run_v2.TrafficTarget(
        type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
        revision=target, percent=50)])
    invalid = None
    try:
        services.update_service(request={"service": bad, "validate_only": True})
    except exceptions.BadRequest as e:
        invalid = e.message

    # A real change, followed through its long-running operation (the simulator's clock moves on meanwhile, as
    # the reconciliation takes virtual time).
    change = services.update_service(request={"service": all_to_oldest})
    advance_clock(30_000)
    moved = change.result(polling=FAST_POLLING)
    unimplemented = None
    try:
        services.delete_service(name=NAME)
    except exceptions.MethodNotImplemented as e:
        unimplemented = e.message
    return {
        "traffic": traffic,
        "listed": listed,
        "everywhere": everywhere,
        "revisions": revision_names,
        "revisions_across_services": across,
        "revision": {"name": revision.name, "service": revision.service, "ready": revision.conditions[0].state.name},
        "missing_revision": missing,
        "validate_only": {
            "would_be": [(t.revision, t.percent) for t in would_be.traffic],
            "generation_before": service.generation,
            "generation_after": after_validation.generation,
            "traffic_after": [(t.revision, t.percent) for t in after_validation.traffic],
            "invalid": invalid,
        },
        "moved": [(t.type_.name, t.revision, t.percent) for t in moved.traffic],
        "generation_moved": moved.generation,
        "unimplemented": unimplemented,
    }


def discovery(api, version):
    return build(api, version, http=httplib2.Http(), static_discovery=True, client_options={"api_endpoint": ENDPOINT})


def cloud_run_discovery():
    run = discovery("run", "v2")
    service = run.projects().locations().services().get(name=NAME).execute()
    return {"traffic_types": [t["type"] for t in service["traffic"]], "ready": service["terminalCondition"]["state"]}


REQUEST_COUNT = 'metric.type = "run.googleapis.com/request_count"'
LATENCIES = 'metric.type = "run.googleapis.com/request_latencies"'


def time_series(monitoring, filter, aligner="ALIGN_DELTA", reducer=None, group_by=None, start=True, page_size=None):
    """Every series of a query, following nextPageToken; and how many pages it took."""
    series, pages, token = [], 0, None
    while True:
        args = {
            "name": f"projects/{PROJECT}",
            "filter": filter,
            "interval_endTime": END_TIME,
            "aggregation_alignmentPeriod": "60s",
            "aggregation_perSeriesAligner": aligner,
        }
        if start:
            args["interval_startTime"] = START_TIME
        if reducer:
            args["aggregation_crossSeriesReducer"] = reducer
            args["aggregation_groupByFields"] = group_by or []
        if page_size:
            args["pageSize"] = page_size
        if token:
            args["pageToken"] = token
        answer = monitoring.projects().timeSeries().list(**args).execute()
        pages += 1
        series.extend(answer.get("timeSeries", []))
        token = answer.get("nextPageToken")
        if not token:
            return series, pages


def totals(series, label="revision_name"):
    """{label value: sum of int64 points}"""
    out = {}
    for s in series:
        key = s["resource"]["labels"].get(label) or s["metric"]["labels"].get(label)
        out[key] = out.get(key, 0) + sum(int(p["value"]["int64Value"]) for p in s["points"])
    return out


def monitoring_discovery():
    monitoring = discovery("monitoring", "v3")
    by_revision, _ = time_series(
        monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}"',
        reducer="REDUCE_SUM", group_by=["resource.labels.revision_name"])
    kinds = sorted({(s["metricKind"], s["valueType"]) for s in by_revision})
    server_errors, _ = time_series(
        monitoring,
        f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}" AND metric.labels.response_code_class = "5xx"',
        reducer="REDUCE_SUM", group_by=["resource.labels.revision_name"])
    not_5xx, _ = time_series(
        monitoring,
        f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}" AND metric.labels.response_code_class != "5xx"',
        reducer="REDUCE_SUM", group_by=["resource.labels.revision_name"])
    # OR binds tighter than AND (AIP-160): no parentheses needed.
    either, _ = time_series(
        monitoring,
        f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}" OR resource.labels.service_name = "nobody"',
        reducer="REDUCE_SUM", group_by=["resource.labels.revision_name"])
    maximum, _ = time_series(monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}"',
                             aligner="ALIGN_MAX")
    latencies, _ = time_series(monitoring, f'{LATENCIES} AND resource.labels.service_name = "{SERVICE}"',
                               reducer="REDUCE_SUM", group_by=["resource.labels.revision_name"])
    distribution = latencies[0]["points"][0]["value"]["distributionValue"]
    # pageSize counts points: every page but the last is full or holds one series.
    _, paged = time_series(monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}"',
                           page_size=3)
    _, unpaged = time_series(monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}"')
    latest, _ = time_series(monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = "{SERVICE}"',
                            reducer="REDUCE_SUM", start=False)
    regex = expect_http_error(
        lambda: time_series(monitoring, f'{REQUEST_COUNT} AND resource.labels.service_name = '
                                        f'monitoring.regex.full_match("{SERVICE}.*")'),
        400, "monitoring.regex.full_match")
    no_metric = expect_http_error(
        lambda: time_series(monitoring, f'resource.labels.service_name = "{SERVICE}"'), 400, "metric.type")
    return {
        "requests_by_revision": totals(by_revision),
        "kinds": kinds,
        "server_errors_by_revision": totals(server_errors),
        "not_server_errors_by_revision": totals(not_5xx),
        "either_by_revision": totals(either),
        "max_value_types": sorted({s["valueType"] for s in maximum}),
        "distribution": {
            "count": int(distribution["count"]),
            "bucket_counts": [int(c) for c in distribution["bucketCounts"]],
            "bucket_options": distribution["bucketOptions"],
        },
        "pages_of_3_points": paged,
        "pages_unpaged": unpaged,
        "latest_points": [len(s["points"]) for s in latest],
        "regex_error": regex["status"],
        "no_metric_error": no_metric["status"],
    }


report = {
    "run_gapic": cloud_run_gapic(),
    "run_discovery": cloud_run_discovery(),
    "monitoring": monitoring_discovery(),
}
with open(OUT, "w") as f:
    json.dump(report, f, indent=1)
