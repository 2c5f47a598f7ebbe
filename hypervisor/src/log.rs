//! The hypervisor's records (`target=platform`), in the guest's console format (`protocol::console`), and the end
//! of a run through QEMU's debug-exit device.

use ovmf::exit::{DEBUG_EXIT_PORT, ExitCode};
use protocol::console::{Level, Value, write_record};

use crate::port;
use crate::serial::Console;

fn record(level: Level, msg: &str, fields: &[(&str, Value<'_>)]) {
    // The console cannot fail; a record cut short is still followed by the next.
    let _ = write_record(&mut Console, level, "platform", format_args!("{msg}"), fields.iter().copied());
}

/// An information record.
pub fn info(msg: &str, fields: &[(&str, Value<'_>)]) {
    record(Level::Info, msg, fields);
}

/// An error record.
pub fn error(msg: &str, fields: &[(&str, Value<'_>)]) {
    record(Level::Error, msg, fields);
}

/// A fatal problem of the platform itself (not of the guest): a record, then the run ends.
pub fn fatal(msg: &str) -> ! {
    error(msg, &[]);
    exit(ExitCode::Panic)
}

/// Ends the run with `code`, as the guest's own exit does.
pub fn exit(code: ExitCode) -> ! {
    port::write(DEBUG_EXIT_PORT, 4, code as u32);
    loop {
        // SAFETY: stops this CPU; without the debug-exit device nothing else can end the run.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// `bytes` in lower-case hex, in `out` (twice as long).
pub fn hex<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    core::str::from_utf8(&out[..bytes.len() * 2]).unwrap_or("")
}
