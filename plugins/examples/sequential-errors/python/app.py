"""sequential-errors, in Python (contract 0.2.0): rollback when the candidate's error rate is above `max_rate` and
above `ratio` x the baseline's, each by the host's anytime-valid sequential tests at `alpha` — the same rule as
`builtin:error-rate`, minute by minute, so looking every minute does not inflate false rollbacks."""

from wit_world import exports
from wit_world.imports import stats, types
from wit_world.imports.types import ParamValue_Float
from componentize_py_types import Err

PARAMETERS = [
    types.ParamSpec("max_rate", "Error rate always tolerated (0.01 = 1%).", ParamValue_Float(0.01)),
    types.ParamSpec("ratio", "Tolerated multiple of the baseline's error rate.", ParamValue_Float(2.0)),
    types.ParamSpec("alpha", "Highest tolerated chance of rolling back a healthy candidate.", ParamValue_Float(0.01)),
]


def param(evaluation, name):
    given = {p.name: p.value for p in evaluation.params}
    unknown = [n for n in given if n not in {s.name for s in PARAMETERS}]
    if unknown:
        raise Err(f"unknown parameter `{unknown[0]}`")
    value = given.get(name) or next(s.default for s in PARAMETERS if s.name == name)
    return float(value.value)


def by_period(revision):
    """(requests, errors) by period start."""
    series = {m.name: m for m in revision.metrics}
    periods = {}
    for point in series["requests"].points if "requests" in series else []:
        periods.setdefault(point.at, [0.0, 0.0])[0] += point.value
    for point in series["errors"].points if "errors" in series else []:
        if point.at in periods:
            periods[point.at][1] += point.value
    return {at: c for at, c in sorted(periods.items()) if c[0] > 0}


class Evaluator(exports.Evaluator):
    def describe(self) -> types.PolicyInfo:
        return types.PolicyInfo(
            "sequential-errors", "0.2.0",
            "Rollback when the candidate's error rate is above max_rate and ratio x the baseline's, by the host's "
            "anytime-valid sequential tests at alpha.",
            ["requests", "errors"], PARAMETERS,
        )

    def evaluate(self, evaluation: types.Evaluation) -> types.Report:
        max_rate, ratio, alpha = param(evaluation, "max_rate"), param(evaluation, "ratio"), param(evaluation, "alpha")
        candidate = by_period(evaluation.candidate)
        if not candidate:
            return types.Report(types.Verdict.INCONCLUSIVE, f"candidate {evaluation.candidate.id} served no requests", [], [])
        rates = [stats.RateCounts(r, e) for r, e in candidate.values()]
        limit = stats.error_limit_test(rates, max(max_rate, 1e-6), alpha)
        checks = [types.Check("evidence_above_max_rate", limit.max_e_value, 1 / alpha, not limit.reject)]
        worse = limit.reject
        if evaluation.baseline is not None:
            baseline = by_period(evaluation.baseline)
            paired = [stats.PeriodCounts(baseline[at][0], baseline[at][1], r, e)
                      for at, (r, e) in candidate.items() if at in baseline]
            ratio_test = stats.error_ratio_test(paired, ratio, alpha)
            checks.append(types.Check("evidence_above_ratio_x_baseline", ratio_test.max_e_value, 1 / alpha,
                                      not ratio_test.reject))
            worse = worse and ratio_test.reject
        requests = sum(r for r, _ in candidate.values())
        rate = sum(e for _, e in candidate.values()) / requests
        if worse:
            return types.Report(types.Verdict.ROLLBACK,
                                f"error rate {rate:.2%} above the tolerated rate (anytime-valid p = {limit.p_value:.2e})",
                                checks, [])
        verdict = types.Verdict.PROMOTE if rate <= max_rate else types.Verdict.HOLD
        return types.Report(verdict, f"error rate {rate:.2%}, not significantly above the tolerated rate", checks, [])
