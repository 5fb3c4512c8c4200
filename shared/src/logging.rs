//! Logging as Lambda expects it: `tracing` to stdout, JSON when the function's log format is JSON
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), the level from `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG` as
//! `level` or `target=level,…` directives, else INFO). In JSON every field's value, the message
//! included, is masked by [`crate::redact`] before the line is formatted (so that JSON's escaping
//! cannot hide a secret containing `"` or `\`), and every finished line, JSON or text, passes through
//! it again before it is written. Panics are logged through the same path instead of the default
//! hook's raw stderr print.

use std::fmt;
use std::io::{self, Write};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::redact;

/// Installs the subscriber and the panic hook. Call once, first thing in `main`.
pub fn init() {
    redact::register_environment();
    let filter = level_filter();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").map(|f| f.eq_ignore_ascii_case("json")).unwrap_or(false);
    let layer = tracing_subscriber::fmt::layer().with_writer(RedactingStdout).with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) is not an error worth failing over.
    let _ = if json {
        registry.with(layer.event_format(RedactedJson).fmt_fields(RedactedJsonFields)).try_init()
    } else {
        registry.with(layer.without_time().with_ansi(false)).try_init()
    };
    install_panic_hook();
}

/// `tracing_subscriber`'s `Targets` rather than `EnvFilter`: the same `target=level` directives
/// without a regex engine in every zip. A `RUST_LOG` that does not parse falls back to INFO.
fn level_filter() -> Targets {
    let lambda = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    filter_from(lambda.as_deref(), rust_log.as_deref())
}

fn filter_from(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    if let Some(level) = lambda_level {
        let level = match level.to_ascii_uppercase().as_str() {
            "TRACE" => LevelFilter::TRACE,
            "DEBUG" => LevelFilter::DEBUG,
            "WARN" => LevelFilter::WARN,
            "ERROR" | "FATAL" => LevelFilter::ERROR,
            _ => LevelFilter::INFO,
        };
        return Targets::new().with_default(level);
    }
    rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Logs panics as one redacted error line. The custom-resource runtime separately answers the
/// request FAILED when a handler panics.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(panic.message = %redact::redact(&message), panic.location = %location, "panic");
    }));
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// Lambda's JSON log line: `timestamp`, `level`, the event's fields (`message` among them) at the top
/// level, and `spans` (each span's `name` and fields, outermost first), every value masked field by
/// field before serialization.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedJson;

impl<S, N> FormatEvent<S, N> for RedactedJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(event.metadata().level().as_str().to_owned()));
        event.record(&mut RedactedValues(&mut line));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let mut fields = span
                        .extensions()
                        .get::<FormattedFields<N>>()
                        .and_then(|f| serde_json::from_str::<Map<String, Value>>(f).ok())
                        .unwrap_or_default();
                    fields.insert("name".into(), Value::String(span.name().to_owned()));
                    Value::Object(fields)
                })
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// A span's fields as a JSON object of masked values (what [`RedactedJson`] puts under `spans`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedJsonFields;

impl<'w> FormatFields<'w> for RedactedJsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut RedactedValues(&mut map));
        write!(writer, "{}", serde_json::to_string(&map).map_err(|_| fmt::Error)?)
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let mut map: Map<String, Value> = serde_json::from_str(current).unwrap_or_default();
        fields.record(&mut RedactedValues(&mut map));
        current.fields = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// Records each field into a JSON object, text masked as it is recorded (Display and Debug values
/// are formatted first, then masked).
struct RedactedValues<'a>(&'a mut Map<String, Value>);

impl RedactedValues<'_> {
    fn text(&mut self, field: &Field, text: &str) {
        self.0.insert(field.name().to_owned(), Value::String(redact::redact(text).into_owned()));
    }
}

impl Visit for RedactedValues<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

/// A `MakeWriter` for stdout that buffers one event and writes it redacted, in one piece.
#[derive(Clone, Copy, Default)]
pub struct RedactingStdout;

impl<'a> MakeWriter<'a> for RedactingStdout {
    type Writer = RedactingLine<io::Stdout>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine::new(io::stdout())
    }
}

/// Collects one formatted event and writes it, redacted, when dropped.
pub struct RedactingLine<W: Write> {
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> RedactingLine<W> {
    pub fn new(out: W) -> Self {
        Self { buf: Vec::with_capacity(256), out }
    }
}

impl<W: Write> Write for RedactingLine<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let _ = self.out.write_all(redact::redact(&text).as_bytes());
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_written_once_and_redacted() {
        redact::register("s3cr3t-signature-value");
        let mut sink = Vec::new();
        {
            let mut line = RedactingLine::new(&mut sink);
            line.write_all(b"PUT to https://bucket/x?Signature=s3cr3t-").unwrap();
            line.write_all(b"signature-value done\n").unwrap();
        }
        let written = String::from_utf8(sink).unwrap();
        assert_eq!(written, "PUT to https://bucket/x?Signature=*** done\n");
    }

    /// A `MakeWriter` into a shared buffer, for reading what a subscriber wrote.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn a_secret_with_quotes_or_backslashes_is_masked_in_every_json_field() {
        let secret = r#"Qu"ote\back\slash-pw"#;
        redact::register_secret(secret).unwrap();
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(buffer.clone())
                .event_format(RedactedJson)
                .fmt_fields(RedactedJsonFields),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", login = secret);
            let _entered = span.enter();
            tracing::warn!(password = secret, debugged = ?secret, error = %format!("denied for {secret}"), count = 3u64, "logging in with {secret}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(line["message"], "logging in with ***", "{text}");
        assert_eq!(line["password"], "***", "{text}");
        assert_eq!(line["debugged"], "\"***\"", "{text}");
        assert_eq!(line["error"], "denied for ***", "{text}");
        assert_eq!(line["count"], 3, "{text}");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["spans"][0]["name"], "request");
        assert_eq!(line["spans"][0]["login"], "***", "{text}");
        assert!(!text.contains("ote") && !text.contains("slash-pw"), "{text}");
    }

    #[test]
    fn panic_message_reads_both_payload_kinds() {
        let s: Box<dyn std::any::Any + Send> = Box::new("static");
        assert_eq!(panic_message(s.as_ref()), "static");
        let s: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(s.as_ref()), "owned");
        let s: Box<dyn std::any::Any + Send> = Box::new(5u8);
        assert_eq!(panic_message(s.as_ref()), "(a panic without a message)");
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        use tracing::Level;
        let lambda = filter_from(Some("debug"), Some("error"));
        assert!(lambda.would_enable("anything", &Level::DEBUG));
        assert!(!lambda.would_enable("anything", &Level::TRACE));
        assert!(!filter_from(Some("FATAL"), None).would_enable("x", &Level::WARN));

        let directives = filter_from(None, Some("warn,nlb_ip_allowlist=trace"));
        assert!(directives.would_enable("nlb_ip_allowlist::handler", &Level::TRACE));
        assert!(!directives.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(directives.would_enable("aws_smithy_runtime", &Level::WARN));

        let fallback = filter_from(None, Some("nlb_ip_allowlist=loud"));
        assert!(fallback.would_enable("x", &Level::INFO));
        assert!(!fallback.would_enable("x", &Level::DEBUG));
        assert!(!filter_from(None, None).would_enable("x", &Level::DEBUG));
    }
}
