"""Reads the simulator with AWS clients nobody on the project wrote: boto3 in each CloudWatch protocol (its
default AWS JSON 1.0, Smithy RPC v2 CBOR and the query protocol) and for Lambda, and the AWS CLI.

Usage: aws_clients.py ENDPOINT START END FUNCTION ALIAS OUT.json

Checks what a client checks itself (error codes, statuses, shapes) and writes what it read to OUT.json, for the
Rust test to compare with the simulator's own request log.
"""

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

import boto3
import botocore.config
import botocore.model
from botocore.exceptions import ClientError

ENDPOINT, START, END, FUNCTION, ALIAS, OUT = sys.argv[1:7]
START_TIME = datetime.fromtimestamp(int(START), tz=timezone.utc)
END_TIME = datetime.fromtimestamp(int(END), tz=timezone.utc)
RESOURCE = f"{FUNCTION}:{ALIAS}"
ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Nothing from the machine's own AWS configuration.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
os.environ.update(ENV)
NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})


def client(service, protocol=None):
    """A boto3 client; `protocol` forces one of the service's protocols (boto3 picks JSON 1.0 for CloudWatch)."""
    original = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
    if protocol:
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (protocol,)
    try:
        c = boto3.session.Session().client(service, endpoint_url=ENDPOINT, config=NO_RETRIES)
        c.meta.service_model.resolved_protocol  # resolve while the override holds (a cached property)
        return c
    finally:
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = original


def dims(**pairs):
    return [{"Name": k, "Value": v} for k, v in pairs.items()]


def queries():
    out = []
    for version in ("1", "2"):
        by_version = dims(FunctionName=FUNCTION, Resource=RESOURCE, ExecutedVersion=version)
        for metric, stat in (("Invocations", "Sum"), ("Errors", "Sum"), ("Duration", "Maximum")):
            out.append(
                {
                    "Id": f"{metric.lower()}_v{version}",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": by_version},
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            )
    # Lambda publishes no {FunctionName, ExecutedVersion}: real CloudWatch answers no data for it.
    out.append(
        {
            "Id": "unpublished",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Invocations",
                    "Dimensions": dims(FunctionName=FUNCTION, ExecutedVersion="1"),
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }
    )
    return out


def series(results):
    """{id: [[epoch seconds, value], ...]} oldest first."""
    out = {}
    for r in results:
        points = [[int(t.timestamp()), v] for t, v in zip(r["Timestamps"], r["Values"])]
        out.setdefault(r["Id"], []).extend(points)
    return {k: sorted(v) for k, v in out.items()}


def get_metric_data(protocol):
    cw = client("cloudwatch", protocol)
    # The paginator follows NextToken; a small MaxDatapoints makes it page.
    pages = cw.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries(), StartTime=START_TIME, EndTime=END_TIME, MaxDatapoints=7
    )
    results, request_ids = [], set()
    for page in pages:
        results.extend(page["MetricDataResults"])
        request_ids.add(page["ResponseMetadata"]["RequestId"])
        assert page["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert all(request_ids), "every answer carries a request id"
    return {"series": series(results), "pages": len(request_ids), "protocol": cw.meta.service_model.resolved_protocol}


def expect_error(call, code, status):
    try:
        call()
    except ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"expected {code} {status}, got {got}: {e.response}"
        assert e.response["Error"].get("Message"), f"an error without a message: {e.response}"
        return e.response["Error"]["Message"]
    raise AssertionError(f"expected {code}")


def cloudwatch_errors(protocol):
    cw = client("cloudwatch", protocol)
    bad = queries()[:1]
    bad[0]["MetricStat"]["Period"] = 90
    invalid = expect_error(
        lambda: cw.get_metric_data(MetricDataQueries=bad, StartTime=START_TIME, EndTime=END_TIME),
        "InvalidParameterValue",
        400,
    )
    unsimulated = expect_error(
        lambda: cw.put_metric_data(Namespace="Test", MetricData=[{"MetricName": "m", "Value": 1.0}]),
        "NotImplemented",
        501,
    )
    return {"invalid": invalid, "unsimulated": unsimulated}


def get_metric_statistics(protocol):
    """Per-minute Sum and Maximum, and p99, of v1's invocations and durations through the alias."""
    cw = client("cloudwatch", protocol)
    by_version = dims(FunctionName=FUNCTION, Resource=RESOURCE, ExecutedVersion="1")
    invocations = cw.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=by_version,
        StartTime=START_TIME, EndTime=END_TIME, Period=60, Statistics=["Sum", "SampleCount"])
    duration = cw.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Duration", Dimensions=by_version,
        StartTime=START_TIME, EndTime=END_TIME, Period=60, Statistics=["Maximum"], ExtendedStatistics=["p99"])
    assert all(p["Unit"] == "Count" for p in invocations["Datapoints"]), invocations
    assert all(p["Unit"] == "Milliseconds" for p in duration["Datapoints"]), duration
    too_many = expect_error(
        lambda: cw.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=by_version,
            StartTime=datetime.fromtimestamp(0, tz=timezone.utc), EndTime=END_TIME, Period=60, Statistics=["Sum"]),
        "InvalidParameterCombination", 400)
    by_time = lambda points: sorted(points, key=lambda p: p["Timestamp"])
    return {
        "invocations": [[int(p["Timestamp"].timestamp()), p["Sum"]] for p in by_time(invocations["Datapoints"])],
        "sample_counts": [p["SampleCount"] for p in by_time(invocations["Datapoints"])],
        "duration_max": [[int(p["Timestamp"].timestamp()), p["Maximum"]] for p in by_time(duration["Datapoints"])],
        "duration_p99": [p["ExtendedStatistics"]["p99"] for p in by_time(duration["Datapoints"])],
        "too_many": too_many,
    }


def list_metrics(protocol):
    cw = client("cloudwatch", protocol)
    metrics = []
    for page in cw.get_paginator("list_metrics").paginate(
        Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=[{"Name": "FunctionName", "Value": FUNCTION}]
    ):
        metrics.extend(page["Metrics"])
    return sorted(sorted(d["Name"] + "=" + d["Value"] for d in m["Dimensions"]) for m in metrics)


def lambda_calls():
    aws_lambda = client("lambda")
    unqualified = aws_lambda.get_function_configuration(FunctionName=FUNCTION)
    for field in ("RevisionId", "Architectures", "FunctionArn", "Version", "LastUpdateStatus"):
        assert field in unqualified, f"GetFunctionConfiguration lacks {field}"
    latest = aws_lambda.get_function_configuration(FunctionName=FUNCTION, Qualifier="$LATEST")
    alias = aws_lambda.get_alias(FunctionName=FUNCTION, Name=ALIAS)
    by_version = aws_lambda.list_aliases(FunctionName=FUNCTION, FunctionVersion=alias["FunctionVersion"])
    other_version = aws_lambda.list_aliases(FunctionName=FUNCTION, FunctionVersion="3")
    provisioned = aws_lambda.list_provisioned_concurrency_configs(FunctionName=FUNCTION)
    functions = [f["FunctionName"] for page in aws_lambda.get_paginator("list_functions").paginate() for f in page["Functions"]]
    function = aws_lambda.get_function(FunctionName=FUNCTION, Qualifier=ALIAS)
    missing = expect_error(
        lambda: aws_lambda.get_alias(FunctionName=FUNCTION, Name="no-such-alias"), "ResourceNotFoundException", 404
    )
    return {
        "unqualified_arn": unqualified["FunctionArn"],
        "latest_arn": latest["FunctionArn"],
        "revision_id": unqualified["RevisionId"],
        "architectures": unqualified["Architectures"],
        "aliases_for_version": [a["Name"] for a in by_version["Aliases"]],
        "aliases_for_other_version": [a["Name"] for a in other_version["Aliases"]],
        "provisioned": provisioned["ProvisionedConcurrencyConfigs"],
        "missing_alias": missing,
        "functions": functions,
        "get_function_version": function["Configuration"]["Version"],
        "request_id": alias["ResponseMetadata"]["RequestId"],
    }


def aws_cli():
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {"MetricDataQueries": queries(), "StartTime": START_TIME.isoformat(), "EndTime": END_TIME.isoformat()}, f
        )
    out = subprocess.run(
        [aws, "cloudwatch", "get-metric-data", "--endpoint-url", ENDPOINT, "--cli-input-json", f"file://{f.name}",
         "--output", "json"],
        capture_output=True, text=True, env={**os.environ, **ENV},
    )
    os.unlink(f.name)
    assert out.returncode == 0, f"aws cloudwatch get-metric-data failed: {out.stderr}"
    results = json.loads(out.stdout)["MetricDataResults"]
    for r in results:
        # AWS CLI v1 prints timestamps as the wire had them (epoch seconds in JSON 1.0) unless told otherwise.
        r["Timestamps"] = [
            datetime.fromtimestamp(t, tz=timezone.utc) if isinstance(t, (int, float)) else datetime.fromisoformat(t)
            for t in r["Timestamps"]
        ]
    alias = subprocess.run(
        [aws, "lambda", "get-alias", "--endpoint-url", ENDPOINT, "--function-name", FUNCTION, "--name", ALIAS,
         "--output", "json"],
        capture_output=True, text=True, env={**os.environ, **ENV},
    )
    assert alias.returncode == 0, f"aws lambda get-alias failed: {alias.stderr}"
    return {"series": series(results), "alias_version": json.loads(alias.stdout)["FunctionVersion"]}


report = {
    "cloudwatch": {p or "default": get_metric_data(p) for p in (None, "smithy-rpc-v2-cbor", "query")},
    "errors": {p or "default": cloudwatch_errors(p) for p in (None, "smithy-rpc-v2-cbor", "query")},
    "list_metrics": {p or "default": list_metrics(p) for p in (None, "smithy-rpc-v2-cbor", "query")},
    "statistics": {p or "default": get_metric_statistics(p) for p in (None, "smithy-rpc-v2-cbor", "query")},
    "lambda": lambda_calls(),
    "cli": aws_cli(),
}
with open(OUT, "w") as f:
    json.dump(report, f, indent=1)
