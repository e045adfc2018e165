//! Shard planner benchmarks: duration-balanced splits of large suites.
//!
//! Run with `cargo bench -p testkube-core --bench shard`. The setup prints,
//! once per distribution, the makespan / lower bound ratio of the plan
//! (1.000 is a perfect split), so the quality of the split is reported
//! beside its speed.
//!
//! Distributions:
//! - `lognormal`: 100,000 tests, log-normal durations (median 0.5 s,
//!   sigma 1.5: most tests fast, a long tail of slow ones), from a fixed-seed
//!   generator written here, so every run sees the same suite;
//! - `eclipse`: the 3,366 measured test-case durations of a real Ant JUnit
//!   report (`shared/data/reports/large/ant-junitreport-eclipse-pde-3366.xml`),
//!   as is (into 10 shards) and resampled in order to 100,000 tests.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use testkube_core::shard::{DefaultDuration, Item, ShardPlan, balance, suggest_shard_count};

const SUITE_SIZE: usize = 100_000;
const SHARDS: usize = 100;

fn shard_benches(c: &mut Criterion) {
    let default = DefaultDuration::MeanOfKnown;
    // (name, suite, shards)
    let mut suites = vec![(
        "lognormal-100k",
        lognormal_suite(SUITE_SIZE, 0x5eed_cafe),
        SHARDS,
    )];
    match eclipse_durations() {
        Some(durations) => {
            // Ten shards: with a hundred, the longest test alone is the bound.
            suites.push(("eclipse-3366", suite_from(&durations, durations.len()), 10));
            suites.push((
                "eclipse-resampled-100k",
                suite_from(&durations, SUITE_SIZE),
                SHARDS,
            ));
        }
        None => eprintln!("eclipse report not found beside the workspace: skipping it"),
    }

    let mut group = c.benchmark_group("balance");
    group.sample_size(30);
    for (name, suite, shards) in &suites {
        let shards = NonZeroUsize::new(*shards).unwrap_or(NonZeroUsize::MIN);
        report_quality(name, &balance(suite, shards, &default), suite.len());
        group.bench_function(format!("{name}-into-{shards}"), |b| {
            b.iter(|| balance(black_box(suite), shards, &default))
        });
    }
    group.finish();

    // How many shards finish the lognormal suite within 1.1 × its 100-shard bound.
    let (_, suite, shards) = &suites[0];
    let shards = NonZeroUsize::new(*shards).unwrap_or(NonZeroUsize::MIN);
    let bound = balance(suite, shards, &default).lower_bound_seconds();
    let target = bound * 1.1;
    let max_shards = NonZeroUsize::new(1_000).unwrap_or(NonZeroUsize::MIN);
    if let Ok(suggestion) = suggest_shard_count(suite, target, max_shards, &default) {
        eprintln!(
            "suggest lognormal-100k, target {target:.1} s: {} shards (makespan {:.1} s)",
            suggestion.shards(),
            suggestion.plan().makespan_seconds()
        );
    }
    let mut group = c.benchmark_group("suggest");
    group.sample_size(10);
    group.bench_function("lognormal-100k-target-1.1x-bound", |b| {
        b.iter(|| suggest_shard_count(black_box(suite), target, max_shards, &default))
    });
    group.finish();
}

fn report_quality(name: &str, plan: &ShardPlan, items: usize) {
    eprintln!(
        "{name}: {items} items into {} shards: makespan {:.3} s, lower bound {:.3} s, \
         ratio {:.5}, method {:?}",
        plan.shards().len(),
        plan.makespan_seconds(),
        plan.lower_bound_seconds(),
        plan.makespan_seconds() / plan.lower_bound_seconds(),
        plan.method(),
    );
}

/// `len` tests with log-normal durations: `exp(ln 0.5 + 1.5 · z)`, z standard normal.
fn lognormal_suite(len: usize, seed: u64) -> Vec<Item> {
    let mut random = SplitMix64(seed);
    (0..len)
        .map(|index| {
            let z = random.standard_normal();
            let seconds = (0.5f64.ln() + 1.5 * z).exp();
            Item::new(
                format!("suite{:03}/test{index:06}", index % 997),
                Some(seconds),
            )
        })
        .collect()
}

/// `len` tests cycling through measured durations.
fn suite_from(durations: &[f64], len: usize) -> Vec<Item> {
    (0..len)
        .map(|index| {
            let seconds = durations[index % durations.len()];
            Item::new(format!("case{index:06}"), Some(seconds))
        })
        .collect()
}

/// The `time` attribute of every `<testcase>` in the eclipse report, found
/// in `shared/` beside the workspace or at `$TESTKUBE_BENCH_ECLIPSE_REPORT`.
fn eclipse_durations() -> Option<Vec<f64>> {
    let path = std::env::var_os("TESTKUBE_BENCH_ECLIPSE_REPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/reports/large/ant-junitreport-eclipse-pde-3366.xml")
        });
    let text = std::fs::read_to_string(path).ok()?;
    let durations: Vec<f64> = text
        .split("<testcase")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            let start = tag.find("time=\"")? + "time=\"".len();
            let end = start + tag[start..].find('"')?;
            tag[start..end].parse().ok()
        })
        .collect();
    (!durations.is_empty()).then_some(durations)
}

/// A tiny, fixed-seed generator (SplitMix64): same numbers on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Box–Muller.
    fn standard_normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

criterion_group!(benches, shard_benches);
criterion_main!(benches);
