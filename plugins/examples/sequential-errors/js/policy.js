// sequential-errors, in JavaScript (contract 0.2.0): rollback when the candidate's error rate is above `max_rate`
// and above `ratio` x the baseline's, each by the host's anytime-valid sequential tests at `alpha` -- the same rule
// as `builtin:error-rate`, minute by minute, so looking every minute does not inflate false rollbacks.
//
// The same policy is in Rust, Python and C next to this folder; the tests check that all four agree. The host's
// `stats` interface is an import (`ripcord:policy/stats@0.2.0`), its functions and fields in camelCase; an option
// that is none arrives as undefined.

import stats from "ripcord:policy/stats@0.2.0";

const PARAMETERS = [
  { name: "max_rate", description: "Error rate always tolerated (0.01 = 1%).", default: { tag: "float", val: 0.01 } },
  { name: "ratio", description: "Tolerated multiple of the baseline's error rate.", default: { tag: "float", val: 2.0 } },
  { name: "alpha", description: "Highest tolerated chance of rolling back a healthy candidate.", default: { tag: "float", val: 0.01 } },
];

// The guard's value of a number parameter, else the declared default.
function param(evaluation, name) {
  for (const p of evaluation.params) {
    if (!PARAMETERS.some((s) => s.name === p.name)) throw `unknown parameter \`${p.name}\``;
  }
  const given = evaluation.params.find((p) => p.name === name);
  const value = given ? given.value : PARAMETERS.find((s) => s.name === name).default;
  if (value.tag === "float" || value.tag === "integer") return Number(value.val);
  throw `parameter \`${name}\` must be a number`;
}

// [requests, errors] by period start, periods with requests only, in time order.
function byPeriod(revision) {
  const series = Object.fromEntries(revision.metrics.map((m) => [m.name, m]));
  const periods = new Map();
  for (const point of series.requests ? series.requests.points : []) {
    const at = Number(point.at);
    const period = periods.get(at) || [0.0, 0.0];
    period[0] += point.value;
    periods.set(at, period);
  }
  for (const point of series.errors ? series.errors.points : []) {
    const period = periods.get(Number(point.at));
    if (period) period[1] += point.value;
  }
  return new Map([...periods].filter(([, [requests]]) => requests > 0).sort(([a], [b]) => a - b));
}

export const evaluator = {
  describe() {
    return {
      name: "sequential-errors",
      version: "0.2.0",
      description:
        "Rollback when the candidate's error rate is above max_rate and ratio x the baseline's, by the host's " +
        "anytime-valid sequential tests at alpha.",
      metrics: ["requests", "errors"],
      parameters: PARAMETERS,
    };
  },

  evaluate(evaluation) {
    const maxRate = param(evaluation, "max_rate");
    const ratio = param(evaluation, "ratio");
    const alpha = param(evaluation, "alpha");
    const report = (verdict, reason, checks) => ({ verdict, reason, checks, findings: [] });
    const candidate = byPeriod(evaluation.candidate);
    if (candidate.size === 0) {
      return report("inconclusive", `candidate ${evaluation.candidate.id} served no requests`, []);
    }
    const rates = [...candidate.values()].map(([requests, errors]) => ({ requests, errors }));
    const limit = stats.errorLimitTest(rates, Math.max(maxRate, 1e-6), alpha);
    if (!limit) throw "invalid error counts";
    const check = (name, observed, passed) => ({ name, observed, threshold: 1 / alpha, passed });
    const checks = [check("evidence_above_max_rate", limit.maxEValue, !limit.reject)];
    let worse = limit.reject;
    if (evaluation.baseline) {
      const baseline = byPeriod(evaluation.baseline);
      const paired = [...candidate]
        .filter(([at]) => baseline.has(at))
        .map(([at, [candidateRequests, candidateErrors]]) => {
          const [baselineRequests, baselineErrors] = baseline.get(at);
          return { baselineRequests, baselineErrors, candidateRequests, candidateErrors };
        });
      const test = stats.errorRatioTest(paired, ratio, alpha);
      if (!test) throw "invalid error counts";
      checks.push(check("evidence_above_ratio_x_baseline", test.maxEValue, !test.reject));
      worse = worse && test.reject;
    }
    let requests = 0.0;
    let errors = 0.0;
    for (const [r, e] of candidate.values()) {
      requests += r;
      errors += e;
    }
    const rate = errors / requests;
    const percent = (rate * 100).toFixed(2);
    if (worse) {
      return report("rollback", `error rate ${percent}% above the tolerated rate (anytime-valid p = ${limit.pValue.toExponential(2)})`, checks);
    }
    return report(rate <= maxRate ? "promote" : "hold", `error rate ${percent}%, not significantly above the tolerated rate`, checks);
  },
};
