//! Which platform the guest runs on: plain (no TEE), AMD SEV-SNP or Intel TDX, detected once at boot.
//!
//! Plain, SNP and TDX proceed; SEV or SEV-ES without SNP is refused.

use core::arch::x86_64::{__cpuid_count, CpuidResult};

use ovmf::layout::boot_scratch::BootInfo;
use spin::Once;

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
/// SEV_STATUS MSR bits (AMD APM vol. 2, 15.34.10): bit 0 SEV, bit 1 SEV-ES, bit 2 SNP active. The stub reads the
/// MSR (`reset32.s`) when CPUID Fn8000_001F offers SEV and passes it in the boot info.
const SEV_STATUS_SEV: u64 = 1 << 0;
const SEV_STATUS_SNP: u64 = 1 << 2;

/// The platform, once detected.
static CURRENT: Once<Tee> = Once::new();

fn cpuid(leaf: u32) -> CpuidResult {
    __cpuid_count(leaf, 0)
}

/// Detects the platform, once: SEV from the SEV_STATUS value the stub read, else TDX from CPUID. Under SEV no
/// CPUID is executed here (it would raise #VC before the kernel's IDT exists).
pub fn detect(boot: &BootInfo) -> Tee {
    *CURRENT.call_once(|| detect_from(boot))
}

/// The platform `detect` found (plain if it has not run).
pub fn current() -> Tee {
    CURRENT.get().copied().unwrap_or(Tee::Plain)
}

fn detect_from(boot: &BootInfo) -> Tee {
    if boot.sev_status & SEV_STATUS_SNP != 0 {
        return Tee::Snp;
    }
    if boot.sev_status & SEV_STATUS_SEV != 0 {
        return Tee::SevWithoutSnp;
    }
    if boot.max_basic_leaf >= LEAF_TDX {
        let r = cpuid(LEAF_TDX);
        let mut signature = [0u8; 12];
        for (chunk, reg) in signature.chunks_exact_mut(4).zip([r.ebx, r.edx, r.ecx]) {
            chunk.copy_from_slice(&reg.to_le_bytes());
        }
        if signature == TDX_SIGNATURE {
            return Tee::Tdx;
        }
    }
    Tee::Plain
}
