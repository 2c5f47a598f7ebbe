//! Fuzzes `ovmf::tdx::hob::TdHob`, the guest's reader of the TD HOB a VMM writes before launch (unmeasured input).
//! Whatever it accepts must satisfy what the kernel relies on: no RAM inside the image, and a heap it calls covered
//! lies in unaccepted RAM the list declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovmf::layout::{HEAP, IMAGE};
use ovmf::tdx::hob::{EFI_RESOURCE_MEMORY_UNACCEPTED, EFI_RESOURCE_SYSTEM_MEMORY, TdHob};

fuzz_target!(|data: &[u8]| {
    let Ok(hob) = TdHob::parse(data, IMAGE) else { return };
    let ram = |kind| matches!(kind, EFI_RESOURCE_SYSTEM_MEMORY | EFI_RESOURCE_MEMORY_UNACCEPTED);
    for r in hob.resources().filter(|r| ram(r.kind)) {
        assert!(r.start.checked_add(r.length).is_some());
        assert!(r.start + r.length <= IMAGE.base || r.start >= IMAGE.end());
    }
    if hob.unaccepted_covers(HEAP) {
        let unaccepted = |addr: u64| {
            hob.resources()
                .any(|r| r.kind == EFI_RESOURCE_MEMORY_UNACCEPTED && r.start <= addr && addr < r.start + r.length)
        };
        assert!((HEAP.base..HEAP.end()).step_by(1 << 21).all(unaccepted) && unaccepted(HEAP.end() - 1));
    }
});
