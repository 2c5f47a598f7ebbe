//! Console records: one record a line, `key=value` pairs, metadata only (DESIGN.md §4).
//!
//! ```text
//! level=info target=kernel msg="booted" tee=plain reset_to_main_cycles=123456
//! ```
//!
//! Every record starts with `level`, `target` and `msg`, in that order. `msg` is always quoted; other values are
//! bare when they are numbers, booleans or simple tokens, and quoted (with `\"`, `\\`, `\n`, `\xNN` escapes) otherwise.
//! The guest formats with [`write_record`] (no allocation); host tools read with [`Record::parse`] (no allocation
//! either: fields borrow from the line).

use core::fmt::{self, Write};

/// How severe a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed; the run ends or the request is refused.
    Error,
    /// Something unexpected that the guest survives.
    Warn,
    /// A step of the normal flow.
    Info,
    /// Detail for developers.
    Debug,
    /// Even more detail.
    Trace,
}

impl Level {
    /// The name printed after `level=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace].into_iter().find(|l| l.as_str() == s)
    }
}

/// A field value. Only these types can be logged, which keeps records to metadata: numbers, flags, names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// An unsigned number, printed in decimal.
    U64(u64),
    /// A signed number, printed in decimal.
    I64(i64),
    /// A number printed as `0x...` (addresses, error codes).
    Hex(u64),
    /// `true` or `false`.
    Bool(bool),
    /// Text: bare if it is a simple token, quoted and escaped otherwise.
    Str(&'a str),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::Hex(v) => write!(f, "{v:#x}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(s) if is_bare_token(s) => f.write_str(s),
            Value::Str(s) => {
                f.write_char('"')?;
                Escaper(&mut *f).write_str(s)?;
                f.write_char('"')
            }
        }
    }
}

/// Whether a text value can be printed without quotes: non-empty, and only `[A-Za-z0-9_.:/+-]`.
fn is_bare_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:/+-#".contains(&b))
}

/// Whether `key` is a valid field name: non-empty, `[a-z0-9_]` only.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Writes through to `W`, escaping what would break a quoted value or the one-record-a-line rule.
struct Escaper<W>(W);

impl<W: Write> Write for Escaper<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(self.0, "\\x{:02x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Writes one record, ending with `\n`: [`write_header`], a [`write_field`] for each field, [`write_end`].
pub fn write_record<'v>(
    out: &mut impl Write,
    level: Level,
    target: &str,
    msg: fmt::Arguments<'_>,
    fields: impl IntoIterator<Item = (&'v str, Value<'v>)>,
) -> fmt::Result {
    write_header(out, level, target, msg)?;
    for (key, value) in fields {
        write_field(out, key, value)?;
    }
    write_end(out)
}

/// Writes the start of a record: `level=... target=... msg="..."`.
pub fn write_header(out: &mut impl Write, level: Level, target: &str, msg: fmt::Arguments<'_>) -> fmt::Result {
    write!(out, "level={} target={} msg=\"", level.as_str(), Value::Str(target))?;
    Escaper(&mut *out).write_fmt(msg)?;
    out.write_char('"')
}

/// Writes ` key=value`. A key that is not [`is_valid_key`], or repeats a header key, is written as `invalid_key`
/// so the line stays parseable.
pub fn write_field(out: &mut impl Write, key: &str, value: Value<'_>) -> fmt::Result {
    let key = if is_valid_key(key) && !matches!(key, "level" | "target" | "msg") { key } else { "invalid_key" };
    write!(out, " {key}={value}")
}

/// Ends a record.
pub fn write_end(out: &mut impl Write) -> fmt::Result {
    out.write_char('\n')
}

/// Why a line is not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The line does not start with `level=<level> target=<name> msg="..."`.
    MissingHeader,
    /// A field is not `key=value`, or a quoted value is not closed.
    MalformedField,
}

/// A parsed record; field values are raw (still escaped) slices of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The level.
    pub level: Level,
    /// Which part of the guest wrote it.
    pub target: &'a str,
    /// The message, raw (escaped).
    pub msg: &'a str,
    rest: &'a str,
}

impl<'a> Record<'a> {
    /// Parses one line (without its newline).
    pub fn parse(line: &'a str) -> Result<Record<'a>, ParseError> {
        let mut fields = Fields { rest: line };
        let mut next = |name| match fields.next() {
            Some(Ok((key, value))) if key == name => Ok(value),
            _ => Err(ParseError::MissingHeader),
        };
        let level = Level::parse(next("level")?).ok_or(ParseError::MissingHeader)?;
        let target = next("target")?;
        let msg = next("msg")?;
        let record = Record { level, target, msg, rest: fields.rest };
        // Validate the remaining fields once, so `field` can be infallible.
        for field in record.fields() {
            field?;
        }
        Ok(record)
    }

    /// The fields after `msg`, in order.
    pub fn fields(&self) -> impl Iterator<Item = Result<(&'a str, &'a str), ParseError>> + 'a {
        Fields { rest: self.rest }
    }

    /// The raw value of the first field named `key`.
    pub fn field(&self, key: &str) -> Option<&'a str> {
        self.fields().filter_map(Result::ok).find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Iterates over `key=value` pairs; a quoted value is returned without its quotes, still escaped.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(&'a str, &'a str), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches(' ');
        if s.is_empty() {
            return None;
        }
        let Some((key, after)) = s.split_once('=') else {
            self.rest = "";
            return Some(Err(ParseError::MalformedField));
        };
        if !is_valid_key(key) {
            self.rest = "";
            return Some(Err(ParseError::MalformedField));
        }
        let (value, rest) = if let Some(quoted) = after.strip_prefix('"') {
            match closing_quote(quoted) {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => {
                    self.rest = "";
                    return Some(Err(ParseError::MalformedField));
                }
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            self.rest = "";
            return Some(Err(ParseError::MalformedField));
        }
        self.rest = rest;
        Some(Ok((key, value)))
    }
}

/// The index of the first unescaped `"` in `s`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests;
