//! `cargo bench -p raft`:
//! - `commit/3-node`: proposals committed per second through a 3-node cluster on the
//!   simulator's network with no faults (wall-clock time, including the simulator's invariant
//!   checks after every event and the in-memory "disk");
//! - `sim/mixed-seed`: seeds of the sweep's mixed-fault scenario simulated per second (multiply
//!   by 60 for seeds per minute).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use raft::sim::{run_mixed, Cluster, MixedOptions, SimConfig};
use std::hint::black_box;

const BATCH: u64 = 1_000;

fn commit_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    let mut cfg = SimConfig::new(3, 1);
    cfg.snapshot_after = Some(10_000);
    let mut cluster = Cluster::new(cfg);
    let leader = cluster.check_one_leader().expect("a leader");
    let mut cmd = 0u64;
    group.bench_function("3-node", |b| {
        b.iter_batched(
            || (),
            |()| {
                let target = cluster.acked.len() + BATCH as usize;
                for _ in 0..BATCH {
                    cmd += 1;
                    cluster
                        .propose(leader, cmd)
                        .expect("no violation")
                        .expect("still leader");
                }
                while cluster.acked.len() < target {
                    cluster.run_for(1).expect("no violation");
                }
                // Keep the acknowledgement list from growing without bound.
                cluster.acked.clear();
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn seeds_per_second(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let opts = MixedOptions::default();
    let mut seed = 0;
    group.bench_function("mixed-seed", |b| {
        b.iter(|| {
            seed += 1;
            black_box(run_mixed(seed, &opts).expect("no violation"))
        })
    });
    group.finish();
}

criterion_group!(benches, commit_throughput, seeds_per_second);
criterion_main!(benches);
