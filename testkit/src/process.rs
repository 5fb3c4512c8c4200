//! The function binary as a child process polling a [`crate::RuntimeApi`], its output captured.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The directory where every function process started under `STACKHAND_OBSERVED_CALLS` writes the AWS
/// calls it made when it ends, for `scripts/iam-check.py --observed`, which evaluates them against the
/// function's policy in template.yaml as IAM would. The file: `# home-region <stack's Region>`,
/// `# home-account <its own account>`, `# env <JSON>` (its environment but the AWS_ variables and
/// anything named like a secret: the values the template's parameters had), then one line per distinct
/// call, `<action> <region> <account|-> <JSON context>` ([`crate::ThrottlingProxy::scoped_actions`]).
pub const OBSERVED_CALLS: &str = "STACKHAND_OBSERVED_CALLS";

pub struct FunctionProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    /// With [`OBSERVED_CALLS`] set: the counting proxy in front of its AWS endpoint, and its file.
    observer: Option<(crate::ThrottlingProxy, std::path::PathBuf)>,
    /// The process's `AWS_REGION` (the stack's Region), written with the observed calls.
    observed_region: Option<String>,
    /// The process's own account (moto's, from its access key) and its non-secret environment.
    observed_env: (String, String),
    /// When the process was started.
    pub started: std::time::Instant,
}

impl FunctionProcess {
    /// Starts `binary` with the Lambda environment pointing at `runtime_api`, plus `env`.
    pub fn spawn(binary: &str, runtime_api: &str, env: &[(String, String)]) -> Self {
        Self::spawn_command(Command::new(binary), runtime_api, env)
    }

    /// Like [`FunctionProcess::spawn`], for any command (a Python runtime interface client, say).
    pub fn spawn_command(mut cmd: Command, runtime_api: &str, env: &[(String, String)]) -> Self {
        let mut env = env.to_vec();
        let observer = observe(&cmd, &mut env);
        let observed_region = env.iter().find(|(k, _)| k == "AWS_REGION").map(|(_, v)| v.clone());
        let observed_env = observed_env(&env);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "under-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/under-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
            // The responses go to a recorder (or moto's presigned URL) on 127.0.0.1, which a function
            // answers only when its owner lists it, as a user's local setup does; `env` may override it.
            .env(stackhand::cfn::ResponseUrlPolicy::ENV, "127.0.0.1")
            // aurora-schema-init reaches the local MariaDB on 127.0.0.1 without TLS only where its owner
            // allows both, as the local stack and the demo do; `env` may override them (an empty
            // SCHEMA_ALLOWED_ENDPOINTS is the default list).
            .env("SCHEMA_ALLOWED_ENDPOINTS", "127.0.0.1")
            .env("SCHEMA_ALLOW_PLAINTEXT", "true")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = std::time::Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Self { child, output, observer, observed_region, observed_env, started }
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the process has used so far, user + system, all threads (/proc/<pid>/stat, in clock
    /// ticks of 1/100 s on Linux).
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // After the command name (in parentheses, which may hold spaces): state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(std::time::Duration::from_millis(ticks * 1000 / clock_ticks_per_second()))
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Everything printed, once the process has printed nothing new for 100 ms (at most 5 s): what a
    /// function logs just after it answers is in it.
    pub async fn settled_output(&self) -> String {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = self.output().len();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = self.output();
            if now.len() == seen || std::time::Instant::now() >= end {
                return now;
            }
            seen = now.len();
        }
    }

    /// The JSON log lines printed so far.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.output().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The JSON log lines whose `message` is `message`, once there are `count` of them (a function
    /// logs its summary line just after it answers), or what there is after 5 s.
    pub async fn wait_for_log(&self, message: &str, count: usize) -> Vec<serde_json::Value> {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let lines: Vec<_> = self.log_lines().into_iter().filter(|l| l["message"] == message).collect();
            if lines.len() >= count || std::time::Instant::now() >= end {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// USER_HZ, the unit of /proc/<pid>/stat's times: `getconf CLK_TCK`, 100 where that is unavailable.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((proxy, file)) = &self.observer {
            let calls = proxy.scoped_actions();
            if !calls.is_empty() {
                let home = self.observed_region.as_deref().unwrap_or("-");
                let (account, env) = &self.observed_env;
                let text: String =
                    [format!("# home-region {home}"), format!("# home-account {account}"), format!("# env {env}")]
                        .into_iter()
                        .chain(calls)
                        .map(|line| format!("{line}\n"))
                        .collect();
                let _ = std::fs::write(file, text);
            }
        }
    }
}

/// The account a process's calls act in (moto's rule for its access key) and, as JSON, its environment
/// without the AWS_ variables and anything named like a secret.
fn observed_env(env: &[(String, String)]) -> (String, String) {
    let key = env.iter().find(|(k, _)| k == "AWS_ACCESS_KEY_ID").map(|(_, v)| v.as_str()).unwrap_or_default();
    let secret = |k: &str| ["SECRET", "PASSWORD", "TOKEN", "CREDENTIAL"].iter().any(|w| k.to_uppercase().contains(w));
    let kept: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_") && !secret(k))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    (crate::iam_context::own_account(key), serde_json::Value::Object(kept).to_string())
}

/// With [`OBSERVED_CALLS`] set and an AWS endpoint in `env`: puts a counting proxy in front of it.
fn observe(cmd: &Command, env: &mut [(String, String)]) -> Option<(crate::ThrottlingProxy, std::path::PathBuf)> {
    static SEQUENCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::path::PathBuf::from(std::env::var_os(OBSERVED_CALLS)?);
    let binary = std::path::Path::new(cmd.get_program()).file_name()?.to_string_lossy().into_owned();
    let endpoint = env.iter_mut().find(|(k, _)| k == "AWS_ENDPOINT_URL")?;
    tokio::runtime::Handle::try_current().ok()?;
    let proxy = crate::ThrottlingProxy::counting_now(&endpoint.1);
    endpoint.1 = proxy.url();
    std::fs::create_dir_all(&dir).ok()?;
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Some((proxy, dir.join(format!("{binary}.{}.{n}.txt", std::process::id()))))
}
