//! Operating characteristics of the built-in policies with their defaults: how often a healthy release is rolled
//! back, and how fast a bad one is. Not a timing benchmark: a table, printed in markdown, that the README quotes.
//! Run with `cargo bench -p ripcord --bench operating` (about a minute on 2 cores; `RIPCORD_OC_SEEDS` sets the
//! seeds per cell, default 100 healthy / 40 regressed).
//!
//! Each cell runs seeded releases through the real policy components (`builtin:error-rate`, `builtin:latency`) in
//! virtual time, looking every minute for 2 hours as a guard with `interval = 1m`, `window = 5m`, `windows = 4`
//! would: the evaluation's windows reach back to the candidate's first traffic and, at 100% traffic, the known
//! good's hour of history before it is the baseline — what the cycle builds. Traffic per minute is Poisson, errors
//! binomial, latency lognormal per request (median 100 ms, σ 0.25, the simulator's defaults) summarized per minute
//! as its 95th percentile (exactly for ≤ 2,000 requests a minute, else by the order statistic's normal law). The
//! platform side (publication delay, gaps) is the simulator's job, not this table's.
//!
//! Healthy: the baseline at 0.5% errors; the candidate at 0.5× and 0.9× `max_rate` (1%) with its latency unchanged.
//! Regressed: the candidate at 2×, 5×, 20× `max_rate`, or its latency +20%, +50%, +200%, from its first minute.

use ripcord::evaluation::{Evaluation, History, MetricKind, MetricSeries, Params, Platform, Revision, Window};
use ripcord::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};
use ripcord::verdict::Verdict;

const MINUTE: i64 = 60_000;
const START: i64 = 1_795_000_000_000;
const LOOKS: usize = 120;
const WINDOW_MINUTES: i64 = 5;
const WINDOWS: i64 = 4;
const HISTORY_MINUTES: usize = 60;
const BASELINE_ERRORS: f64 = 0.005;
const MAX_RATE: f64 = 0.01;
const MEDIAN_MS: f64 = 100.0;
const SIGMA: f64 = 0.25;

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

    /// The 95th percentile of `n` lognormal latencies (median × `scale`), type 7 as CloudWatch and NumPy.
    fn p95(&mut self, n: usize, scale: f64) -> f64 {
        let median = MEDIAN_MS * scale;
        if n <= 2_000 {
            let mut values: Vec<f64> = (0..n).map(|_| median * (SIGMA * self.normal()).exp()).collect();
            values.sort_by(f64::total_cmp);
            let h = (n - 1) as f64 * 0.95;
            let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
            return values[lo] + (h - lo as f64) * (values[hi] - values[lo]);
        }
        // The sample quantile is asymptotically normal: sd = sqrt(p(1-p)/n) / f(q).
        let z = 1.644_853_626_951_472_2;
        let q = median * (SIGMA * z).exp();
        let density = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / (q * SIGMA);
        q + (0.95 * 0.05 / n as f64).sqrt() / density * self.normal()
    }
}

/// One revision's per-minute points: (minute start, requests, errors, p95).
#[derive(Default)]
struct Series(Vec<(i64, f64, f64, f64)>);

impl Series {
    fn minute(&mut self, rng: &mut Rng, at: i64, per_minute: f64, errors: f64, latency: f64) {
        let requests = rng.poisson(per_minute);
        let failed = rng.binomial(requests, errors);
        let p95 = if requests > 0.0 { rng.p95(requests as usize, latency) } else { f64::NAN };
        self.0.push((at, requests, failed, p95));
    }

    fn revision(&self, id: &str, share: f64, windows: &[Window]) -> Revision {
        let series = |name: &str, pick: fn(&(i64, f64, f64, f64)) -> f64| {
            let points = self.0.iter().filter(|p| p.1 > 0.0).map(|p| (p.0, pick(p)));
            MetricSeries::split(name, MetricKind::for_metric(name), points, windows)
        };
        Revision {
            id: id.into(),
            traffic_share: share,
            metrics: vec![series("requests", |p| p.1), series("errors", |p| p.2), series("latency_p95", |p| p.3)],
        }
    }
}

/// A release: the candidate's share, the rate of requests, its error rate and latency scale.
#[derive(Clone, Copy)]
struct Release {
    share: f64,
    rps: f64,
    errors: f64,
    latency: f64,
}

/// Minutes from the first traffic to the first rollback verdict of any of `policies`, if within 2 hours.
fn minutes_to_rollback(runtime: &Runtime, policies: &[&Plugin], release: Release, seed: u64) -> Option<usize> {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let per_minute = release.rps * 60.0;
    let mut history = Series::default();
    for m in 0..HISTORY_MINUTES {
        let at = START - (HISTORY_MINUTES - m) as i64 * MINUTE;
        history.minute(&mut rng, at, per_minute, BASELINE_ERRORS, 1.0);
    }
    let span = Window { start: START - HISTORY_MINUTES as i64 * MINUTE, end: START };
    let known_good = History { revision: history.revision("1", 0.0, &[span]), span };
    let (mut baseline, mut candidate) = (Series::default(), Series::default());
    for look in 1..=LOOKS {
        let at = START + (look as i64 - 1) * MINUTE;
        candidate.minute(&mut rng, at, per_minute * release.share, release.errors, release.latency);
        if release.share < 1.0 {
            baseline.minute(&mut rng, at, per_minute * (1.0 - release.share), BASELINE_ERRORS, 1.0);
        }
        let now = at + MINUTE;
        let count = ((look as i64 + WINDOW_MINUTES - 1) / WINDOW_MINUTES).max(WINDOWS) as usize;
        let windows = Window::ending_at(now, WINDOW_MINUTES * MINUTE, count);
        let evaluation = Evaluation {
            guard: "oc".into(),
            platform: Platform::AwsLambda,
            now,
            deployed_at: Some(START),
            baseline: (release.share < 1.0).then(|| baseline.revision("1", 1.0 - release.share, &windows)),
            known_good: Some(known_good.clone()),
            candidate: candidate.revision("2", release.share, &windows),
            windows,
            params: Params::new(),
        };
        for policy in policies {
            let report = runtime.evaluate(policy, &evaluation).unwrap_or_else(|e| panic!("{e}"));
            if report.verdict == Verdict::Rollback {
                return Some(look);
            }
        }
    }
    None
}

fn quantile(sorted: &[usize], q: f64) -> usize {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
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
    let shares = [0.1, 1.0];
    let rates = [1.0, 10.0, 100.0];
    let label = |share: f64| if share < 1.0 { "10% canary".to_string() } else { "100% (after promotion)".into() };

    println!("Healthy releases: false rollbacks per 100 (either policy, looking every minute for 2 hours)\n");
    println!("| candidate errors | traffic | 1 rps | 10 rps | 100 rps |\n|---|---|---|---|---|");
    let healthy_seeds = seeds(100);
    for fraction in [0.5, 0.9] {
        for share in shares {
            let cells: Vec<String> = rates
                .iter()
                .map(|&rps| {
                    let release = Release { share, rps, errors: fraction * MAX_RATE, latency: 1.0 };
                    let false_rollbacks = (0..healthy_seeds)
                        .filter(|&seed| {
                            minutes_to_rollback(&runtime, &[&error_rate, &latency], release, seed).is_some()
                        })
                        .count();
                    format!("{:.1}", 100.0 * false_rollbacks as f64 / healthy_seeds as f64)
                })
                .collect();
            println!("| {fraction}× max_rate | {} | {} |", label(share), cells.join(" | "));
        }
    }

    println!("\nRegressions: minutes from first traffic to rollback, median / p90 (rolled back within 2 h)\n");
    println!("| regression | traffic | 1 rps | 10 rps | 100 rps |\n|---|---|---|---|---|");
    let bad_seeds = seeds(40);
    let regressions: [(&str, f64, f64, &Plugin); 6] = [
        ("errors 2× max_rate", 2.0 * MAX_RATE, 1.0, &error_rate),
        ("errors 5× max_rate", 5.0 * MAX_RATE, 1.0, &error_rate),
        ("errors 20× max_rate", 20.0 * MAX_RATE, 1.0, &error_rate),
        ("latency +20%", BASELINE_ERRORS, 1.2, &latency),
        ("latency +50%", BASELINE_ERRORS, 1.5, &latency),
        ("latency +200%", BASELINE_ERRORS, 3.0, &latency),
    ];
    for (name, errors, scale, policy) in regressions {
        for share in shares {
            let cells: Vec<String> = rates
                .iter()
                .map(|&rps| {
                    let release = Release { share, rps, errors, latency: scale };
                    let mut found: Vec<usize> = (0..bad_seeds)
                        .filter_map(|seed| minutes_to_rollback(&runtime, &[policy], release, 1_000 + seed))
                        .collect();
                    found.sort_unstable();
                    if found.is_empty() {
                        return format!("— (0/{bad_seeds})");
                    }
                    let (median, p90) = (quantile(&found, 0.5), quantile(&found, 0.9));
                    let all = if found.len() as u64 == bad_seeds {
                        String::new()
                    } else {
                        format!(" ({}/{bad_seeds})", found.len())
                    };
                    format!("{median} / {p90}{all}")
                })
                .collect();
            println!("| {name} | {} | {} |", label(share), cells.join(" | "));
        }
    }
}
