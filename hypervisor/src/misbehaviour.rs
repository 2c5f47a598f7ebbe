//! The simulated host's one deliberate misbehaviour of a run (`simulated_platform::hostile`), committed at the
//! first chance it gets and never again. The CPUID-page lie is the launch's (`launch.rs`); the rest happen here,
//! while the guest runs, through the same interfaces an honest host uses: the RMP, the GHCB, the guest request.

use ovmf::layout::HEAP;
use ovmf::snp::ghcb::{Ghcb, exit_code, offset};
use protocol::console::Value;
use simulated_platform::hostile::HostileKind;
use simulated_platform::rmp::RmpEntry;

use crate::log;
use crate::platform_memory::PlatformMemory;

/// Which misbehaviour, and whether it happened.
pub struct Misbehaviour {
    kind: Option<HostileKind>,
    done: bool,
}

impl Misbehaviour {
    /// The host of this run.
    pub fn new(kind: Option<HostileKind>) -> Misbehaviour {
        Misbehaviour { kind, done: false }
    }

    /// Whether the misbehaviour `kind` is due now: the run's kind, not done yet. Marks it done.
    /// Records it as it happens.
    pub fn due(&mut self, kind: HostileKind) -> bool {
        let due = self.kind == Some(kind) && !self.done;
        if due {
            self.done = true;
            log::info("misbehaving", &[("hostile", Value::Str(kind.name()))]);
        }
        due
    }

    /// Whether this run's host misbehaves as `kind` (done or not).
    pub fn is(&self, kind: HostileKind) -> bool {
        self.kind == Some(kind)
    }

    /// Before a GHCB exit is served: once the heap is validated, take its first page away from the guest.
    pub fn before_ghcb_exit(&mut self, memory: &mut PlatformMemory) {
        let heap_ready = memory.entry(HEAP.end() - 4096).is_some_and(|e| e.assigned && e.validated);
        if !heap_ready {
            return;
        }
        // Shared: RMPUPDATE to hypervisor-owned. Remapped: the guest-physical page now lands on a host page whose
        // RMP entry the guest never validated, which the model keeps as the GPA's entry: assigned, not validated.
        let private = if self.due(HostileKind::HeapPageShared) {
            false
        } else if self.due(HostileKind::HeapPageRemapped) {
            true
        } else {
            return;
        };
        if let Some(rmp) = memory.rmp(HEAP.base) {
            let _ = rmp.update(HEAP.base, private);
        }
        let _ = memory.sync(HEAP.base);
    }

    /// Whether the reply to this GHCB exit (read before it is served) is to be wiped: the first port read's.
    pub fn wipes_reply(&mut self, ghcb: &Ghcb) -> bool {
        let is_port_read = ghcb.get(offset::SW_EXITCODE) == Some(exit_code::IOIO)
            && ghcb.get(offset::SW_EXITINFO1).is_some_and(|info| info & 1 != 0);
        is_port_read && self.due(HostileKind::GhcbIoReply)
    }

    /// Before a page-state change through the MSR protocol: `Some(answer)` when the host misbehaves instead of
    /// performing it (refuses it with an error, or answers success having marked the page already validated).
    pub fn page_state_change(&mut self, memory: &mut PlatformMemory, gpa: u64, private: bool) -> Option<u32> {
        if self.due(HostileKind::RefusedPageStateChange) {
            return Some(1);
        }
        self.prevalidates(memory, gpa, private, false).then_some(0)
    }

    /// Before one entry of a page-state change (`large`: a 2 MiB range): whether the host, instead of performing
    /// it, marks the first heap range the guest makes private as assigned and already validated.
    pub fn prevalidates(&mut self, memory: &mut PlatformMemory, gpa: u64, private: bool, large: bool) -> bool {
        if !(private && HEAP.contains(gpa) && self.due(HostileKind::Prevalidated)) {
            return false;
        }
        let frames = if large { 512 } else { 1 };
        for frame in 0..frames {
            let page = gpa + frame * 4096;
            if let Some(rmp) = memory.rmp(page) {
                let _ = rmp.force(page, RmpEntry { assigned: true, validated: true, large });
            }
            let _ = memory.sync(page);
        }
        true
    }

    /// The guest-request response the host hands back instead of the PSP's, if it misbehaves now: a replay of the
    /// request message itself, or the PSP's answer with one byte flipped.
    pub fn guest_response(&mut self, request: &[u8], response: &mut [u8], length: usize) -> Option<usize> {
        if self.due(HostileKind::ReplayedResponse) {
            response[..request.len()].copy_from_slice(request);
            return Some(request.len());
        }
        if self.due(HostileKind::CorruptedResponse) {
            // The first byte after the header: ciphertext under VMPCK0.
            response[protocol::snp_guest_message::HEADER_LEN] ^= 0x01;
            return Some(length);
        }
        None
    }
}

/// The TDX host's misbehaviours that touch memory: once the heap is accepted, its first page taken out of the
/// secure EPT (pending again); before the guest's first accept of a heap page, that page marked accepted.
impl Misbehaviour {
    /// Before a TDCALL: the secure-EPT misbehaviours that are due.
    pub fn before_tdcall(&mut self, memory: &mut PlatformMemory, accepting: Option<u64>) {
        let heap_accepted = memory.entry(HEAP.end() - 4096).is_some_and(|e| e.assigned && e.validated);
        if heap_accepted && self.due(HostileKind::TdEptViolation) {
            if let Some(table) = memory.rmp(HEAP.base) {
                let _ = table.update(HEAP.base, true);
            }
            let _ = memory.sync(HEAP.base);
        }
        if let Some(gpa) = accepting.filter(|&gpa| HEAP.contains(gpa))
            && self.due(HostileKind::TdAlreadyAccepted)
        {
            if let Some(entry) = memory.entry(gpa)
                && let Some(table) = memory.rmp(gpa)
            {
                let _ = table.force(gpa, RmpEntry { validated: true, ..entry });
            }
            let _ = memory.sync(gpa);
        }
    }
}
