//! The misbehaviours the simulated host can be told to commit, once per run (`run-qemu --hostile KIND`), and what
//! the guest must do about each: end itself with its termination request, or get refused; never receive a key.

/// One deliberate misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostileKind {
    /// The host proposes a CPUID page whose answer contradicts what the CPU offers (AVX-512F, which QEMU's TCG
    /// lacks): the firmware's check refuses the launch.
    CpuidPage,
    /// The host's reply to the guest's first port read through the GHCB leaves RAX unmarked: the guest ends
    /// itself (exit failed).
    GhcbIoReply,
    /// The host answers the guest's first SNP guest request with a message replayed from the exchange (the
    /// guest's own request, authentic under VMPCK0): the guest refuses it and has no evidence.
    ReplayedResponse,
    /// The host flips one byte of the PSP's response to the first guest request: the guest's AES-GCM check fails.
    CorruptedResponse,
    /// Once the heap is validated, the host makes its first page shared behind the guest's back (RMPUPDATE): the
    /// guest's next use of it raises #VC (page not validated) and the guest ends itself.
    HeapPageShared,
    /// Once the heap is validated, the host remaps its first page (the new mapping is not validated for the
    /// guest): the same #VC.
    HeapPageRemapped,
    /// The host marks the first page the guest makes private as already validated: the guest's PVALIDATE reports
    /// no change, and the guest ends itself (validation failed).
    Prevalidated,
    /// The host refuses the guest's first page-state change: the guest ends itself (GHCB setup failed).
    RefusedPageStateChange,
    /// TDX: the TD HOB declares RAM inside the image: the guest ends itself (bad TD HOB).
    TdHobRamInImage,
    /// TDX: the TD HOB declares the heap as RAM already accepted, not unaccepted: bad TD HOB.
    TdHobHeapAccepted,
    /// TDX: once the heap is accepted, the host takes its first page out of the secure EPT (pending again): the
    /// guest's next use raises #VE (EPT violation) and it ends itself (unhandled #VE).
    TdEptViolation,
    /// TDX: MapGPA fails: the guest ends itself (VMCALL failed).
    TdMapGpaFails,
    /// TDX: MapGPA asks to resume before where it started: the guest ends itself (VMCALL failed).
    TdMapGpaBackwards,
    /// TDX: the first heap page is already accepted when the guest accepts it: the guest ends itself (accept
    /// failed).
    TdAlreadyAccepted,
    /// TDX: GetQuote answers with an out_len beyond the buffer: the guest refuses it and has no evidence.
    TdQuoteOverflows,
    /// TDX: GetQuote answers with a quote of another TD (other REPORTDATA): no key.
    TdQuoteForAnotherTd,
    /// TDX: GetQuote never completes (in flight for good): the guest's bounded polling gives up, no evidence.
    TdQuoteNeverCompletes,
    /// TDX: CPUID leaf 7 (which the stub reads for AVX2, BMI1 and BMI2) goes to the VMM by #VE instead of being
    /// answered by the module, and the VMM would answer without AVX2. No module the VMM can configure does this
    /// (it answers leaf 7 itself); the test shows the guest never acts on a CPUID answer from the VMM: every CPUID
    /// it executes comes before it has a #VE handler, so the #VE shuts the TD down (triple fault).
    TdCpuidVe,
}

impl HostileKind {
    /// Every kind.
    pub const ALL: [HostileKind; 18] = [
        HostileKind::CpuidPage,
        HostileKind::GhcbIoReply,
        HostileKind::ReplayedResponse,
        HostileKind::CorruptedResponse,
        HostileKind::HeapPageShared,
        HostileKind::HeapPageRemapped,
        HostileKind::Prevalidated,
        HostileKind::RefusedPageStateChange,
        HostileKind::TdHobRamInImage,
        HostileKind::TdHobHeapAccepted,
        HostileKind::TdEptViolation,
        HostileKind::TdMapGpaFails,
        HostileKind::TdMapGpaBackwards,
        HostileKind::TdAlreadyAccepted,
        HostileKind::TdQuoteOverflows,
        HostileKind::TdQuoteForAnotherTd,
        HostileKind::TdQuoteNeverCompletes,
        HostileKind::TdCpuidVe,
    ];

    /// The name on the command lines.
    pub const fn name(self) -> &'static str {
        match self {
            HostileKind::CpuidPage => "cpuid-page",
            HostileKind::GhcbIoReply => "ghcb-io-reply",
            HostileKind::ReplayedResponse => "replayed-response",
            HostileKind::CorruptedResponse => "corrupted-response",
            HostileKind::HeapPageShared => "heap-page-shared",
            HostileKind::HeapPageRemapped => "heap-page-remapped",
            HostileKind::Prevalidated => "prevalidated",
            HostileKind::RefusedPageStateChange => "refused-page-state-change",
            HostileKind::TdHobRamInImage => "td-hob-ram-in-image",
            HostileKind::TdHobHeapAccepted => "td-hob-heap-accepted",
            HostileKind::TdEptViolation => "td-ept-violation",
            HostileKind::TdMapGpaFails => "td-map-gpa-fails",
            HostileKind::TdMapGpaBackwards => "td-map-gpa-backwards",
            HostileKind::TdAlreadyAccepted => "td-already-accepted",
            HostileKind::TdQuoteOverflows => "td-quote-overflows",
            HostileKind::TdQuoteForAnotherTd => "td-quote-for-another-td",
            HostileKind::TdQuoteNeverCompletes => "td-quote-never-completes",
            HostileKind::TdCpuidVe => "td-cpuid-ve",
        }
    }

    /// Whether the kind is a TDX host's (the rest are an SNP host's).
    pub const fn is_tdx(self) -> bool {
        matches!(
            self,
            HostileKind::TdHobRamInImage
                | HostileKind::TdHobHeapAccepted
                | HostileKind::TdEptViolation
                | HostileKind::TdMapGpaFails
                | HostileKind::TdMapGpaBackwards
                | HostileKind::TdAlreadyAccepted
                | HostileKind::TdQuoteOverflows
                | HostileKind::TdQuoteForAnotherTd
                | HostileKind::TdQuoteNeverCompletes
                | HostileKind::TdCpuidVe
        )
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<HostileKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for kind in HostileKind::ALL {
            assert_eq!(HostileKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(HostileKind::from_name("polite"), None);
    }
}
