//! Port I/O under SEV-SNP: IN and OUT raise #VC with exit code IOIO and nothing else, so the #VC handler decodes
//! the instruction itself and builds the SW_EXITINFO1 the hypervisor expects (GHCB specification §4.1.2, which
//! takes the IOIO intercept's EXITINFO1 from AMD64 APM vol. 2, §15.10.2, figure 15-2).
//!
//! Only the forms the kernel executes are accepted: `IN`/`OUT` with the port in DX or an 8-bit immediate, at 8, 16
//! (0x66 prefix) or 32 bits. String and REP forms are refused: the kernel never uses them, and emulating them would
//! move guest memory through the GHCB.

/// EXITINFO1 bit 0: the access is IN.
pub const IOIO_TYPE_IN: u64 = 1 << 0;
/// EXITINFO1 bits 4..6: the data size (one bit each for 8, 16 and 32 bits).
pub const IOIO_SZ8: u64 = 1 << 4;
/// 16-bit data.
pub const IOIO_SZ16: u64 = 1 << 5;
/// 32-bit data.
pub const IOIO_SZ32: u64 = 1 << 6;
/// EXITINFO1 bit 9: 64-bit address size (the kernel runs in 64-bit mode).
pub const IOIO_A64: u64 = 1 << 9;
/// EXITINFO1 bits 31..16: the port.
pub const IOIO_PORT_SHIFT: u32 = 16;

/// The operand-size override prefix.
const OPERAND_SIZE_PREFIX: u8 = 0x66;

/// One port access, decoded from the instruction that raised #VC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortAccess {
    /// The port.
    pub port: u16,
    /// Bytes moved: 1, 2 or 4.
    pub size: u8,
    /// IN (device to RAX) rather than OUT.
    pub is_in: bool,
    /// The instruction's length, to step over it.
    pub length: u8,
}

impl PortAccess {
    /// Decodes the instruction starting at `code[0]`; `dx` is the interrupted RDX. `None` for anything but the
    /// accepted forms.
    pub fn decode(code: &[u8], dx: u16) -> Option<PortAccess> {
        let (wide_is_16, rest) = match code.split_first()? {
            (&OPERAND_SIZE_PREFIX, rest) => (true, rest),
            _ => (false, code),
        };
        let prefix_len = (code.len() - rest.len()) as u8;
        let opcode = *rest.first()?;
        // 0xE4..=0xE7 take an imm8 port, 0xEC..=0xEF use DX; bit 0 says 8-bit or wide, bit 1 says IN or OUT.
        let (port, operand_len) = match opcode {
            0xe4..=0xe7 => (u16::from(*rest.get(1)?), 1),
            0xec..=0xef => (dx, 0),
            _ => return None,
        };
        let size = match (opcode & 1, wide_is_16) {
            (0, false) => 1,
            // An operand-size prefix on a byte access is meaningless: refuse it rather than guess.
            (0, true) => return None,
            (_, true) => 2,
            (_, false) => 4,
        };
        Some(PortAccess { port, size, is_in: opcode & 2 == 0, length: prefix_len + 1 + operand_len })
    }

    /// SW_EXITINFO1 for this access.
    pub fn exit_info(&self) -> u64 {
        let size = match self.size {
            1 => IOIO_SZ8,
            2 => IOIO_SZ16,
            _ => IOIO_SZ32,
        };
        (u64::from(self.port) << IOIO_PORT_SHIFT) | IOIO_A64 | size | if self.is_in { IOIO_TYPE_IN } else { 0 }
    }

    /// The bits of RAX an access of this size moves.
    pub fn mask(&self) -> u64 {
        crate::emulation::port_mask(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_port_instructions_decode() {
        // in al, dx / in ax, dx / in eax, dx / out dx, al / out dx, ax / out dx, eax
        let cases: [(&[u8], u8, bool, u8); 6] = [
            (&[0xec], 1, true, 1),
            (&[0x66, 0xed], 2, true, 2),
            (&[0xed], 4, true, 1),
            (&[0xee], 1, false, 1),
            (&[0x66, 0xef], 2, false, 2),
            (&[0xef], 4, false, 1),
        ];
        for (code, size, is_in, length) in cases {
            let access = PortAccess::decode(code, 0x3f8).unwrap();
            assert_eq!(access, PortAccess { port: 0x3f8, size, is_in, length }, "{code:x?}");
        }
        // in al, 0x61 / out 0x43, al / out 0xf4, eax
        assert_eq!(
            PortAccess::decode(&[0xe4, 0x61], 0),
            Some(PortAccess { port: 0x61, size: 1, is_in: true, length: 2 })
        );
        assert_eq!(
            PortAccess::decode(&[0xe6, 0x43], 0),
            Some(PortAccess { port: 0x43, size: 1, is_in: false, length: 2 })
        );
        assert_eq!(
            PortAccess::decode(&[0xe7, 0xf4], 0),
            Some(PortAccess { port: 0xf4, size: 4, is_in: false, length: 2 })
        );
    }

    #[test]
    fn other_instructions_are_refused() {
        for code in [
            &[][..],
            &[0x66],
            &[0xe4],             // imm8 missing
            &[0x66, 0xec],       // 0x66 on a byte access
            &[0xf3, 0x6e],       // rep outsb
            &[0x6c],             // insb
            &[0x0f, 0xa2],       // cpuid
            &[0x66, 0x66, 0xed], // two prefixes
            &[0x48, 0xed],       // REX.W in: not a form the kernel uses
        ] {
            assert_eq!(PortAccess::decode(code, 0x3f8), None, "{code:x?}");
        }
    }

    #[test]
    fn exit_info_matches_the_apm_layout() {
        // out dx, al to COM1: port 0x3f8 in 31:16, 64-bit addressing, 8-bit, OUT.
        let out = PortAccess::decode(&[0xee], 0x3f8).unwrap();
        assert_eq!(out.exit_info(), 0x03f8_0210);
        // in eax, dx from 0xcfc: IN, 32-bit.
        let input = PortAccess::decode(&[0xed], 0xcfc).unwrap();
        assert_eq!(input.exit_info(), 0x0cfc_0241);
        assert_eq!(input.mask(), 0xffff_ffff);
        assert_eq!(PortAccess::decode(&[0x66, 0xed], 0).unwrap().mask(), 0xffff);
        assert_eq!(out.mask(), 0xff);
    }
}
