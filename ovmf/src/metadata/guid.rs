//! GUIDs as firmware stores them: the first three fields little-endian, the last two as bytes (RFC 4122 text order
//! otherwise). Written here in their usual text form and converted at compile time.

use core::fmt;

/// A GUID in its 16-byte on-disk form.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Guid(pub [u8; 16]);

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at compile time.
    pub const fn parse(text: &str) -> Guid {
        let s = text.as_bytes();
        assert!(s.len() == 36 && s[8] == b'-' && s[13] == b'-' && s[18] == b'-' && s[23] == b'-', "malformed GUID");
        // Text byte order, then the first three fields reversed into little-endian.
        let mut text_order = [0u8; 16];
        let (mut i, mut out) = (0, 0);
        while i < 36 {
            if s[i] == b'-' {
                i += 1;
                continue;
            }
            text_order[out] = hex(s[i]) << 4 | hex(s[i + 1]);
            out += 1;
            i += 2;
        }
        let t = text_order;
        Guid([t[3], t[2], t[1], t[0], t[5], t[4], t[7], t[6], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn footer_guid_has_the_bytes_ovmf_writes() {
        // OVMF's ResetVectorVtf0.asm writes this GUID as DB 0xDE, 0x82, 0xB5, 0x96, 0xB2, 0x1F, 0xF7, 0x45, ...
        let g = Guid::parse("96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(
            g.0,
            [0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]
        );
    }

    #[test]
    fn display_round_trips() {
        let text = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
        assert_eq!(Guid::parse(text).to_string(), text);
    }
}
