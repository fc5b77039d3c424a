//! Criterion benchmark of the pure scheduler: 1,000 placements (100 batches of 10) on a fresh
//! copy of a 5,000-instance cluster, by binpack(memory) after memberOf and by
//! spread(attribute:zone) then spread(instanceId). `berth bench scheduler` runs the full
//! 100,000-placement workload and prints placements/s.

use berth_core::scheduler::workload::{Placement, Workload};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const INSTANCES: usize = 5000;
const TASKS: usize = 1000;

fn placement(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.sample_size(20);
    for (name, placement) in [
        ("binpack", Placement::Binpack),
        ("spread", Placement::Spread),
    ] {
        let workload = Workload::new(INSTANCES, placement, 10, 1);
        // Warm the caches (memberOf results, spread values) as a long-lived snapshot has them.
        let mut warm = workload.snapshot();
        workload.run(&mut warm, 10, 0);
        group.bench_function(name, |b| {
            b.iter_batched(
                || warm.clone(),
                |mut snapshot| black_box(workload.run(&mut snapshot, TASKS, 7)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
