//! The host's side of page-state changes in batches (GHCB specification §4.1.6): the descriptor in the GHCB's
//! shared buffer (`ovmf::snp::page_state`), entry by entry from CUR_ENTRY to END_ENTRY: the RMP's rule
//! (`simulated_platform::page_state::apply`) and the nested tables, CUR_ENTRY advanced as it goes.

use ovmf::snp::ghcb::{Ghcb, offset};
use ovmf::snp::ghcb_msr::PageState;
use ovmf::snp::page_state::{self, MAX_ENTRIES};

use crate::misbehaviour::Misbehaviour;
use crate::platform_memory::PlatformMemory;

/// SW_EXITINFO2 for a descriptor the host refuses (§4.1.6: non-zero is an error; the high half is the host's).
const BAD_DESCRIPTOR: u64 = 1 << 32;

/// Serves the page-state change in `ghcb`.
/// With `small_pages`, a 2 MiB entry becomes 512 small RMP entries (the host's choice).
pub fn serve(ghcb: &mut Ghcb, memory: &mut PlatformMemory, hostile: &mut Misbehaviour, small_pages: bool) {
    let result = if ghcb.get(offset::SW_SCRATCH).is_some_and(|s| s & 0xfff == offset::SHARED_BUFFER as u64) {
        change(ghcb.shared_buffer(), memory, hostile, small_pages)
    } else {
        Err(BAD_DESCRIPTOR)
    };
    ghcb.set(offset::SW_EXITINFO1, 0);
    ghcb.set(offset::SW_EXITINFO2, result.err().unwrap_or(0));
}

fn change(
    buffer: &mut [u8],
    memory: &mut PlatformMemory,
    hostile: &mut Misbehaviour,
    small_pages: bool,
) -> Result<(), u64> {
    let (current, end) = page_state::progress(buffer);
    if usize::from(end) >= MAX_ENTRIES || current > end {
        return Err(BAD_DESCRIPTOR);
    }
    for index in current..=end {
        let entry = page_state::entry(buffer, usize::from(index)).ok_or(BAD_DESCRIPTOR)?;
        let gpa = entry.gfn << 12;
        if hostile.prevalidates(memory, gpa, entry.state == PageState::Private, entry.large) {
            page_state::set_current(buffer, index + 1);
            continue;
        }
        memory.change_state(&entry, small_pages).map_err(|_| BAD_DESCRIPTOR)?;
        page_state::set_current(buffer, index + 1);
    }
    Ok(())
}
