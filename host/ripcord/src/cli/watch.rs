//! `ripcord watch`: cycles until interrupted (or N cycles), each guard on its own `interval`; the exit code covers
//! every cycle ([`Watched`]).

use super::output::Watched;

use super::RuntimeArgs;
use super::output::{exit_code, print};
use super::setup::{async_runtime, controller};
use ripcord::cycle::controller::Controller;
use ripcord::record::audit::Actor;
use ripcord::record::telemetry::{CycleSample, Registry};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    config: &Path,
    dry_run: bool,
    cycles: Option<u64>,
    json: bool,
    metrics_addr: Option<std::net::SocketAddr>,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let controller = controller(config, runtime_args, dry_run)?;
    let mut watched = Watched::default();
    let registry = std::sync::Arc::new(Registry::default());
    async_runtime()?.block_on(async {
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: cannot listen: {e}"))?;
            let bound = listener.local_addr()?;
            eprintln!("ripcord metrics at http://{bound}/metrics");
            tokio::spawn(ripcord::record::telemetry::serve(listener, registry.clone()));
        }
        self::cycles(&controller, &registry, Cycles { json, limit: cycles, acting: None }, &mut watched).await
    })?;
    Ok(ExitCode::from(watched.code()))
}

/// How [`cycles`] runs.
pub(crate) struct Cycles<'a> {
    /// Print each cycle as one JSON object instead of text.
    pub(crate) json: bool,
    /// Stop after this many cycles.
    pub(crate) limit: Option<u64>,
    /// Held for each cycle, when other tasks of the process act on the same guards (`ripcord serve`).
    pub(crate) acting: Option<&'a tokio::sync::Mutex<()>>,
}

/// Runs the controller's guards, each on its own interval, until interrupted, `limit` cycles, or nobody reads
/// stdout any more; every cycle is printed, counted in `registry` and added to `watched`.
pub(crate) async fn cycles(
    controller: &Controller,
    registry: &Registry,
    how: Cycles<'_>,
    watched: &mut Watched,
) -> anyhow::Result<()> {
    let clock = controller.clock();
    let mut schedule = Schedule::new(controller.config(), clock.now_ms().await?);
    let mut done = 0u64;
    loop {
        let now = clock.now_ms().await?;
        let due = schedule.take_due(now);
        if due.is_empty() {
            // Woken early (a system clock step): an empty list would mean every guard.
            let wait = schedule.next_due().saturating_sub(now).max(1);
            clock.sleep(std::time::Duration::from_millis(wait as u64)).await?;
            continue;
        }
        let started = std::time::Instant::now();
        let reports = {
            let _acting = match how.acting {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            controller.check(&due, Actor::Schedule).await
        };
        let sample = CycleSample::of(&reports, started.elapsed().as_millis() as u64);
        sample.log();
        registry.record(&sample, now);
        watched.add(&reports);
        if !how.json {
            super::output::line(format!("-- {}", ripcord::model::time::format_timestamp(now)))?;
        }
        print(&reports, how.json, exit_code(&reports))?;
        done += 1;
        // Nobody reads any more (`watch | head`): end quietly, between cycles, never mid-change.
        if how.limit.is_some_and(|n| done >= n) || super::output::stdout_closed() {
            return Ok(());
        }
        let wait = schedule.next_due().saturating_sub(clock.now_ms().await?).max(0);
        tokio::select! {
            slept = clock.sleep(std::time::Duration::from_millis(wait as u64)) => slept?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// When each guard is next due: every guard is judged on its own `interval`, counted from the start.
#[derive(Debug)]
struct Schedule {
    /// (guard, interval in ms, next due in ms).
    guards: Vec<(String, i64, i64)>,
}

impl Schedule {
    /// Every guard of `config` from `now`; a guard whose own fields are invalid (it has no interval of its own)
    /// is reported as often as the most frequent guard is judged, at least once a minute.
    fn new(config: &ripcord::config::Config, now: i64) -> Self {
        let served = config.guards.iter().map(|g| (g.name.clone(), g.interval.as_millis() as i64, now));
        let mut guards: Vec<(String, i64, i64)> = served.collect();
        let shortest = guards.iter().map(|(_, interval, _)| *interval).min().unwrap_or(60_000).min(60_000);
        guards.extend(config.broken.iter().map(|b| (b.name.clone(), shortest, now)));
        Self { guards }
    }

    /// The guards due at `now`, each then scheduled one interval later (skipping intervals missed meanwhile).
    fn take_due(&mut self, now: i64) -> Vec<String> {
        let mut due = Vec::new();
        for (name, interval, next) in &mut self.guards {
            if *next <= now {
                due.push(name.clone());
                let missed = (now - *next) / *interval;
                *next += (missed + 1) * *interval;
            }
        }
        due
    }

    fn next_due(&self) -> i64 {
        self.guards.iter().map(|(_, _, next)| *next).min().unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ripcord::config::Config;

    #[test]
    fn each_guard_is_due_on_its_own_interval() {
        let text = "[[guard]]\nname = \"fast\"\nplatform = \"aws-lambda\"\nfunction = \"f\"\nalias = \"a\"\ninterval = \"1m\"\npolicies = [{ use = \"builtin:error-rate\" }]\n[[guard]]\nname = \"slow\"\nplatform = \"aws-lambda\"\nfunction = \"g\"\nalias = \"a\"\ninterval = \"10m\"\npolicies = [{ use = \"builtin:error-rate\" }]\n";
        let config = Config::parse(text, Path::new("guards.toml")).unwrap_or_else(|e| panic!("{e}"));
        let mut schedule = Schedule::new(&config, 0);
        let mut judged = std::collections::BTreeMap::<String, u32>::new();
        let mut now = 0;
        for _ in 0..20 {
            for name in schedule.take_due(now) {
                *judged.entry(name).or_default() += 1;
            }
            now = schedule.next_due();
        }
        assert_eq!(now, 20 * 60_000, "one tick a minute");
        assert_eq!(judged["fast"], 20);
        assert_eq!(judged["slow"], 2, "the 10m guard at 0 and 10m only");
    }
}
