"""slow-requests, in Python (contract 0.3.0): rollback when more than 5% of the candidate's requests have become
slower than `factor` x the known good's p95 (that is, its p95 is above it) and, during a split, more than `ratio` x
the baseline's share are — by the host's change detectors at `alpha` per day, so a slowdown that starts an hour into
the release is weighed against itself. The policy asks the host to count the requests slower than that threshold
(`latency_thresholds`); they arrive as the `slow_requests_<T>ms` series."""

import math

from wit_world import exports
from wit_world.imports import stats, types
from wit_world.imports.types import ParamValue_Float
from componentize_py_types import Err

# The share of requests slower than a p95: what "the p95 is above the threshold" means per request.
TAIL = 0.05

PARAMETERS = [
    types.ParamSpec("factor", "Tolerated ratio of the candidate's p95 to the known good's.", ParamValue_Float(1.3)),
    types.ParamSpec("ratio", "During a split: tolerated multiple of the baseline's share of slow requests.",
                    ParamValue_Float(2.0)),
    types.ParamSpec("alpha", "Highest tolerated chance of rolling back a healthy candidate in a day.",
                    ParamValue_Float(0.01)),
]


def param(params, name):
    given = {p.name: p.value for p in params}
    unknown = [n for n in given if n not in {s.name for s in PARAMETERS}]
    if unknown:
        raise Err(f"unknown parameter `{unknown[0]}`")
    value = given.get(name) or next(s.default for s in PARAMETERS if s.name == name)
    return float(value.value)


def threshold(known_good, factor):
    """factor x the median of the known good's per-minute p95, rounded to whole milliseconds."""
    if known_good is None:
        return None
    p95 = next((m for m in known_good.revision.metrics if m.name == "latency_p95"), None)
    if p95 is None:
        return None
    level = stats.percentile([p.value for p in p95.points], 50.0)
    if level is None:
        return None
    rounded = math.floor(factor * level + 0.5)
    return rounded if rounded >= 1 else None


def by_period(revision, slow):
    """(requests, slow requests) by period start."""
    series = {m.name: m for m in revision.metrics}
    periods = {}
    for point in series["requests"].points if "requests" in series else []:
        periods.setdefault(point.at, [0.0, 0.0])[0] += point.value
    for point in series[slow].points if slow in series else []:
        if point.at in periods:
            periods[point.at][1] += point.value
    return {at: c for at, c in sorted(periods.items()) if c[0] > 0}


class Evaluator(exports.Evaluator):
    def describe(self) -> types.PolicyInfo:
        return types.PolicyInfo(
            "slow-requests", "0.3.0",
            "Rollback when more than 5% of the candidate's requests have become slower than factor x the known "
            "good's p95, and ratio x the baseline's share, by the host's change detectors.",
            ["requests", "latency_p95"], PARAMETERS,
        )

    def latency_thresholds(self, request: types.ThresholdRequest) -> list[int]:
        t = threshold(request.known_good, param(request.params, "factor"))
        return [] if t is None else [t]

    def evaluate(self, evaluation: types.Evaluation) -> types.Report:
        params = evaluation.params
        factor, ratio, alpha = param(params, "factor"), param(params, "ratio"), param(params, "alpha")
        t = threshold(evaluation.known_good, factor)
        if t is None:
            return types.Report(types.Verdict.INCONCLUSIVE, "no known good's p95 to set a threshold from", [], [])
        slow = f"slow_requests_{t}ms"
        candidate = by_period(evaluation.candidate, slow)
        if not candidate or not any(m.name == slow for m in evaluation.candidate.metrics):
            return types.Report(types.Verdict.INCONCLUSIVE, f"candidate did not report {slow}", [], [])
        windows = evaluation.windows
        from_first_traffic = (evaluation.deployed_at is not None and len(windows) > 0
                              and windows[0].start <= evaluation.deployed_at)
        detector = stats.Detector(alpha, 1440, from_first_traffic)
        rates = [stats.RateCounts(r, s) for r, s in candidate.values()]
        above = stats.error_limit_detector(rates, TAIL, detector)
        if above is None:
            raise Err("invalid slow-request counts")
        checks = [types.Check("evidence_slower", above.max_statistic, 1.0, not above.alarm)]
        worse = above.alarm
        if evaluation.baseline is not None:
            baseline = by_period(evaluation.baseline, slow)
            paired = [stats.PeriodCounts(baseline[at][0], baseline[at][1], r, s)
                      for at, (r, s) in candidate.items() if at in baseline]
            against = stats.error_ratio_detector(paired, ratio, detector)
            if against is None:
                raise Err("invalid slow-request counts")
            checks.append(types.Check("evidence_slower_than_baseline", against.max_statistic, 1.0, not against.alarm))
            worse = worse and against.alarm
        requests = sum(r for r, _ in candidate.values())
        share = sum(s for _, s in candidate.values()) / requests
        if worse:
            return types.Report(types.Verdict.ROLLBACK,
                                f"{share * 100:.1f}% of requests slower than {t} ms: a slowdown detected", checks, [])
        verdict = types.Verdict.PROMOTE if share <= TAIL else types.Verdict.HOLD
        return types.Report(verdict, f"{share * 100:.1f}% of requests slower than {t} ms", checks, [])
