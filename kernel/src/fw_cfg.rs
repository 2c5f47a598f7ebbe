//! QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU), through its I/O ports: how run-qemu
//! names the key the image asks for, and which fault the test image raises. Host-controlled input: read with
//! fixed bounds, and nothing read here is trusted (a wrong key id only gets a refusal).

use x86_64::instructions::port::{Port, PortWriteOnly};

/// Selector register (16-bit write) and data register (8-bit read).
const PORT_SELECTOR: u16 = 0x510;
const PORT_DATA: u16 = 0x511;
/// Well-known selectors.
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_FILE_DIR: u16 = 0x0019;
/// "QEMU", the signature item's contents.
const SIGNATURE: [u8; 4] = *b"QEMU";
/// A directory entry: size (u32 BE), select (u16 BE), reserved (u16), name (56 bytes, NUL-terminated).
const FILE_NAME_LEN: usize = 56;
/// More directory entries than this are not read.
const MAX_FILES: u32 = 256;

fn select(item: u16) {
    let mut port = PortWriteOnly::<u16>::new(PORT_SELECTOR);
    // SAFETY: writing the fw_cfg selector only changes which item the data port returns.
    unsafe { port.write(item) };
}

fn read_bytes(buf: &mut [u8]) {
    let mut port = Port::<u8>::new(PORT_DATA);
    for byte in buf {
        // SAFETY: reading the fw_cfg data port returns the next byte of the selected item.
        *byte = unsafe { port.read() };
    }
}

/// Reads the fw_cfg file `name` into `buf`; returns the number of bytes read (the file is cut at `buf.len()`), or
/// `None` if there is no fw_cfg device or no such file.
pub fn read_file(name: &str, buf: &mut [u8]) -> Option<usize> {
    let mut signature = [0u8; 4];
    select(FW_CFG_SIGNATURE);
    read_bytes(&mut signature);
    if signature != SIGNATURE {
        return None;
    }
    select(FW_CFG_FILE_DIR);
    let mut count = [0u8; 4];
    read_bytes(&mut count);
    for _ in 0..u32::from_be_bytes(count).min(MAX_FILES) {
        let mut entry = [0u8; 8 + FILE_NAME_LEN];
        read_bytes(&mut entry);
        let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize;
        let item = u16::from_be_bytes([entry[4], entry[5]]);
        let entry_name = &entry[8..];
        let len = entry_name.iter().position(|&b| b == 0).unwrap_or(FILE_NAME_LEN);
        if &entry_name[..len] == name.as_bytes() {
            let n = size.min(buf.len());
            select(item);
            read_bytes(&mut buf[..n]);
            return Some(n);
        }
    }
    None
}
