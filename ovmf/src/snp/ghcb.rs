//! The GHCB page (GHCB specification rev. 2.03, §2.3 and table "GHCB Save Area"): the one page an SEV-SNP guest
//! shares with the hypervisor to ask it for something (a CPUID answer, port or MSR access, a guest message to the
//! PSP). The guest fills the fields the exit needs, marks each in the valid bitmap, writes the page's address to the
//! GHCB MSR and executes VMGEXIT; the hypervisor's answer comes back in the same page. Everything read back is
//! hypervisor input and is checked by the caller.

/// The page's size.
pub const GHCB_LEN: usize = 4096;

/// Field offsets in the save area (table "GHCB Save Area").
pub mod offset {
    /// RAX.
    pub const RAX: usize = 0x1f8;
    /// RCX.
    pub const RCX: usize = 0x308;
    /// RDX.
    pub const RDX: usize = 0x310;
    /// RBX.
    pub const RBX: usize = 0x318;
    /// SW_EXITCODE.
    pub const SW_EXITCODE: usize = 0x390;
    /// SW_EXITINFO1.
    pub const SW_EXITINFO1: usize = 0x398;
    /// SW_EXITINFO2.
    pub const SW_EXITINFO2: usize = 0x3a0;
    /// SW_SCRATCH: the GPA of the shared buffer, for exits that use it.
    pub const SW_SCRATCH: usize = 0x3a8;
    /// XCR0.
    pub const XCR0: usize = 0x3e8;
    /// The valid bitmap: bit `offset / 8` says the quadword at `offset` holds a value for this exit.
    pub const VALID_BITMAP: usize = 0x3f0;
    /// The shared buffer.
    pub const SHARED_BUFFER: usize = 0x800;
    /// The GHCB protocol version (u16).
    pub const PROTOCOL_VERSION: usize = 0xffa;
    /// The GHCB usage (u32; 0 = the standard layout).
    pub const GHCB_USAGE: usize = 0xffc;
}

/// The shared buffer's size.
pub const SHARED_BUFFER_LEN: usize = 2032;

/// Non-automatic exit codes (§4.1, table "Non-Automatic Exit Codes") and the intercepts the #VC handler forwards.
pub mod exit_code {
    /// RDTSC.
    pub const RDTSC: u64 = 0x6e;
    /// CPUID.
    pub const CPUID: u64 = 0x72;
    /// IN/OUT.
    pub const IOIO: u64 = 0x7b;
    /// RDMSR/WRMSR.
    pub const MSR: u64 = 0x7c;
    /// RDTSCP.
    pub const RDTSCP: u64 = 0x87;
    /// MMIO read: SW_EXITINFO1 = GPA, SW_EXITINFO2 = bytes, SW_SCRATCH = where the data goes (§4.1.5).
    pub const MMIO_READ: u64 = 0x8000_0001;
    /// MMIO write: as MMIO read, the data taken from SW_SCRATCH (§4.1.6).
    pub const MMIO_WRITE: u64 = 0x8000_0002;
    /// SNP Page State Change.
    pub const SNP_PAGE_STATE_CHANGE: u64 = 0x8000_0010;
    /// SNP Guest Request: a guest message to the PSP (request and response pages in SW_EXITINFO1 and 2).
    pub const SNP_GUEST_REQUEST: u64 = 0x8000_0011;
}

/// A GHCB page.
#[repr(C, align(4096))]
pub struct Ghcb {
    bytes: [u8; GHCB_LEN],
}

impl Default for Ghcb {
    fn default() -> Self {
        Self { bytes: [0; GHCB_LEN] }
    }
}

impl Ghcb {
    /// Clears the save area and valid bitmap and sets the protocol version and standard usage: the state before
    /// each exit is prepared.
    pub fn reset(&mut self, protocol_version: u16) {
        self.bytes[..offset::SHARED_BUFFER].fill(0);
        self.bytes[offset::PROTOCOL_VERSION..offset::PROTOCOL_VERSION + 2]
            .copy_from_slice(&protocol_version.to_le_bytes());
        self.bytes[offset::GHCB_USAGE..offset::GHCB_USAGE + 4].copy_from_slice(&0u32.to_le_bytes());
    }

    /// Writes a quadword of the save area and marks it valid.
    pub fn set(&mut self, at: usize, value: u64) {
        debug_assert!(at.is_multiple_of(8) && at < offset::VALID_BITMAP, "not a save-area quadword");
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let bit = at / 8;
        self.bytes[offset::VALID_BITMAP + bit / 8] |= 1 << (bit % 8);
    }

    /// Reads a quadword of the save area, if the hypervisor marked it valid.
    pub fn get(&self, at: usize) -> Option<u64> {
        self.is_valid(at).then(|| u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes")))
    }

    /// Whether the quadword at `at` is marked valid.
    pub fn is_valid(&self, at: usize) -> bool {
        let bit = at / 8;
        at.is_multiple_of(8)
            && at < offset::VALID_BITMAP
            && self.bytes[offset::VALID_BITMAP + bit / 8] & (1 << (bit % 8)) != 0
    }

    /// Prepares a non-automatic exit: SW_EXITCODE, SW_EXITINFO1 and SW_EXITINFO2.
    pub fn set_exit(&mut self, code: u64, info1: u64, info2: u64) {
        self.set(offset::SW_EXITCODE, code);
        self.set(offset::SW_EXITINFO1, info1);
        self.set(offset::SW_EXITINFO2, info2);
    }

    /// The shared buffer.
    pub fn shared_buffer(&mut self) -> &mut [u8] {
        &mut self.bytes[offset::SHARED_BUFFER..offset::SHARED_BUFFER + SHARED_BUFFER_LEN]
    }

    /// The raw page.
    pub fn as_bytes(&self) -> &[u8; GHCB_LEN] {
        &self.bytes
    }
}

/// How the hypervisor answered an exit, from SW_EXITINFO1 and SW_EXITINFO2 as it left them (§4.1: SW_EXITINFO1[31:0]
/// is 0 on success, 1 with an event to inject in SW_EXITINFO2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitResult {
    /// Done.
    Ok,
    /// SNP Guest Request only: the hypervisor was busy (SW_EXITINFO2[63:32] = 2); send the same request again.
    Busy,
    /// Failed, with SW_EXITINFO1 and SW_EXITINFO2 (for a guest request, [31:0] of the latter is the firmware's
    /// error and [63:32] the hypervisor's).
    Failed(u64, u64),
}

/// Reads the result of any other exit: done when the hypervisor left SW_EXITINFO1[31:0] valid and 0.
pub fn exit_result(ghcb: &Ghcb) -> ExitResult {
    match (ghcb.get(offset::SW_EXITINFO1), ghcb.get(offset::SW_EXITINFO2)) {
        (Some(info1), _) if info1 & 0xffff_ffff == 0 => ExitResult::Ok,
        (info1, info2) => ExitResult::Failed(info1.unwrap_or(u64::MAX), info2.unwrap_or(u64::MAX)),
    }
}

/// SW_EXITINFO2[63:32] of a guest request the hypervisor could not pass on because it was busy.
pub const GUEST_REQUEST_BUSY: u64 = 2;

/// Reads the result of an SNP Guest Request exit.
pub fn guest_request_result(ghcb: &Ghcb) -> ExitResult {
    let info1 = ghcb.get(offset::SW_EXITINFO1).unwrap_or(u64::MAX);
    let info2 = ghcb.get(offset::SW_EXITINFO2).unwrap_or(u64::MAX);
    match (info1 & 0xffff_ffff, info2) {
        (0, 0) => ExitResult::Ok,
        (_, info2) if info2 >> 32 == GUEST_REQUEST_BUSY && info2 & 0xffff_ffff == 0 => ExitResult::Busy,
        _ => ExitResult::Failed(info1, info2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bits_are_the_quadword_index() {
        let mut ghcb = Ghcb::default();
        ghcb.reset(2);
        ghcb.set(offset::RAX, 0x8000_001f);
        ghcb.set(offset::XCR0, 7);
        // RAX is quadword 63, XCR0 125 (the GHCB specification's numbering).
        let bitmap = &ghcb.as_bytes()[offset::VALID_BITMAP..offset::VALID_BITMAP + 16];
        assert_eq!(bitmap[63 / 8], 1 << (63 % 8));
        assert_eq!(bitmap[125 / 8], 1 << (125 % 8));
        assert_eq!(ghcb.get(offset::RAX), Some(0x8000_001f));
        assert_eq!(ghcb.get(offset::RBX), None, "not marked valid");
        assert_eq!(&ghcb.as_bytes()[0xffa..0x1000], &[2, 0, 0, 0, 0, 0]);
        ghcb.reset(2);
        assert_eq!(ghcb.get(offset::RAX), None, "reset clears the bitmap");
    }

    #[test]
    fn exit_results_need_a_valid_zero_exitinfo1() {
        let mut ghcb = Ghcb::default();
        assert!(matches!(exit_result(&ghcb), ExitResult::Failed(..)), "nothing marked valid");
        ghcb.set_exit(exit_code::IOIO, 0, 0);
        assert_eq!(exit_result(&ghcb), ExitResult::Ok);
        ghcb.set(offset::SW_EXITINFO1, 1);
        assert_eq!(exit_result(&ghcb), ExitResult::Failed(1, 0));
    }

    #[test]
    fn guest_request_results_are_read_strictly() {
        let answer = |info1, info2| {
            let mut ghcb = Ghcb::default();
            ghcb.set_exit(exit_code::SNP_GUEST_REQUEST, info1, info2);
            guest_request_result(&ghcb)
        };
        assert_eq!(answer(0, 0), ExitResult::Ok);
        assert_eq!(answer(0, 2 << 32), ExitResult::Busy);
        assert_eq!(answer(0, (2 << 32) | 0x16), ExitResult::Failed(0, (2 << 32) | 0x16));
        assert_eq!(answer(0, 0x16), ExitResult::Failed(0, 0x16));
        assert_eq!(answer(1, 0x8000_0b0d), ExitResult::Failed(1, 0x8000_0b0d));
        // A hypervisor that did not mark the results valid has not answered.
        assert!(matches!(guest_request_result(&Ghcb::default()), ExitResult::Failed(..)));
    }
}
