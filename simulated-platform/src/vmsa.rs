//! The initial VMSA of the boot vCPU for an SNP launch from `-bios`: the x86 reset state as KVM sets it (real mode,
//! CS:IP = F000:FFF0 with CS.base = 0xFFFF_0000), in the SEV-ES save-area layout (AMD64 APM vol. 2, appendix B,
//! table B-4). The firmware measures this page (PAGE_TYPE_VMSA), and the hypervisor starts the guest from exactly
//! these bytes: its VMCB save area shares the layout's first part, offset for offset.

/// Offsets in the save area (APM vol. 2, table B-4).
pub mod offset {
    /// ES; each segment is {u16 selector, u16 attributes, u32 limit, u64 base}.
    pub const ES: usize = 0x000;
    /// CS.
    pub const CS: usize = 0x010;
    /// SS.
    pub const SS: usize = 0x020;
    /// DS.
    pub const DS: usize = 0x030;
    /// FS.
    pub const FS: usize = 0x040;
    /// GS.
    pub const GS: usize = 0x050;
    /// GDTR (limit and base only).
    pub const GDTR: usize = 0x060;
    /// LDTR.
    pub const LDTR: usize = 0x070;
    /// IDTR (limit and base only).
    pub const IDTR: usize = 0x080;
    /// TR.
    pub const TR: usize = 0x090;
    /// EFER.
    pub const EFER: usize = 0x0d0;
    /// CR4.
    pub const CR4: usize = 0x148;
    /// CR3.
    pub const CR3: usize = 0x150;
    /// CR0.
    pub const CR0: usize = 0x158;
    /// DR7.
    pub const DR7: usize = 0x160;
    /// DR6.
    pub const DR6: usize = 0x168;
    /// RFLAGS.
    pub const RFLAGS: usize = 0x170;
    /// RIP.
    pub const RIP: usize = 0x178;
    /// RSP.
    pub const RSP: usize = 0x1d8;
    /// RAX.
    pub const RAX: usize = 0x1f8;
    /// G_PAT.
    pub const G_PAT: usize = 0x268;
    /// RDX (SEV-ES layout only: the VMCB keeps general registers other than RAX and RSP out of the save area).
    pub const RDX: usize = 0x310;
    /// SEV_FEATURES.
    pub const SEV_FEATURES: usize = 0x3b0;
    /// XCR0.
    pub const XCR0: usize = 0x3e8;
    /// MXCSR.
    pub const MXCSR: usize = 0x408;
    /// X87 FCW.
    pub const X87_FCW: usize = 0x410;
}

/// The VMSA is one page.
pub const VMSA_LEN: usize = 4096;

/// Segment attributes in the save area's packed form (descriptor bits 8..16 and 20..24).
mod attributes {
    /// Present, read/write data, accessed.
    pub const DATA: u16 = 0x0093;
    /// Present, execute/read code, accessed.
    pub const CODE: u16 = 0x009b;
    /// Present LDT.
    pub const LDT: u16 = 0x0082;
    /// Present busy 32-bit TSS.
    pub const TSS_BUSY: u16 = 0x008b;
}

/// What the VMM chooses for the boot vCPU that enters the measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuConfig {
    /// The vCPU model's CPUID signature (leaf 1 EAX: family, model, stepping): RDX at reset.
    pub signature: u32,
    /// SEV_FEATURES (bit 0: SNPActive).
    pub sev_features: u64,
}

fn put_segment(page: &mut [u8; VMSA_LEN], at: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
    page[at..at + 2].copy_from_slice(&selector.to_le_bytes());
    page[at + 2..at + 4].copy_from_slice(&attrib.to_le_bytes());
    page[at + 4..at + 8].copy_from_slice(&limit.to_le_bytes());
    page[at + 8..at + 16].copy_from_slice(&base.to_le_bytes());
}

fn put_u64(page: &mut [u8; VMSA_LEN], at: usize, value: u64) {
    page[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The boot vCPU's VMSA at reset (Intel SDM vol. 3A table 9-1 / APM vol. 2 table 14-1 reset values, with what KVM
/// adds for an SVM guest: EFER.SVME and CR4.MCE).
pub fn boot_vcpu(config: VcpuConfig) -> [u8; VMSA_LEN] {
    let mut page = [0u8; VMSA_LEN];
    for at in [offset::ES, offset::SS, offset::DS, offset::FS, offset::GS] {
        put_segment(&mut page, at, 0, attributes::DATA, 0xffff, 0);
    }
    put_segment(&mut page, offset::CS, 0xf000, attributes::CODE, 0xffff, 0xffff_0000);
    put_segment(&mut page, offset::GDTR, 0, 0, 0xffff, 0);
    put_segment(&mut page, offset::IDTR, 0, 0, 0xffff, 0);
    put_segment(&mut page, offset::LDTR, 0, attributes::LDT, 0xffff, 0);
    put_segment(&mut page, offset::TR, 0, attributes::TSS_BUSY, 0xffff, 0);
    put_u64(&mut page, offset::EFER, 1 << 12); // EFER.SVME
    put_u64(&mut page, offset::CR4, 1 << 6); // CR4.MCE
    put_u64(&mut page, offset::CR0, 1 << 4); // CR0.ET
    put_u64(&mut page, offset::DR7, 0x400);
    put_u64(&mut page, offset::DR6, 0xffff_0ff0);
    put_u64(&mut page, offset::RFLAGS, 0x2);
    put_u64(&mut page, offset::RIP, 0xfff0);
    put_u64(&mut page, offset::G_PAT, 0x0007_0406_0007_0406);
    put_u64(&mut page, offset::RDX, config.signature.into());
    put_u64(&mut page, offset::SEV_FEATURES, config.sev_features);
    put_u64(&mut page, offset::XCR0, 0x1);
    page[offset::MXCSR..offset::MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
    page[offset::X87_FCW..offset::X87_FCW + 2].copy_from_slice(&0x037fu16.to_le_bytes());
    page
}

/// Reads the u64 at `at` of a VMSA page.
pub fn read_u64(page: &[u8; VMSA_LEN], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&page[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_vcpu_starts_at_the_reset_vector_in_real_mode() {
        let page = boot_vcpu(VcpuConfig { signature: 0x0080_0f12, sev_features: 1 });
        let cs_base = read_u64(&page, offset::CS + 8);
        assert_eq!(cs_base + read_u64(&page, offset::RIP), 0xffff_fff0);
        assert_eq!(page[offset::CS..offset::CS + 2], [0x00, 0xf0]);
        assert_eq!(read_u64(&page, offset::CR0) & 1, 0, "protection off");
        assert_eq!(read_u64(&page, offset::EFER), 1 << 12, "SVME only: no long mode");
        assert_eq!(read_u64(&page, offset::RDX), 0x0080_0f12);
        assert_eq!(read_u64(&page, offset::SEV_FEATURES), 1);
    }

    #[test]
    fn only_the_signature_and_features_vary() {
        let a = boot_vcpu(VcpuConfig { signature: 0x0080_0f12, sev_features: 1 });
        let b = boot_vcpu(VcpuConfig { signature: 0x00a0_0f11, sev_features: 1 });
        let differing: Vec<usize> = (0..VMSA_LEN).filter(|&i| a[i] != b[i]).collect();
        assert!(differing.iter().all(|&i| (offset::RDX..offset::RDX + 8).contains(&i)), "{differing:x?}");
    }
}
