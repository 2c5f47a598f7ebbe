//! The broker's own log: structured records in the same format as the guest's console (`protocol::console`), on
//! stderr or appended to a file. Metadata only.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

pub use protocol::console::{Level, Value};

/// Where records go.
pub enum LogSink {
    /// Standard error (the standalone broker).
    Stderr,
    /// A file (a broker embedded in another program, such as run-qemu).
    File(Mutex<File>),
}

impl LogSink {
    /// Appends to the file at `path`, creating it.
    pub fn file(path: &Path) -> std::io::Result<LogSink> {
        Ok(LogSink::File(Mutex::new(OpenOptions::new().create(true).append(true).open(path)?)))
    }

    /// Writes one record.
    pub fn record(&self, level: Level, msg: &str, fields: &[(&str, Value<'_>)]) {
        let mut line = String::new();
        let _ =
            protocol::console::write_record(&mut line, level, "broker", format_args!("{msg}"), fields.iter().copied());
        let _ = match self {
            LogSink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            LogSink::File(file) => file.lock().unwrap_or_else(|e| e.into_inner()).write_all(line.as_bytes()),
        };
    }
}
