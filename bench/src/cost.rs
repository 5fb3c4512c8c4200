//! The cost model: what reconciling a fleet every 5 minutes costs in Lambda, from the warm reconcile's
//! duration (or its CPU time alone) and the memory setting its peak RSS needs.

use crate::report::{fill, Row};

/// Lambda on arm64, us-east-1: USD per GB-second; reconciles in a 30-day month at one per 5 minutes.
const PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
const RECONCILES_PER_MONTH: f64 = 30.0 * 24.0 * 12.0;
/// The memory setting at which a Lambda function has the equivalent of one vCPU.
pub const VCPU_MB: f64 = 1769.0;

const DURATION_NOTE: &str = "the steady reconcile's duration x {reconciles} reconciles x memory ({memory} MB for \
     stackhand, {memory_peer} MB for the peer: the smallest setting above its peak RSS + 16 MiB) x USD \
     {price} per GB-s (arm64, us-east-1); requests (USD 0.20 per million) and init time left \
     out. Durations are this machine's full core and mostly moto's answering time (see the CPU rows); \
     the next row prices the functions' own work";

const CPU_NOTE: &str = "Lambda gives a function CPU in proportion to its memory, one vCPU at {vcpu_mb} MB, so at \
     {memory} MB the warm reconcile's CPU time takes at least CPU x {vcpu_mb} / {memory} of \
     billed duration: {cpu_floor} ms for stackhand, {cpu_floor_peer} ms for the peer. This is the \
     floor however fast AWS answers; the real bill is the larger of this and the waiting";

/// The smallest Lambda memory setting that holds `rss_mib` with 16 MiB to spare.
fn configured_memory(rss_mib: f64) -> f64 {
    [128.0, 192.0, 256.0, 384.0, 512.0, 1024.0].into_iter().find(|m| *m >= rss_mib + 16.0).unwrap_or(2048.0)
}

fn monthly_cost(duration_ms: f64, memory_mb: f64) -> f64 {
    RECONCILES_PER_MONTH * (duration_ms.ceil() / 1000.0) * (memory_mb / 1024.0) * PRICE_PER_GB_SECOND
}

/// Our figure and the peer's.
pub type Pair = (f64, f64);

/// The two cost rows of the scheduler fleet `instances` (`what`: the fleet in words), from the medians
/// of the warm reconcile's duration, its CPU time and the peak RSS.
pub fn rows(instances: usize, what: &str, peer_name: &'static str, steady: Pair, cpu: Pair, rss: Pair) -> Vec<Row> {
    let (memory, memory_peer) = (configured_memory(rss.0), configured_memory(rss.1));
    let (cpu_floor, cpu_floor_peer) = (cpu.0 * VCPU_MB / memory, cpu.1 * VCPU_MB / memory_peer);
    let whole = |x: f64| format!("{x:.0}");
    vec![
        Row {
            scenario: format!("scheduler-cost-{instances}: Lambda USD per month, reconciling {what} every 5 minutes"),
            unit: "USD",
            ours: monthly_cost(steady.0, memory),
            peer_name,
            peer: monthly_cost(steady.1, memory_peer),
            note: fill(
                DURATION_NOTE,
                &[
                    ("reconciles", whole(RECONCILES_PER_MONTH)),
                    ("memory", whole(memory)),
                    ("memory_peer", whole(memory_peer)),
                    ("price", PRICE_PER_GB_SECOND.to_string()),
                ],
            ),
        },
        Row {
            scenario: format!("scheduler-cpu-cost-{instances}: the same from CPU time alone, at the configured memory"),
            unit: "USD",
            ours: monthly_cost(cpu_floor, memory),
            peer_name,
            peer: monthly_cost(cpu_floor_peer, memory_peer),
            note: fill(
                CPU_NOTE,
                &[
                    ("vcpu_mb", whole(VCPU_MB)),
                    ("memory", whole(memory)),
                    ("cpu_floor", whole(cpu_floor)),
                    ("cpu_floor_peer", whole(cpu_floor_peer)),
                ],
            ),
        },
    ]
}
