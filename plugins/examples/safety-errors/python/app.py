"""safety-errors, in Python: rollback when the candidate's error rate or safety-filter hits per request exceed
their limits in `windows` consecutive windows, each with at least `min_requests` requests.

The same policy exists in Rust, JavaScript and C next to this folder; the tests check that all four agree."""

from wit_world import exports
from wit_world.imports import types
from wit_world.imports.types import ParamValue_Float, ParamValue_Integer
from componentize_py_types import Err

METRICS = ["requests", "errors", "safety_hits"]
PARAMETERS = [
    types.ParamSpec("max_error_rate", "Highest tolerated error rate (0.02 = 2%).", ParamValue_Float(0.02)),
    types.ParamSpec("max_safety_rate", "Highest tolerated safety-filter hits per request (0.001 = 1 in 1000).", ParamValue_Float(0.001)),
    types.ParamSpec("windows", "Consecutive bad windows (the latest ones) that mean rollback.", ParamValue_Integer(2)),
    types.ParamSpec("min_requests", "Requests a window needs to count.", ParamValue_Integer(100)),
]


def param(evaluation, name):
    """The guard's value of a number parameter, else the declared default."""
    given = {p.name: p.value for p in evaluation.params}
    unknown = [n for n in given if n not in {s.name for s in PARAMETERS}]
    if unknown:
        raise Err(f"unknown parameter `{unknown[0]}`")
    value = given.get(name) or next(s.default for s in PARAMETERS if s.name == name)
    if isinstance(value, (ParamValue_Float, ParamValue_Integer)):
        return float(value.value)
    raise Err(f"parameter `{name}` must be a number")


def window_sum(series, window):
    total = 0.0
    for point in series.points:
        if point.window == window:
            total += point.value
    return total


class Evaluator(exports.Evaluator):
    def describe(self) -> types.PolicyInfo:
        return types.PolicyInfo(
            "safety-errors",
            "0.1.0",
            "Rollback when the candidate's error rate or safety-filter hits per request exceed their limits in "
            "`windows` consecutive windows, each with at least `min_requests` requests.",
            METRICS,
            PARAMETERS,
        )

    def evaluate(self, evaluation: types.Evaluation) -> types.Report:
        max_error, max_safety = param(evaluation, "max_error_rate"), param(evaluation, "max_safety_rate")
        needed, min_requests = max(1, int(param(evaluation, "windows"))), int(param(evaluation, "min_requests"))
        candidate = evaluation.candidate
        series = {m.name: m for m in candidate.metrics}
        missing = [m for m in METRICS if m not in series]
        if missing:
            return types.Report(types.Verdict.INCONCLUSIVE, f"revision {candidate.id} did not report {' and '.join(missing)}", [])
        count = len(evaluation.windows)
        if count < needed:
            return types.Report(types.Verdict.INCONCLUSIVE, f"{count} windows evaluated, {needed} needed", [])
        checks, bad, thin = [], 0, 0
        for w in range(count - needed, count):
            served = window_sum(series["requests"], w)
            if served < min_requests:
                thin += 1
                checks.append(types.Check(f"requests[w{w}]", served, float(min_requests), False))
                continue
            error_rate = window_sum(series["errors"], w) / served
            safety_rate = window_sum(series["safety_hits"], w) / served
            errors_ok, safety_ok = error_rate <= max_error, safety_rate <= max_safety
            checks.append(types.Check(f"error_rate[w{w}]", error_rate, max_error, errors_ok))
            checks.append(types.Check(f"safety_rate[w{w}]", safety_rate, max_safety, safety_ok))
            if not (errors_ok and safety_ok):
                bad += 1
        if thin:
            verdict, reason = types.Verdict.INCONCLUSIVE, f"{thin} of the last {needed} windows had fewer than {min_requests} requests"
        elif bad == needed:
            verdict, reason = types.Verdict.ROLLBACK, f"error or safety rate above limit in the last {needed} consecutive windows"
        elif bad == 0:
            verdict, reason = types.Verdict.PROMOTE, f"error and safety rates within limits in the last {needed} windows"
        else:
            verdict, reason = types.Verdict.HOLD, f"error or safety rate above limit in {bad} of the last {needed} windows"
        return types.Report(verdict, reason, checks)
