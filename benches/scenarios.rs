//! How long the bundled scenarios take, all of them, as `hubmock run scenarios/` runs them.
//! `cargo bench --bench scenarios` (set `ROUNDS` to change the number of rounds).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hubmock::scenario::{self, report};

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files = scenario::collect(&[dir]).expect("scenarios/ is readable");
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let jobs = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
        * 4;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let loaded: Vec<_> = files
            .iter()
            .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let started = Instant::now();
        let outcomes = runtime.block_on(report::run_all(loaded, jobs, |_| {}));
        times.push(started.elapsed());
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed())
            .map(report::line)
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / rounds as u32;
    let slowest = runtime.block_on(async {
        let loaded: Vec<_> = files.iter().map(|f| scenario::load(f).unwrap()).collect();
        let mut outcomes = report::run_all(loaded, jobs, |_| {}).await;
        outcomes.sort_by_key(|o| std::cmp::Reverse(o.duration));
        outcomes.truncate(3);
        outcomes
    });
    println!(
        "{} scenarios, {jobs} at a time, {rounds} rounds: min {:?}, median {:?}, mean {mean:?}, max {:?}",
        files.len(),
        times[0],
        times[rounds / 2],
        times[rounds - 1]
    );
    for outcome in slowest {
        println!("  slowest: {:>6?}  {}", outcome.duration, outcome.file);
    }
}
