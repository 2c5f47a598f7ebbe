//! The `log` facade's backend: every record goes to the serial console in the record format of
//! `protocol::console` (one record a line, `key=value`, metadata only).
//!
//! Fields come from `log`'s key-values: `log::info!(target: "kernel", tee = "plain"; "booted")`. Numbers, booleans
//! and strings are written as such; anything else is formatted with `Display` into a small buffer, so a value is
//! never longer than [`MAX_DISPLAY_VALUE`] bytes. Use [`Hex`] for addresses and codes.

use core::fmt::{self, Write};

use log::kv::{self, VisitSource};
use protocol::console::{self, Value};

use crate::serial::COM1;

/// The longest formatted (`Display`) value; longer ones are cut.
const MAX_DISPLAY_VALUE: usize = 128;

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

/// Installs the serial logger at `Info` level.
pub fn init() {
    // set_logger only fails if a logger is already set; init runs once, so keep the first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Formats as `0x...` in records: `log::error!(rip:% = Hex(rip); "fault")`.
pub struct Hex(pub u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

fn level(level: log::Level) -> console::Level {
    match level {
        log::Level::Error => console::Level::Error,
        log::Level::Warn => console::Level::Warn,
        log::Level::Info => console::Level::Info,
        log::Level::Debug => console::Level::Debug,
        log::Level::Trace => console::Level::Trace,
    }
}

impl log::Log for SerialLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut uart = COM1.lock();
        // Serial output cannot fail; a formatting error would only cut the line short.
        let _ = console::write_header(&mut *uart, level(record.level()), record.target(), *record.args());
        let _ = record.key_values().visit(&mut FieldWriter { out: &mut *uart });
        let _ = console::write_end(&mut *uart);
    }

    fn flush(&self) {}
}

/// Writes each key-value pair as a record field.
struct FieldWriter<'w, W> {
    out: &'w mut W,
}

impl<'kvs, W: Write> VisitSource<'kvs> for FieldWriter<'_, W> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let mut buf = DisplayBuf::new();
        let value = if let Some(v) = value.to_bool() {
            Value::Bool(v)
        } else if let Some(v) = value.to_u64() {
            Value::U64(v)
        } else if let Some(v) = value.to_i64() {
            Value::I64(v)
        } else if let Some(v) = value.to_borrowed_str() {
            Value::Str(v)
        } else {
            let _ = write!(buf, "{value}");
            Value::Str(buf.as_str())
        };
        console::write_field(self.out, key.as_str(), value).map_err(|_| kv::Error::msg("serial"))
    }
}

/// A fixed buffer for `Display` values; output past its end is dropped.
struct DisplayBuf {
    bytes: [u8; MAX_DISPLAY_VALUE],
    len: usize,
}

impl DisplayBuf {
    fn new() -> Self {
        Self { bytes: [0; MAX_DISPLAY_VALUE], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are appended (cut at a char boundary), so this is valid UTF-8.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for DisplayBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_DISPLAY_VALUE - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
