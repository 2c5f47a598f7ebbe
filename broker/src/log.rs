//! The broker's own log: structured records on stderr, in the same format as the guest's console
//! (`protocol::console`). Metadata only.

use std::io::Write;

pub use protocol::console::{Level, Value};

/// Writes one record to stderr.
pub fn record(level: Level, msg: &str, fields: &[(&str, Value<'_>)]) {
    let mut line = String::new();
    let _ = protocol::console::write_record(&mut line, level, "broker", format_args!("{msg}"), fields.iter().copied());
    let _ = std::io::stderr().write_all(line.as_bytes());
}
