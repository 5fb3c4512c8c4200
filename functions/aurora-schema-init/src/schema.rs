//! The `Custom::AuroraSchema` handler: check the properties against the owner's settings, bind the
//! endpoint to the credentials, read the migrations and the password, wait for the database, apply
//! what is pending under the schema lock, close the connection, answer.

use stackhand::cfn::{stable_digest, CustomResource, Outcome, RequestInfo};

use crate::policy::Policy;
use crate::props::{Credentials, Properties};
use crate::source::Sources;
use crate::{db, migrate, target, SchemaError};

pub struct Schema {
    sources: Sources,
    policy: Policy,
}

impl Schema {
    pub fn new(sources: Sources, policy: Policy) -> Self {
        Self { sources, policy }
    }

    async fn apply(&self, request: &RequestInfo, props: &Properties) -> Result<Outcome, SchemaError> {
        // What the owner allows, and where the credentials may go, before any SQL is read or any
        // connection made (only a secret that names its own host is read for it).
        self.policy.check_tls(props)?;
        self.policy.check_sources(props)?;
        let bound = target::bind(&self.sources, &self.policy, props).await?;
        let migrations = self.sources.migrations(&props.sql).await?;
        // Every script is split before anything connects: one that cannot be split applies nothing.
        let prepared = migrate::prepare(migrations)?;
        let by = bound.by;
        let login = match (bound.login, &props.credentials) {
            (Some(login), _) => login,
            (None, Credentials::Parameter { username, parameter }) => self.sources.login(username, parameter).await?,
            (None, Credentials::Secret { arn }) => self.sources.secret(arn).await?.login,
        };
        let target = bound.target;
        tracing::info!(endpoint = %target, bound_by = by, "endpoint bound to the credentials");
        let mut conn = db::connect(props, &target, &login, request.deadline).await?;
        let cx = migrate::Context { props, target: &target, login: &login, deadline: request.deadline };
        let result = migrate::run(&mut conn, &cx, &prepared).await;
        // Closed before answering, so Aurora Serverless can pause and no session lingers; a connection
        // lost mid-statement may not answer, so this is bounded.
        match tokio::time::timeout(std::time::Duration::from_secs(2), conn.disconnect()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "closing the connection failed"),
            Err(_) => tracing::warn!("closing the connection did not finish within 2 s"),
        }
        let report = result?;
        Ok(Outcome::default().with("AppliedMigrations", report.applied.join(",")).with("SchemaVersion", report.version))
    }
}

impl CustomResource for Schema {
    type Properties = Properties;
    type Error = SchemaError;
    /// Delete never drops anything, so a failed Create has no undo: what it committed stays (the
    /// history table says what), and the next run resumes or stops with how to confirm it.
    const UNDOES_A_FAILED_CREATE: bool = false;

    /// Stable for the same endpoint, port and database; a new cluster is a new resource. Without an
    /// Endpoint (taken from the secret) the secret stands for it.
    fn physical_id(&self, request: &RequestInfo, props: &Properties) -> String {
        let database = props.database.as_deref().unwrap_or("");
        let endpoint = match (&props.endpoint, &props.credentials) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Credentials::Secret { arn }) => {
                format!("secret-{}", stable_digest(&[arn]).chars().take(12).collect::<String>())
            }
            (None, Credentials::Parameter { .. }) => String::new(),
        };
        let port = props.port.unwrap_or(target::DEFAULT_PORT);
        let digest = stable_digest(&[&request.stack_id, &request.logical_resource_id, &endpoint, database]);
        format!("aurora-schema:{endpoint}:{port}/{database}:{digest}")
    }

    /// Create and Update both apply what is pending.
    async fn create(&self, request: &RequestInfo, _: &str, props: &Properties) -> Result<Outcome, SchemaError> {
        self.apply(request, props).await
    }

    /// Deleting the custom resource must never lose data: the schema and the history stay.
    async fn delete(&self, _: &RequestInfo, physical_id: &str, _: &Properties) -> Result<(), SchemaError> {
        tracing::info!(%physical_id, "delete keeps the schema and its data; nothing to do");
        Ok(())
    }
}

#[cfg(test)]
mod sample_events {
    #[test]
    fn the_sample_events_agree_with_the_code() {
        let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let sources = crate::source::Sources {
            ssm: aws_sdk_ssm::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            rds: aws_sdk_rds::Client::new(&config),
        };
        let policy = crate::policy::Policy::from_lookup(|_| None);
        testkit::assert_sample_events_agree(&super::Schema::new(sources, policy), "aurora-schema-init");
    }
}
