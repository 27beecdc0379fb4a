//! Statistics the host offers every policy through the `stats` import, implemented once, natively, so a
//! JavaScript or Python policy gets the same numbers as a Rust one at native speed.
//!
//! Definitions (documented in the WIT file and docs/reference/contract.md):
//! - percentile: linear interpolation between closest ranks (NumPy's default, Hyndman–Fan type 7);
//! - standard deviation: the sample one (divisor n − 1);
//! - Mann–Whitney U: as `scipy.stats.mannwhitneyu(candidate, baseline, method="auto")` — the exact null
//!   distribution when a sample has at most 8 values and there are no ties, otherwise the normal approximation
//!   with tie and continuity corrections. The tests compare against numbers computed with scipy 1.17.
//!
//! Inputs larger than [`MAX_SAMPLES`] give `None`: host calls are not interruptible by the plugin's deadline,
//! so their cost must stay bounded whatever a plugin passes.

pub mod change;
pub mod sequential;
pub mod special;
#[cfg(test)]
mod streams;

pub use change::{Detection, Detector, error_limit_detector, error_ratio_detector};
pub use sequential::{PeriodCounts, RateCounts, Sequential, error_limit_test, error_ratio_test, exceedance_test};

/// Largest sample a statistic accepts (per argument).
pub const MAX_SAMPLES: usize = 1_000_000;
/// Above this many candidate × baseline pairs, the exact Mann–Whitney distribution is replaced by the normal
/// approximation (which is accurate there) to bound memory.
const MAX_EXACT_PAIRS: usize = 200_000;
/// Above this many pairs, the Hodges–Lehmann shift is estimated as the difference of the medians.
const MAX_SHIFT_PAIRS: usize = 4_000_000;
/// scipy's rule: exact p-values when a sample has at most this many values and there are no ties.
const EXACT_MAX_SMALL_SAMPLE: usize = 8;

/// Which way a test looks, from the candidate's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    TwoSided,
    /// The candidate tends to be smaller.
    Less,
    /// The candidate tends to be greater.
    Greater,
}

/// Count, mean and sample standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub stddev: f64,
}

/// Mann–Whitney U test of candidate against baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the candidate sample (scipy's `statistic`).
    pub u: f64,
    pub p_value: f64,
    /// U / (n_candidate × n_baseline): probability that a candidate value exceeds a baseline value.
    pub effect_size: f64,
    /// Hodges–Lehmann estimate of the shift candidate − baseline.
    pub shift: f64,
}

fn usable(samples: &[f64]) -> bool {
    !samples.is_empty() && samples.len() <= MAX_SAMPLES && samples.iter().all(|v| v.is_finite())
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The `p`-th percentile (`p` in [0, 100]), type 7.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if !usable(samples) || !(0.0..=100.0).contains(&p) {
        return None;
    }
    Some(percentile_of_sorted(&sorted(samples), p))
}

fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = (sorted.len() - 1) as f64 * p / 100.0;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(sorted.len() - 1);
    sorted[lower] + (rank - lower as f64) * (sorted[upper] - sorted[lower])
}

/// Mean and sample standard deviation.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if !usable(samples) {
        return None;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let squares: f64 = samples.iter().map(|v| (v - mean) * (v - mean)).sum();
    let stddev = if samples.len() > 1 { (squares / (n - 1.0)).sqrt() } else { 0.0 };
    Some(Summary { count: samples.len(), mean, stddev })
}

/// Mann–Whitney U test of `candidate` against `baseline`.
pub fn mann_whitney_u(baseline: &[f64], candidate: &[f64], alternative: Alternative) -> Option<MannWhitney> {
    if !usable(baseline) || !usable(candidate) {
        return None;
    }
    let (n1, n2) = (candidate.len(), baseline.len());
    let ranked = RankSum::of(candidate, baseline);
    let u1 = ranked.candidate_rank_sum - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let small = n1.min(n2) <= EXACT_MAX_SMALL_SAMPLE;
    let exact = small && !ranked.has_ties && n1 * n2 <= MAX_EXACT_PAIRS;
    let sf = if exact {
        exact_sf(u as usize, n1.min(n2), n1.max(n2))
    } else {
        normal_sf(asymptotic_z(u, n1, n2, ranked.tie_term))
    };
    Some(MannWhitney {
        u: u1,
        p_value: (sf * factor).clamp(0.0, 1.0),
        effect_size: u1 / (n1 * n2) as f64,
        shift: hodges_lehmann(candidate, baseline),
    })
}

/// Rank sum of the candidate in the pooled sample, with average ranks for ties.
struct RankSum {
    candidate_rank_sum: f64,
    has_ties: bool,
    /// Σ (t³ − t) over groups of t tied values.
    tie_term: f64,
}

impl RankSum {
    fn of(candidate: &[f64], baseline: &[f64]) -> Self {
        let mut pooled: Vec<(f64, bool)> =
            candidate.iter().map(|v| (*v, true)).chain(baseline.iter().map(|v| (*v, false))).collect();
        pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut candidate_rank_sum, mut tie_term, mut has_ties) = (0.0, 0.0, false);
        let mut start = 0;
        while start < pooled.len() {
            let end = start + pooled[start..].iter().take_while(|(v, _)| *v == pooled[start].0).count();
            let t = (end - start) as f64;
            // Ranks are 1-based: the group holds ranks start+1 ..= end; each gets their average.
            let average_rank = (start + 1 + end) as f64 / 2.0;
            candidate_rank_sum += average_rank * pooled[start..end].iter().filter(|(_, c)| *c).count() as f64;
            if t > 1.0 {
                has_ties = true;
                tie_term += t * t * t - t;
            }
            start = end;
        }
        Self { candidate_rank_sum, has_ties, tie_term }
    }
}

fn asymptotic_z(u: f64, n1: usize, n2: usize, tie_term: f64) -> f64 {
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let s = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    // The survival function is always used, so the continuity correction always subtracts one half.
    let numerator = u - mu - 0.5;
    if s == 0.0 { f64::NEG_INFINITY } else { numerator / s }
}

fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// P(U ≥ u) under the null hypothesis, for samples of sizes `m <= n`, from the coefficients of the Gaussian
/// binomial [m+n choose m]_q = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i), which count the arrangements with U = k.
fn exact_sf(u: usize, m: usize, n: usize) -> f64 {
    let max_u = m * n;
    if u > max_u {
        return 0.0;
    }
    let mut counts = vec![0i128; max_u + 1];
    counts[0] = 1;
    for i in 1..=m {
        for k in (n + i..=max_u).rev() {
            counts[k] -= counts[k - (n + i)];
        }
        for k in i..=max_u {
            counts[k] += counts[k - i];
        }
    }
    let total: i128 = counts.iter().sum();
    let tail: i128 = counts[u..].iter().sum();
    tail as f64 / total as f64
}

fn hodges_lehmann(candidate: &[f64], baseline: &[f64]) -> f64 {
    if candidate.len() * baseline.len() > MAX_SHIFT_PAIRS {
        return percentile_of_sorted(&sorted(candidate), 50.0) - percentile_of_sorted(&sorted(baseline), 50.0);
    }
    let mut differences: Vec<f64> = candidate.iter().flat_map(|c| baseline.iter().map(move |b| c - b)).collect();
    differences.sort_by(f64::total_cmp);
    percentile_of_sorted(&differences, 50.0)
}

/// Error-budget burn rate: (bad / total) / (1 − slo_target).
pub fn burn_rate(bad: f64, total: f64, slo_target: f64) -> Option<f64> {
    let valid =
        bad.is_finite() && bad >= 0.0 && total.is_finite() && total > 0.0 && slo_target > 0.0 && slo_target < 1.0;
    valid.then(|| (bad / total) / (1.0 - slo_target))
}

/// `None` when every count reaches `minimum`, otherwise a reason naming the smallest count.
pub fn sample_guard(counts: &[u64], minimum: u64) -> Option<String> {
    let smallest = counts.iter().copied().min()?;
    (smallest < minimum).then(|| format!("only {smallest} samples, {minimum} required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected numbers computed with scipy 1.17.1 / numpy (scripts/stats_reference.py); not re-derived here.
    struct Case {
        candidate: Vec<f64>,
        baseline: Vec<f64>,
        u: f64,
        two_sided: f64,
        less: f64,
        greater: f64,
        shift: f64,
    }

    fn cases() -> Vec<(&'static str, Case)> {
        vec![
            (
                "exact_small",
                Case {
                    candidate: vec![12.1, 14.3, 15.2, 18.9, 21.4],
                    baseline: vec![10.2, 11.8, 13.0, 13.7, 16.4, 9.8],
                    u: 25.0,
                    two_sided: 0.08225108225108226,
                    less: 0.974025974025974,
                    greater: 0.04112554112554113,
                    shift: 3.75,
                },
            ),
            (
                "exact_separated",
                Case {
                    candidate: vec![30.5, 31.2, 29.9, 33.3],
                    baseline: vec![20.1, 21.7, 19.4, 22.8, 20.9, 21.1, 23.5, 18.8],
                    u: 32.0,
                    two_sided: 0.00404040404040404,
                    less: 1.0,
                    greater: 0.00202020202020202,
                    shift: 10.2,
                },
            ),
            (
                "ties_asymptotic",
                Case {
                    candidate: vec![120.0, 125.0, 125.0, 130.0, 140.0, 140.0, 150.0, 155.0, 160.0, 160.0],
                    baseline: vec![100.0, 105.0, 110.0, 110.0, 115.0, 120.0, 125.0, 125.0, 130.0, 135.0, 135.0, 140.0],
                    u: 99.0,
                    two_sided: 0.010700111456465716,
                    less: 0.9955859166516972,
                    greater: 0.005350055728232858,
                    shift: 20.0,
                },
            ),
            (
                "large_no_ties",
                Case {
                    candidate: (0..20).map(|i| 100.0 + 7.3 * ((i * 37) % 23) as f64 + 0.01 * i as f64).collect(),
                    baseline: (0..25).map(|i| 95.0 + 6.9 * ((i * 41) % 29) as f64 + 0.013 * i as f64).collect(),
                    u: 222.0,
                    two_sided: 0.5299094379128136,
                    less: 0.2649547189564068,
                    greater: 0.7424721973309011,
                    shift: -11.173500000000018,
                },
            ),
            (
                "identical",
                Case {
                    candidate: vec![5.0; 10],
                    baseline: vec![5.0; 12],
                    u: 60.0,
                    two_sided: 1.0,
                    less: 1.0,
                    greater: 1.0,
                    shift: 0.0,
                },
            ),
        ]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        for (name, case) in cases() {
            for (alternative, expected) in [
                (Alternative::TwoSided, case.two_sided),
                (Alternative::Less, case.less),
                (Alternative::Greater, case.greater),
            ] {
                let got = mann_whitney_u(&case.baseline, &case.candidate, alternative)
                    .unwrap_or_else(|| panic!("{name}: no result"));
                assert!(close(got.u, case.u), "{name} {alternative:?}: U {} != {}", got.u, case.u);
                assert!(close(got.p_value, expected), "{name} {alternative:?}: p {} != {expected}", got.p_value);
                assert!(close(got.shift, case.shift), "{name}: shift {} != {}", got.shift, case.shift);
                let pairs = (case.candidate.len() * case.baseline.len()) as f64;
                assert!(close(got.effect_size, case.u / pairs), "{name}: effect size {}", got.effect_size);
            }
        }
    }

    #[test]
    fn mann_whitney_rejects_empty_and_non_finite() {
        assert!(mann_whitney_u(&[], &[1.0], Alternative::TwoSided).is_none());
        assert!(mann_whitney_u(&[1.0, f64::NAN], &[1.0], Alternative::TwoSided).is_none());
    }

    #[test]
    fn exact_distribution_sums_to_one_and_is_symmetric() {
        // P(U >= 0) = 1, and P(U >= k) = P(U <= mn - k).
        assert!(close(exact_sf(0, 3, 5), 1.0));
        let (m, n) = (4, 6);
        for k in 0..=m * n {
            let upper = exact_sf(k, m, n);
            let lower = 1.0 - exact_sf(m * n - k + 1, m, n);
            assert!(close(upper, lower), "k={k}: {upper} vs {lower}");
        }
    }

    #[test]
    fn percentile_matches_numpy() {
        let s = [3.2, 1.5, 9.8, 4.4, 7.1, 2.9, 5.5, 6.0, 8.3, 0.7, 4.4];
        for (p, expected) in
            [(0.0, 0.7), (25.0, 3.05), (50.0, 4.4), (90.0, 8.3), (95.0, 9.05), (99.0, 9.650000000000002), (100.0, 9.8)]
        {
            let got = percentile(&s, p).unwrap_or(f64::NAN);
            assert!(close(got, expected), "p{p}: {got} != {expected}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&s, 101.0), None);
        assert_eq!(percentile(&[f64::INFINITY], 50.0), None);
    }

    #[test]
    fn summary_matches_numpy() {
        let s = [3.2, 1.5, 9.8, 4.4, 7.1, 2.9, 5.5, 6.0, 8.3, 0.7, 4.4];
        let got = summarize(&s).unwrap_or(Summary { count: 0, mean: f64::NAN, stddev: f64::NAN });
        assert_eq!(got.count, 11);
        assert!(close(got.mean, 4.8909090909090915), "{}", got.mean);
        assert!(close(got.stddev, 2.80301785419021), "{}", got.stddev);
        assert_eq!(summarize(&[2.0]).map(|s| s.stddev), Some(0.0));
    }

    #[test]
    fn burn_rate_follows_the_sre_workbook() {
        // 1.44% errors against a 99.9% SLO burns 14.4x.
        assert!(close(burn_rate(144.0, 10_000.0, 0.999).unwrap_or(0.0), 14.4));
        assert_eq!(burn_rate(1.0, 0.0, 0.999), None);
        assert_eq!(burn_rate(1.0, 10.0, 1.0), None);
    }

    #[test]
    fn sample_guard_names_the_smallest_count() {
        assert_eq!(sample_guard(&[500, 12, 300], 200).as_deref(), Some("only 12 samples, 200 required"));
        assert_eq!(sample_guard(&[500, 200], 200), None);
    }

    #[test]
    fn oversized_inputs_are_refused() {
        let big = vec![1.0; MAX_SAMPLES + 1];
        assert_eq!(percentile(&big, 50.0), None);
    }
}
