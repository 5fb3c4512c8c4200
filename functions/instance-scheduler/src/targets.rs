//! Where a run goes: every account × Region it is configured for (its targets). The hub — this
//! function — works in its own account with its own role, and in every other account through
//! `sts:AssumeRole` on the spoke role (`examples/scheduler-spoke.yaml`). Each target gets its own SDK
//! clients, built on first use and kept for the process; assumed credentials are kept until shortly
//! before they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use stackhand::aws::AwsResultExt as _;

use crate::scheduler::{Clients, Definer, Settings};

/// One account in one Region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub account: String,
    pub region: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// Assumed credentials are renewed this long before they expire: a run never outlives it (the
/// function's timeout is at most 15 minutes).
const RENEW_BEFORE: Duration = Duration::from_secs(16 * 60);
/// The session name the spoke accounts' CloudTrail shows for every call the hub makes there.
const SESSION_NAME: &str = "stackhand-instance-scheduler";

/// The function's own account and partition, from the ARN it was invoked by (no call needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub partition: String,
}

impl Identity {
    /// From `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub fn from_function_arn(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "lambda", _, account, "function", ..] if is_account(account) => {
                Some(Self { account: (*account).into(), partition: (*partition).into() })
            }
            _ => None,
        }
    }
}

/// A 12-digit AWS account id.
pub fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

struct Cached {
    clients: Arc<Clients>,
    /// When the assumed credentials expire (None: the function's own, renewed by the SDK).
    expires: Option<SystemTime>,
}

/// The function's own configuration, and what it has built from it for each target.
pub struct Hub {
    base: SdkConfig,
    sts: tokio::sync::OnceCell<aws_sdk_sts::Client>,
    /// For the named schedules' parameter, in the function's own account and Region.
    ssm: OnceLock<aws_sdk_ssm::Client>,
    cache: Mutex<HashMap<Target, Cached>>,
}

impl Hub {
    /// Builds no client yet: which ones a run needs depends on its targets.
    pub fn new(base: SdkConfig) -> Self {
        Self { base, sts: tokio::sync::OnceCell::new(), ssm: OnceLock::new(), cache: Mutex::new(HashMap::new()) }
    }

    /// A run's reader of the named schedules (the SSM client built only with `SCHEDULES_PARAMETER` set).
    pub fn definer(&self, settings: &Settings) -> Definer {
        let ssm = settings
            .definitions_parameter
            .as_ref()
            .map(|_| self.ssm.get_or_init(|| stackhand::client!(aws_sdk_ssm, &self.base)).clone());
        Definer::with_client(ssm, settings)
    }

    /// The function's own configuration (its account and Region).
    pub fn config(&self) -> &SdkConfig {
        &self.base
    }

    async fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts.get_or_init(|| async { stackhand::client!(aws_sdk_sts, &self.base) }).await
    }

    /// The run's targets, sorted: every configured account × Region; the function's own account and
    /// Region when none are configured.
    pub fn targets(&self, settings: &Settings, own: &Identity) -> Vec<Target> {
        let regions = match settings.regions.as_slice() {
            [] => vec![self.base.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())],
            regions => regions.to_vec(),
        };
        let accounts = match settings.accounts.as_slice() {
            [] => vec![own.account.clone()],
            accounts => accounts.to_vec(),
        };
        let mut targets: Vec<Target> = accounts
            .iter()
            .flat_map(|account| {
                regions.iter().map(|region| Target { account: account.clone(), region: region.clone() })
            })
            .collect();
        targets.sort();
        targets.dedup();
        targets
    }

    /// The clients for `target`: the function's own credentials in its own account, the spoke role's in
    /// any other. Built once per target and process; assumed credentials renewed before they expire.
    pub async fn clients(&self, settings: &Settings, own: &Identity, target: &Target) -> Result<Arc<Clients>, String> {
        if let Some(cached) = self.cache.lock().unwrap().get(target) {
            if cached.expires.is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE) {
                return Ok(Arc::clone(&cached.clients));
            }
        }
        let region = Region::new(target.region.clone());
        let (config, expires) = if target.account == own.account {
            (self.base.to_builder().region(region).build(), None)
        } else {
            let credentials = self.assume(settings, own, target).await?;
            let expires = credentials.expiry();
            let provider = SharedCredentialsProvider::new(credentials);
            (self.base.to_builder().region(region).credentials_provider(provider).build(), expires)
        };
        let clients = Arc::new(Clients::new(&config));
        let cached = Cached { clients: Arc::clone(&clients), expires };
        self.cache.lock().unwrap().insert(target.clone(), cached);
        Ok(clients)
    }

    /// Temporary credentials for the spoke role in `target`'s account.
    async fn assume(&self, settings: &Settings, own: &Identity, target: &Target) -> Result<Credentials, String> {
        let role = format!("arn:{}:iam::{}:role/{}", own.partition, target.account, settings.role_name);
        let out = self
            .sts()
            .await
            .assume_role()
            .role_arn(&role)
            .role_session_name(SESSION_NAME)
            .set_external_id(settings.external_id.clone())
            .send()
            .await
            .op("AssumeRole")
            .map_err(|e| {
                format!(
                    "{e} (role {role}): deploy examples/scheduler-spoke.yaml in account {} with this function's \
                     role as HubRoleArn{}, or take the account out of SCHEDULER_ACCOUNTS",
                    target.account,
                    if settings.external_id.is_some() { " and the same ExternalId" } else { "" }
                )
            })?;
        let Some(c) = out.credentials() else {
            return Err(format!("AssumeRole on {role} answered without credentials"));
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            expiry,
            "stackhand-spoke-role",
        ))
    }
}
