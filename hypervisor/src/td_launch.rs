//! Building a TD as QEMU + KVM + the TDX module do for `-bios` (DESIGN.md §9): the TD HOB written into its section
//! first (QEMU writes it before adding it), then every page of the TDVF sections in metadata order, each one
//! TDH.MEM.PAGE.ADD (the page becomes private and accepted) and, for sections with MR.EXTEND, TDH.MR.EXTEND of its
//! contents; MRTD from `simulated_platform::tdx::mrtd`. The RAM the build did not add is private and pending:
//! the guest accepts it (in 2 MiB pages where the range allows).

use ovmf::layout::{GUEST_RAM_SIZE, HEAP, IMAGE, PAGE_SIZE, TD_HOB};
use ovmf::metadata::{Metadata, TdvfSectionType};
use simulated_platform::hostile::HostileKind;
use simulated_platform::launch::Sha384Digest;
use simulated_platform::tdx::mrtd::{MrtdBuilder, added_pages};
use simulated_platform::tdx::td_hob::{self, RamRange};

use crate::misbehaviour::Misbehaviour;
use crate::platform_memory::PlatformMemory;

/// 2 MiB.
const LARGE: u64 = 2 << 20;

/// What the build produced.
pub struct BuiltTd {
    /// MRTD.
    pub mrtd: Sha384Digest,
    /// Pages added.
    pub pages: u32,
}

/// Why the TD was not built.
#[derive(Clone, Copy, Debug)]
pub struct BuildError(pub &'static str);

/// The RAM ranges the TD HOB describes: the sections the build adds inside RAM accepted, the rest unaccepted.
fn ram_ranges(metadata: &Metadata, out: &mut [RamRange; 16]) -> Result<usize, BuildError> {
    let mut added = [(0u64, 0u64); 8];
    let mut count = 0;
    for section in metadata.tdvf_sections.as_slice() {
        if section.memory_address < GUEST_RAM_SIZE {
            let slot = added.get_mut(count).ok_or(BuildError("too many TDVF sections"))?;
            *slot = (section.memory_address, section.memory_data_size);
            count += 1;
        }
    }
    added[..count].sort_unstable();
    td_hob::ram_ranges(GUEST_RAM_SIZE, &added[..count], out).ok_or(BuildError("TDVF sections outside RAM"))
}

/// Builds the TD from `image` into `memory`.
pub fn build(
    image: &[u8],
    metadata: &Metadata,
    memory: &mut PlatformMemory,
    hostile: &mut Misbehaviour,
) -> Result<BuiltTd, BuildError> {
    let mut ranges = [RamRange { start: 0, length: 0, accepted: false }; 16];
    let count = ram_ranges(metadata, &mut ranges)?;
    // Unaccepted RAM is private and pending: 2 MiB pages where the range allows, 4 KiB pages elsewhere.
    for range in ranges[..count].iter().filter(|r| !r.accepted) {
        let mut gpa = range.start;
        while gpa < range.start + range.length {
            let rmp = memory.rmp(gpa).ok_or(BuildError("RAM outside the table"))?;
            if gpa.is_multiple_of(LARGE) && gpa + LARGE <= range.start + range.length {
                rmp.update_large(gpa, true).map_err(|_| BuildError("RMP"))?;
                gpa += LARGE;
            } else {
                rmp.update(gpa, true).map_err(|_| BuildError("RMP"))?;
                gpa += PAGE_SIZE;
            }
        }
    }
    // What the HOB says: the truth, unless the host lies in it.
    let mut described = ranges;
    let mut described_count = count;
    if hostile.due(HostileKind::TdHobRamInImage) {
        described[described_count] = RamRange { start: IMAGE.base, length: IMAGE.size, accepted: true };
        described_count += 1;
    }
    if hostile.due(HostileKind::TdHobHeapAccepted) {
        for range in
            described[..described_count].iter_mut().filter(|r| r.start <= HEAP.base && HEAP.base < r.start + r.length)
        {
            range.accepted = true;
        }
    }
    let mut hob = [0u8; TD_HOB.size as usize];
    td_hob::encode(&described[..described_count], TD_HOB.base, &mut hob)
        .ok_or(BuildError("the TD HOB does not fit"))?;
    let mut mrtd = MrtdBuilder::default();
    for page in added_pages(metadata) {
        let contents = memory.memory.page_mut(page.gpa).ok_or(BuildError("a TDVF page outside guest memory"))?;
        match (page.kind, page.image_offset) {
            (TdvfSectionType::Bfv | TdvfSectionType::Cfv, Some(offset)) => {
                let offset = offset as usize;
                let bytes = image.get(offset..offset + PAGE_SIZE as usize).ok_or(BuildError("BFV beyond the image"))?;
                contents.copy_from_slice(bytes);
            }
            (TdvfSectionType::TdHob, _) => {
                let offset = (page.gpa - TD_HOB.base) as usize;
                contents.copy_from_slice(&hob[offset..offset + PAGE_SIZE as usize]);
            }
            _ => contents.fill(0),
        }
        mrtd.page_add(page.gpa);
        if page.extended {
            mrtd.extend_page(page.gpa, contents);
        }
        let rmp = memory.rmp(page.gpa).ok_or(BuildError("a TDVF page outside the table"))?;
        rmp.launch_page(page.gpa).map_err(|_| BuildError("RMP"))?;
    }
    Ok(BuiltTd { pages: mrtd.pages(), mrtd: mrtd.finish() })
}
