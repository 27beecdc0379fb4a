//! Anytime-valid sequential tests: a guard looks at a canary every minute for hours, and a fixed-sample test
//! looked at that often rolls back healthy releases (repeated looks inflate its false alarms without bound). Each
//! test here is an **e-process** — a nonnegative supermartingale under the null hypothesis — so by Ville's
//! inequality the probability that it *ever* reaches `1/alpha` is at most `alpha`, however often it is looked at
//! and however long the canary runs. The tests report the largest e-value over every prefix of the data (every
//! period), which is what a test watched continuously would have seen; recomputing from the metric history on each
//! cycle gives the same answer as keeping state, so scheduled runs need none.
//!
//! - [`error_ratio_test`]: is the candidate's error rate above `ratio` × the baseline's? Each error is a trial that
//!   lands on the candidate with probability `q = θc/(θc + b)` given the period's requests `c` and `b` and the rate
//!   ratio `θ` — the conditioning of Lindon & Malek ("Anytime-Valid Inference for Multinomial Count Data", NeurIPS
//!   2022) that makes the test indifferent to traffic that varies over time. The e-process is a mixture over rate
//!   ratios above the null's (a fixed grid [`RATIO_GRID`]): each component's likelihood ratio against the boundary
//!   is a supermartingale for every `θ ≤ ratio` (the binomial family has a monotone likelihood ratio), so the
//!   mixture is too. Shares may change between periods (a canary stepping up).
//! - [`error_limit_test`]: is the candidate's own error rate above `limit` (a practical ceiling, or the known good's
//!   historical rate)? The Dirichlet(kθ₀)-multinomial mixture of Lindon & Malek (the `Multinomial` test of the
//!   `savvi` package) on (errors, successes), restricted to rates above `limit`.
//! - [`exceedance_test`]: does the candidate's statistic exceed `factor` × the reference's in more than half of the
//!   periods (a sequential sign test, e.g. on per-minute p99 latencies)? The same Beta mixture on (exceeded, not),
//!   restricted to probabilities above one half.
//!
//! The unit tests check the closed forms against `savvi` and scipy (numbers from `scripts/stats_reference.py`), and
//! by simulation: over thousands of seeded null streams the false-alarm rate stays below `alpha`.

use super::special::{ln_beta, ln_beta_upper_tail};

/// Rate ratios (× the null's) the error-ratio mixture spreads its weight over, equally: from 10% worse to 20× worse.
pub const RATIO_GRID: [f64; 10] = [1.1, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0, 8.0, 12.0, 20.0];
/// Concentration of the Beta prior of the limit test (`savvi`'s default `k`): Beta(k·limit, k·(1 − limit)).
pub const LIMIT_PRIOR_CONCENTRATION: f64 = 100.0;
/// Concentration of the Beta prior of the exceedance test: Beta(1, 1), uniform, as per-period comparisons are few
/// and a regression usually makes nearly every period exceed.
pub const EXCEEDANCE_PRIOR_CONCENTRATION: f64 = 2.0;
/// Longest series a test accepts (a day of one-second periods): host calls are not interruptible.
pub const MAX_PERIODS: usize = 86_400;

/// One period of a two-revision comparison: requests and errors of the baseline and of the candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodCounts {
    pub baseline_requests: f64,
    pub baseline_errors: f64,
    pub candidate_requests: f64,
    pub candidate_errors: f64,
}

/// One period of one revision: requests and errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateCounts {
    pub requests: f64,
    pub errors: f64,
}

/// What a sequential test found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sequential {
    /// The e-value after the last period.
    pub e_value: f64,
    /// The largest e-value over every period: the evidence a continuously watched test would have acted on.
    pub max_e_value: f64,
    /// The anytime-valid p-value, `min(1, 1 / max_e_value)`.
    pub p_value: f64,
    /// Whether the null hypothesis is rejected at `alpha` (`max_e_value ≥ 1 / alpha`).
    pub reject: bool,
    /// The effect observed: the rate ratio (error-ratio test), the error rate (limit test), or the share of periods
    /// that exceeded (exceedance test).
    pub estimate: f64,
    /// The evidence counted: errors (count tests) or compared periods (exceedance test).
    pub observations: f64,
}

impl Sequential {
    fn new(ln_e: f64, ln_max: f64, alpha: f64, estimate: f64, observations: f64) -> Self {
        let (e_value, max_e_value) = (ln_e.exp(), ln_max.exp());
        Self {
            e_value,
            max_e_value,
            p_value: (-ln_max).exp().min(1.0),
            reject: ln_max >= (1.0 / alpha).ln(),
            estimate,
            observations,
        }
    }
}

fn valid_alpha(alpha: f64) -> bool {
    alpha > 0.0 && alpha < 1.0
}

fn valid_count(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

/// Tests H0: candidate error rate ≤ `ratio` × baseline error rate (`ratio ≥ 1`), period by period. Periods without
/// requests on either side, or without errors, carry no evidence and are skipped. `None` for invalid input.
pub fn error_ratio_test(periods: &[PeriodCounts], ratio: f64, alpha: f64) -> Option<Sequential> {
    let counts_ok = |p: &PeriodCounts| {
        [p.baseline_requests, p.baseline_errors, p.candidate_requests, p.candidate_errors].into_iter().all(valid_count)
            && p.baseline_errors <= p.baseline_requests
            && p.candidate_errors <= p.candidate_requests
    };
    if !(ratio.is_finite() && ratio >= 1.0 && valid_alpha(alpha)) || periods.len() > MAX_PERIODS {
        return None;
    }
    if !periods.iter().all(counts_ok) {
        return None;
    }
    let mut ln_components = [0.0f64; RATIO_GRID.len()];
    let ln_weight = -(RATIO_GRID.len() as f64).ln();
    let (mut ln_e, mut ln_max) = (0.0f64, 0.0f64);
    let mut totals = [0.0f64; 4];
    for p in periods {
        totals[0] += p.baseline_requests;
        totals[1] += p.baseline_errors;
        totals[2] += p.candidate_requests;
        totals[3] += p.candidate_errors;
        let (b, c, x, y) = (p.baseline_requests, p.candidate_requests, p.candidate_errors, p.baseline_errors);
        if b <= 0.0 || c <= 0.0 || x + y <= 0.0 {
            continue;
        }
        // ln q(θ) and ln(1 − q(θ)) with q(θ) = θc / (θc + b), computed without cancellation.
        let ln_q = |theta: f64| (theta * c).ln() - (theta * c + b).ln();
        let ln_not_q = |theta: f64| b.ln() - (theta * c + b).ln();
        let null = x * ln_q(ratio) + y * ln_not_q(ratio);
        for (ln_component, multiple) in ln_components.iter_mut().zip(RATIO_GRID) {
            let theta = ratio * multiple;
            *ln_component += x * ln_q(theta) + y * ln_not_q(theta) - null;
        }
        ln_e = ln_weight + log_sum_exp(&ln_components);
        ln_max = ln_max.max(ln_e);
    }
    let rate = |errors: f64, requests: f64| (errors + 0.5) / (requests + 1.0);
    let estimate = rate(totals[3], totals[2]) / rate(totals[1], totals[0]);
    Some(Sequential::new(ln_e, ln_max, alpha, estimate, totals[1] + totals[3]))
}

/// Tests H0: the error rate ≤ `limit` (0 < limit < 1), period by period, with the Beta(k·limit, k·(1 − limit))
/// mixture restricted to rates above `limit`. `None` for invalid input.
pub fn error_limit_test(periods: &[RateCounts], limit: f64, alpha: f64) -> Option<Sequential> {
    if !(limit > 0.0 && limit < 1.0 && valid_alpha(alpha)) || periods.len() > MAX_PERIODS {
        return None;
    }
    if !periods.iter().all(|p| valid_count(p.requests) && valid_count(p.errors) && p.errors <= p.requests) {
        return None;
    }
    let (a, b) = (LIMIT_PRIOR_CONCENTRATION * limit, LIMIT_PRIOR_CONCENTRATION * (1.0 - limit));
    let (mut errors, mut successes, mut ln_max) = (0.0f64, 0.0f64, 0.0f64);
    for p in periods {
        errors += p.errors;
        successes += p.requests - p.errors;
        // A period without errors only lowers the e-value (every rate in the mixture is above the limit), so the
        // largest value is reached right after a period with errors: evaluate only there.
        if p.errors > 0.0 {
            ln_max = ln_max.max(one_sided_beta_mixture(errors, successes, a, b, limit));
        }
    }
    let ln_e = one_sided_beta_mixture(errors, successes, a, b, limit);
    let estimate = if errors + successes > 0.0 { errors / (errors + successes) } else { f64::NAN };
    Some(Sequential::new(ln_e, ln_max, alpha, estimate, errors))
}

/// Tests H0: P(candidate > `factor` × reference) ≤ 1/2 per period — a sign test. `reference` has one value per
/// period, or one value for all (a historical level). Periods where either value is missing (not finite) are
/// skipped. `None` for invalid input.
pub fn exceedance_test(candidate: &[f64], reference: &[f64], factor: f64, alpha: f64) -> Option<Sequential> {
    let constant = reference.len() == 1;
    if !(factor.is_finite() && factor > 0.0 && valid_alpha(alpha)) || candidate.len() > MAX_PERIODS {
        return None;
    }
    if !constant && reference.len() != candidate.len() {
        return None;
    }
    let half = EXCEEDANCE_PRIOR_CONCENTRATION / 2.0;
    let (mut exceeded, mut not, mut ln_max) = (0.0f64, 0.0f64, 0.0f64);
    for (i, c) in candidate.iter().enumerate() {
        let r = if constant { reference[0] } else { reference[i] };
        if !c.is_finite() || !r.is_finite() {
            continue;
        }
        if *c > factor * r {
            exceeded += 1.0;
            // Only an exceedance can raise the e-value (every probability in the mixture is above one half).
            ln_max = ln_max.max(one_sided_beta_mixture(exceeded, not, half, half, 0.5));
        } else {
            not += 1.0;
        }
    }
    let ln_e = one_sided_beta_mixture(exceeded, not, half, half, 0.5);
    let compared = exceeded + not;
    let estimate = if compared > 0.0 { exceeded / compared } else { f64::NAN };
    Some(Sequential::new(ln_e, ln_max, alpha, estimate, compared))
}

/// ln of the Beta(a, b)-mixture likelihood ratio of `hits` and `misses` against the success probability `p0`,
/// the prior restricted to probabilities above `p0`:
/// `∫_{p0}^1 p^hits (1−p)^misses Beta(p; a, b) dp / P_Beta(p > p0) / (p0^hits (1−p0)^misses)`.
pub fn one_sided_beta_mixture(hits: f64, misses: f64, a: f64, b: f64, p0: f64) -> f64 {
    ln_beta(a + hits, b + misses) + ln_beta_upper_tail(a + hits, b + misses, p0)
        - ln_beta(a, b)
        - ln_beta_upper_tail(a, b, p0)
        - hits * p0.ln()
        - misses * (1.0 - p0).ln()
}

/// ln of the two-sided Beta(a, b)-mixture likelihood ratio against `p0` — the Dirichlet-multinomial Bayes factor
/// of Lindon & Malek with two categories (what `savvi.Multinomial` computes), kept for the reference test.
pub fn two_sided_beta_mixture(hits: f64, misses: f64, a: f64, b: f64, p0: f64) -> f64 {
    ln_beta(a + hits, b + misses) - ln_beta(a, b) - hits * p0.ln() - misses * (1.0 - p0).ln()
}

/// ln Σ e^v, without overflow (−∞ for an empty list).
pub(crate) fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::stats::streams::{Rng, seeds};

    /// Requests a minute at 10 requests a second, varying over time (a daily curve, compressed), and a canary
    /// share that steps up from 10% to 50% after an hour.
    fn traffic(t: usize) -> (u32, f64) {
        let requests = 600.0 + 300.0 * (t as f64 / 20.0).sin();
        let share = if t < 60 { 0.1 } else { 0.5 };
        (requests as u32, share)
    }

    /// A canary stream: `periods` minutes, baseline error rate `rate`, candidate `rate × effect`.
    fn canary(rng: &mut Rng, periods: usize, rate: f64, effect: f64) -> Vec<PeriodCounts> {
        (0..periods)
            .map(|t| {
                let (requests, share) = traffic(t);
                let c = (f64::from(requests) * share).round() as u32;
                let b = requests - c;
                PeriodCounts {
                    baseline_requests: f64::from(b),
                    baseline_errors: rng.binomial(b, rate),
                    candidate_requests: f64::from(c),
                    candidate_errors: rng.binomial(c, (rate * effect).min(1.0)),
                }
            })
            .collect()
    }

    #[test]
    fn the_error_ratio_test_keeps_false_alarms_below_alpha_however_long_it_is_watched() {
        let alpha = 0.05;
        let streams = 2000;
        let false_alarms = seeds(streams)
            .filter(|_| true)
            .map(|mut rng| canary(&mut rng, 120, 0.01, 1.0))
            .filter(|periods| error_ratio_test(periods, 1.0, alpha).is_some_and(|t| t.reject))
            .count();
        let rate = false_alarms as f64 / streams as f64;
        assert!(rate <= alpha, "false alarms at the null's boundary: {rate}");
    }

    /// A 5x error rate on a 10% canary at 10 requests a second (8 errors a minute between the two sides), tested
    /// against the practical floor of 2x the baseline: the evidence per minute is small, so about ten minutes.
    #[test]
    fn the_error_ratio_test_finds_a_five_fold_error_rate_within_minutes() {
        let found: Vec<usize> = seeds(200)
            .map(|mut rng| {
                let periods = canary(&mut rng, 60, 0.01, 5.0);
                (1..=periods.len())
                    .find(|n| error_ratio_test(&periods[..*n], 2.0, 0.01).is_some_and(|t| t.reject))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let mut sorted = found.clone();
        sorted.sort_unstable();
        assert!(sorted[100] <= 10, "median minutes to detection: {}", sorted[100]);
        assert!(sorted[190] <= 20, "95th percentile of minutes to detection: {}", sorted[190]);
    }

    #[test]
    fn the_error_limit_test_keeps_false_alarms_below_alpha() {
        let alpha = 0.05;
        let streams = 2000;
        let false_alarms = seeds(streams)
            .map(|mut rng| {
                let periods: Vec<RateCounts> = (0..120)
                    .map(|t| {
                        let (requests, share) = traffic(t);
                        let n = (f64::from(requests) * share) as u32;
                        RateCounts { requests: f64::from(n), errors: rng.binomial(n, 0.01) }
                    })
                    .collect();
                error_limit_test(&periods, 0.01, alpha).is_some_and(|t| t.reject)
            })
            .filter(|rejected| *rejected)
            .count();
        let rate = false_alarms as f64 / streams as f64;
        assert!(rate <= alpha, "false alarms at the limit: {rate}");
    }

    #[test]
    fn the_exceedance_test_keeps_false_alarms_below_alpha_and_finds_a_regression() {
        let alpha = 0.05;
        let streams = 4000;
        let false_alarms = seeds(streams)
            .map(|mut rng| {
                let candidate: Vec<f64> = (0..240).map(|_| 100.0 + 30.0 * rng.uniform()).collect();
                let baseline: Vec<f64> = (0..240).map(|_| 100.0 + 30.0 * rng.uniform()).collect();
                exceedance_test(&candidate, &baseline, 1.0, alpha).is_some_and(|t| t.reject)
            })
            .filter(|rejected| *rejected)
            .count();
        let rate = false_alarms as f64 / streams as f64;
        assert!(rate <= alpha, "false alarms of the sign test: {rate}");
        // Every period 50% slower: found after ln(1/alpha)-many exceedances, about seven.
        let slower: Vec<f64> = vec![150.0; 10];
        let found = (1..=10).find(|n| exceedance_test(&slower[..*n], &[100.0], 1.3, 0.01).is_some_and(|t| t.reject));
        assert_eq!(found, Some(9));
    }

    #[test]
    fn no_evidence_is_no_rejection_and_bad_input_is_refused() {
        let empty = error_ratio_test(&[], 2.0, 0.01).unwrap_or_else(|| panic!("empty input is valid"));
        assert_eq!((empty.e_value, empty.p_value, empty.reject), (1.0, 1.0, false));
        assert!(error_ratio_test(&[], 0.5, 0.01).is_none(), "a ratio below 1");
        assert!(error_limit_test(&[], 0.0, 0.01).is_none(), "a limit of 0");
        assert!(exceedance_test(&[1.0], &[1.0, 2.0], 1.0, 0.01).is_none(), "mismatched lengths");
        let bad = RateCounts { requests: 1.0, errors: 2.0 };
        assert!(error_limit_test(&[bad], 0.01, 0.01).is_none(), "more errors than requests");
        assert!(error_limit_test(&[], 0.01, 1.5).is_none(), "alpha above 1");
    }

    #[test]
    fn the_one_sided_mixture_is_the_two_sided_one_restricted() {
        // With all the prior's mass above p0 kept, the one-sided mixture is the two-sided one rescaled.
        let (h, m, a, b, p0) = (30.0, 70.0, 1.0, 99.0, 0.01);
        let one = one_sided_beta_mixture(h, m, a, b, p0);
        let two = two_sided_beta_mixture(h, m, a, b, p0);
        let tails = super::super::special::ln_beta_upper_tail(a + h, b + m, p0)
            - super::super::special::ln_beta_upper_tail(a, b, p0);
        assert!((one - (two + tails)).abs() < 1e-9, "{one} vs {two} + {tails}");
    }
}
