//! Filling the SNP CPUID page as the VMM does and checking it as the firmware does (SEV-SNP Firmware ABI, 8.17.2.6
//! "PAGE_TYPE_CPUID" and appendix "CPUID reporting"): the hypervisor proposes one entry per function, and
//! SNP_LAUNCH_UPDATE refuses the page if an entry claims what the hardware cannot give. The layout is the one the
//! guest reads (`ovmf::snp::cpuid_page`).

use ovmf::snp::cpuid_page::{CpuidResult, LEAF_SEV_FEATURES, MAX_FUNCTIONS, PAGE_LEN};

const HEADER_LEN: usize = 16;
const FUNCTION_LEN: usize = 0x30;

/// One function on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidFunction {
    /// EAX_IN.
    pub leaf: u32,
    /// ECX_IN.
    pub subleaf: u32,
    /// XCR0_IN: the XCR0 the answer assumes (leaf 0xD subleaves 0 and 1).
    pub xcr0_in: u64,
    /// The registers.
    pub result: CpuidResult,
}

/// The functions the platform puts on the page: the basic and extended leaves a guest of this era reads, the
/// subleaves of the ones that have them. Leaf 0xD's first two subleaves are given for XCR0 = x87 | SSE | AVX.
pub const FUNCTIONS: [(u32, u32); 24] = [
    (0x0, 0),
    (0x1, 0),
    (0x4, 0),
    (0x4, 1),
    (0x4, 2),
    (0x4, 3),
    (0x6, 0),
    (0x7, 0),
    (0x7, 1),
    (0xb, 0),
    (0xb, 1),
    (0xd, 0),
    (0xd, 1),
    (0xd, 2),
    (0x8000_0000, 0),
    (0x8000_0001, 0),
    (0x8000_0002, 0),
    (0x8000_0003, 0),
    (0x8000_0004, 0),
    (0x8000_0005, 0),
    (0x8000_0006, 0),
    (0x8000_0007, 0),
    (0x8000_0008, 0),
    (LEAF_SEV_FEATURES, 0),
];

/// The XCR0 the guest runs with, which the leaf 0xD entries assume.
pub const GUEST_XCR0: u64 = 0x7;

/// Fn8000_001F EAX bits (AMD64 APM vol. 3, CPUID Fn8000_001F): SEV, SEV-ES, SEV-SNP.
pub const SEV_FEATURES_SEV: u32 = 1 << 1;
/// SEV-ES.
pub const SEV_FEATURES_SEV_ES: u32 = 1 << 3;
/// SEV-SNP.
pub const SEV_FEATURES_SNP: u32 = 1 << 4;

/// Fills a page with `functions`.
pub fn encode(functions: &[CpuidFunction]) -> Option<[u8; PAGE_LEN]> {
    if functions.len() > MAX_FUNCTIONS {
        return None;
    }
    let mut page = [0u8; PAGE_LEN];
    page[..4].copy_from_slice(&(functions.len() as u32).to_le_bytes());
    for (i, f) in functions.iter().enumerate() {
        let at = HEADER_LEN + i * FUNCTION_LEN;
        page[at..at + 4].copy_from_slice(&f.leaf.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&f.subleaf.to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&f.xcr0_in.to_le_bytes());
        let registers = [f.result.eax, f.result.ebx, f.result.ecx, f.result.edx];
        for (j, value) in registers.into_iter().enumerate() {
            page[at + 24 + 4 * j..at + 28 + 4 * j].copy_from_slice(&value.to_le_bytes());
        }
    }
    Some(page)
}

/// Why the firmware refused an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidRefusal {
    /// The function.
    pub leaf: u32,
    /// Its subleaf.
    pub subleaf: u32,
}

/// Feature registers the firmware checks bit by bit (a function may report less than the hardware, never more):
/// leaf, subleaf, and which of EAX, EBX, ECX, EDX hold feature flags.
const FEATURE_REGISTERS: [(u32, u32, [bool; 4]); 4] = [
    (0x1, 0, [false, false, true, true]),
    (0x7, 0, [false, true, true, true]),
    (0xd, 1, [true, false, false, false]),
    (0x8000_0001, 0, [false, false, true, true]),
];

fn registers(r: CpuidResult) -> [u32; 4] {
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// The firmware's check of a proposed page against the hardware's own answers (`hardware(leaf, subleaf)`) and the
/// platform's SEV features leaf: feature flags may only be a subset, and Fn8000_001F must be exactly the
/// platform's (it carries the C-bit position every private mapping depends on).
pub fn check(
    functions: &[CpuidFunction],
    hardware: impl Fn(u32, u32) -> CpuidResult,
    sev_features: CpuidResult,
) -> Result<(), CpuidRefusal> {
    for f in functions {
        let refusal = CpuidRefusal { leaf: f.leaf, subleaf: f.subleaf };
        if f.leaf == LEAF_SEV_FEATURES && f.result != sev_features {
            return Err(refusal);
        }
        let checked = FEATURE_REGISTERS.iter().find(|(leaf, subleaf, _)| *leaf == f.leaf && *subleaf == f.subleaf);
        if let Some((_, _, which)) = checked {
            let proposed = registers(f.result);
            let real = registers(hardware(f.leaf, f.subleaf));
            if (0..4).any(|i| which[i] && proposed[i] & !real[i] != 0) {
                return Err(refusal);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ovmf::snp::cpuid_page::CpuidPage;

    use super::*;

    fn result(eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidResult {
        CpuidResult { eax, ebx, ecx, edx }
    }

    const SEV: CpuidResult = CpuidResult { eax: 0x1a, ebx: 47 | 1 << 6, ecx: 0, edx: 0 };

    fn hardware(leaf: u32, _subleaf: u32) -> CpuidResult {
        match leaf {
            0x1 => result(0x0080_0f12, 0, 0x7ed8_320b, 0x178b_fbff),
            0x7 => result(0, 0x0000_0229, 0, 0),
            _ => result(0, 0, 0, 0),
        }
    }

    fn function(leaf: u32, result: CpuidResult) -> CpuidFunction {
        CpuidFunction { leaf, subleaf: 0, xcr0_in: 0, result }
    }

    #[test]
    fn the_guest_reads_back_what_the_platform_wrote() {
        let functions = [
            function(0x1, hardware(1, 0)),
            CpuidFunction { leaf: 0xd, subleaf: 0, xcr0_in: GUEST_XCR0, result: result(7, 0x340, 0x340, 0) },
            function(LEAF_SEV_FEATURES, SEV),
        ];
        let page = encode(&functions).unwrap();
        let view = CpuidPage::new(&page).unwrap();
        assert_eq!(view.lookup(0x1, 0), Some(hardware(1, 0)));
        assert_eq!(view.lookup(0xd, 0), Some(result(7, 0x340, 0x340, 0)));
        assert_eq!(view.c_bit(), Ok(47));
        assert_eq!(view.lookup(0x8000_0008, 0), None);
    }

    #[test]
    fn the_firmware_accepts_fewer_features_and_refuses_more() {
        let fewer = function(0x1, result(0x0080_0f12, 0, 0x0000_0001, 0x178b_fbff));
        assert_eq!(check(&[fewer, function(LEAF_SEV_FEATURES, SEV)], hardware, SEV), Ok(()));
        let more = function(0x7, result(0, 0x0000_0229 | 1 << 16, 0, 0)); // AVX-512F the hardware lacks
        assert_eq!(check(&[more], hardware, SEV), Err(CpuidRefusal { leaf: 0x7, subleaf: 0 }));
    }

    #[test]
    fn the_firmware_refuses_a_c_bit_other_than_the_platforms() {
        let lie = function(LEAF_SEV_FEATURES, CpuidResult { ebx: 51 | 1 << 6, ..SEV });
        assert!(check(&[lie], hardware, SEV).is_err());
    }

    #[test]
    fn a_page_holds_at_most_64_functions() {
        assert!(encode(&[function(0, result(0, 0, 0, 0)); MAX_FUNCTIONS]).is_some());
        assert!(encode(&[function(0, result(0, 0, 0, 0)); MAX_FUNCTIONS + 1]).is_none());
    }
}
