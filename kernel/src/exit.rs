//! Ending a run: the exit code goes to QEMU's `isa-debug-exit` port (see `ovmf::exit`).

use ovmf::exit::{DEBUG_EXIT_PORT, ExitCode};
use x86_64::instructions::port::PortWriteOnly;

/// Ends the run with `code`. Without a debug-exit device (a real host) the CPU halts here for good.
pub fn exit(code: ExitCode) -> ! {
    let mut port = PortWriteOnly::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: writing the debug-exit port has no effect on guest memory; QEMU ends the VM.
    unsafe { port.write(code as u32) };
    halt_forever()
}

/// Stops this CPU: interrupts off, `hlt` in a loop.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
