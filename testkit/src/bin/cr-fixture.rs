//! A custom resource that does what its `Mode` property says, built on the shared runtime: the
//! fault-injection double that proves the runtime's guarantees through the real Runtime API path.
//! Not a stackhand function; never packaged.

use serde::Deserialize;
use stackhand::cfn::{CustomResource, Outcome, RequestInfo};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Props {
    mode: String,
    #[serde(default)]
    secret: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FixtureError(String);

struct Fixture;

impl Fixture {
    async fn act(&self, props: &Props) -> Result<Outcome, FixtureError> {
        match props.mode.as_str() {
            "ok" => Ok(Outcome::default().with("Mode", "ok")),
            "fail" => Err(FixtureError("the fixture failed on purpose\nsecond line\u{7}".into())),
            "panic" => panic!("the fixture panicked on purpose"),
            "hang" => std::future::pending().await,
            "oversize" => Ok((0..100).fold(Outcome::default(), |o, i| o.with(format!("Key{i}"), "v".repeat(60)))),
            "noecho" => Ok(Outcome { no_echo: true, ..Outcome::default().with("Password", "generated-but-hidden") }),
            // A handler that carelessly puts a registered secret into its error and its log.
            "leak" => {
                if let Err(e) = stackhand::redact::register_secret(&props.secret) {
                    return Err(FixtureError(format!("the Secret property: {e}")));
                }
                tracing::info!(secret = %props.secret, "about to fail with a secret");
                Err(FixtureError(format!("login failed with password {}", props.secret)))
            }
            other => Err(FixtureError(format!("unknown Mode {other:?}"))),
        }
    }
}

impl CustomResource for Fixture {
    type Properties = Props;
    type Error = FixtureError;
    fn physical_id(&self, request: &RequestInfo, _: &Props) -> String {
        format!("fixture-{}", request.logical_resource_id)
    }
    async fn create(&self, _: &RequestInfo, _: &str, props: &Props) -> Result<Outcome, FixtureError> {
        self.act(props).await
    }
    /// Also the undo of a failed Create: a Create that failed on purpose created nothing to remove.
    async fn delete(&self, _: &RequestInfo, _: &str, props: &Props) -> Result<(), FixtureError> {
        match props.mode.as_str() {
            "fail" | "leak" => Ok(()),
            _ => self.act(props).await.map(|_| ()),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stackhand::logging::init();
    stackhand::cfn::run(Fixture).await
}
