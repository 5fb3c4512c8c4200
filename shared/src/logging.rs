//! Logging as Lambda expects it: `tracing` to stdout, JSON when the function's log format is JSON
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), the level from `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else INFO),
//! and every line passed through [`crate::redact`] before it is written. Panics are logged through the
//! same path instead of the default hook's raw stderr print.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::redact;

/// Installs the subscriber and the panic hook. Call once, first thing in `main`.
pub fn init() {
    redact::register_environment();
    let filter = level_filter();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").map(|f| f.eq_ignore_ascii_case("json")).unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(RedactingStdout).with_target(false);
    // A second init (tests) is not an error worth failing over.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.without_time().with_ansi(false).try_init()
    };
    install_panic_hook();
}

fn level_filter() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map(|l| match l.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    });
    match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    }
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
}
