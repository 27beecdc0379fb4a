// slow-requests, in JavaScript (contract 0.3.0): rollback when more than 5% of the candidate's requests have
// become slower than `factor` x the known good's p95 (that is, its p95 is above it) and, during a split, more
// than `ratio` x the baseline's share are -- by the host's change detectors at `alpha` per day, so a slowdown that
// starts an hour into the release is weighed against itself. The policy asks the host to count the requests slower
// than that threshold (`latencyThresholds`); they arrive as the `slow_requests_<T>ms` series.
//
// The same policy is in Rust, Python and C next to this folder; the tests check that all four agree. The host's
// `stats` interface is an import (`ripcord:policy/stats@0.3.0`), its functions and fields in camelCase; an option
// that is none arrives as undefined; 64-bit integers are read with Number().

import stats from "ripcord:policy/stats@0.3.0";

// The share of requests slower than a p95: what "the p95 is above the threshold" means per request.
const TAIL = 0.05;

const PARAMETERS = [
  { name: "factor", description: "Tolerated ratio of the candidate's p95 to the known good's.", default: { tag: "float", val: 1.3 } },
  { name: "ratio", description: "During a split: tolerated multiple of the baseline's share of slow requests.", default: { tag: "float", val: 2.0 } },
  { name: "alpha", description: "Highest tolerated chance of rolling back a healthy candidate in a day.", default: { tag: "float", val: 0.01 } },
];

// The guard's value of a number parameter, else the declared default.
function param(params, name) {
  for (const p of params) {
    if (!PARAMETERS.some((s) => s.name === p.name)) throw `unknown parameter \`${p.name}\``;
  }
  const given = params.find((p) => p.name === name);
  const value = given ? given.value : PARAMETERS.find((s) => s.name === name).default;
  if (value.tag === "float" || value.tag === "integer") return Number(value.val);
  throw `parameter \`${name}\` must be a number`;
}

// The threshold: factor x the median of the known good's per-minute p95, rounded to whole milliseconds.
function threshold(knownGood, factor) {
  if (!knownGood) return undefined;
  const p95 = knownGood.revision.metrics.find((m) => m.name === "latency_p95");
  if (!p95) return undefined;
  const level = stats.percentile(p95.points.map((p) => p.value), 50);
  if (level === undefined) return undefined;
  const rounded = Math.floor(factor * level + 0.5);
  return rounded >= 1 ? rounded : undefined;
}

// [requests, slow] by period start, periods with requests only, in time order.
function byPeriod(revision, slow) {
  const series = Object.fromEntries(revision.metrics.map((m) => [m.name, m]));
  const periods = new Map();
  for (const point of series.requests ? series.requests.points : []) {
    const at = Number(point.at);
    const period = periods.get(at) || [0.0, 0.0];
    period[0] += point.value;
    periods.set(at, period);
  }
  for (const point of series[slow] ? series[slow].points : []) {
    const period = periods.get(Number(point.at));
    if (period) period[1] += point.value;
  }
  return new Map([...periods].filter(([, [requests]]) => requests > 0).sort(([a], [b]) => a - b));
}

export const evaluator = {
  describe() {
    return {
      name: "slow-requests",
      version: "0.3.0",
      description:
        "Rollback when more than 5% of the candidate's requests have become slower than factor x the known good's " +
        "p95, and ratio x the baseline's share, by the host's change detectors.",
      metrics: ["requests", "latency_p95"],
      parameters: PARAMETERS,
    };
  },

  latencyThresholds(request) {
    const t = threshold(request.knownGood, param(request.params, "factor"));
    return t === undefined ? [] : [t];
  },

  evaluate(evaluation) {
    const factor = param(evaluation.params, "factor");
    const ratio = param(evaluation.params, "ratio");
    const alpha = param(evaluation.params, "alpha");
    const report = (verdict, reason, checks) => ({ verdict, reason, checks, findings: [] });
    const t = threshold(evaluation.knownGood, factor);
    if (t === undefined) return report("inconclusive", "no known good's p95 to set a threshold from", []);
    const slow = `slow_requests_${t}ms`;
    const candidate = byPeriod(evaluation.candidate, slow);
    if (candidate.size === 0 || !evaluation.candidate.metrics.some((m) => m.name === slow)) {
      return report("inconclusive", `candidate did not report ${slow}`, []);
    }
    const deployedAt = evaluation.deployedAt === undefined ? undefined : Number(evaluation.deployedAt);
    const fromFirstTraffic =
      deployedAt !== undefined && evaluation.windows.length > 0 && Number(evaluation.windows[0].start) <= deployedAt;
    const detector = { alpha, horizon: 1440, fromFirstTraffic };
    const rates = [...candidate.values()].map(([requests, errors]) => ({ requests, errors }));
    const above = stats.errorLimitDetector(rates, TAIL, detector);
    if (!above) throw "invalid slow-request counts";
    const check = (name, observed, passed) => ({ name, observed, threshold: 1.0, passed });
    const checks = [check("evidence_slower", above.maxStatistic, !above.alarm)];
    let worse = above.alarm;
    if (evaluation.baseline) {
      const baseline = byPeriod(evaluation.baseline, slow);
      const paired = [...candidate]
        .filter(([at]) => baseline.has(at))
        .map(([at, [candidateRequests, candidateErrors]]) => {
          const [baselineRequests, baselineErrors] = baseline.get(at);
          return { baselineRequests, baselineErrors, candidateRequests, candidateErrors };
        });
      const against = stats.errorRatioDetector(paired, ratio, detector);
      if (!against) throw "invalid slow-request counts";
      checks.push(check("evidence_slower_than_baseline", against.maxStatistic, !against.alarm));
      worse = worse && against.alarm;
    }
    let requests = 0.0;
    let slower = 0.0;
    for (const [r, s] of candidate.values()) {
      requests += r;
      slower += s;
    }
    const share = slower / requests;
    const percent = (share * 100).toFixed(1);
    if (worse) return report("rollback", `${percent}% of requests slower than ${t} ms: a slowdown detected`, checks);
    return report(share <= TAIL ? "promote" : "hold", `${percent}% of requests slower than ${t} ms`, checks);
  },
};
