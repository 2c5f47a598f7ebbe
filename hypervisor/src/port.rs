//! Port I/O on QEMU's real devices: the hypervisor's own console and the guest's I/O it performs.

/// Reads `size` (1, 2 or 4) bytes from `port`.
pub fn read(port: u16, size: u8) -> u32 {
    let value: u32;
    match size {
        1 => {
            let byte: u8;
            // SAFETY: port I/O has no effect on the hypervisor's memory; the devices are QEMU's.
            unsafe { core::arch::asm!("in al, dx", in("dx") port, out("al") byte, options(nomem, nostack)) };
            value = byte.into();
        }
        2 => {
            let word: u16;
            // SAFETY: as above.
            unsafe { core::arch::asm!("in ax, dx", in("dx") port, out("ax") word, options(nomem, nostack)) };
            value = word.into();
        }
        _ => {
            // SAFETY: as above.
            unsafe { core::arch::asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack)) };
        }
    }
    value
}

/// Writes the low `size` (1, 2 or 4) bytes of `value` to `port`.
pub fn write(port: u16, size: u8, value: u32) {
    match size {
        // SAFETY: port I/O has no effect on the hypervisor's memory; the devices are QEMU's.
        1 => unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value as u8, options(nomem, nostack)) },
        // SAFETY: as above.
        2 => unsafe { core::arch::asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nomem, nostack)) },
        // SAFETY: as above.
        _ => unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack)) },
    }
}

/// Reads one byte from `port`.
pub fn inb(port: u16) -> u8 {
    read(port, 1) as u8
}

/// Writes one byte to `port`.
pub fn outb(port: u16, value: u8) {
    write(port, 1, value.into());
}

/// Masks both 8259 PICs: the firmware QEMU ran before the hypervisor left the timer interrupt on, and nothing
/// here (nor the guest, which polls) takes interrupts.
pub fn mask_legacy_interrupts() {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}
