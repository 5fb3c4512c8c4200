//! Splits a SQL script into statements the way the `mysql`/`mariadb` command-line client does:
//! semicolons inside quotes, backticks and comments do not split; `DELIMITER` lines change the
//! terminator (for procedures and triggers) and are not sent to the server.

/// One statement to send, with the line it starts on (1-based) for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("line {line}: a {what} opened here is never closed")]
    Unterminated { what: &'static str, line: usize },
    #[error("line {line}: DELIMITER needs a terminator, e.g. DELIMITER $$")]
    EmptyDelimiter { line: usize },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(u8),
    LineComment,
    BlockComment,
}

/// The statements of `sql`, in order. Empty statements and statements that are only comments are
/// dropped; comments inside a statement are kept (the server ignores them; `/*! … */` hints matter).
pub fn split(sql: &str) -> Result<Vec<Statement>, SplitError> {
    let bytes = sql.as_bytes();
    let mut delimiter = b";".to_vec();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    let mut start_line = 1;
    let mut line = 1;
    let mut opened_at = 1;
    let mut state = State::Code;
    let mut i = 0;
    let mut at_line_start = true;

    while i < bytes.len() {
        let c = bytes[i];
        match state {
            State::Code => {
                // A client command: DELIMITER at the start of a line (leading blanks allowed).
                if at_line_start && !has_code {
                    if let Some((new, consumed)) = delimiter_command(&bytes[i..]) {
                        if new.is_empty() {
                            return Err(SplitError::EmptyDelimiter { line });
                        }
                        delimiter = new;
                        if bytes[i..i + consumed].ends_with(b"\n") {
                            line += 1;
                        }
                        i += consumed;
                        current.clear();
                        has_code = false;
                        continue;
                    }
                }
                if bytes[i..].starts_with(&delimiter) {
                    push(&mut out, &mut current, &mut has_code, start_line);
                    i += delimiter.len();
                    at_line_start = false;
                    continue;
                }
                match c {
                    b'\'' | b'"' | b'`' => {
                        state = State::Quoted(c);
                        opened_at = line;
                        has_code = true;
                    }
                    b'#' => state = State::LineComment,
                    b'-' if bytes[i..].starts_with(b"--")
                        && bytes.get(i + 2).is_none_or(|b| b.is_ascii_whitespace() || b.is_ascii_control()) =>
                    {
                        state = State::LineComment
                    }
                    b'/' if bytes.get(i + 1) == Some(&b'*') => {
                        // `/*! … */` and `/*+ … */` are executable hints: code, not comments.
                        if matches!(bytes.get(i + 2), Some(b'!') | Some(b'+')) {
                            has_code = true;
                        }
                        if current.trim().is_empty() {
                            start_line = line;
                        }
                        state = State::BlockComment;
                        opened_at = line;
                        current.push_str("/*");
                        i += 2;
                        continue;
                    }
                    c if !c.is_ascii_whitespace() => has_code = true,
                    _ => {}
                }
            }
            State::Quoted(q) => {
                if c == b'\\' && q != b'`' && i + 1 < bytes.len() {
                    // A backslash escapes the next byte inside '…' and "…".
                    let next = bytes[i + 1];
                    if next == b'\n' {
                        line += 1;
                    }
                    push_bytes(&mut current, &bytes[i..i + 2]);
                    i += 2;
                    continue;
                }
                if c == q {
                    if bytes.get(i + 1) == Some(&q) {
                        push_bytes(&mut current, &bytes[i..i + 2]);
                        i += 2;
                        continue;
                    }
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if bytes[i..].starts_with(b"*/") {
                    current.push_str("*/");
                    i += 2;
                    state = State::Code;
                    continue;
                }
            }
        }
        if current.trim().is_empty() && !c.is_ascii_whitespace() {
            start_line = line;
        }
        // Multi-byte UTF-8 sequences are copied whole by push_bytes below; only ASCII drives state.
        let len = utf8_len(c);
        push_bytes(&mut current, &bytes[i..(i + len).min(bytes.len())]);
        if c == b'\n' {
            line += 1;
            at_line_start = true;
        } else if !c.is_ascii_whitespace() {
            at_line_start = false;
        }
        i += len;
    }
    match state {
        State::Quoted(q) => {
            let what = match q {
                b'`' => "backtick-quoted name",
                _ => "quoted string",
            };
            return Err(SplitError::Unterminated { what, line: opened_at });
        }
        State::BlockComment => return Err(SplitError::Unterminated { what: "/* comment", line: opened_at }),
        _ => {}
    }
    push(&mut out, &mut current, &mut has_code, start_line);
    Ok(out)
}

fn push(out: &mut Vec<Statement>, current: &mut String, has_code: &mut bool, line: usize) {
    if *has_code {
        out.push(Statement { text: current.trim().to_owned(), line });
    }
    current.clear();
    *has_code = false;
}

fn push_bytes(current: &mut String, bytes: &[u8]) {
    current.push_str(&String::from_utf8_lossy(bytes));
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `DELIMITER <x>` (any case) up to the end of the line: the new delimiter and the bytes consumed.
fn delimiter_command(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    let keyword = b"delimiter";
    let mut i = 0;
    while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
        i += 1;
    }
    let word = rest.get(i..i + keyword.len())?;
    if !word.eq_ignore_ascii_case(keyword) {
        return None;
    }
    i += keyword.len();
    if !rest.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') && rest.get(i).is_some_and(|b| *b != b'\n') {
        return None; // `delimiters_table`, not the command
    }
    let end = rest[i..].iter().position(|b| *b == b'\n').map_or(rest.len(), |p| i + p);
    let value = String::from_utf8_lossy(&rest[i..end]);
    let new = value.split_whitespace().next().unwrap_or_default().as_bytes().to_vec();
    let consumed = if end < rest.len() { end + 1 } else { end };
    Some((new, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql).unwrap().into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn the_seeds_script_splits_in_two() {
        assert_eq!(texts("USE mydb; CREATE TABLE t (dt datetime);"), ["USE mydb", "CREATE TABLE t (dt datetime)"]);
    }

    #[test]
    fn semicolons_in_strings_names_and_comments_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;', 'back\\';slash');\n\
                   SELECT `odd;name` FROM t; -- trailing; comment\n\
                   # hash; comment\n\
                   /* block; comment */ SELECT 2;";
        assert_eq!(
            texts(sql),
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;', 'back\\';slash')",
                "SELECT `odd;name` FROM t",
                "-- trailing; comment\n# hash; comment\n/* block; comment */ SELECT 2",
            ]
        );
    }

    #[test]
    fn delimiter_blocks_keep_procedure_bodies_whole() {
        let sql = "CREATE TABLE log (m text);\n\
                   DELIMITER $$\n\
                   CREATE PROCEDURE p()\n\
                   BEGIN\n  INSERT INTO log VALUES ('one;two');\n  SELECT 1;\nEND$$\n\
                   delimiter ;\n\
                   CALL p();";
        let got = split(sql).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[1].text.starts_with("CREATE PROCEDURE p()"));
        assert!(got[1].text.ends_with("SELECT 1;\nEND"), "{:?}", got[1].text);
        assert_eq!(got[1].line, 3);
        assert_eq!(got[2].text, "CALL p()");
        assert_eq!(got[2].line, 9);
    }

    #[test]
    fn comment_only_and_empty_statements_are_dropped() {
        assert_eq!(texts(";;\n-- nothing\n;\n/* x */;\nSELECT 1;\n-- end"), ["SELECT 1"]);
        assert!(texts("   \n\t").is_empty());
    }

    #[test]
    fn executable_comments_are_code() {
        assert_eq!(texts("/*!40101 SET NAMES utf8 */;"), ["/*!40101 SET NAMES utf8 */"]);
    }

    #[test]
    fn double_dash_without_a_space_is_an_operator() {
        assert_eq!(texts("SELECT 1--1;"), ["SELECT 1--1"]);
    }

    #[test]
    fn line_numbers_point_at_each_statement() {
        let got = split("SELECT 1;\n\n  SELECT\n 2;\nSELECT 3").unwrap();
        assert_eq!(got.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 3, 5]);
    }

    #[test]
    fn unicode_passes_through_intact() {
        assert_eq!(texts("INSERT INTO t VALUES ('naïve; café ☕');"), ["INSERT INTO t VALUES ('naïve; café ☕')"]);
    }

    #[test]
    fn unterminated_strings_and_comments_are_errors_with_a_line() {
        assert_eq!(
            split("SELECT 1;\nSELECT 'oops;\n").unwrap_err(),
            SplitError::Unterminated { what: "quoted string", line: 2 }
        );
        assert_eq!(split("/* never closed").unwrap_err(), SplitError::Unterminated { what: "/* comment", line: 1 });
        assert_eq!(split("DELIMITER \nSELECT 1").unwrap_err(), SplitError::EmptyDelimiter { line: 1 });
    }

    #[test]
    fn a_delimiter_line_after_a_comment_line_is_still_the_command() {
        let sql = "CREATE TABLE t (b text); -- note; here\n# another\nDELIMITER $$\nSELECT 1; SELECT 2$$\nDELIMITER ;\nSELECT 3;";
        assert_eq!(texts(sql), ["CREATE TABLE t (b text)", "SELECT 1; SELECT 2", "SELECT 3"]);
    }

    #[test]
    fn a_word_starting_with_delimiter_is_not_the_command() {
        assert_eq!(texts("delimiters_seen;"), ["delimiters_seen"]);
    }

    #[test]
    fn windows_line_endings_split_the_same() {
        assert_eq!(
            texts("USE db;\r\nDELIMITER //\r\nSELECT 1//\r\nDELIMITER ;\r\nSELECT 2;"),
            ["USE db", "SELECT 1", "SELECT 2"]
        );
    }
}
