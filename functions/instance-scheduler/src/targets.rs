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

use crate::clients::{Clients, Place};
use crate::named::Definer;
use crate::settings::{is_account, Settings};

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

/// A target that could not be run: its role, or the function's own account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the function's own account could not be read: {0}")]
    OwnAccount(String),
    #[error(
        "{error} (role {role}): deploy examples/scheduler-spoke.yaml in account {account} with this function's role \
         as HubRoleArn{}, or take the account out of SCHEDULER_ACCOUNTS{}",
        if *external_id { " and the same ExternalId" } else { "" },
        if *access_denied {
            ". If it is the organization's management account: service-managed StackSets never deploy there, so \
             deploy that stack in it by hand"
        } else {
            ""
        }
    )]
    AssumeRole { error: String, role: String, account: String, external_id: bool, access_denied: bool },
    #[error("AssumeRole on {0} answered without credentials")]
    NoCredentials(String),
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
    /// The function's identity when its invoked ARN names none (a local emulator's), read once.
    caller: tokio::sync::OnceCell<Identity>,
    /// For the named schedules' parameter, in the function's own account and Region.
    ssm: OnceLock<aws_sdk_ssm::Client>,
    /// For the run's events, on a bus in the function's own account and Region.
    events: OnceLock<aws_sdk_eventbridge::Client>,
    /// For the targets' messages, on the queue in the function's own account and Region.
    sqs: OnceLock<aws_sdk_sqs::Client>,
    /// For the accounts of organizational units.
    organizations: OnceLock<aws_sdk_organizations::Client>,
    cache: Mutex<HashMap<Target, Cached>>,
}

impl Hub {
    /// Builds no client yet: which ones a run needs depends on its targets.
    pub fn new(base: SdkConfig) -> Self {
        Self {
            base,
            sts: tokio::sync::OnceCell::new(),
            caller: tokio::sync::OnceCell::new(),
            ssm: OnceLock::new(),
            events: OnceLock::new(),
            sqs: OnceLock::new(),
            organizations: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A run's reader of the named schedules (the SSM client built only with `SCHEDULES_PARAMETER` set).
    pub fn definer(&self, settings: &Settings) -> Definer {
        let ssm = settings
            .definitions_parameter
            .as_ref()
            .map(|_| self.ssm.get_or_init(|| stackhand::client!(aws_sdk_ssm, &self.base)).clone());
        Definer::with_client(ssm, settings)
    }

    /// The EventBridge client of the function's own account and Region, built on first use.
    pub fn events(&self) -> &aws_sdk_eventbridge::Client {
        self.events.get_or_init(|| stackhand::client!(aws_sdk_eventbridge, &self.base))
    }

    /// The SQS client of the function's own account and Region, built on first use.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| stackhand::client!(aws_sdk_sqs, &self.base))
    }

    /// The run's targets: [`Hub::targets`], or with `SCHEDULER_ORGANIZATIONAL_UNITS` every active
    /// account of those OUs (but the management account) × the Regions.
    pub async fn resolve_targets(
        &self,
        settings: &Settings,
        own: &Identity,
    ) -> Result<Vec<Target>, crate::organizations::OrganizationsError> {
        if settings.organizational_units.is_empty() {
            return Ok(self.targets(settings, own));
        }
        let client = self.organizations.get_or_init(|| stackhand::client!(aws_sdk_organizations, &self.base));
        let accounts = crate::organizations::accounts(client, &settings.organizational_units).await?;
        let mut targets = Vec::new();
        for region in self.regions(settings) {
            let others = accounts.iter().filter(|account| **account != own.account);
            targets.extend(others.map(|account| Target { account: account.clone(), region: region.clone() }));
        }
        targets.sort();
        Ok(targets)
    }

    /// Whether a run may go to `target`, as a worker checks a message before acting on it: whoever can
    /// send to the queue must not reach a Region or account the owner did not configure. Listed
    /// accounts (or the function's own when none are): exactly those. Organizations mode: any account
    /// but the function's own, where it would act with its own role, unchecked by IAM; the others are
    /// limited to the OUs by the role's `sts:AssumeRole` (`aws:ResourceOrgPaths`), as reading the
    /// organization for every message would cost Organizations calls a message.
    pub fn allows(&self, settings: &Settings, own: &Identity, target: &Target) -> bool {
        if settings.organizational_units.is_empty() {
            return self.targets(settings, own).contains(target);
        }
        is_account(&target.account) && target.account != own.account && self.regions(settings).contains(&target.region)
    }

    /// The Regions a run goes to: the configured ones, or the function's own.
    fn regions(&self, settings: &Settings) -> Vec<String> {
        match settings.regions.as_slice() {
            [] => vec![self.base.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())],
            regions => regions.to_vec(),
        }
    }

    /// The function's own configuration (its account and Region).
    pub fn config(&self) -> &SdkConfig {
        &self.base
    }

    async fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts.get_or_init(|| async { stackhand::client!(aws_sdk_sts, &self.base) }).await
    }

    /// The function's own account and partition: from the ARN it was invoked by (no call), or — when that
    /// names no account, as a local emulator's may not — from `sts:GetCallerIdentity` (which needs no
    /// permission), once per process.
    pub async fn identity(&self, invoked_arn: &str) -> Result<Identity, TargetError> {
        if let Some(identity) = Identity::from_function_arn(invoked_arn) {
            return Ok(identity);
        }
        let caller = self.caller.get_or_try_init(|| async {
            let me = self.sts().await.get_caller_identity().send().await.op("GetCallerIdentity");
            let me = me.map_err(|e| TargetError::OwnAccount(e.to_string()))?;
            let account = me.account().unwrap_or_default().to_owned();
            // arn:<partition>:sts::<account>:assumed-role/…
            let partition = me.arn().and_then(|arn| arn.split(':').nth(1)).unwrap_or("aws").to_owned();
            Ok::<_, TargetError>(Identity { account, partition })
        });
        caller.await.cloned()
    }

    /// The run's targets, sorted: every configured account × Region; the function's own account and
    /// Region when none are configured.
    pub fn targets(&self, settings: &Settings, own: &Identity) -> Vec<Target> {
        let regions = self.regions(settings);
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
    pub async fn clients(
        &self,
        settings: &Settings,
        own: &Identity,
        target: &Target,
    ) -> Result<Arc<Clients>, TargetError> {
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
        let place =
            Place { partition: own.partition.clone(), region: target.region.clone(), account: target.account.clone() };
        let clients = Arc::new(Clients::new(&config, place));
        let cached = Cached { clients: Arc::clone(&clients), expires };
        self.cache.lock().unwrap().insert(target.clone(), cached);
        Ok(clients)
    }

    /// Temporary credentials for the spoke role in `target`'s account.
    async fn assume(&self, settings: &Settings, own: &Identity, target: &Target) -> Result<Credentials, TargetError> {
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
            .map_err(|e| TargetError::AssumeRole {
                access_denied: e.code() == Some("AccessDenied"),
                error: e.to_string(),
                role: role.clone(),
                account: target.account.clone(),
                external_id: settings.external_id.is_some(),
            })?;
        let Some(c) = out.credentials() else {
            return Err(TargetError::NoCredentials(role));
        };
        // Masked in every log line and error from now on, as the function's own secret key is.
        stackhand::redact::register(c.secret_access_key());
        stackhand::redact::register(c.session_token());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(accounts: &str, regions: &str) -> Settings {
        let env = [("SCHEDULER_ACCOUNTS", accounts), ("SCHEDULER_REGIONS", regions)];
        Settings::from_lookup(|k| env.iter().find(|(n, v)| *n == k && !v.is_empty()).map(|(_, v)| v.to_string()))
            .unwrap()
    }

    #[test]
    fn the_own_account_and_partition_come_from_the_invoked_arn() {
        let own = Identity::from_function_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:sched:live");
        assert_eq!(own, Some(Identity { account: "123456789012".into(), partition: "aws-cn".into() }));
        for odd in ["", "arn:aws:lambda:us-east-1:xxxxxxxx:function:f", "arn:aws:s3:::bucket"] {
            assert_eq!(Identity::from_function_arn(odd), None, "{odd}");
        }
    }

    #[tokio::test]
    async fn targets_are_every_account_times_every_region_or_the_functions_own() {
        let config = testkit::mock_sdk_config().into_builder().region(Region::new("eu-west-1")).build();
        let hub = Hub::new(config);
        let own = Identity { account: "123456789012".into(), partition: "aws".into() };
        let names = |targets: Vec<Target>| targets.iter().map(Target::to_string).collect::<Vec<_>>();
        assert_eq!(names(hub.targets(&settings("", ""), &own)), ["123456789012/eu-west-1"]);
        assert_eq!(
            names(hub.targets(&settings("210987654321, 123456789012", "us-east-1,eu-west-1"), &own)),
            ["123456789012/eu-west-1", "123456789012/us-east-1", "210987654321/eu-west-1", "210987654321/us-east-1"]
        );
        assert_eq!(names(hub.targets(&settings("", "ap-south-2"), &own)), ["123456789012/ap-south-2"]);
    }

    #[test]
    fn a_worker_acts_only_on_targets_its_owner_configured() {
        let config = testkit::mock_sdk_config().into_builder().region(Region::new("eu-west-1")).build();
        let hub = Hub::new(config);
        let own = Identity { account: "123456789012".into(), partition: "aws".into() };
        let target = |account: &str, region: &str| Target { account: account.into(), region: region.into() };
        let only_own = settings("", "");
        assert!(hub.allows(&only_own, &own, &target("123456789012", "eu-west-1")));
        assert!(!hub.allows(&only_own, &own, &target("210987654321", "eu-west-1")), "an account not configured");
        assert!(!hub.allows(&only_own, &own, &target("123456789012", "us-east-1")), "a Region not configured");
        let listed = settings("210987654321", "us-east-1,eu-west-1");
        assert!(hub.allows(&listed, &own, &target("210987654321", "us-east-1")));
        assert!(!hub.allows(&listed, &own, &target("123456789012", "us-east-1")), "only the listed accounts");
        let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/targets.fifo";
        let env = [("SCHEDULER_QUEUE_URL", queue), ("SCHEDULER_ORGANIZATIONAL_UNITS", "ou-ab12-cdef3456")];
        let units = Settings::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        assert!(hub.allows(&units, &own, &target("210987654321", "eu-west-1")), "IAM limits it to the OUs");
        assert!(!hub.allows(&units, &own, &target("123456789012", "eu-west-1")), "its own account, out of IAM's reach");
        assert!(!hub.allows(&units, &own, &target("not-an-account", "eu-west-1")));
    }

    #[test]
    fn bad_accounts_regions_and_role_names_name_the_setting_and_the_fix() {
        let with = |name: &'static str, value: &'static str| {
            Settings::from_lookup(move |k| (k == name).then(|| value.to_owned())).unwrap_err().to_string()
        };
        let e = with("SCHEDULER_ACCOUNTS", "123456789012,12345");
        assert!(e.starts_with("SCHEDULER_ACCOUNTS has \"12345\": give 12-digit account ids"), "{e}");
        let e = with("SCHEDULER_REGIONS", "eu-west-1,Europe");
        assert!(e.starts_with("SCHEDULER_REGIONS has \"Europe\": give Region codes"), "{e}");
        let e = with("SCHEDULER_ROLE_NAME", "arn:aws:iam::123456789012:role/x");
        assert!(e.contains("not its ARN"), "{e}");
        let e = with("SCHEDULER_CONCURRENT_TARGETS", "0");
        assert!(e.contains("from 1 to 64"), "{e}");
    }
}
