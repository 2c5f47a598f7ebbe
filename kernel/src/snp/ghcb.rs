//! Talking to the hypervisor under SNP (GHCB specification rev. 2.03): the GHCB MSR protocol before a GHCB exists,
//! then the GHCB page, the first page of `ovmf::layout::SHARED`. Every exit here is VMGEXIT; what comes back is
//! hypervisor input, read through `ovmf::snp::ghcb`'s checked accessors.
//!
//! The GHCB is one page for the whole guest. It is taken with [`Ghcb::take`], which refuses (and ends the guest)
//! when it is already in use: a #VC raised while an exit is being prepared would otherwise overwrite it.

use core::sync::atomic::{AtomicBool, Ordering};

use ovmf::layout::{PAGE_SIZE, SHARED};
use ovmf::snp::ghcb::{self as layout, ExitResult, GHCB_LEN, exit_code, offset};
use ovmf::snp::ghcb_msr::{
    self, GHCB_PROTOCOL_VERSION, MSR_SEV_ES_GHCB, PageState, REASON_EXIT_FAILED, REASON_GHCB_IN_USE,
    REASON_GHCB_SETUP_FAILED, REASON_PROTOCOL_UNSUPPORTED, REASON_SET_AMPOULE, REASON_SET_GENERAL,
};
use ovmf::snp::page_state::{self, PageStateEntry};
use x86_64::registers::model_specific::Msr;

/// The GHCB's guest-physical address: the first shared page.
pub const GHCB_GPA: u64 = SHARED.base;

/// Whether the GHCB is registered (before that, only the MSR protocol may be used).
static READY: AtomicBool = AtomicBool::new(false);
/// Whether an exit is being prepared in the GHCB.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// VMGEXIT (`REP VMMCALL`): hands control to the hypervisor, which reads the GHCB MSR.
fn vmgexit() {
    // SAFETY: VMGEXIT only exits to the hypervisor, which answers in the GHCB MSR or the GHCB page; no guest state
    // besides those changes. Not `nomem`: the hypervisor reads and writes the GHCB page, so the compiler must not
    // keep its contents in registers across the exit.
    unsafe { core::arch::asm!("rep vmmcall", options(nostack, preserves_flags)) };
}

fn write_msr(value: u64) {
    // SAFETY: the GHCB MSR only holds the value for the hypervisor; writing it never traps under SEV-ES/SNP.
    unsafe { Msr::new(MSR_SEV_ES_GHCB).write(value) };
}

/// One GHCB MSR protocol round trip (§2.3.1): the request in the MSR, VMGEXIT, the response from the MSR.
fn msr_protocol(request: u64) -> u64 {
    write_msr(request);
    vmgexit();
    // SAFETY: as in `write_msr`; reading the MSR has no side effects.
    unsafe { Msr::new(MSR_SEV_ES_GHCB).read() }
}

/// Ends the guest with Ampoule's reason `code` (GHCB termination request). Usable at any time, also before the
/// GHCB exists and inside the #VC handler: it executes nothing that raises #VC.
pub fn terminate(code: u8) -> ! {
    terminate_with(REASON_SET_AMPOULE, code)
}

fn terminate_with(set: u8, code: u8) -> ! {
    loop {
        write_msr(ghcb_msr::termination_request(set, code));
        vmgexit();
        // A hypervisor that returns from a termination request gets the request again.
    }
}

/// Asks for a page-state change of one 4 KiB frame through the MSR protocol; ends the guest if it is refused.
pub fn page_state_change(gpa: u64, state: PageState) {
    let gfn = gpa / PAGE_SIZE;
    let request =
        ghcb_msr::page_state_change_request(gfn, state).unwrap_or_else(|| terminate(REASON_GHCB_SETUP_FAILED));
    if ghcb_msr::page_state_change_response(msr_protocol(request)).is_err() {
        terminate(REASON_GHCB_SETUP_FAILED);
    }
}

/// Changes the state of every range in `entries` in one GHCB exit (§4.1.6), exiting again while the hypervisor
/// reports it stopped part way; ends the guest if it refuses, or stops without progress. Only for a caller that
/// does not hold the GHCB.
pub fn page_state_change_batch(entries: &[PageStateEntry]) {
    let mut ghcb = Ghcb::take();
    if page_state::encode(entries, ghcb.page().shared_buffer()).is_err() {
        terminate(REASON_GHCB_SETUP_FAILED);
    }
    let mut done = 0;
    // Each exit must advance CUR_ENTRY: at most one exit per entry.
    for _ in 0..entries.len() {
        let page = ghcb.page();
        page.set_exit(exit_code::SNP_PAGE_STATE_CHANGE, 0, 0);
        page.set(offset::SW_SCRATCH, Ghcb::shared_buffer_gpa());
        ghcb.exit();
        let page = ghcb.page();
        if layout::exit_result(page) != ExitResult::Ok || page.get(offset::SW_EXITINFO2) != Some(0) {
            terminate(REASON_GHCB_SETUP_FAILED);
        }
        let (current, end) = page_state::progress(page.shared_buffer());
        if current > end {
            return;
        }
        if current <= done {
            terminate(REASON_GHCB_SETUP_FAILED);
        }
        done = current;
    }
    terminate(REASON_GHCB_SETUP_FAILED);
}

/// Negotiates protocol version 2, makes the GHCB page shared (it was never validated: `SHARED` lies outside every
/// pre-validated range), registers its address and installs it in the GHCB MSR.
pub fn init() {
    let info = ghcb_msr::sev_info_response(msr_protocol(ghcb_msr::sev_info_request()));
    if !info.is_some_and(|info| info.supports_our_version()) {
        terminate_with(REASON_SET_GENERAL, REASON_PROTOCOL_UNSUPPORTED);
    }
    page_state_change(GHCB_GPA, PageState::Shared);
    let gfn = GHCB_GPA / PAGE_SIZE;
    // KVM refuses VMGEXITs from an unregistered GHCB (DESIGN.md §9).
    if !ghcb_msr::register_ghcb_confirmed(msr_protocol(ghcb_msr::register_ghcb_request(gfn)), gfn) {
        terminate(REASON_GHCB_SETUP_FAILED);
    }
    write_msr(GHCB_GPA);
    READY.store(true, Ordering::Release);
}

/// VMGEXIT with the GHCB's address in the GHCB MSR. Only for a caller holding the GHCB ([`Ghcb::take`]).
pub fn vmgexit_with_ghcb() {
    write_msr(GHCB_GPA);
    vmgexit();
}

/// The GHCB, held for one exit.
pub struct Ghcb {
    page: &'static mut layout::Ghcb,
}

impl Ghcb {
    /// Takes the GHCB, reset for a new exit. Ends the guest if there is no GHCB yet, or if it is in use (a nested
    /// #VC).
    pub fn take() -> Ghcb {
        if !READY.load(Ordering::Acquire) {
            terminate(ovmf::snp::ghcb_msr::REASON_UNHANDLED_VC);
        }
        if IN_USE.swap(true, Ordering::Acquire) {
            terminate(REASON_GHCB_IN_USE);
        }
        // SAFETY: GHCB_GPA is the first page of SHARED, identity-mapped read-write (without the C-bit) by
        // paging::init, page-aligned and GHCB_LEN long; IN_USE gives this one reference exclusive use until drop.
        let page = unsafe { &mut *(GHCB_GPA as *mut layout::Ghcb) };
        page.reset(GHCB_PROTOCOL_VERSION);
        Ghcb { page }
    }

    /// The page, to fill before [`Ghcb::exit`] and to read after it.
    pub fn page(&mut self) -> &mut layout::Ghcb {
        self.page
    }

    /// The guest-physical address of the GHCB's shared buffer (SW_SCRATCH for exits that carry data).
    pub fn shared_buffer_gpa() -> u64 {
        GHCB_GPA + offset::SHARED_BUFFER as u64
    }

    /// VMGEXIT with the exit prepared in the page.
    pub fn exit(&mut self) {
        vmgexit_with_ghcb();
    }

    /// An exit that must succeed (port I/O, MSR, MMIO): ends the guest if the hypervisor reports failure.
    pub fn exit_or_terminate(&mut self) {
        self.exit();
        if layout::exit_result(self.page) != ExitResult::Ok {
            terminate(REASON_EXIT_FAILED);
        }
    }
}

impl Drop for Ghcb {
    fn drop(&mut self) {
        IN_USE.store(false, Ordering::Release);
    }
}

/// Reads `size` (1, 2, 4 or 8) bytes of device registers at `gpa` through the GHCB (MMIO read exit, §4.1.5).
pub fn mmio_read(gpa: u64, size: usize) -> u64 {
    let mut ghcb = Ghcb::take();
    let page = ghcb.page();
    page.set_exit(exit_code::MMIO_READ, gpa, size as u64);
    page.set(offset::SW_SCRATCH, Ghcb::shared_buffer_gpa());
    ghcb.exit_or_terminate();
    let mut bytes = [0u8; 8];
    bytes[..size].copy_from_slice(&ghcb.page().shared_buffer()[..size]);
    u64::from_le_bytes(bytes)
}

/// Writes the low `size` bytes of `value` to device registers at `gpa` through the GHCB (MMIO write exit).
pub fn mmio_write(gpa: u64, size: usize, value: u64) {
    let mut ghcb = Ghcb::take();
    let page = ghcb.page();
    page.shared_buffer()[..size].copy_from_slice(&value.to_le_bytes()[..size]);
    page.set_exit(exit_code::MMIO_WRITE, gpa, size as u64);
    page.set(offset::SW_SCRATCH, Ghcb::shared_buffer_gpa());
    ghcb.exit_or_terminate();
}

const _: () = assert!(GHCB_LEN as u64 == PAGE_SIZE);
