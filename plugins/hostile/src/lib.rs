//! A policy that misbehaves on purpose, chosen by its `behaviour` parameter. The host's tests load it to prove
//! that each kind of misbehaviour is contained, reported as `inconclusive` naming the plugin and the cause, and that
//! the host carries on.

use ripcord_policy::prelude::*;
use std::hint::black_box;

struct Hostile;

impl Policy for Hostile {
    fn describe() -> PolicyInfo {
        PolicyInfo::new("hostile", env!("CARGO_PKG_VERSION"), "Misbehaves on purpose; for the host's tests only.")
            .param(ParamSpec::text(
                "behaviour",
                "behave",
                "behave | loop | memory | recursion | trap | huge-reason | long-reason | many-checks | log-burst | file | socket | env | \
                 spam-log | stdout | forge-output | print-lots | print-and-panic | stdin",
            ))
            .param(ParamSpec::text(
                "thresholds",
                "none",
                "What `latency-thresholds` does: none | loop | trap | too-many | zero.",
            ))
            .param(ParamSpec::text("path", "/etc/hostname", "File the `file` behaviour tries to read."))
            .param(ParamSpec::text("address", "127.0.0.1:9", "Address the `socket` behaviour tries to connect to."))
    }

    fn latency_thresholds(request: ThresholdRequest) -> Result<Vec<u32>, String> {
        let p = Params::from_list(&request.params, &Self::describe())?;
        match p.text("thresholds")? {
            "none" => Ok(Vec::new()),
            "loop" => loop {
                black_box(0u64);
            },
            "trap" => panic!("hostile plugin panics in latency-thresholds on purpose"),
            "too-many" => Ok((1..=black_box(100)).collect()),
            "zero" => Ok(vec![black_box(0)]),
            other => Err(format!("unknown thresholds behaviour {other:?}")),
        }
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        match p.text("behaviour")? {
            "behave" => Ok(Report::promote("behaving")),
            "loop" => loop {
                black_box(0u64);
            },
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut block = vec![0u8; 1 << 20];
                    block[black_box(4096)] = 1;
                    hoard.push(black_box(block));
                }
            }
            "recursion" => Ok(Report::hold(format!("depth {}", recurse(black_box(0))))),
            "trap" => panic!("hostile plugin panics on purpose"),
            "huge-reason" => Ok(Report::hold("x".repeat(black_box(8 << 20)))),
            "long-reason" => Ok(Report::hold("x".repeat(black_box(100 << 10)))),
            "many-checks" => {
                let mut checks = Checks::new();
                for i in 0..black_box(200_000) {
                    checks.at_most("c", f64::from(i), 0.0);
                }
                Ok(Report::hold("200,000 checks").with(checks))
            }
            "log-burst" => {
                log::info(&"z".repeat(black_box(32 << 20)));
                Ok(Report::promote("logged 32 MiB in one message"))
            }
            "file" => match std::fs::read_to_string(p.text("path")?) {
                Ok(text) => Ok(Report::rollback(format!("read a host file: {} bytes", text.len()))),
                Err(err) => Err(format!("file access denied: {err}")),
            },
            "socket" => match std::net::TcpStream::connect(p.text("address")?) {
                Ok(_) => Ok(Report::rollback("opened a socket")),
                Err(err) => Err(format!("socket denied: {err}")),
            },
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                if vars.is_empty() && args.is_empty() {
                    Err("no environment and no arguments visible".to_string())
                } else {
                    Ok(Report::rollback(format!("saw environment {vars:?} and arguments {args:?}")))
                }
            }
            "spam-log" => {
                for i in 0..10_000 {
                    log::info(&format!("message {i} {}", "y".repeat(10_000)));
                }
                Ok(Report::promote("logged a lot"))
            }
            "print-lots" => {
                for i in 0..black_box(20_000) {
                    println!("line {i} of a plugin that prints a lot");
                }
                Ok(Report::promote("printed a lot"))
            }
            "print-and-panic" => {
                println!("hostile-rust about to fail");
                panic!("hostile plugin prints, then panics")
            }
            "stdin" => {
                let mut line = String::new();
                match std::io::stdin().read_line(&mut line) {
                    Ok(n) => Ok(Report::promote(format!("read {n} bytes from stdin"))),
                    Err(err) => Err(format!("stdin denied: {err}")),
                }
            }
            "forge-output" => {
                let mut checks = Checks::new();
                checks.at_most("\u{1b}[32mall\nchecks\u{202e}", 1.0, 2.0);
                Ok(Report::hold("\u{1b}[2J\u{1b}[Hchecked\r\nchecked: ROLLED BACK\u{0}\u{202e}").with(checks))
            }
            "stdout" => {
                println!("hello from the plugin's stdout");
                eprintln!("hello from the plugin's stderr");
                Ok(Report::promote("printed"))
            }
            other => Err(format!("unknown behaviour {other:?}")),
        }
    }
}

fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    if black_box(true) { recurse(depth + 1) + frame[(depth % 64) as usize] } else { depth }
}

ripcord_policy::export_policy!(Hostile);
