//! Change detectors: has the candidate become worse than allowed *since some period*? The sequential tests of
//! [`super::sequential`] weigh every period since the candidate's first traffic, so an hour of healthy minutes
//! outweighs a quarter hour of a 15× regression that began at a rollout step or the daily peak. A detector asks
//! the question again at every period: it starts a new e-process at each period and adds them up — the
//! Shiryaev–Roberts form of an *e-detector* (Shin, Ramdas & Rinaldo, "E-detectors: a nonparametric framework for
//! sequential change detection", 2023) — so a regression that starts late is weighed only against itself.
//!
//! **The statistic.** After period `n`, with `Λ_j^n` the mixture e-process started at period `j` (the same
//! likelihood ratios as the sequential tests, over a fixed grid of alternatives),
//!
//! ```text
//! M_n = Σ_{j ≤ n} w_j · Λ_j^n,      alarm when M_n ≥ 1
//! ```
//!
//! For one alternative `θ` the sum has the recursion `R_n(θ) = (R_{n−1}(θ) + w_n) · L_θ(x_n)`, and the mixture of
//! the grid is `M_n = Σ_θ π_θ R_n(θ)`, so the whole scan costs O(grid × periods) — the same order as one test.
//!
//! **The guarantee.** Under the null (every period satisfies it), each `Λ_j` is a nonnegative supermartingale
//! with `Λ_j^{j−1} = 1`, so `E[M_{n+1} | past] ≤ M_n + w_{n+1}`. Then `Y_n = M_n + Σ_{n < j ≤ N} w_j` is a
//! nonnegative supermartingale starting at `Σ_{j ≤ N} w_j`, and by Ville's inequality
//!
//! ```text
//! P(an alarm in the first N periods) ≤ Σ_{j ≤ N} w_j.
//! ```
//!
//! The weights ([`Detector`]): the e-process started at the candidate's first traffic carries `alpha / 2` — so a
//! regression present from the deploy needs evidence `2 / alpha`, as the plain test at `alpha / 2` — and every
//! later start `alpha / (2 · horizon)`. Over the first `horizon` periods (a day of one-minute periods) the chance
//! of a false alarm is at most `alpha`; each further `horizon` adds at most `alpha / 2`. A scan of periods that
//! starts after the first traffic (a day-long evidence window that has moved on) gives every start the small
//! weight and is never above the full scan's statistic, so the bound holds for it too. Periods are counted as
//! listed (one per metric period with data), so the bound is per period of wall time or better.
//!
//! The unit tests check the recursion against the definition summed directly, the false-alarm bound by
//! simulation over thousands of seeded null streams, and detection speed after a healthy hour; the end-to-end
//! suite checks the numbers against an independent scipy implementation (`scripts/sequential_reference.py`).

use super::sequential::{MAX_PERIODS, PeriodCounts, RATIO_GRID, RateCounts};

/// How a detector spends its false-alarm budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// Highest chance of a false alarm over the first `horizon` periods (in (0, 1)).
    pub alpha: f64,
    /// Periods the budget is spread over (1440: a day of one-minute periods); at least 1.
    pub horizon: u32,
    /// Whether the first period listed is the candidate's first traffic: its e-process then carries `alpha / 2`.
    pub from_first_traffic: bool,
}

impl Detector {
    fn valid(&self) -> bool {
        self.alpha > 0.0 && self.alpha < 1.0 && self.horizon >= 1
    }

    /// ln of the weight of the e-process started at period `index` (0-based).
    fn ln_weight(&self, index: usize) -> f64 {
        if index == 0 && self.from_first_traffic {
            (self.alpha / 2.0).ln()
        } else {
            (self.alpha / (2.0 * f64::from(self.horizon))).ln()
        }
    }
}

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The statistic `M_n` after the last period.
    pub statistic: f64,
    /// Its largest value over every period: an alarm is `max_statistic ≥ 1`.
    pub max_statistic: f64,
    pub alarm: bool,
    /// Index (into the periods given) where the change most likely began: the start of the restarted e-process of
    /// the alternative that weighs most at the largest statistic (its CUSUM's change point).
    pub onset: usize,
    /// The effect from the onset to the largest statistic: the rate ratio (ratio detector) or the rate (limit
    /// detector).
    pub estimate: f64,
    /// Events (errors, slow requests) counted over the same periods.
    pub observations: f64,
}

/// How a period's likelihood ratios were written: as ratios, or (when a ratio could leave a double's range, or the
/// counts are not whole numbers) as their logarithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ratios {
    Linear,
    Log,
}

/// Largest |ln L| a period may have for its ratios to be written as plain numbers (e^±600 is inside a double).
const LINEAR_LIMIT: f64 = 600.0;
/// The scaled statistics are renormalised when their mean leaves [1e-100, 1e100].
const RENORMALISE: f64 = 1e100;

/// The Shiryaev–Roberts scan of `periods` periods over `components` alternatives with equal prior weight;
/// `ratios(i, out)` writes period `i`'s likelihood ratio of each alternative against the null's boundary, as a
/// ratio or its logarithm. The statistics are kept as plain numbers times one shared scale `e^s`, renormalised as they
/// grow or shrink, so a period costs one `exp` and one `ln` whatever the number of alternatives — and none per
/// alternative when the ratios are plain numbers. The onset is tracked in the same pass: for each alternative, the
/// start of its CUSUM (`C_n = max(C_{n−1}, w_n) · L_n`, the single restarted e-process that weighs most), taken from
/// the alternative that weighs most at the largest statistic.
fn scan(
    periods: usize,
    components: usize,
    detector: Detector,
    mut ratios: impl FnMut(usize, &mut [f64]) -> Ratios,
) -> Scan {
    let mut out = vec![0.0; components];
    let (mut r, mut cusum, mut start) = (vec![0.0; components], vec![0.0; components], vec![0usize; components]);
    let (ln_first, ln_later) = (detector.ln_weight(0), detector.ln_weight(1));
    // The true statistics are e^s × r and e^s × cusum; `w` is the later starts' weight and `largest` the largest
    // mean so far, both at the current scale (recomputed only when the scale changes).
    let mut s = 0.0f64;
    let (mut w, mut largest) = ((ln_later - s).exp(), 0.0f64);
    let (mut ln_max, mut peak, mut onset) = (f64::NEG_INFINITY, 0, 0);
    let mut mean = 0.0;
    for i in 0..periods {
        let shift = match ratios(i, &mut out) {
            Ratios::Linear => 0.0,
            Ratios::Log => {
                let shift = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                out.iter_mut().for_each(|o| *o = (*o - shift).exp());
                shift
            }
        };
        let weight = if i == 0 { (ln_first - s).exp() } else { w };
        for k in 0..components {
            r[k] = (r[k] + weight) * out[k];
            if weight > cusum[k] {
                (cusum[k], start[k]) = (weight, i);
            }
            cusum[k] *= out[k];
        }
        mean = r.iter().sum::<f64>() / components as f64;
        let mut rescale = shift;
        if mean > RENORMALISE || (mean > 0.0 && mean < 1.0 / RENORMALISE) {
            rescale += mean.ln();
            r.iter_mut().chain(cusum.iter_mut()).for_each(|v| *v /= mean);
            mean = 1.0;
        }
        if rescale != 0.0 {
            s += rescale;
            w = (ln_later - s).exp();
            largest = (ln_max - s).exp();
        }
        if mean > largest {
            (largest, ln_max, peak) = (mean, s + mean.ln(), i);
            let strongest = (0..components).max_by(|a, b| cusum[*a].total_cmp(&cusum[*b])).unwrap_or(0);
            onset = start[strongest];
        }
    }
    let ln_m = if mean > 0.0 { s + mean.ln() } else { f64::NEG_INFINITY };
    Scan { ln_m, ln_max, peak, onset }
}

struct Scan {
    ln_m: f64,
    ln_max: f64,
    peak: usize,
    onset: usize,
}

impl Scan {
    fn detection(&self, estimate: f64, observations: f64) -> Detection {
        Detection {
            // Past what a double holds (ln M > 709), the largest finite number: an alarm all the same.
            statistic: self.ln_m.exp().min(f64::MAX),
            max_statistic: self.ln_max.exp().min(f64::MAX),
            alarm: self.ln_max >= 0.0,
            onset: self.onset,
            estimate,
            observations,
        }
    }
}

/// A whole number small enough for `powi`.
fn whole(value: f64) -> Option<i32> {
    (value.fract() == 0.0 && value.abs() < f64::from(i32::MAX)).then_some(value as i32)
}

fn valid_count(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

/// Detects a change to H1: candidate error rate > `ratio` × baseline error rate (`ratio ≥ 1`), period by period,
/// with the conditioning of the error-ratio test (each error lands on the candidate with probability
/// `θc / (θc + b)` given the period's requests). `None` for invalid input.
pub fn error_ratio_detector(periods: &[PeriodCounts], ratio: f64, detector: Detector) -> Option<Detection> {
    let counts_ok = |p: &PeriodCounts| {
        [p.baseline_requests, p.baseline_errors, p.candidate_requests, p.candidate_errors].into_iter().all(valid_count)
            && p.baseline_errors <= p.baseline_requests
            && p.candidate_errors <= p.candidate_requests
    };
    if !(ratio.is_finite() && ratio >= 1.0 && detector.valid()) || periods.len() > MAX_PERIODS {
        return None;
    }
    if !periods.iter().all(counts_ok) {
        return None;
    }
    let thetas: Vec<f64> = RATIO_GRID.iter().map(|m| ratio * m).collect();
    let ln_multiples: Vec<f64> = RATIO_GRID.iter().map(|m| m.ln()).collect();
    // |ln L| ≤ x ln(max multiple) + (x + y) ln(max multiple): the ratio (ratio c + b) / (θc + b) is above 1/multiple.
    let ln_largest = ln_multiples.iter().copied().fold(0.0, f64::max);
    let ratios = |i: usize, out: &mut [f64]| {
        let p = &periods[i];
        let (b, c, x, y) = (p.baseline_requests, p.candidate_requests, p.candidate_errors, p.baseline_errors);
        if b <= 0.0 || c <= 0.0 || x + y <= 0.0 {
            out.fill(1.0);
            return Ratios::Linear;
        }
        // L(θ) = (θ/ratio)^x ((ratio c + b) / (θc + b))^(x + y): the binomial likelihood of x candidate errors
        // among x + y, at q(θ) = θc / (θc + b), against q(ratio).
        let null = ratio * c + b;
        if let (Some(xi), Some(ni)) = (whole(x), whole(x + y))
            && (2.0 * x + y) * ln_largest < LINEAR_LIMIT
        {
            for ((o, theta), multiple) in out.iter_mut().zip(&thetas).zip(RATIO_GRID) {
                *o = multiple.powi(xi) * (null / (theta * c + b)).powi(ni);
            }
            return Ratios::Linear;
        }
        for ((o, theta), ln_multiple) in out.iter_mut().zip(&thetas).zip(&ln_multiples) {
            *o = x * ln_multiple + (x + y) * (null.ln() - (theta * c + b).ln());
        }
        Ratios::Log
    };
    let scan = scan(periods.len(), thetas.len(), detector, ratios);
    let since = &periods[scan.onset.min(periods.len())..periods.len().min(scan.peak + 1)];
    let total = |pick: fn(&PeriodCounts) -> f64| since.iter().map(pick).sum::<f64>();
    let (b, y) = (total(|p| p.baseline_requests), total(|p| p.baseline_errors));
    let (c, x) = (total(|p| p.candidate_requests), total(|p| p.candidate_errors));
    let rate = |errors: f64, requests: f64| (errors + 0.5) / (requests + 1.0);
    Some(scan.detection(rate(x, c) / rate(y, b), x + y))
}

/// Detects a change to H1: error rate > `limit` (0 < limit < 1), period by period, over the rates whose odds are
/// `m` × the limit's for `m` in [`RATIO_GRID`] (≈ `limit × m` for a small limit; always below 1, so a limit of
/// one half reaches rates near 1). Any count of events among trials works:
/// slow requests among requests, or one exceedance per period among one comparison (a sign test at 1/2). `None`
/// for invalid input.
pub fn error_limit_detector(periods: &[RateCounts], limit: f64, detector: Detector) -> Option<Detection> {
    if !(limit > 0.0 && limit < 1.0 && detector.valid()) || periods.len() > MAX_PERIODS {
        return None;
    }
    if !periods.iter().all(|p| valid_count(p.requests) && valid_count(p.errors) && p.errors <= p.requests) {
        return None;
    }
    let rates: Vec<f64> = RATIO_GRID.iter().map(|m| limit * m / (1.0 - limit + limit * m)).collect();
    // Per alternative p: p / limit per event and (1 − p) / (1 − limit) per non-event, and their logarithms.
    let per: Vec<(f64, f64)> = rates.iter().map(|p| (p / limit, (1.0 - p) / (1.0 - limit))).collect();
    let ln_per: Vec<(f64, f64)> = per.iter().map(|(hit, miss)| (hit.ln(), miss.ln())).collect();
    let (ln_hit, ln_miss) = ln_per.iter().fold((0.0f64, 0.0f64), |(h, m), (a, b)| (h.max(a.abs()), m.max(b.abs())));
    let ratios = |i: usize, out: &mut [f64]| {
        let (events, rest) = (periods[i].errors, periods[i].requests - periods[i].errors);
        if let (Some(e), Some(r)) = (whole(events), whole(rest))
            && events * ln_hit + rest * ln_miss < LINEAR_LIMIT
        {
            for (o, (hit, miss)) in out.iter_mut().zip(&per) {
                *o = hit.powi(e) * miss.powi(r);
            }
            return Ratios::Linear;
        }
        for (o, (hit, miss)) in out.iter_mut().zip(&ln_per) {
            *o = events * hit + rest * miss;
        }
        Ratios::Log
    };
    let scan = scan(periods.len(), rates.len(), detector, ratios);
    let since = &periods[scan.onset.min(periods.len())..periods.len().min(scan.peak + 1)];
    let (requests, errors) = since.iter().fold((0.0, 0.0), |(r, e), p| (r + p.requests, e + p.errors));
    let estimate = if requests > 0.0 { errors / requests } else { f64::NAN };
    Some(scan.detection(estimate, errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::stats::streams::{Rng, seeds};

    const DAY: Detector = Detector { alpha: 0.01, horizon: 1440, from_first_traffic: true };

    /// A 10% canary at 10 requests a second: the baseline at `rate`, the candidate at `rate` until `onset`, then
    /// at `rate × effect`.
    fn canary(rng: &mut Rng, periods: usize, rate: f64, onset: usize, effect: f64) -> Vec<PeriodCounts> {
        (0..periods)
            .map(|t| {
                let (b, c) = (540, 60);
                let candidate_rate = if t >= onset { (rate * effect).min(1.0) } else { rate };
                PeriodCounts {
                    baseline_requests: f64::from(b),
                    baseline_errors: rng.binomial(b, rate),
                    candidate_requests: f64::from(c),
                    candidate_errors: rng.binomial(c, candidate_rate),
                }
            })
            .collect()
    }

    /// The statistic by its definition, Σ_j w_j Σ_θ π_θ Π_{i ≥ j} L_θ(x_i), in O(n² × grid): the recursion's check.
    fn by_definition(periods: &[PeriodCounts], ratio: f64, detector: Detector) -> (f64, f64) {
        let ln_l = |p: &PeriodCounts, theta: f64| {
            let (b, c, x, y) = (p.baseline_requests, p.candidate_requests, p.candidate_errors, p.baseline_errors);
            if b <= 0.0 || c <= 0.0 || x + y <= 0.0 {
                return 0.0;
            }
            let q = |t: f64| t * c / (t * c + b);
            x * (q(theta) / q(ratio)).ln() + y * ((1.0 - q(theta)) / (1.0 - q(ratio))).ln()
        };
        let (mut last, mut max) = (0.0, 0.0f64);
        for n in 0..periods.len() {
            let mut m = 0.0;
            for j in 0..=n {
                let mixture: f64 = RATIO_GRID
                    .iter()
                    .map(|mult| periods[j..=n].iter().map(|p| ln_l(p, ratio * mult)).sum::<f64>().exp())
                    .sum::<f64>()
                    / RATIO_GRID.len() as f64;
                m += detector.ln_weight(j).exp() * mixture;
            }
            (last, max) = (m, max.max(m));
        }
        (last, max)
    }

    #[test]
    fn the_recursion_is_the_sum_of_every_restarted_e_process() {
        let mut rng = Rng(7);
        let periods = canary(&mut rng, 40, 0.01, 20, 6.0);
        for from_first_traffic in [true, false] {
            let detector = Detector { from_first_traffic, ..DAY };
            let found = error_ratio_detector(&periods, 2.0, detector).unwrap_or_else(|| panic!("valid input"));
            let (last, max) = by_definition(&periods, 2.0, detector);
            assert!((found.statistic / last - 1.0).abs() < 1e-9, "{} vs {last}", found.statistic);
            assert!((found.max_statistic / max - 1.0).abs() < 1e-9, "{} vs {max}", found.max_statistic);
        }
    }

    /// The bound Σ w_j over the horizon is alpha; streams of 300 periods at the null's boundary (the candidate's
    /// rate exactly ratio × the baseline's) with a horizon of 300 must raise false alarms at most that often.
    #[test]
    fn false_alarms_over_the_horizon_stay_below_alpha() {
        let detector = Detector { alpha: 0.05, horizon: 300, from_first_traffic: true };
        let streams = 2000;
        let false_alarms = seeds(streams)
            .filter(|_| true)
            .map(|mut rng| canary(&mut rng, 300, 0.01, 0, 1.0))
            .filter(|periods| error_ratio_detector(periods, 1.0, detector).is_some_and(|d| d.alarm))
            .count();
        let rate = false_alarms as f64 / streams as f64;
        assert!(rate <= detector.alpha, "false alarms of the ratio detector at the boundary: {rate}");
        let limit_alarms = seeds(streams)
            .filter(|rng| {
                let mut rng = Rng(rng.0);
                let periods: Vec<RateCounts> =
                    (0..300).map(|_| RateCounts { requests: 60.0, errors: rng.binomial(60, 0.05) }).collect();
                error_limit_detector(&periods, 0.05, detector).is_some_and(|d| d.alarm)
            })
            .count();
        let rate = limit_alarms as f64 / streams as f64;
        assert!(rate <= detector.alpha, "false alarms of the limit detector at the limit: {rate}");
    }

    /// The issue's case: a 10% canary at 10 requests a second, healthy for an hour, then its error rate 10× the
    /// baseline's. The test from first traffic (0.2.0) takes far longer than a window or two; the detector does not.
    #[test]
    fn a_regression_after_a_healthy_hour_is_found_within_two_windows() {
        let (onset, effect) = (60, 10.0);
        let mut detector_minutes = Vec::new();
        let mut test_minutes = Vec::new();
        for mut rng in seeds(100) {
            let periods = canary(&mut rng, onset + 60, 0.005, onset, effect);
            let first = |alarm: &dyn Fn(&[PeriodCounts]) -> bool| {
                (onset..periods.len()).find(|n| alarm(&periods[..=*n])).map_or(usize::MAX, |n| n + 1 - onset)
            };
            detector_minutes.push(first(&|p| error_ratio_detector(p, 2.0, DAY).is_some_and(|d| d.alarm)));
            test_minutes
                .push(first(&|p| super::super::sequential::error_ratio_test(p, 2.0, 0.01).is_some_and(|t| t.reject)));
        }
        detector_minutes.sort_unstable();
        test_minutes.sort_unstable();
        assert!(detector_minutes[50] <= 10, "median minutes after the onset: {}", detector_minutes[50]);
        assert!(detector_minutes[50] < test_minutes[50], "{detector_minutes:?} vs the test's {test_minutes:?}");
    }

    #[test]
    fn the_onset_is_found_where_the_change_began() {
        let mut rng = Rng(11);
        let periods = canary(&mut rng, 90, 0.005, 60, 20.0);
        let found = error_ratio_detector(&periods, 2.0, DAY).unwrap_or_else(|| panic!("valid input"));
        assert!(found.alarm);
        assert!((57..=63).contains(&found.onset), "onset at period {}", found.onset);
        assert!(found.estimate > 5.0, "the ratio since the onset: {}", found.estimate);
    }

    /// Present from the deploy, the first start's alpha/2 weight keeps the plain test's speed: within a period or
    /// two of the test at alpha/2.
    #[test]
    fn a_regression_from_the_deploy_keeps_the_tests_speed() {
        for mut rng in seeds(50) {
            let periods = canary(&mut rng, 60, 0.005, 0, 10.0);
            let first = |alarm: &dyn Fn(&[PeriodCounts]) -> bool| (0..periods.len()).find(|n| alarm(&periods[..=*n]));
            let detector = first(&|p| error_ratio_detector(p, 2.0, DAY).is_some_and(|d| d.alarm));
            let test = first(&|p| super::super::sequential::error_ratio_test(p, 2.0, 0.005).is_some_and(|t| t.reject));
            assert!(detector.is_some_and(|d| test.is_none_or(|t| d <= t)), "detector {detector:?}, test {test:?}");
        }
    }

    #[test]
    fn bad_input_is_refused_and_no_evidence_is_no_alarm() {
        assert!(error_ratio_detector(&[], 0.5, DAY).is_none(), "a ratio below 1");
        assert!(error_ratio_detector(&[], 2.0, Detector { horizon: 0, ..DAY }).is_none(), "a horizon of 0");
        assert!(error_limit_detector(&[], 1.0, DAY).is_none(), "a limit of 1");
        let bad = RateCounts { requests: 1.0, errors: 2.0 };
        assert!(error_limit_detector(&[bad], 0.01, DAY).is_none(), "more errors than requests");
        let empty = error_limit_detector(&[], 0.01, DAY).unwrap_or_else(|| panic!("empty input is valid"));
        assert!(!empty.alarm && empty.max_statistic == 0.0);
        let quiet = vec![RateCounts { requests: 100.0, errors: 0.0 }; 30];
        let found = error_limit_detector(&quiet, 0.01, DAY).unwrap_or_else(|| panic!("valid input"));
        assert!(!found.alarm && found.max_statistic < 0.01, "{found:?}");
        // Rates spaced by odds stay below 1 for any limit: every trial above a 95% limit is found.
        let high = vec![RateCounts { requests: 10.0, errors: 10.0 }; 30];
        assert!(error_limit_detector(&high, 0.95, DAY).is_some_and(|d| d.alarm));
    }
}
