//! Reading an IOIO intercept's EXITINFO1 (AMD64 APM vol. 2, 15.10.2), as the host reads it both from its own
//! intercept (a TD's #VE) and from the guest's GHCB (an SNP guest's IOIO exit). The bits are
//! `ovmf::snp::ioio`'s, where the guest encodes them, and the two the guest never sets (it refuses string and REP
//! forms), which a host must still read.

use ovmf::snp::ioio::{IOIO_SZ8, IOIO_SZ16, IOIO_SZ32};

/// EXITINFO1 bit 2: a string instruction (INS/OUTS).
pub const IOIO_STR: u64 = 1 << 2;
/// EXITINFO1 bit 3: a REP prefix.
pub const IOIO_REP: u64 = 1 << 3;

/// The data size (1, 2 or 4 bytes) EXITINFO1 names; `None` unless exactly one size bit is set.
pub fn exit_info_size(info: u64) -> Option<u8> {
    match info & (IOIO_SZ8 | IOIO_SZ16 | IOIO_SZ32) {
        IOIO_SZ8 => Some(1),
        IOIO_SZ16 => Some(2),
        IOIO_SZ32 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ovmf::snp::ioio::PortAccess;

    use super::*;

    #[test]
    fn sizes_read_back_from_the_guests_encoding_and_the_rest_is_refused() {
        for size in [1u8, 2, 4] {
            let access = PortAccess { port: 0x3f8, size, is_in: true, length: 1 };
            assert_eq!(exit_info_size(access.exit_info()), Some(size));
        }
        assert_eq!(exit_info_size(0), None);
        assert_eq!(exit_info_size(IOIO_SZ8 | IOIO_SZ16), None);
    }
}
