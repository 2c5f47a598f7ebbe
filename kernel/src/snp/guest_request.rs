//! SNP guest requests through the GHCB (GHCB specification §4.1.8, "SNP Guest Request"): the guest message goes in
//! a shared request page, the PSP's answer comes back in a shared response page, and both are copied between
//! private memory and the shared pages, so nothing is decoded where the hypervisor can change it.

use loader::snp_attester::{GuestRequest, GuestRequestError, MESSAGE_PAGE_LEN};
use ovmf::snp::ghcb::{ExitResult, exit_code, guest_request_result};

use super::ghcb::Ghcb;
use crate::shared;

/// The GHCB transport for [`loader::SnpAttester`].
pub struct GhcbGuestRequest {
    request_page: &'static mut [u8; MESSAGE_PAGE_LEN],
    response_page: &'static mut [u8; MESSAGE_PAGE_LEN],
}

impl GhcbGuestRequest {
    /// Takes the two shared pages it needs.
    pub fn new() -> Self {
        Self { request_page: shared::page(), response_page: shared::page() }
    }
}

/// The guest-physical address of a page (identity-mapped).
fn gpa(page: &[u8; MESSAGE_PAGE_LEN]) -> u64 {
    page.as_ptr() as u64
}

impl GuestRequest for GhcbGuestRequest {
    fn exchange(&mut self, request: &[u8], response: &mut [u8; MESSAGE_PAGE_LEN]) -> Result<(), GuestRequestError> {
        if request.len() > MESSAGE_PAGE_LEN {
            return Err(GuestRequestError::Failed(u64::MAX));
        }
        self.request_page.fill(0);
        self.request_page[..request.len()].copy_from_slice(request);
        self.response_page.fill(0);
        let mut ghcb = Ghcb::take();
        ghcb.page().set_exit(exit_code::SNP_GUEST_REQUEST, gpa(self.request_page), gpa(self.response_page));
        ghcb.exit();
        match guest_request_result(ghcb.page()) {
            ExitResult::Ok => {
                // Copied out before anything reads it: the hypervisor may change the shared page at any time.
                response.copy_from_slice(&self.response_page[..]);
                Ok(())
            }
            ExitResult::Busy => Err(GuestRequestError::Busy),
            ExitResult::Failed(_, info2) => Err(GuestRequestError::Failed(info2)),
        }
    }
}
