//! Each function's init against the floor a Rust Lambda cannot go below (stackhand-floor).

use testkit::local::{aws_env, moto_url};
use testkit::{FunctionProcess, RuntimeApi};

use super::{until_first_poll, ColdRun, RUNS};
use crate::report::{millis, paired, Row};

const FLOOR: &str =
    "minimal Rust Lambda: lambda_runtime + aws-config + one SDK client (same release profile and crate features)";

/// Process start to first Runtime API poll of `binary`, without invoking it.
async fn init_only(binary: &str) -> ColdRun {
    let api = RuntimeApi::start().await;
    let mut env = aws_env(&moto_url());
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let process = FunctionProcess::spawn(binary, &api.address(), &env);
    let init = until_first_poll(&api, &process).await;
    ColdRun { init_ms: millis(init), first_ms: 0.0, rss_mib: 0.0 }
}

/// Each function's init against the floor a Rust Lambda cannot go below (this crate's stackhand-floor),
/// runs interleaved so that both see the same machine.
pub async fn rows(bin_dir: &str) -> Vec<Row> {
    let floor = format!("{bin_dir}/stackhand-floor");
    assert!(
        std::path::Path::new(&floor).exists(),
        "{floor} is missing: build it with `cargo build --release -p stackhand-bench --bin stackhand-floor`"
    );
    let mut rows = Vec::new();
    for function in ["nlb-ip-allowlist", "aurora-schema-init", "eip-binding", "instance-scheduler"] {
        let binary = format!("{bin_dir}/{function}");
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(init_only(&binary).await);
            peer.push(init_only(&floor).await);
        }
        rows.push(paired(
            format!("{function}-init-vs-floor: process start to first Runtime API poll"),
            "ms",
            &ours,
            FLOOR,
            &peer,
            |r| r.init_ms,
        ));
    }
    rows
}
