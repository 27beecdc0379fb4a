// safety-errors, in JavaScript: rollback when the candidate's error rate or safety-filter hits per request exceed
// their limits in `windows` consecutive windows, each with at least `min_requests` requests.
//
// The same policy exists in Rust, Python and C next to this folder; the tests check that all four agree.
// WIT mapping: records are objects (camelCase fields), enums are strings, variants are { tag, val }, an s64
// arrives as a number (QuickJS) or a BigInt (SpiderMonkey) -- hence Number(...) -- and either build takes a number
// back; result<report, string> is a returned report or a thrown string.

const METRICS = ["requests", "errors", "safety_hits"];
const PARAMETERS = [
  { name: "max_error_rate", description: "Highest tolerated error rate (0.02 = 2%).", default: { tag: "float", val: 0.02 } },
  { name: "max_safety_rate", description: "Highest tolerated safety-filter hits per request (0.001 = 1 in 1000).", default: { tag: "float", val: 0.001 } },
  { name: "windows", description: "Consecutive bad windows (the latest ones) that mean rollback.", default: { tag: "integer", val: 2 } },
  { name: "min_requests", description: "Requests a window needs to count.", default: { tag: "integer", val: 100 } },
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

function windowSum(series, window) {
  let total = 0.0;
  for (const point of series.points) {
    if (point.window === window) total += point.value;
  }
  return total;
}

export const evaluator = {
  describe() {
    return {
      name: "safety-errors",
      version: "0.1.0",
      description:
        "Rollback when the candidate's error rate or safety-filter hits per request exceed their limits in " +
        "`windows` consecutive windows, each with at least `min_requests` requests.",
      metrics: METRICS,
      parameters: PARAMETERS,
    };
  },

  evaluate(evaluation) {
    const maxError = param(evaluation, "max_error_rate");
    const maxSafety = param(evaluation, "max_safety_rate");
    const needed = Math.max(1, Math.trunc(param(evaluation, "windows")));
    const minRequests = Math.trunc(param(evaluation, "min_requests"));
    const candidate = evaluation.candidate;
    const series = Object.fromEntries(candidate.metrics.map((m) => [m.name, m]));
    const missing = METRICS.filter((m) => !(m in series));
    if (missing.length > 0) {
      return { verdict: "inconclusive", reason: `revision ${candidate.id} did not report ${missing.join(" and ")}`, checks: [] };
    }
    const count = evaluation.windows.length;
    if (count < needed) {
      return { verdict: "inconclusive", reason: `${count} windows evaluated, ${needed} needed`, checks: [] };
    }
    const checks = [];
    let bad = 0;
    let thin = 0;
    for (let w = count - needed; w < count; w++) {
      const served = windowSum(series.requests, w);
      if (served < minRequests) {
        thin += 1;
        checks.push({ name: `requests[w${w}]`, observed: served, threshold: minRequests, passed: false });
        continue;
      }
      const errorRate = windowSum(series.errors, w) / served;
      const safetyRate = windowSum(series.safety_hits, w) / served;
      const errorsOk = errorRate <= maxError;
      const safetyOk = safetyRate <= maxSafety;
      checks.push({ name: `error_rate[w${w}]`, observed: errorRate, threshold: maxError, passed: errorsOk });
      checks.push({ name: `safety_rate[w${w}]`, observed: safetyRate, threshold: maxSafety, passed: safetyOk });
      if (!(errorsOk && safetyOk)) bad += 1;
    }
    let verdict, reason;
    if (thin > 0) {
      [verdict, reason] = ["inconclusive", `${thin} of the last ${needed} windows had fewer than ${minRequests} requests`];
    } else if (bad === needed) {
      [verdict, reason] = ["rollback", `error or safety rate above limit in the last ${needed} consecutive windows`];
    } else if (bad === 0) {
      [verdict, reason] = ["promote", `error and safety rates within limits in the last ${needed} windows`];
    } else {
      [verdict, reason] = ["hold", `error or safety rate above limit in ${bad} of the last ${needed} windows`];
    }
    return { verdict, reason, checks };
  },
};
