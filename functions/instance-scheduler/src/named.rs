//! The named schedules (`SCHEDULES_PARAMETER`): where they are read from, read at most once per run.

use stackhand::aws::AwsResultExt as _;
use tokio::time::Instant;

use crate::call::ListingError;
use crate::kinds::Resource;
use crate::plan::{needs_definitions, DefinitionsError, Named};
use crate::request::{Action, Request};
use crate::schedule::{self, Definitions};
use crate::settings::Settings;

/// The named schedules' SSM parameter, in the hub's own account and Region: read at most once per run,
/// by the first target whose resources name a schedule.
pub struct Definer {
    ssm: Option<aws_sdk_ssm::Client>,
    parameter: Option<String>,
    read: tokio::sync::OnceCell<Result<Definitions, DefinitionsError>>,
}

impl Definer {
    pub fn with_client(ssm: Option<aws_sdk_ssm::Client>, settings: &Settings) -> Self {
        Self { ssm, parameter: settings.definitions_parameter.clone(), read: tokio::sync::OnceCell::new() }
    }
}

/// The named schedules: their parameter read (once per run, whichever target asks first) only for a
/// reconcile over resources that name one.
pub async fn named(definer: &Definer, request: &Request, resources: &[Resource], cutoff: Instant) -> Named {
    let mut named = Named::new(definer.parameter.clone(), None);
    if let (Some(parameter), Some(ssm)) = (&definer.parameter, &definer.ssm) {
        if request.action == Action::Reconcile && needs_definitions(resources) {
            let read = definer.read.get_or_init(|| async {
                match tokio::time::timeout_at(cutoff, definitions(ssm, parameter)).await {
                    Ok(read) => read,
                    Err(_) => Err(DefinitionsError::Read(ListingError::Late("GetParameter".into()).to_string())),
                }
            });
            named.definitions = Some(read.await.clone());
        }
    }
    named
}

async fn definitions(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<Definitions, DefinitionsError> {
    let out = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .op("GetParameter")
        .map_err(|e| DefinitionsError::Read(e.to_string()))?;
    let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
    schedule::parse_definitions(text)
        .map_err(|error| DefinitionsError::Parse { parameter: parameter.to_owned(), error })
}
