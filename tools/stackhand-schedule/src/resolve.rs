//! A tag value to a schedule, named schedules and holiday lists resolved through the definitions (a
//! file, or the SSM parameter), exactly as the scheduler does.

use instance_scheduler::schedule::{self, Definitions, Schedule, ScheduleError, TagValue};

use crate::cli;

/// What stops a command before it evaluates anything.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--definitions {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("{source_name}: {error}")]
    Definitions { source_name: String, error: ScheduleError },
    #[error("--parameter {name}: {error}")]
    Parameter { name: String, error: String },
    #[error("--month {0}: give YYYY-MM, e.g. 2027-01")]
    Month(String),
    #[error("reading stdin: {0}")]
    Stdin(std::io::Error),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Why a value gives no schedule, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    #[error("\"{0}\" names a schedule or holiday lists: give --definitions FILE or --parameter NAME to resolve it")]
    NeedsDefinitions(String),
}

/// The definitions, if the command was given any.
pub async fn definitions(from: &cli::Definitions) -> Result<Option<Definitions>, SetupError> {
    if let Some(path) = &from.definitions {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SetupError::File { path: path.display().to_string(), error })?;
        let source_name = format!("--definitions {}", path.display());
        return schedule::parse_definitions(&text)
            .map(Some)
            .map_err(|error| SetupError::Definitions { source_name, error });
    }
    let Some(name) = &from.parameter else { return Ok(None) };
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let out = ssm.get_parameter().name(name).with_decryption(true).send().await;
    let out = out.map_err(|e| SetupError::Parameter {
        name: name.clone(),
        error: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
    })?;
    let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
    let source_name = format!("SSM parameter {name}");
    schedule::parse_definitions(text).map(Some).map_err(|error| SetupError::Definitions { source_name, error })
}

/// The schedule a tag value gives.
pub fn schedule(value: &str, definitions: Option<&Definitions>) -> Result<Schedule, ValueError> {
    let parsed = schedule::parse(value)?;
    match (&parsed, definitions) {
        (TagValue::Spec(schedule), _) if schedule.holidays_resolved() => Ok(schedule.clone()),
        (_, Some(definitions)) => Ok(definitions.resolve_value(&parsed)?),
        (_, None) => Err(ValueError::NeedsDefinitions(value.trim().to_owned())),
    }
}
