//! SNP guest requests (GHCB specification §4.1.8): the host passes the guest's message, unread (it is encrypted
//! with VMPCK0), from the guest's shared request page to the PSP, and the PSP's answer into the shared response
//! page. SW_EXITINFO2 carries the firmware's error, if any, in its low half.

use ovmf::snp::ghcb::{Ghcb, offset};
use protocol::snp_guest_message::HEADER_LEN;
use simulated_platform::firmware_channel::MAX_BODY;

use crate::firmware;
use crate::misbehaviour::Misbehaviour;
use crate::platform_memory::PlatformMemory;

/// Where MSG_SZ sits in the guest-message header (DESIGN.md §9).
const MSG_SZ: usize = 0x36;
/// SW_EXITINFO2 when the host cannot reach the firmware or the pages are wrong: the hypervisor's error in 63:32.
const HOST_ERROR: u64 = 1 << 32;

/// Serves the guest request in `ghcb`.
pub fn serve(ghcb: &mut Ghcb, memory: &mut PlatformMemory, hostile: &mut Misbehaviour) {
    let request_gpa = ghcb.get(offset::SW_EXITINFO1).unwrap_or(u64::MAX);
    let response_gpa = ghcb.get(offset::SW_EXITINFO2).unwrap_or(u64::MAX);
    let result = exchange(memory, request_gpa, response_gpa, hostile);
    ghcb.set(offset::SW_EXITINFO1, 0);
    ghcb.set(offset::SW_EXITINFO2, result);
}

fn shared_page(memory: &mut PlatformMemory, gpa: u64) -> bool {
    gpa.is_multiple_of(4096) && memory.entry(gpa).is_some_and(|e| !e.assigned)
}

fn exchange(memory: &mut PlatformMemory, request_gpa: u64, response_gpa: u64, hostile: &mut Misbehaviour) -> u64 {
    if !shared_page(memory, request_gpa) || !shared_page(memory, response_gpa) {
        return HOST_ERROR;
    }
    let mut request = [0u8; 4096];
    if !memory.memory.read(request_gpa, &mut request) {
        return HOST_ERROR;
    }
    let size = usize::from(u16::from_le_bytes([request[MSG_SZ], request[MSG_SZ + 1]]));
    let length = (HEADER_LEN + size).min(request.len());
    let mut response = [0u8; MAX_BODY];
    let answer = firmware::guest_request(&request[..length], &mut response);
    let answer = match answer {
        Ok((0, answered)) => {
            Ok((0, hostile.guest_response(&request[..length], &mut response, answered).unwrap_or(answered)))
        }
        other => other,
    };
    match answer {
        Ok((0, length)) if length <= 4096 => {
            let mut page = [0u8; 4096];
            page[..length].copy_from_slice(&response[..length]);
            if memory.memory.write(response_gpa, &page) { 0 } else { HOST_ERROR }
        }
        Ok((0, _)) | Err(_) => HOST_ERROR,
        Ok((status, _)) => u64::from(status),
    }
}
