//! The initial VMSA of each vCPU as QEMU + KVM create it for an SEV-SNP launch from `-bios`: real mode at the
//! reset vector (BSP) or at the SEV-ES reset block's address (APs). Its SHA-384 enters the launch digest.
//!
//! Offsets are from AMD64 APM vol. 2, appendix B, table B-4 ("VMSA Layout, State Save Area for SEV-ES"); the
//! values are KVM's reset state (arch/x86/kvm: `kvm_vcpu_reset`, `svm_set_efer` adds EFER.SVME, `init_vmcb` adds
//! CR4.MCE) as QEMU passes it in.

/// One page.
pub const VMSA_SIZE: usize = 4096;

/// A segment register in the save area: selector, attributes, limit, base (APM vol. 2, table B-4).
const SEGMENT_ES: usize = 0x000;
const SEGMENT_CS: usize = 0x010;
const SEGMENT_SS: usize = 0x020;
const SEGMENT_DS: usize = 0x030;
const SEGMENT_FS: usize = 0x040;
const SEGMENT_GS: usize = 0x050;
const SEGMENT_GDTR: usize = 0x060;
const SEGMENT_LDTR: usize = 0x070;
const SEGMENT_IDTR: usize = 0x080;
const SEGMENT_TR: usize = 0x090;
const EFER: usize = 0x0d0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// Segment attributes in VMCB form (descriptor bits 8..15 and 20..23 packed): present, S, type.
const DATA_READ_WRITE_ACCESSED: u16 = 0x93;
const CODE_EXECUTE_READ_ACCESSED: u16 = 0x9b;
const LDT_PRESENT: u16 = 0x82;
const BUSY_TSS_PRESENT: u16 = 0x8b;
/// Real-mode segment limit.
const LIMIT_64K: u32 = 0xffff;

/// EFER.SVME: KVM sets it for every SVM guest.
const EFER_SVME: u64 = 1 << 12;
/// CR4.MCE: KVM's reset CR4 for SVM.
const CR4_MCE: u64 = 1 << 6;
/// CR0.ET: the reset value of CR0 as KVM gives it.
const CR0_ET: u64 = 1 << 4;
/// Architectural reset values (APM vol. 2, table 14-1).
const DR7_RESET: u64 = 0x400;
const DR6_RESET: u64 = 0xffff_0ff0;
const RFLAGS_RESET: u64 = 0x2;
/// The PAT MSR's reset value (APM vol. 2, A.3).
const PAT_RESET: u64 = 0x0007_0406_0007_0406;
/// XCR0 reset: x87 only.
const XCR0_RESET: u64 = 0x1;
/// MXCSR and x87 FCW as QEMU's reset state sets them.
const MXCSR_RESET: u32 = 0x1f80;
const FCW_RESET: u16 = 0x037f;

struct Page([u8; VMSA_SIZE]);

impl Page {
    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn u64(&mut self, at: usize, value: u64) {
        self.put(at, &value.to_le_bytes());
    }

    fn segment(&mut self, at: usize, selector: u16, attributes: u16, limit: u32, base: u64) {
        self.put(at, &selector.to_le_bytes());
        self.put(at + 2, &attributes.to_le_bytes());
        self.put(at + 4, &limit.to_le_bytes());
        self.put(at + 8, &base.to_le_bytes());
    }
}

/// The VMSA of a vCPU that starts in real mode at `eip` (CS.base = eip & 0xFFFF0000, IP = eip & 0xFFFF), with the
/// CPUID signature `vcpu_signature` in RDX and `sev_features` (the guest features QEMU passes).
pub fn vmsa_page(eip: u32, vcpu_signature: u32, sev_features: u64) -> [u8; VMSA_SIZE] {
    let mut page = Page([0; VMSA_SIZE]);
    let data = DATA_READ_WRITE_ACCESSED;
    page.segment(SEGMENT_ES, 0, data, LIMIT_64K, 0);
    page.segment(SEGMENT_CS, 0xf000, CODE_EXECUTE_READ_ACCESSED, LIMIT_64K, u64::from(eip & 0xffff_0000));
    page.segment(SEGMENT_SS, 0, data, LIMIT_64K, 0);
    page.segment(SEGMENT_DS, 0, data, LIMIT_64K, 0);
    page.segment(SEGMENT_FS, 0, data, LIMIT_64K, 0);
    page.segment(SEGMENT_GS, 0, data, LIMIT_64K, 0);
    page.segment(SEGMENT_GDTR, 0, 0, LIMIT_64K, 0);
    page.segment(SEGMENT_LDTR, 0, LDT_PRESENT, LIMIT_64K, 0);
    page.segment(SEGMENT_IDTR, 0, 0, LIMIT_64K, 0);
    page.segment(SEGMENT_TR, 0, BUSY_TSS_PRESENT, LIMIT_64K, 0);
    page.u64(EFER, EFER_SVME);
    page.u64(CR4, CR4_MCE);
    page.u64(CR0, CR0_ET);
    page.u64(DR7, DR7_RESET);
    page.u64(DR6, DR6_RESET);
    page.u64(RFLAGS, RFLAGS_RESET);
    page.u64(RIP, u64::from(eip & 0xffff));
    page.u64(G_PAT, PAT_RESET);
    page.u64(RDX, u64::from(vcpu_signature));
    page.u64(SEV_FEATURES, sev_features);
    page.u64(XCR0, XCR0_RESET);
    page.put(MXCSR, &MXCSR_RESET.to_le_bytes());
    page.put(X87_FCW, &FCW_RESET.to_le_bytes());
    page.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsp_starts_at_the_reset_vector_in_real_mode() {
        let page = vmsa_page(0xffff_fff0, 0x00a0_0f11, 1);
        let u64_at = |at: usize| u64::from_le_bytes(page[at..at + 8].try_into().unwrap());
        assert_eq!(u64_at(RIP), 0xfff0);
        assert_eq!(u64_at(SEGMENT_CS + 8), 0xffff_0000);
        assert_eq!(&page[SEGMENT_CS..SEGMENT_CS + 2], &0xf000u16.to_le_bytes());
        assert_eq!(u64_at(RDX), 0x00a0_0f11);
        assert_eq!(u64_at(SEV_FEATURES), 1);
        assert_eq!(u64_at(EFER), 0x1000);
        // Everything past the x87 control word is zero.
        assert!(page[X87_FCW + 2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn ap_starts_at_its_entry() {
        let page = vmsa_page(0xffff_ffe0, 0, 0);
        assert_eq!(u64::from_le_bytes(page[RIP..RIP + 8].try_into().unwrap()), 0xffe0);
    }
}
