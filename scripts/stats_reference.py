# Computes the reference numbers the stats unit tests (host/ripcord/src/stats.rs) compare against.
# Run with a Python that has scipy and numpy; the committed numbers came from scipy 1.17.1.
import numpy as np
from scipy.stats import mannwhitneyu
cases = {
 "exact_small": ([12.1, 14.3, 15.2, 18.9, 21.4], [10.2, 11.8, 13.0, 13.7, 16.4, 9.8]),
 "exact_separated": ([30.5, 31.2, 29.9, 33.3], [20.1, 21.7, 19.4, 22.8, 20.9, 21.1, 23.5, 18.8]),
 "ties_asymptotic": ([120, 125, 125, 130, 140, 140, 150, 155, 160, 160], [100, 105, 110, 110, 115, 120, 125, 125, 130, 135, 135, 140]),
 "large_no_ties": ([100 + 7.3*((i*37) % 23) + 0.01*i for i in range(20)], [95 + 6.9*((i*41) % 29) + 0.013*i for i in range(25)]),
 "identical": ([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], [5.0]*12),
}
for name, (cand, base) in cases.items():
    print(name, "cand=", cand, "base=", base)
    for alt in ["two-sided", "less", "greater"]:
        r = mannwhitneyu(cand, base, alternative=alt, method="auto")
        print(f"  {alt}: U={r.statistic!r} p={r.pvalue!r}")
    diffs = np.subtract.outer(np.array(cand, dtype=float), np.array(base, dtype=float)).ravel()
    print("  hl_shift=", repr(float(np.median(diffs))))
s = [3.2, 1.5, 9.8, 4.4, 7.1, 2.9, 5.5, 6.0, 8.3, 0.7, 4.4]
for p in [0, 25, 50, 90, 95, 99, 100]:
    print("pct", p, repr(float(np.percentile(s, p))))
print("mean", repr(float(np.mean(s))), "std", repr(float(np.std(s, ddof=1))))
