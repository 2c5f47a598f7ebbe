//! The CPUID bits an Ampoule image needs, checked by the 32-bit reset stub before the first Rust instruction.
//!
//! The kernel is compiled with `-C target-cpu=x86-64-v3` (AVX2 + FMA, DESIGN.md §3), so compiled Rust may use any
//! of those instructions anywhere. A CPU without them must stop with a clear record, not a `#UD` somewhere deep in
//! the boot. The table below is the one list: the assembly walks it (it is placed in the reset page under the
//! `boot` feature), and a host test checks it against the features rustc enables for the configured target CPU.

/// A CPUID output register.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidRegister {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

/// One required feature: `CPUID(leaf, subleaf).register` must have `bit` set. The layout is read by `reset32.s`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CpuidBit {
    /// CPUID leaf (EAX input).
    pub leaf: u32,
    /// CPUID subleaf (ECX input).
    pub subleaf: u32,
    /// The output register holding the bit.
    pub register: CpuidRegister,
    /// The bit number in that register.
    pub bit: u32,
    /// The feature's name as rustc spells it (NUL-padded), printed when it is missing.
    pub name: [u8; 16],
}

impl CpuidBit {
    const fn new(leaf: u32, register: CpuidRegister, bit: u32, name: &str) -> Self {
        let mut padded = [0u8; 16];
        let bytes = name.as_bytes();
        assert!(bytes.len() < padded.len(), "feature name too long");
        let mut i = 0;
        while i < bytes.len() {
            padded[i] = bytes[i];
            i += 1;
        }
        let subleaf = 0;
        Self { leaf, subleaf, register, bit, name: padded }
    }

    /// The feature name without its NUL padding.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

use CpuidRegister::{Eax, Ebx, Ecx, Edx};

/// CPUID leaf 1: feature information (Intel SDM vol. 2A, CPUID, table 3-10 and 3-11).
const LEAF_FEATURES: u32 = 0x1;
/// CPUID leaf 7 subleaf 0: structured extended features.
const LEAF_EXTENDED_FEATURES: u32 = 0x7;
/// CPUID leaf 0xD subleaf 0: XSAVE-supported state components (bits of XCR0).
const LEAF_XSAVE: u32 = 0xD;
/// CPUID leaf 0x8000_0001: extended processor features (AMD APM vol. 3, appendix E).
const LEAF_EXT_FEATURES: u32 = 0x8000_0001;

/// What the image needs, in the order the stub checks it: first what the boot code itself uses, then every
/// feature of `x86-64-v3`.
pub const REQUIRED: [CpuidBit; 27] = [
    // Used by the boot code: TSC for timing, PAE + long mode + NX for paging, XSAVE state for SSE and AVX.
    CpuidBit::new(LEAF_FEATURES, Edx, 4, "tsc"),
    CpuidBit::new(LEAF_FEATURES, Edx, 6, "pae"),
    CpuidBit::new(LEAF_EXT_FEATURES, Edx, 29, "long-mode"),
    CpuidBit::new(LEAF_EXT_FEATURES, Edx, 20, "nx"),
    CpuidBit::new(LEAF_XSAVE, Eax, 1, "xcr0-sse"),
    CpuidBit::new(LEAF_XSAVE, Eax, 2, "xcr0-avx"),
    // x86-64 baseline and v2.
    CpuidBit::new(LEAF_FEATURES, Edx, 24, "fxsr"),
    CpuidBit::new(LEAF_FEATURES, Edx, 25, "sse"),
    CpuidBit::new(LEAF_FEATURES, Edx, 26, "sse2"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 0, "sse3"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 9, "ssse3"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 13, "cmpxchg16b"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 19, "sse4.1"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 20, "sse4.2"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 23, "popcnt"),
    // x86-64-v3.
    CpuidBit::new(LEAF_FEATURES, Ecx, 12, "fma"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 22, "movbe"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 26, "xsave"),
    // OSXSAVE is not needed: the stub sets CR4.OSXSAVE itself.
    CpuidBit::new(LEAF_FEATURES, Ecx, 28, "avx"),
    CpuidBit::new(LEAF_FEATURES, Ecx, 29, "f16c"),
    CpuidBit::new(LEAF_EXTENDED_FEATURES, Ebx, 3, "bmi1"),
    CpuidBit::new(LEAF_EXTENDED_FEATURES, Ebx, 5, "avx2"),
    CpuidBit::new(LEAF_EXTENDED_FEATURES, Ebx, 8, "bmi2"),
    CpuidBit::new(LEAF_EXT_FEATURES, Ecx, 5, "lzcnt"),
    // The kernel reads SEV_STATUS and other MSRs, and uses RDRAND/RDSEED later; MSR support is architectural
    // on every 64-bit CPU, but checked so a broken CPUID model is caught here rather than by a #GP.
    CpuidBit::new(LEAF_FEATURES, Edx, 5, "msr"),
    CpuidBit::new(LEAF_FEATURES, Edx, 0, "x87"),
    // The entropy source of every key the guest makes (kernel/src/rng.rs).
    CpuidBit::new(LEAF_FEATURES, Ecx, 30, "rdrand"),
];

/// The table as the reset stub reads it, placed in the reset page (ROM) so it is readable before the copy to RAM.
#[cfg(feature = "boot")]
#[used]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".reset.rodata")]
static AMPOULE_REQUIRED_CPUID: [CpuidBit; REQUIRED.len()] = REQUIRED;

/// The number of entries, for the stub's loop.
#[cfg(feature = "boot")]
#[used]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".reset.rodata")]
static AMPOULE_REQUIRED_CPUID_COUNT: u32 = REQUIRED.len() as u32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_unique_and_well_formed() {
        for (i, a) in REQUIRED.iter().enumerate() {
            assert!(a.bit < 32, "{}", a.name());
            assert!(!a.name().is_empty());
            for b in &REQUIRED[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert!(
                    (a.leaf, a.subleaf, a.register, a.bit) != (b.leaf, b.subleaf, b.register, b.bit),
                    "{} and {} test the same bit",
                    a.name(),
                    b.name()
                );
            }
        }
    }

    #[test]
    fn layout_matches_what_the_stub_reads() {
        // reset32.s walks 32-byte entries: leaf at 0, subleaf at 4, register at 8, bit at 12, name at 16.
        assert_eq!(core::mem::size_of::<CpuidBit>(), 32);
        assert_eq!(core::mem::offset_of!(CpuidBit, subleaf), 4);
        assert_eq!(core::mem::offset_of!(CpuidBit, register), 8);
        assert_eq!(core::mem::offset_of!(CpuidBit, bit), 12);
        assert_eq!(core::mem::offset_of!(CpuidBit, name), 16);
    }

    #[test]
    fn names_are_printable_and_nul_terminated() {
        for f in REQUIRED {
            assert_eq!(*f.name.last().unwrap(), 0);
            assert!(f.name().bytes().all(|b| b.is_ascii_graphic()));
        }
    }
}
