//! SQL text as the run handles it: statements told apart by their first keyword, and statements and
//! server messages made fit for a Reason (one short line, string literals masked).

use crate::SchemaError;

pub(super) fn db_error(what: &str, e: mysql_async::Error) -> SchemaError {
    SchemaError::Database(format!("{what}: {}", error_text(&e)))
}

/// An error as a Reason may show it: a server's message with its quoted spans masked.
pub(crate) fn error_text(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} (error {})", server_message(&s.message), s.code),
        other => other.to_string(),
    }
}

/// The statement as one short line for a Reason, with string literals masked: a failing
/// `CREATE USER … IDENTIFIED BY '…'` must not put a password into the stack's events.
pub(super) fn excerpt(text: &str) -> String {
    let masked = mask_literals(text);
    let one_line: String = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(80).collect::<String>())
    } else {
        one_line
    }
}

/// Replaces the contents of '…' and "…" literals with `…` (backslash escapes and doubled quotes
/// understood); names in backticks stay.
fn mask_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '\'' && c != '"' {
            continue;
        }
        out.push('…');
        while let Some(inner) = chars.next() {
            match inner {
                '\\' => {
                    chars.next();
                }
                q if q == c && chars.peek() == Some(&c) => {
                    chars.next();
                }
                q if q == c => {
                    out.push(c);
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// The server's message with every quoted span ('…', "…", `…`) masked: servers quote the values and
/// names they complain about (`Duplicate entry '…' for key '…'`), and a value may be a secret. The
/// `near '…'` fragment of a syntax error is SQL: it becomes a masked excerpt, as the statement's is.
pub(crate) fn server_message(message: &str) -> String {
    match (message.find("near '"), message.rfind("' at line")) {
        (Some(start), Some(end)) if end > start + 6 => {
            let fragment = &message[start + 6..end];
            format!(
                "{}near '{}'{}",
                mask_quoted(&message[..start]),
                excerpt(fragment),
                mask_quoted(&message[end + 1..])
            )
        }
        _ => mask_quoted(message),
    }
}

/// Masks each quoted span of a message. Servers do not escape what they quote, so a span ends at its
/// quote only where no letter or digit follows (`'it's'` is one span); an unclosed one runs to the end.
fn mask_quoted(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        if !matches!(c, '\'' | '"' | '`') {
            continue;
        }
        out.push('…');
        while i < chars.len() {
            let closes = chars[i] == c && chars.get(i + 1).is_none_or(|n| !n.is_alphanumeric());
            i += 1;
            if closes {
                out.push(c);
                break;
            }
        }
    }
    out
}

fn first_keyword(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '(').find(|w| !w.is_empty()).unwrap_or_default().to_ascii_uppercase()
}

pub(super) fn is_dml(text: &str) -> bool {
    matches!(first_keyword(text).as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE")
}

/// Statements by which a script takes charge of its own transactions.
pub(super) fn is_transaction_control(text: &str) -> bool {
    let first = first_keyword(text);
    let autocommit = first == "SET" && text.to_ascii_lowercase().contains("autocommit");
    autocommit
        || matches!(
            first.as_str(),
            "START" | "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "XA" | "LOCK" | "UNLOCK"
        )
}

/// Session statements are re-run when a migration resumes: they set up the connection, not the schema.
pub(super) fn is_session_statement(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first.eq_ignore_ascii_case("USE") || first.eq_ignore_ascii_case("SET")
}

/// A string as a single-quoted SQL literal.
pub(super) fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}
