//! The hypervisor's own console: COM1, shared with the guest, whose port I/O it performs. Its records carry
//! `target=platform` so that they read apart from the guest's.

use core::fmt;

use crate::port;

/// COM1 (ovmf::layout::SERIAL_PORT): the port run-qemu reads.
const COM1: u16 = ovmf::layout::SERIAL_PORT;
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// A writer to COM1 (QEMU's UART is ready at reset; the guest programs it itself).
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            for _ in 0..100_000 {
                if port::inb(COM1 + LSR) & LSR_THR_EMPTY != 0 {
                    break;
                }
            }
            port::outb(COM1, byte);
        }
        Ok(())
    }
}
