//! Which platform the guest runs on: plain (no TEE), AMD SEV-SNP or Intel TDX, detected once at boot.
//!
//! Only plain mode proceeds at this stage; the SNP and TDX paths come with their own issues.

use core::arch::x86_64::{__cpuid_count, CpuidResult};

use x86_64::registers::model_specific::Msr;

/// The platform the guest was launched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tee {
    /// No TEE: plain QEMU or a plain VM.
    Plain,
    /// AMD SEV-SNP.
    Snp,
    /// AMD SEV or SEV-ES without SNP: not supported by Ampoule.
    SevWithoutSnp,
    /// Intel TDX.
    Tdx,
}

impl Tee {
    /// The name used in records (`tee=...`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Tee::Plain => "plain",
            Tee::Snp => "snp",
            Tee::SevWithoutSnp => "sev",
            Tee::Tdx => "tdx",
        }
    }
}

/// CPUID leaf 0x21 returns "IntelTDX    " in EBX, EDX, ECX inside a TD (Intel TDX module spec, "TDX CPUID").
const LEAF_TDX: u32 = 0x21;
const TDX_SIGNATURE: [u8; 12] = *b"IntelTDX    ";
/// CPUID 0x8000_001F: AMD memory encryption capabilities (AMD APM vol. 3, appendix E.4.17); EAX bit 1 = SEV.
const LEAF_AMD_MEMORY_ENCRYPTION: u32 = 0x8000_001f;
const AMD_SEV_SUPPORTED: u32 = 1 << 1;
/// SEV_STATUS MSR (AMD APM vol. 2, 15.34.10): bit 0 SEV, bit 1 SEV-ES, bit 2 SNP active. Readable by the guest
/// without interception.
const MSR_SEV_STATUS: u32 = 0xc001_0131;
const SEV_STATUS_SEV: u64 = 1 << 0;
const SEV_STATUS_SNP: u64 = 1 << 2;

fn cpuid(leaf: u32) -> CpuidResult {
    __cpuid_count(leaf, 0)
}

/// Detects the platform from CPUID and, on AMD CPUs that offer SEV, the SEV_STATUS MSR.
pub fn detect() -> Tee {
    let max_basic = cpuid(0).eax;
    if max_basic >= LEAF_TDX {
        let r = cpuid(LEAF_TDX);
        let mut signature = [0u8; 12];
        for (chunk, reg) in signature.chunks_exact_mut(4).zip([r.ebx, r.edx, r.ecx]) {
            chunk.copy_from_slice(&reg.to_le_bytes());
        }
        if signature == TDX_SIGNATURE {
            return Tee::Tdx;
        }
    }
    let max_extended = cpuid(0x8000_0000).eax;
    if max_extended >= LEAF_AMD_MEMORY_ENCRYPTION && cpuid(LEAF_AMD_MEMORY_ENCRYPTION).eax & AMD_SEV_SUPPORTED != 0 {
        // SAFETY: CPUID says the CPU implements SEV, so SEV_STATUS exists; reading it has no side effects.
        let status = unsafe { Msr::new(MSR_SEV_STATUS).read() };
        if status & SEV_STATUS_SNP != 0 {
            return Tee::Snp;
        }
        if status & SEV_STATUS_SEV != 0 {
            return Tee::SevWithoutSnp;
        }
    }
    Tee::Plain
}
