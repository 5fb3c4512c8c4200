//! Logging as Lambda expects it: `tracing` to stdout, JSON when the function's log format is JSON
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), the level from `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG` as
//! `level` or `target=level,…` directives, else INFO),
//! and every line passed through [`crate::redact`] before it is written. Panics are logged through the
//! same path instead of the default hook's raw stderr print.

use std::io::{self, Write};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
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
        registry.with(layer.json().flatten_event(true).with_current_span(false)).try_init()
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
