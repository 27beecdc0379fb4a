//! Operating characteristics of the built-in policies with their defaults, beside a plain threshold rule on the same
//! seeds: how often a healthy release is rolled back, and how fast a bad one is — from its first traffic, and when
//! it turns bad after a healthy period. Not a timing benchmark: tables, printed in markdown, that the README quotes.
//! Run with `cargo bench -p ripcord --bench operating` (`RIPCORD_OC_SEEDS` sets the seeds per cell, default 100
//! healthy / 40 regressed).
//!
//! Each release runs through the real policy components (`builtin:error-rate`, `builtin:latency`) in virtual time,
//! looking every minute as a guard with `interval = 1m`, `window = 5m`, `windows = 4` would: the evaluation's
//! windows reach back to the candidate's first traffic, the known good's hour of history before it is the
//! reference (and, at 100% traffic, the only baseline), and `builtin:latency` gets the slow-request counts above
//! the threshold it asks for (`latency-thresholds`) — what the cycle builds. Traffic per minute is Poisson, errors
//! binomial, latency lognormal per request (median 100 ms, σ 0.25, the simulator's defaults), summarized per
//! minute as its p95 and as the count above the threshold (both from the same requests up to 2,000 a minute; above,
//! the p95 by the order statistic's normal law and the count binomial).
//!
//! The policies' rollback verdicts are latched (their detectors report the largest statistic over every minute),
//! so a look at the end of a day answers "rolled back at any look that day" exactly, and a release that turns bad
//! is looked at once at its onset (an earlier false rollback) and then every minute.
//!
//! The threshold rule, in the style of CodeDeploy's CloudWatch alarms (one-minute datapoints, 2 of 2, missing data
//! not breaching): roll back when the candidate's error rate is above `max_rate` (1%), or its p95 above 1.3 × the
//! known good's p95 (builtin:latency's factor), in two consecutive minutes.

use ripcord::model::evaluation::{
    Evaluation, History, MetricKind, MetricSeries, Params, Platform, Revision, ThresholdRequest, Window,
    slow_requests_metric,
};
use ripcord::model::verdict::Verdict;
use ripcord::plugin::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};

const MINUTE: i64 = 60_000;
const START: i64 = 1_795_000_000_000;
const DAY: usize = 1440;
const AFTER_ONSET: usize = 120;
const WINDOW_MINUTES: i64 = 5;
const WINDOWS: i64 = 4;
const HISTORY_MINUTES: usize = 60;
const BASELINE_ERRORS: f64 = 0.005;
const MAX_RATE: f64 = 0.01;
const FACTOR: f64 = 1.3;
const MEDIAN_MS: f64 = 100.0;
const SIGMA: f64 = 0.25;
const Z95: f64 = 1.644_853_626_951_472_2;

/// SplitMix64: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn poisson(&mut self, mean: f64) -> f64 {
        if mean > 50.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0);
        }
        let (limit, mut product, mut k) = ((-mean).exp(), self.unit(), 0.0);
        while product > limit {
            product *= self.unit();
            k += 1.0;
        }
        k
    }

    fn binomial(&mut self, n: f64, p: f64) -> f64 {
        if n <= 300.0 {
            return (0..n as u64).filter(|_| self.unit() < p).count() as f64;
        }
        if n * p < 50.0 {
            return self.poisson(n * p).min(n);
        }
        (n * p + (n * p * (1.0 - p)).sqrt() * self.normal()).round().clamp(0.0, n)
    }

    /// The p95 (type 7, as CloudWatch and NumPy) of `n` lognormal latencies (median × `scale`), and how many of them
    /// are slower than `threshold` ms.
    fn latencies(&mut self, n: usize, scale: f64, threshold: f64) -> (f64, f64) {
        let median = MEDIAN_MS * scale;
        if n <= 2_000 {
            let mut values: Vec<f64> = (0..n).map(|_| median * (SIGMA * self.normal()).exp()).collect();
            values.sort_by(f64::total_cmp);
            let h = (n - 1) as f64 * 0.95;
            let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
            let slow = values.len() - values.partition_point(|v| *v <= threshold);
            return (values[lo] + (h - lo as f64) * (values[hi] - values[lo]), slow as f64);
        }
        // The sample quantile is asymptotically normal: sd = sqrt(p(1-p)/n) / f(q).
        let q = median * (SIGMA * Z95).exp();
        let density = (-Z95 * Z95 / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / (q * SIGMA);
        let p95 = q + (0.95 * 0.05 / n as f64).sqrt() / density * self.normal();
        let above = 0.5 * libm::erfc((threshold / median).ln() / SIGMA / std::f64::consts::SQRT_2);
        (p95, self.binomial(n as f64, above))
    }
}

/// One revision's per-minute points: (minute start, requests, errors, p95, slow requests).
#[derive(Default)]
struct Series(Vec<(i64, f64, f64, f64, f64)>);

impl Series {
    fn minute(&mut self, rng: &mut Rng, at: i64, per_minute: f64, errors: f64, latency: f64, threshold: f64) {
        let requests = rng.poisson(per_minute);
        let failed = rng.binomial(requests, errors);
        let (p95, slow) =
            if requests > 0.0 { rng.latencies(requests as usize, latency, threshold) } else { (f64::NAN, 0.0) };
        self.0.push((at, requests, failed, p95, slow));
    }

    fn revision(&self, id: &str, share: f64, windows: &[Window], slow: Option<u32>) -> Revision {
        type Pick = fn(&(i64, f64, f64, f64, f64)) -> f64;
        let series = |name: &str, pick: Pick| {
            let points = self.0.iter().filter(|p| p.1 > 0.0).map(|p| (p.0, pick(p)));
            MetricSeries::split(name, MetricKind::for_metric(name), points, windows)
        };
        let mut metrics = vec![series("requests", |p| p.1), series("errors", |p| p.2), series("latency_p95", |p| p.3)];
        if let Some(t) = slow {
            metrics.push(series(&slow_requests_metric(t), |p| p.4));
        }
        Revision { id: id.into(), traffic_share: share, metrics }
    }
}

/// A release: the candidate's share, the rate of requests, and from `onset` minutes after its first traffic its
/// error rate and latency scale (before the onset it is as healthy as the baseline).
#[derive(Clone, Copy)]
struct Release {
    share: f64,
    rps: f64,
    errors: f64,
    latency: f64,
    onset: usize,
}

/// When each rule first rolled back (minutes from first traffic), if it did.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    ripcord: Option<usize>,
    rule: Option<usize>,
}

struct Bench {
    runtime: Runtime,
    error_rate: Plugin,
    latency: Plugin,
}

impl Bench {
    /// Runs `release` for `minutes` (a seeded life), looking with `policies` at `looks` (latched: the first look
    /// that rolls back is the outcome) and applying the threshold rule every minute.
    fn run(&self, release: Release, policies: &[&Plugin], minutes: usize, looks: &[usize], seed: u64) -> Outcome {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
        let per_minute = release.rps * 60.0;
        let mut history = Series::default();
        for m in 0..HISTORY_MINUTES {
            let at = START - (HISTORY_MINUTES - m) as i64 * MINUTE;
            history.minute(&mut rng, at, per_minute, BASELINE_ERRORS, 1.0, f64::INFINITY);
        }
        let span = Window { start: START - HISTORY_MINUTES as i64 * MINUTE, end: START };
        let known_good = History { revision: history.revision("1", 0.0, &[span], None), span };
        let request = ThresholdRequest {
            guard: "oc".into(),
            platform: Platform::AwsLambda,
            known_good: Some(known_good.clone()),
            params: Params::new(),
        };
        let threshold = self.runtime.latency_thresholds(&self.latency, &request).ok().and_then(|t| t.first().copied());
        let level = {
            let mut p95: Vec<f64> = history.0.iter().map(|p| p.3).filter(|v| v.is_finite()).collect();
            p95.sort_by(f64::total_cmp);
            p95.get(p95.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let counted = threshold.map_or(f64::INFINITY, f64::from);
        let (mut baseline, mut candidate) = (Series::default(), Series::default());
        let mut outcome = Outcome::default();
        let mut breaching = 0;
        let mut next_look = looks.iter().copied().peekable();
        for minute in 1..=minutes {
            let at = START + (minute as i64 - 1) * MINUTE;
            let bad = minute > release.onset;
            let (errors, latency) = if bad { (release.errors, release.latency) } else { (BASELINE_ERRORS, 1.0) };
            candidate.minute(&mut rng, at, per_minute * release.share, errors, latency, counted);
            if release.share < 1.0 {
                baseline.minute(&mut rng, at, per_minute * (1.0 - release.share), BASELINE_ERRORS, 1.0, counted);
            }
            let uses = |plugin: &Plugin| policies.iter().any(|p| std::ptr::eq(*p, plugin));
            if outcome.rule.is_none() {
                let &(_, requests, failed, p95, _) = &candidate.0[candidate.0.len() - 1];
                let breach = requests > 0.0
                    && ((uses(&self.error_rate) && failed / requests > MAX_RATE)
                        || (uses(&self.latency) && p95 > FACTOR * level));
                breaching = if breach { breaching + 1 } else { 0 };
                if breaching >= 2 {
                    outcome.rule = Some(minute);
                }
            }
            if next_look.peek() == Some(&minute) {
                next_look.next();
                if outcome.ripcord.is_none() {
                    let now = at + MINUTE;
                    let count = ((minute as i64 + WINDOW_MINUTES - 1) / WINDOW_MINUTES).max(WINDOWS) as usize;
                    let windows = Window::ending_at(now, WINDOW_MINUTES * MINUTE, count);
                    let evaluation = Evaluation {
                        guard: "oc".into(),
                        platform: Platform::AwsLambda,
                        now,
                        deployed_at: Some(START),
                        baseline: (release.share < 1.0)
                            .then(|| baseline.revision("1", 1.0 - release.share, &windows, threshold)),
                        known_good: Some(known_good.clone()),
                        candidate: candidate.revision("2", release.share, &windows, threshold),
                        windows,
                        params: Params::new(),
                    };
                    let rolled_back = policies.iter().any(|policy| {
                        let report = self.runtime.evaluate(policy, &evaluation).unwrap_or_else(|e| panic!("{e}"));
                        report.verdict == Verdict::Rollback
                    });
                    if rolled_back {
                        outcome.ripcord = Some(minute);
                    }
                }
            }
            if outcome.ripcord.is_some() && outcome.rule.is_some() {
                break;
            }
        }
        outcome
    }
}

fn quantile(sorted: &[usize], q: f64) -> usize {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// `median / p90` of the minutes from the onset, with `(found/seeds)` when not all were found and `, N early` for
/// rollbacks before the onset.
fn detection_cell(found: &[Option<usize>], onset: usize) -> String {
    let early = found.iter().flatten().filter(|m| **m <= onset).count();
    let mut after: Vec<usize> = found.iter().flatten().filter(|m| **m > onset).map(|m| m - onset).collect();
    after.sort_unstable();
    let early = if early > 0 { format!(", {early} early") } else { String::new() };
    if after.is_empty() {
        return format!("— (0/{}{early})", found.len());
    }
    let all = if after.len() == found.len() { String::new() } else { format!(" ({}/{})", after.len(), found.len()) };
    format!("{} / {}{all}{early}", quantile(&after, 0.5), quantile(&after, 0.9))
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) that does not name this table skips it.
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"operating".contains(a.as_str())) {
        return;
    }
    let seeds = |default: u64| std::env::var("RIPCORD_OC_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let cache = std::env::temp_dir().join("ripcord-bench-operating-cache");
    let runtime = Runtime::new(RuntimeSettings { cache: CacheDir::At(cache), ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let load = |name: &str| runtime.load(&PluginSource::Builtin(name.into())).unwrap_or_else(|e| panic!("{e}"));
    let (error_rate, latency) = (load("error-rate"), load("latency"));
    let bench = Bench { runtime, error_rate, latency };
    let both = [&bench.error_rate, &bench.latency];
    let shares = [0.1, 1.0];
    let rates = [1.0, 10.0, 100.0];
    let label = |share: f64| if share < 1.0 { "10% canary".to_string() } else { "100%".into() };

    let healthy_seeds = seeds(100);
    println!(
        "Healthy releases: rolled back per 100 releases looking every minute for 2 hours / for a day \
         (ripcord · threshold rule)\n"
    );
    println!("| candidate errors | traffic | 1 rps | 10 rps | 100 rps |\n|---|---|---|---|---|");
    for fraction in [0.5, 0.9] {
        for share in shares {
            let cells: Vec<String> = rates
                .iter()
                .map(|&rps| {
                    // Healthy from its first minute: the candidate's own (tolerated) error rate from the start.
                    let release = Release { share, rps, errors: fraction * MAX_RATE, latency: 1.0, onset: 0 };
                    let outcomes: Vec<Outcome> =
                        (0..healthy_seeds).map(|seed| bench.run(release, &both, DAY, &[120, DAY], seed)).collect();
                    let per_100 = |pick: &dyn Fn(&Outcome) -> Option<usize>, within: usize| {
                        100.0 * outcomes.iter().filter(|o| pick(o).is_some_and(|m| m <= within)).count() as f64
                            / healthy_seeds as f64
                    };
                    format!(
                        "{:.0} / {:.0} · {:.0} / {:.0}",
                        per_100(&|o| o.ripcord, 120),
                        per_100(&|o| o.ripcord, DAY),
                        per_100(&|o| o.rule, 120),
                        per_100(&|o| o.rule, DAY)
                    )
                })
                .collect();
            println!("| {fraction}× max_rate | {} | {} |", label(share), cells.join(" | "));
        }
    }

    let bad_seeds = seeds(40);
    println!(
        "\nRegressions: minutes from the onset to rollback, median / p90 (ripcord · threshold rule); \
         `(n/N)` found within 2 hours, `early`: rolled back before the onset\n"
    );
    println!("| regression | traffic | onset | 1 rps | 10 rps | 100 rps |\n|---|---|---|---|---|---|");
    let regressions: [(&str, f64, f64, &Plugin); 6] = [
        ("errors 2× max_rate", 2.0 * MAX_RATE, 1.0, &bench.error_rate),
        ("errors 5× max_rate", 5.0 * MAX_RATE, 1.0, &bench.error_rate),
        ("errors 20× max_rate", 20.0 * MAX_RATE, 1.0, &bench.error_rate),
        ("latency +20%", BASELINE_ERRORS, 1.2, &bench.latency),
        ("latency +50%", BASELINE_ERRORS, 1.5, &bench.latency),
        ("latency +200%", BASELINE_ERRORS, 3.0, &bench.latency),
    ];
    for (name, errors, scale, policy) in regressions {
        for share in shares {
            for onset in [0, 15, 60] {
                let cells: Vec<String> = rates
                    .iter()
                    .map(|&rps| {
                        let release = Release { share, rps, errors, latency: scale, onset };
                        let minutes = onset + AFTER_ONSET;
                        let mut looks: Vec<usize> = (onset + 1..=minutes).collect();
                        if onset > 0 {
                            looks.insert(0, onset);
                        }
                        let outcomes: Vec<Outcome> = (0..bad_seeds)
                            .map(|seed| bench.run(release, &[policy], minutes, &looks, 1_000 + seed))
                            .collect();
                        let ripcord: Vec<Option<usize>> = outcomes.iter().map(|o| o.ripcord).collect();
                        let rule: Vec<Option<usize>> = outcomes.iter().map(|o| o.rule).collect();
                        format!("{} · {}", detection_cell(&ripcord, onset), detection_cell(&rule, onset))
                    })
                    .collect();
                println!("| {name} | {} | {onset} min | {} |", label(share), cells.join(" | "));
            }
        }
    }
}
