//! The hypervisor's side of the GHCB MSR protocol (GHCB specification rev. 2.03, §2.3.1 and §4.1.6): what a
//! value the guest left in the GHCB MSR asks for, and the responses. The guest's side is `ovmf::snp::ghcb_msr`;
//! the tests below speak to it.

use ovmf::snp::ghcb_msr::info;

/// GHCBInfo: bits 11:0.
const INFO_MASK: u64 = 0xfff;

/// What the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrRequest {
    /// SEV information: the protocol versions and the C-bit.
    SevInfo,
    /// One register of a CPUID function (subfunction 0): the function and the register (0 EAX .. 3 EDX).
    Cpuid {
        /// The function.
        function: u32,
        /// The register.
        register: u8,
    },
    /// Register the GHCB at this guest frame.
    RegisterGhcb {
        /// The frame.
        gfn: u64,
    },
    /// Change one 4 KiB page to private (`true`) or shared.
    PageStateChange {
        /// The frame.
        gfn: u64,
        /// Private or shared.
        private: bool,
    },
    /// End the guest: reason set and code.
    Terminate {
        /// The reason-code set (0 general, others the guest's).
        set: u8,
        /// The reason code.
        code: u8,
    },
    /// Not a request but the GHCB's own address: an exit described in the GHCB page.
    Ghcb {
        /// The page's guest-physical address.
        gpa: u64,
    },
    /// Anything else.
    Unknown(u64),
}

/// Decodes the GHCB MSR value at a VMGEXIT.
pub fn decode(value: u64) -> MsrRequest {
    match value & INFO_MASK {
        0 => MsrRequest::Ghcb { gpa: value },
        info::SEV_INFO_REQUEST => MsrRequest::SevInfo,
        info::CPUID_REQUEST => {
            MsrRequest::Cpuid { function: (value >> 32) as u32, register: ((value >> 30) & 3) as u8 }
        }
        info::REGISTER_GHCB_GPA_REQUEST => MsrRequest::RegisterGhcb { gfn: value >> 12 },
        info::PAGE_STATE_CHANGE_REQUEST => match (value >> 52) & 0xf {
            1 => MsrRequest::PageStateChange { gfn: (value >> 12) & 0xff_ffff_ffff, private: true },
            2 => MsrRequest::PageStateChange { gfn: (value >> 12) & 0xff_ffff_ffff, private: false },
            _ => MsrRequest::Unknown(value),
        },
        info::TERMINATION_REQUEST => {
            MsrRequest::Terminate { set: ((value >> 12) & 0xf) as u8, code: ((value >> 16) & 0xff) as u8 }
        }
        _ => MsrRequest::Unknown(value),
    }
}

/// The SEV information response: protocol versions `min..=max` and the C-bit position.
pub const fn sev_info_response(min: u16, max: u16, c_bit: u8) -> u64 {
    ((max as u64) << 48) | ((min as u64) << 32) | ((c_bit as u64) << 24) | info::SEV_INFO_RESPONSE
}

/// The CPUID response carrying one register's value.
pub const fn cpuid_response(value: u32) -> u64 {
    ((value as u64) << 32) | info::CPUID_RESPONSE
}

/// The GHCB registration response: the frame registered, or all ones in 63:12 for a refusal.
pub const fn register_ghcb_response(gfn: Option<u64>) -> u64 {
    let frame = match gfn {
        Some(gfn) => gfn,
        None => 0xf_ffff_ffff_ffff,
    };
    (frame << 12) | info::REGISTER_GHCB_GPA_RESPONSE
}

/// The page-state change response: 0 for success, else an error code.
pub const fn page_state_change_response(error: u32) -> u64 {
    ((error as u64) << 32) | info::PAGE_STATE_CHANGE_RESPONSE
}

#[cfg(test)]
mod tests {
    use ovmf::snp::ghcb_msr as guest;

    use super::*;

    #[test]
    fn requests_the_guest_encodes_decode_to_what_it_meant() {
        assert_eq!(decode(guest::sev_info_request()), MsrRequest::SevInfo);
        assert_eq!(decode(guest::register_ghcb_request(0x900)), MsrRequest::RegisterGhcb { gfn: 0x900 });
        let to_private = guest::page_state_change_request(0x1000, guest::PageState::Private).unwrap();
        assert_eq!(decode(to_private), MsrRequest::PageStateChange { gfn: 0x1000, private: true });
        let to_shared = guest::page_state_change_request(0x901, guest::PageState::Shared).unwrap();
        assert_eq!(decode(to_shared), MsrRequest::PageStateChange { gfn: 0x901, private: false });
        assert_eq!(decode(guest::termination_request(1, 4)), MsrRequest::Terminate { set: 1, code: 4 });
        let cpuid = guest::cpuid_request(0x8000_001f, guest::CpuidRegister::Ebx);
        assert_eq!(decode(cpuid), MsrRequest::Cpuid { function: 0x8000_001f, register: 1 });
        assert_eq!(decode(0x90_0000), MsrRequest::Ghcb { gpa: 0x90_0000 });
        assert_eq!(decode(0x3ff), MsrRequest::Unknown(0x3ff));
    }

    #[test]
    fn responses_read_back_as_the_guest_expects() {
        let sev = guest::sev_info_response(sev_info_response(1, 2, 47)).unwrap();
        assert!(sev.supports_our_version());
        assert_eq!(sev.c_bit, 47);
        assert!(guest::register_ghcb_confirmed(register_ghcb_response(Some(0x900)), 0x900));
        assert!(!guest::register_ghcb_confirmed(register_ghcb_response(None), 0x900));
        assert_eq!(guest::page_state_change_response(page_state_change_response(0)), Ok(()));
        assert_eq!(guest::page_state_change_response(page_state_change_response(7)), Err(7));
        assert_eq!(guest::cpuid_response(cpuid_response(0x2f)), Some(0x2f));
    }
}
