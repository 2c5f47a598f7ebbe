//! The serial console: a 16550 UART on COM1, the guest's only output (DESIGN.md §4).

use core::fmt;

use ovmf::layout::SERIAL_PORT;
use spin::Mutex;
use x86_64::instructions::port::{Port, PortWriteOnly};

/// 16550 registers, as offsets from the base port.
const THR: u16 = 0; // transmitter holding register (DLAB = 0)
const IER: u16 = 1; // interrupt enable (DLAB = 0)
const DLL: u16 = 0; // divisor latch low (DLAB = 1)
const DLM: u16 = 1; // divisor latch high (DLAB = 1)
const FCR: u16 = 2; // FIFO control
const LCR: u16 = 3; // line control
const MCR: u16 = 4; // modem control
const LSR: u16 = 5; // line status
const LCR_DLAB: u8 = 1 << 7;
const LCR_8N1: u8 = 0b11;
const FCR_ENABLE_AND_CLEAR: u8 = 0b111;
const MCR_DTR_RTS: u8 = 0b11;
const LSR_THR_EMPTY: u8 = 1 << 5;
/// 115200 baud: the 1.8432 MHz clock / 16 / 1.
const DIVISOR_115200: u16 = 1;
/// How often to poll LSR before writing anyway: an absent or stuck UART must not hang the guest.
const MAX_POLLS: u32 = 100_000;

/// COM1. Writes are serialized by the lock; the fault path writes without it (see [`write_unlocked`]).
pub static COM1: Mutex<Uart> = Mutex::new(Uart { base: SERIAL_PORT });

/// A 16550 UART at an I/O port base.
pub struct Uart {
    base: u16,
}

impl Uart {
    /// Programs 115200 8N1, FIFOs on, interrupts off.
    pub fn init(&mut self) {
        self.out(IER, 0);
        self.out(LCR, LCR_DLAB);
        self.out(DLL, DIVISOR_115200 as u8);
        self.out(DLM, (DIVISOR_115200 >> 8) as u8);
        self.out(LCR, LCR_8N1);
        self.out(FCR, FCR_ENABLE_AND_CLEAR);
        self.out(MCR, MCR_DTR_RTS);
    }

    fn out(&mut self, register: u16, value: u8) {
        let mut port = PortWriteOnly::<u8>::new(self.base + register);
        // SAFETY: the UART's registers are I/O ports with no memory side effects.
        unsafe { port.write(value) };
    }

    fn write_byte(&mut self, byte: u8) {
        let mut lsr = Port::<u8>::new(self.base + LSR);
        for _ in 0..MAX_POLLS {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { lsr.read() } & LSR_THR_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        self.out(THR, byte);
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.write_byte(b));
        Ok(())
    }
}

/// A writer for the fault and panic paths: they may run while the lock is held (a fault inside a log call), so
/// they write to the port directly. Only the last words of a run go through here.
pub fn write_unlocked() -> Uart {
    Uart { base: SERIAL_PORT }
}
