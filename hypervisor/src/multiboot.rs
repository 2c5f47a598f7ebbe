//! The multiboot (version 0.6.96) information QEMU hands over: the command line (the platform's options) and the
//! modules (the guest image). Read once, before anything else uses the memory it lies in.

/// `flags` bits of the information structure (multiboot specification §3.3).
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MODS: u32 = 1 << 3;

/// What the hypervisor needs from the boot loader.
pub struct BootModules {
    /// The command line (`-append`), ASCII.
    pub cmdline: &'static str,
    /// The first module (`-initrd`): the guest image's bytes.
    pub image: &'static [u8],
}

/// Reads the information structure at `info` (a physical address, identity-mapped).
///
/// # Safety
/// `info` must be the address QEMU's multiboot loader passed in EBX, and the memory it and its strings and
/// modules lie in must not be written while the returned slices live.
pub unsafe fn read(info: u64) -> Option<BootModules> {
    let word = |offset: u64| -> u32 {
        // SAFETY: the caller guarantees `info` is the multiboot structure (at least 0x30 bytes, identity-mapped).
        unsafe { ((info + offset) as *const u32).read_unaligned() }
    };
    let flags = word(0);
    if flags & INFO_CMDLINE == 0 || flags & INFO_MODS == 0 || word(20) == 0 {
        return None;
    }
    let cmdline = u64::from(word(16));
    // At most a page: the command line is the platform's handful of options.
    let cmdline_len = (0..4096)
        // SAFETY: the loader wrote a NUL-terminated command line at this address; reading stops at its NUL.
        .find(|&i| unsafe { ((cmdline + i) as *const u8).read() } == 0)
        .unwrap_or(0);
    // SAFETY: [cmdline, cmdline + len) was just read byte by byte, and nothing writes it.
    let cmdline = unsafe { core::slice::from_raw_parts(cmdline as *const u8, cmdline_len as usize) };
    let module = u64::from(word(24));
    // SAFETY: the module list has `mods_count` >= 1 entries of {start, end, string, reserved}.
    let start = unsafe { (module as *const u32).read() };
    // SAFETY: as above.
    let end = unsafe { ((module + 4) as *const u32).read() };
    if end < start {
        return None;
    }
    // SAFETY: the loader placed the module's bytes at [start, end), identity-mapped, and nothing writes them.
    let image = unsafe { core::slice::from_raw_parts(start as u64 as *const u8, (end - start) as usize) };
    Some(BootModules { cmdline: core::str::from_utf8(cmdline).ok()?, image })
}
