//! The untrusted host's side of the GHCB (GHCB specification rev. 2.03, §4.1): the non-automatic exits the guest
//! describes in its GHCB page, performed on QEMU's real devices (port I/O, device MMIO) or by the platform (the
//! time-stamp counter, the MSRs it emulates). Results go back into the page with their valid bits, as the guest's side
//! (`ovmf::snp::ghcb`) reads them.

use ovmf::layout::PCI_MMIO;
use ovmf::snp::ghcb::{Ghcb, exit_code, offset};
use ovmf::snp::ioio::{IOIO_PORT_SHIFT, IOIO_TYPE_IN};
use simulated_platform::ioio::{IOIO_REP, IOIO_STR, exit_info_size};

use simulated_platform::msr_exit::{self, MsrAnswer};

use crate::port;

/// SW_EXITINFO1 of a failed exit: 1 means SW_EXITINFO2 holds an event to inject; 2 means "invalid input" with a
/// reason in SW_EXITINFO2 (§4.1, table 5).
const EXIT_INVALID: u64 = 2;
/// SW_EXITINFO2 reasons for EXIT_INVALID.
const REASON_BAD_EXIT_CODE: u64 = 1;
const REASON_BAD_INPUT: u64 = 2;

/// Whether the exit in `ghcb` is an OUT to QEMU's debug-exit port, which ends the run.
pub fn is_exit_port_write(ghcb: &Ghcb) -> bool {
    let info = ghcb.get(offset::SW_EXITINFO1).unwrap_or(0);
    ghcb.get(offset::SW_EXITCODE) == Some(exit_code::IOIO)
        && info & IOIO_TYPE_IN == 0
        && (info >> 16) as u16 == ovmf::exit::DEBUG_EXIT_PORT
}

/// Performs the exit in `ghcb` and writes its result.
pub fn serve(ghcb: &mut Ghcb) {
    let code = ghcb.get(offset::SW_EXITCODE).unwrap_or(u64::MAX);
    let info1 = ghcb.get(offset::SW_EXITINFO1).unwrap_or(0);
    let info2 = ghcb.get(offset::SW_EXITINFO2).unwrap_or(0);
    let result = match code {
        exit_code::IOIO => port_io(ghcb, info1),
        exit_code::MSR => msr(ghcb, info1 == 1),
        exit_code::MMIO_READ | exit_code::MMIO_WRITE => mmio(ghcb, code == exit_code::MMIO_READ, info1, info2),
        exit_code::RDTSC | exit_code::RDTSCP => {
            // SAFETY: RDTSC reads a counter.
            let tsc = unsafe { core::arch::x86_64::_rdtsc() };
            ghcb.set(offset::RAX, tsc & 0xffff_ffff);
            ghcb.set(offset::RDX, tsc >> 32);
            if code == exit_code::RDTSCP {
                ghcb.set(offset::RCX, 0);
            }
            Ok(())
        }
        _ => Err(REASON_BAD_EXIT_CODE),
    };
    match result {
        Ok(()) => {
            ghcb.set(offset::SW_EXITINFO1, 0);
            ghcb.set(offset::SW_EXITINFO2, 0);
        }
        Err(reason) => {
            ghcb.set(offset::SW_EXITINFO1, EXIT_INVALID);
            ghcb.set(offset::SW_EXITINFO2, reason);
        }
    }
}

fn port_io(ghcb: &mut Ghcb, info: u64) -> Result<(), u64> {
    if info & (IOIO_STR | IOIO_REP) != 0 {
        return Err(REASON_BAD_INPUT);
    }
    let port = (info >> IOIO_PORT_SHIFT) as u16;
    let size = exit_info_size(info).ok_or(REASON_BAD_INPUT)?;
    if info & IOIO_TYPE_IN != 0 {
        ghcb.set(offset::RAX, u64::from(port::read(port, size)));
    } else {
        let value = ghcb.get(offset::RAX).ok_or(REASON_BAD_INPUT)?;
        port::write(port, size, value as u32);
    }
    Ok(())
}

/// Device MMIO on the guest's behalf, only inside the window where the guest places device BARs (the host never
/// reads or writes anything else for it). The data moves through the GHCB's shared buffer.
fn mmio(ghcb: &mut Ghcb, read: bool, gpa: u64, size: u64) -> Result<(), u64> {
    if !matches!(size, 1 | 2 | 4 | 8) || !PCI_MMIO.contains(gpa) || !PCI_MMIO.contains(gpa + size - 1) {
        return Err(REASON_BAD_INPUT);
    }
    let scratch = ghcb.get(offset::SW_SCRATCH).ok_or(REASON_BAD_INPUT)?;
    if scratch & 0xfff != offset::SHARED_BUFFER as u64 {
        return Err(REASON_BAD_INPUT);
    }
    let buffer = &mut ghcb.shared_buffer()[..size as usize];
    if read {
        buffer.copy_from_slice(&device_read(gpa, size).to_le_bytes()[..size as usize]);
    } else {
        let mut bytes = [0u8; 8];
        bytes[..size as usize].copy_from_slice(buffer);
        device_write(gpa, size, u64::from_le_bytes(bytes));
    }
    Ok(())
}

/// One device-register read of `size` bytes at `gpa`, which the caller checked lies in the PCI MMIO window.
pub fn device_read(gpa: u64, size: u64) -> u64 {
    match size {
        // SAFETY: [gpa, gpa + size) lies in the PCI MMIO window, identity-mapped in the hypervisor and owned by
        // QEMU's devices, not by any Rust object; the access is volatile and of the register's width.
        1 => u64::from(unsafe { core::ptr::read_volatile(gpa as *const u8) }),
        // SAFETY: as above.
        2 => u64::from(unsafe { core::ptr::read_volatile(gpa as *const u16) }),
        // SAFETY: as above.
        4 => u64::from(unsafe { core::ptr::read_volatile(gpa as *const u32) }),
        // SAFETY: as above.
        _ => unsafe { core::ptr::read_volatile(gpa as *const u64) },
    }
}

/// One device-register write of the low `size` bytes of `value` at `gpa` (in the PCI MMIO window).
pub fn device_write(gpa: u64, size: u64, value: u64) {
    match size {
        // SAFETY: as in `device_read`.
        1 => unsafe { core::ptr::write_volatile(gpa as *mut u8, value as u8) },
        // SAFETY: as in `device_read`.
        2 => unsafe { core::ptr::write_volatile(gpa as *mut u16, value as u16) },
        // SAFETY: as in `device_read`.
        4 => unsafe { core::ptr::write_volatile(gpa as *mut u32, value as u32) },
        // SAFETY: as in `device_read`.
        _ => unsafe { core::ptr::write_volatile(gpa as *mut u64, value) },
    }
}

/// RDMSR or WRMSR (`write`) of the MSR in RCX, as the platform emulates it (`simulated_platform::msr_exit`).
fn msr(ghcb: &mut Ghcb, write: bool) -> Result<(), u64> {
    let number = ghcb.get(offset::RCX).ok_or(REASON_BAD_INPUT)? as u32;
    let value = if write {
        let (low, high) =
            (ghcb.get(offset::RAX).ok_or(REASON_BAD_INPUT)?, ghcb.get(offset::RDX).ok_or(REASON_BAD_INPUT)?);
        Some((high << 32) | (low & 0xffff_ffff))
    } else {
        None
    };
    // SAFETY: RDTSC reads a counter.
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    match msr_exit::answer(number, value, tsc) {
        MsrAnswer::Value(value) => {
            ghcb.set(offset::RAX, value & 0xffff_ffff);
            ghcb.set(offset::RDX, value >> 32);
            Ok(())
        }
        MsrAnswer::Written => Ok(()),
        MsrAnswer::Refused => Err(REASON_BAD_INPUT),
    }
}
