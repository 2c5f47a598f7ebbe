//! The GHCB MSR protocol (GHCB specification rev. 2.03, §2.3.1 "GHCB MSR Protocol"): before a GHCB page exists,
//! a guest writes a request to the GHCB MSR (0xC001_0130), executes VMGEXIT, and reads the response back from the
//! same MSR. Bits 11:0 (GHCBInfo) say what the value is; the rest is its data. These functions only encode and
//! decode; every decoder checks GHCBInfo and refuses what it does not expect.

/// The GHCB MSR.
pub const MSR_SEV_ES_GHCB: u32 = 0xc001_0130;

/// GHCBInfo values (§2.3.1, table "GHCB MSR Protocol").
pub mod info {
    /// SEV Information response.
    pub const SEV_INFO_RESPONSE: u64 = 0x001;
    /// SEV Information request.
    pub const SEV_INFO_REQUEST: u64 = 0x002;
    /// CPUID request.
    pub const CPUID_REQUEST: u64 = 0x004;
    /// CPUID response.
    pub const CPUID_RESPONSE: u64 = 0x005;
    /// Register GHCB GPA request.
    pub const REGISTER_GHCB_GPA_REQUEST: u64 = 0x012;
    /// Register GHCB GPA response.
    pub const REGISTER_GHCB_GPA_RESPONSE: u64 = 0x013;
    /// SNP Page State Change request.
    pub const PAGE_STATE_CHANGE_REQUEST: u64 = 0x014;
    /// SNP Page State Change response.
    pub const PAGE_STATE_CHANGE_RESPONSE: u64 = 0x015;
    /// Termination request.
    pub const TERMINATION_REQUEST: u64 = 0x100;
}

const INFO_MASK: u64 = 0xfff;
/// A guest frame number fits in 40 bits in a page-state change request (bits 51:12).
const PSC_GFN_MASK: u64 = (1 << 40) - 1;

/// The GHCB protocol version Ampoule speaks (2: SNP guests).
pub const GHCB_PROTOCOL_VERSION: u16 = 2;

/// What the hypervisor says about SEV in its SEV Information response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevInfo {
    /// The highest GHCB protocol version the hypervisor speaks.
    pub max_version: u16,
    /// The lowest.
    pub min_version: u16,
    /// The page-table encryption bit (the hypervisor's claim: the guest trusts the CPUID page instead).
    pub c_bit: u8,
}

impl SevInfo {
    /// Whether the hypervisor speaks [`GHCB_PROTOCOL_VERSION`].
    pub fn supports_our_version(&self) -> bool {
        (self.min_version..=self.max_version).contains(&GHCB_PROTOCOL_VERSION)
    }
}

/// The SEV Information request.
pub const fn sev_info_request() -> u64 {
    info::SEV_INFO_REQUEST
}

/// Reads an SEV Information response: max version in 63:48, min in 47:32, C-bit in 31:24.
pub fn sev_info_response(value: u64) -> Option<SevInfo> {
    (value & INFO_MASK == info::SEV_INFO_RESPONSE).then_some(SevInfo {
        max_version: (value >> 48) as u16,
        min_version: (value >> 32) as u16,
        c_bit: (value >> 24) as u8,
    })
}

/// A CPUID register, as the CPUID request names it (bits 31:30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
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

/// A CPUID request for one register of `function` (subfunction 0): function in 63:32, register in 31:30.
pub const fn cpuid_request(function: u32, register: CpuidRegister) -> u64 {
    ((function as u64) << 32) | ((register as u64) << 30) | info::CPUID_REQUEST
}

/// Reads a CPUID response: the register's value in 63:32.
pub fn cpuid_response(value: u64) -> Option<u32> {
    (value & INFO_MASK == info::CPUID_RESPONSE).then_some((value >> 32) as u32)
}

/// The request to register the GHCB at guest frame `gfn` (63:12).
pub const fn register_ghcb_request(gfn: u64) -> u64 {
    (gfn << 12) | info::REGISTER_GHCB_GPA_REQUEST
}

/// Whether a registration response confirms `gfn` (the hypervisor answers with the frame it registered; another
/// frame, or all ones, is a refusal).
pub fn register_ghcb_confirmed(value: u64, gfn: u64) -> bool {
    value & INFO_MASK == info::REGISTER_GHCB_GPA_RESPONSE && value >> 12 == gfn
}

/// The state a page-state change asks for (bits 55:52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum PageState {
    /// Private: encrypted with the guest's key; PVALIDATE follows.
    Private = 1,
    /// Shared with the hypervisor (C-bit clear); validation is rescinded first.
    Shared = 2,
}

/// A page-state change request for one 4 KiB frame (GFN in 51:12, operation in 55:52); `None` for a frame beyond
/// the 40 bits the request carries.
pub const fn page_state_change_request(gfn: u64, state: PageState) -> Option<u64> {
    if gfn & !PSC_GFN_MASK != 0 {
        return None;
    }
    Some(((state as u64) << 52) | (gfn << 12) | info::PAGE_STATE_CHANGE_REQUEST)
}

/// Reads a page-state change response: `Ok` when its error code (63:32) is 0, else the code. Anything that is not
/// a page-state change response is an error too (code `u32::MAX`).
pub fn page_state_change_response(value: u64) -> Result<(), u32> {
    if value & INFO_MASK != info::PAGE_STATE_CHANGE_RESPONSE {
        return Err(u32::MAX);
    }
    match (value >> 32) as u32 {
        0 => Ok(()),
        code => Err(code),
    }
}

/// The reason code set for general termination reasons (§2.3.1: set 0).
pub const REASON_SET_GENERAL: u8 = 0;
/// General reason: the guest cannot continue with what the hypervisor provided (set 0, code 0).
pub const REASON_GENERAL_REQUEST: u8 = 0;
/// General reason: the GHCB protocol version is not supported (set 0, code 1).
pub const REASON_PROTOCOL_UNSUPPORTED: u8 = 1;
/// General reason: SNP features are not what the guest requires (set 0, code 2).
pub const REASON_SNP_FEATURES_UNSUPPORTED: u8 = 2;

/// The reason code set for Ampoule's own reasons (set 1: guest-specific).
pub const REASON_SET_AMPOULE: u8 = 1;
/// Ampoule: a #VC the handler does not serve (an exit code other than CPUID, IOIO or MSR, or an instruction form
/// it does not decode), or a #VC before the GHCB exists that is not CPUID.
pub const REASON_UNHANDLED_VC: u8 = 1;
/// Ampoule: the CPUID page is malformed or gives an implausible C-bit.
pub const REASON_BAD_CPUID_PAGE: u8 = 2;
/// Ampoule: the hypervisor refused or mangled a GHCB MSR-protocol step (registration, page-state change).
pub const REASON_GHCB_SETUP_FAILED: u8 = 3;
/// Ampoule: PVALIDATE failed, or a page was about to be validated twice.
pub const REASON_VALIDATION_FAILED: u8 = 4;
/// Ampoule: the hypervisor failed an exit the kernel cannot do without (port I/O, MSR, MMIO).
pub const REASON_EXIT_FAILED: u8 = 5;
/// Ampoule: a #VC arrived while the GHCB was in use (nested use would corrupt the exit in progress).
pub const REASON_GHCB_IN_USE: u8 = 6;
/// Ampoule: the memory map (fw_cfg `etc/e820`) is missing, malformed, or gives less than the smallest heap.
pub const REASON_BAD_MEMORY_MAP: u8 = 7;

/// A termination request with reason code `code` of set `set` (set in 15:12, code in 23:16). The hypervisor ends
/// the guest; it is how an SNP guest reports a fatal error before it can do port I/O.
pub const fn termination_request(set: u8, code: u8) -> u64 {
    (((code as u64) << 16) | (((set & 0xf) as u64) << 12)) | info::TERMINATION_REQUEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_specification_bit_for_bit() {
        assert_eq!(sev_info_request(), 0x002);
        assert_eq!(cpuid_request(0x8000_001f, CpuidRegister::Ebx), 0x8000_001f_4000_0004);
        assert_eq!(register_ghcb_request(0x809), 0x0080_9012);
        assert_eq!(page_state_change_request(0x809, PageState::Shared), Some(0x0020_0000_0080_9014));
        assert_eq!(page_state_change_request(0x809, PageState::Private), Some(0x0010_0000_0080_9014));
        assert_eq!(page_state_change_request(1 << 40, PageState::Private), None);
        assert_eq!(termination_request(REASON_SET_GENERAL, REASON_PROTOCOL_UNSUPPORTED), 0x1_0100);
        assert_eq!(termination_request(1, 3), 0x3_1100);
    }

    #[test]
    fn responses_are_read_only_with_their_own_info_code() {
        let info = sev_info_response(0x0002_0001_3300_0001).unwrap();
        assert_eq!(info, SevInfo { max_version: 2, min_version: 1, c_bit: 0x33 });
        assert!(info.supports_our_version());
        assert!(!SevInfo { max_version: 1, min_version: 1, c_bit: 51 }.supports_our_version());
        assert_eq!(sev_info_response(0x0002_0001_3300_0005), None);
        assert_eq!(cpuid_response(0x0000_0033_0000_0005), Some(0x33));
        assert_eq!(cpuid_response(0x0000_0033_0000_0001), None);
        assert!(register_ghcb_confirmed(0x0080_9013, 0x809));
        assert!(!register_ghcb_confirmed(0x0080_a013, 0x809), "another frame");
        assert!(!register_ghcb_confirmed(0xffff_ffff_ffff_f013, 0x809), "the refusal value");
        assert!(!register_ghcb_confirmed(0x0080_9012, 0x809), "the request echoed");
        assert_eq!(page_state_change_response(0x015), Ok(()));
        assert_eq!(page_state_change_response(0x0000_0002_0000_0015), Err(2));
        assert_eq!(page_state_change_response(0x014), Err(u32::MAX));
    }
}
