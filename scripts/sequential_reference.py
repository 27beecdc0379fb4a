"""Independent reference numbers for ripcord's sequential tests (host/ripcord/src/stats/sequential.rs).

Reads cases as JSON on stdin and prints, as JSON on stdout, what savvi and scipy compute for them:
- "two_sided": ln of savvi's Multinomial odds (the Dirichlet-multinomial mixture of Lindon & Malek) for
  [hits, misses] against [p0, 1 - p0] with concentration k;
- "one_sided": the same mixture restricted to p > p0, from scipy's beta functions;
- "cdf": ln of scipy's regularized incomplete beta I_x(a, b);
- "ratio": the error-ratio test's ln e-value (last and largest over periods) from scipy's binomial pmf;
- "detectors": the change detectors' ln statistic (last and largest over periods) by their definition — the sum over
  every start period j of w_j times the grid mixture of binomial likelihood ratios from j on, each from scipy's
  binomial pmf, in O(n^2) (ripcord computes it by a recursion in O(n)).
Run by the end-to-end tests with the project's test venv (scripts/requirements-test.txt).
"""

import json
import sys

import numpy as np
from savvi.multinomial import Multinomial
from scipy.special import betainc, betaincc, betaln, logsumexp
from scipy.stats import binom

cases = json.load(sys.stdin)
out = {"two_sided": [], "one_sided": [], "cdf": [], "ratio": [], "detectors": []}
for hits, misses, k, p0 in cases["beta"]:
    test = Multinomial(0.05, np.array([p0, 1 - p0]), k=k)
    test.update(np.array([hits, misses], dtype=np.int64))
    out["two_sided"].append(float(np.log(test.odds)))
    a, b = k * p0, k * (1 - p0)
    upper = lambda a, b: np.log(betaincc(a, b, p0))
    one = (betaln(a + hits, b + misses) + upper(a + hits, b + misses) - betaln(a, b) - upper(a, b)
           - hits * np.log(p0) - misses * np.log(1 - p0))
    out["one_sided"].append(float(one))
for a, b, x in cases["cdf"]:
    out["cdf"].append(float(np.log(betainc(a, b, x))))
for case in cases["ratio"]:
    ratio, grid = case["ratio"], np.array(case["grid"])
    components = np.zeros(len(grid))
    ln_e, ln_max = 0.0, 0.0
    for b_req, b_err, c_req, c_err in case["periods"]:
        n = b_err + c_err
        if b_req <= 0 or c_req <= 0 or n <= 0:
            continue
        q = lambda theta: theta * c_req / (theta * c_req + b_req)
        null = binom.logpmf(c_err, n, q(ratio))
        components += np.array([binom.logpmf(c_err, n, q(ratio * m)) for m in grid]) - null
        ln_e = float(logsumexp(components) - np.log(len(grid)))
        ln_max = max(ln_max, ln_e)
    out["ratio"].append({"ln_e": ln_e, "ln_max": ln_max})


def detector_scan(log_lr, weights):
    """ln M_n = ln sum_j w_j mean_k prod_{i=j..n} LR_k(i), for every n; log_lr is periods x alternatives."""
    n, k = log_lr.shape
    last, largest = -np.inf, -np.inf
    for end in range(n):
        terms = [np.log(weights[j]) + logsumexp(log_lr[j:end + 1].sum(axis=0)) - np.log(k) for j in range(end + 1)]
        last = float(logsumexp(terms))
        largest = max(largest, last)
    return last, largest


for case in cases.get("detectors", []):
    alpha, horizon, first = case["alpha"], case["horizon"], case["from_first_traffic"]
    grid = np.array(case["grid"])
    if case["kind"] == "ratio":
        ratio = case["ratio"]
        rows = []
        for b_req, b_err, c_req, c_err in case["periods"]:
            n = b_err + c_err
            if b_req <= 0 or c_req <= 0 or n <= 0:
                rows.append(np.zeros(len(grid)))
                continue
            q = lambda theta: theta * c_req / (theta * c_req + b_req)
            rows.append(np.array([binom.logpmf(c_err, n, q(ratio * m)) - binom.logpmf(c_err, n, q(ratio)) for m in grid]))
    else:
        limit = case["limit"]
        rates = limit * grid / (1 - limit + limit * grid)
        rows = [np.array([binom.logpmf(errors, requests, p) - binom.logpmf(errors, requests, limit) for p in rates])
                for requests, errors in case["periods"]]
    weights = [alpha / 2 if (j == 0 and first) else alpha / (2 * horizon) for j in range(len(rows))]
    last, largest = detector_scan(np.array(rows), weights)
    out["detectors"].append({"ln_last": last, "ln_max": largest})
json.dump(out, sys.stdout)
