//! The hypervisor's fixed memory: the VMCB and host save area, the permission maps, the guest's extended state,
//! the nested tables' pool, the RMP's entries and the image's backing. Each is handed out once, as an exclusive
//! reference, by [`take`]; [`configure`] fills the VMCB for the launched guest.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use ovmf::layout::{GUEST_RAM_SIZE, IMAGE, PAGE_SIZE};
use simulated_platform::rmp::RmpEntry;
use simulated_platform::vmsa::{self, VMSA_LEN, offset};

use crate::guest_memory::ImageBacking;
use crate::nested_paging::{POOL_TABLES, Table};
use crate::svm::{ExtendedState, SAVE_AREA, Vmcb, control, misc1, misc2};
use crate::vcpu::Vcpu;

/// The I/O permission map: 12 KiB, one bit per port (APM vol. 2, 15.10.1).
#[repr(C, align(4096))]
pub struct IoPermissionMap([u8; 3 * 4096]);
/// The MSR permission map: 8 KiB, two bits per MSR (APM vol. 2, 15.11).
#[repr(C, align(4096))]
pub struct MsrPermissionMap([u8; 2 * 4096]);

const RAM_FRAMES: usize = (GUEST_RAM_SIZE / PAGE_SIZE) as usize;
const IMAGE_FRAMES: usize = (IMAGE.size / PAGE_SIZE) as usize;

struct Memory {
    vmcb: Vmcb,
    vmcb_ap: Vmcb,
    host_save: [u8; 4096],
    iopm: IoPermissionMap,
    msrpm: MsrPermissionMap,
    extended: ExtendedState,
    extended_ap: ExtendedState,
    nested_tables: [Table; POOL_TABLES],
    ram_rmp: [RmpEntry; RAM_FRAMES],
    image_rmp: [RmpEntry; IMAGE_FRAMES],
    image: ImageBacking,
}

#[repr(C, align(4096))]
struct Holder(UnsafeCell<Memory>);
// SAFETY: the hypervisor runs on one CPU, and `take` hands the contents out once.
unsafe impl Sync for Holder {}

#[unsafe(link_section = ".bss.pages")]
static MEMORY: Holder = Holder(UnsafeCell::new(Memory {
    vmcb: Vmcb([0; 4096]),
    vmcb_ap: Vmcb([0; 4096]),
    host_save: [0; 4096],
    iopm: IoPermissionMap([0; 3 * 4096]),
    msrpm: MsrPermissionMap([0; 2 * 4096]),
    extended: ExtendedState([0; 4096]),
    extended_ap: ExtendedState([0; 4096]),
    nested_tables: [const { Table::EMPTY }; POOL_TABLES],
    ram_rmp: [RmpEntry { assigned: false, validated: false, large: false }; RAM_FRAMES],
    image_rmp: [RmpEntry { assigned: false, validated: false, large: false }; IMAGE_FRAMES],
    image: ImageBacking([0; IMAGE.size as usize]),
}));
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Exclusive references to the fixed memory.
pub struct Statics {
    /// The guest's VMCB (the boot vCPU's).
    pub vmcb: &'static mut Vmcb,
    /// The second vCPU's VMCB (a TD's application vCPU).
    pub vmcb_ap: &'static mut Vmcb,
    /// VM_HSAVE_PA's page.
    pub host_save: &'static mut [u8; 4096],
    /// The I/O permission map.
    pub iopm: &'static mut IoPermissionMap,
    /// The MSR permission map.
    pub msrpm: &'static mut MsrPermissionMap,
    /// The guest's XSAVE area.
    pub extended: &'static mut ExtendedState,
    /// The second vCPU's XSAVE area.
    pub extended_ap: &'static mut ExtendedState,
    /// The nested tables' pool.
    pub nested_tables: &'static mut [Table; POOL_TABLES],
    /// RMP entries for guest RAM.
    pub ram_rmp: &'static mut [RmpEntry],
    /// RMP entries for the image range.
    pub image_rmp: &'static mut [RmpEntry],
    /// The image's backing.
    pub image: &'static mut ImageBacking,
}

/// Hands out the fixed memory; a second call ends the run.
pub fn take() -> Statics {
    if TAKEN.swap(true, Ordering::SeqCst) {
        crate::log::fatal("statics taken twice");
    }
    // SAFETY: TAKEN guarantees this runs once, so these are the only references to MEMORY's fields.
    let memory = unsafe { &mut *MEMORY.0.get() };
    Statics {
        vmcb: &mut memory.vmcb,
        vmcb_ap: &mut memory.vmcb_ap,
        host_save: &mut memory.host_save,
        iopm: &mut memory.iopm,
        msrpm: &mut memory.msrpm,
        extended: &mut memory.extended,
        extended_ap: &mut memory.extended_ap,
        nested_tables: &mut memory.nested_tables,
        ram_rmp: &mut memory.ram_rmp,
        image_rmp: &mut memory.image_rmp,
        image: &mut memory.image,
    }
}

/// EFER's two bits in the MSR permission map's second range (MSRs 0xC000_0000..0xC000_1FFF from byte 0x800).
const MSRPM_EFER_BYTE: usize = 0x800 + (0x80 * 2) / 8;

/// The control area every vCPU of either personality gets: #UD (PVALIDATE, TDCALL), CPUID, HLT, port I/O, MSRs
/// but EFER (the guest's own: SNP traps its writes without the guest noticing, a TD starts with it set), shutdown,
/// VMMCALL (VMGEXIT); `extra` adds intercepts (PAUSE, to see a TD's application vCPU park). Nested paging, ASID 1.
pub fn intercepts(
    vmcb: &mut Vmcb,
    iopm: &mut IoPermissionMap,
    msrpm: &mut MsrPermissionMap,
    nested_root: u64,
    extra: u32,
) {
    iopm.0.fill(0xff);
    msrpm.0.fill(0xff);
    msrpm.0[MSRPM_EFER_BYTE] &= !0b11;
    vmcb.set32(control::INTERCEPT_EXCEPTIONS, 1 << 6);
    vmcb.set32(
        control::INTERCEPT_MISC1,
        misc1::CPUID | misc1::HLT | misc1::IOIO_PROT | misc1::MSR_PROT | misc1::SHUTDOWN | extra,
    );
    vmcb.set32(control::INTERCEPT_MISC2, misc2::VMRUN | misc2::VMMCALL);
    vmcb.set(control::IOPM_BASE_PA, iopm.0.as_ptr() as u64);
    vmcb.set(control::MSRPM_BASE_PA, msrpm.0.as_ptr() as u64);
    vmcb.set32(control::GUEST_ASID, 1);
    vmcb.set(control::NP_ENABLE, 1);
    vmcb.set(control::N_CR3, nested_root);
}

/// Fills the VMCB: the intercepts an SNP guest's hypervisor gets, nested paging, and the guest's state from its
/// launched VMSA (the fields the VMCB save area shares with it, offset for offset).
pub fn configure(
    vcpu: &mut Vcpu,
    iopm: &mut IoPermissionMap,
    msrpm: &mut MsrPermissionMap,
    nested_root: u64,
    vmsa: &[u8; VMSA_LEN],
) {
    let vmcb = &mut *vcpu.cpu.vmcb;
    intercepts(vmcb, iopm, msrpm, nested_root, 0);
    vmcb.0[SAVE_AREA..SAVE_AREA + offset::TR + 16].copy_from_slice(&vmsa[..offset::TR + 16]);
    for at in [
        offset::EFER,
        offset::CR4,
        offset::CR3,
        offset::CR0,
        offset::DR7,
        offset::DR6,
        offset::RFLAGS,
        offset::RIP,
        offset::RSP,
        offset::RAX,
        offset::G_PAT,
    ] {
        vmcb.set_state(at, vmsa::read_u64(vmsa, at));
    }
    vcpu.cpu.registers.rdx = vmsa::read_u64(vmsa, offset::RDX);
    // The legacy XSAVE area's FCW (offset 0) and MXCSR (offset 24), which XRSTOR loads whatever XSTATE_BV says.
    vcpu.cpu.extended.0[0..2].copy_from_slice(&vmsa[offset::X87_FCW..offset::X87_FCW + 2]);
    vcpu.cpu.extended.0[24..28].copy_from_slice(&vmsa[offset::MXCSR..offset::MXCSR + 4]);
}
