//! Panics end the run with a record and [`ExitCode::Panic`]. The record carries the location only: a panic
//! message may format a value, and records never carry data (DESIGN.md §4).
//!
//! Also the two unwinding symbols the precompiled `core` of this target still names: with `panic = "abort"` nothing
//! calls them, so they abort.

use core::sync::atomic::{AtomicBool, Ordering};

use ovmf::exit::ExitCode;
use protocol::console::{self, Level, Value};

use crate::exit::exit;
use crate::serial;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::SeqCst) {
        let mut out = serial::write_unlocked();
        let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
        // Sizes only: an allocation that failed (out of memory is the one panic outside input can still cause, with
        // a model too large for the guest's RAM) and the heap in use.
        let (failed, used) = crate::heap::exhaustion();
        let fields = [
            ("file", Value::Str(file)),
            ("line", Value::U64(line.into())),
            ("failed_alloc_bytes", Value::U64(failed as u64)),
            ("heap_used", Value::U64(used.unwrap_or(0) as u64)),
        ];
        let _ = console::write_record(&mut out, Level::Error, "panic", format_args!("panic"), fields);
    }
    exit(ExitCode::Panic)
}

/// Named by the precompiled `core`'s unwinding paths; unreachable with `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// Named by the precompiled `core`'s unwinding paths; unreachable with `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    exit(ExitCode::Panic)
}
