//! Delivering #VC (vector 29) the way SNP hardware does, by hand: QEMU's event injection drops the error code of
//! vector 29 (DESIGN.md §10), so the hypervisor performs the exception delivery itself (Intel SDM vol. 3A 6.12,
//! 6.14; AMD64 APM vol. 2, 8.9): it reads the gate from the guest's IDT, picks the stack (the IST slot the gate
//! names, from the guest's TSS, in long mode), writes the frame with the error code (the exit code), and enters
//! the handler with interrupts off. Other exceptions go through EVENTINJ.

use simulated_platform::vmsa::offset;

use crate::guest_memory::GuestMemory;
use crate::svm::{Segment, Vmcb, control};

/// The #VC vector.
pub const VECTOR_VC: u64 = 29;

const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_NT: u64 = 1 << 14;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_VM: u64 = 1 << 17;
const CR0_PE: u64 = 1;
/// Gate type in descriptor bits 40..44: 0xE interrupt gate (clears IF), 0xF trap gate.
const GATE_TRAP: u64 = 0xf;
const GATE_PRESENT: u64 = 1 << 47;

/// Why a #VC could not be delivered: the guest's own state is broken, and SNP hardware would escalate (double
/// fault, then shutdown). The hypervisor reports it and ends the run.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryFailed(pub &'static str);

/// Delivers #VC with `error_code` at the guest's current instruction.
pub fn deliver(vmcb: &mut Vmcb, memory: &mut GuestMemory, error_code: u64) -> Result<(), DeliveryFailed> {
    if vmcb.state(offset::CR0) & CR0_PE == 0 {
        return Err(DeliveryFailed("real mode"));
    }
    if vmcb.segment(offset::CS).is_long() {
        deliver_long(vmcb, memory, error_code)
    } else {
        deliver_protected(vmcb, memory, error_code)
    }
}

fn read_u64(vmcb: &Vmcb, memory: &mut GuestMemory, linear: u64) -> Result<u64, DeliveryFailed> {
    let mut bytes = [0u8; 8];
    if !memory.read_virtual(vmcb, linear, &mut bytes) {
        return Err(DeliveryFailed("guest memory unreadable"));
    }
    Ok(u64::from_le_bytes(bytes))
}

/// The code segment a gate names, from the guest's GDT.
fn code_segment(vmcb: &Vmcb, memory: &mut GuestMemory, selector: u16) -> Result<Segment, DeliveryFailed> {
    let gdtr = vmcb.segment(offset::GDTR);
    let index = u64::from(selector & !7);
    if selector & 4 != 0 || index + 7 > u64::from(gdtr.limit) {
        return Err(DeliveryFailed("gate selector outside the GDT"));
    }
    Ok(Segment::from_descriptor(selector, read_u64(vmcb, memory, gdtr.base + index)?))
}

fn new_rflags(rflags: u64, gate: u64) -> u64 {
    let mut cleared = RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM;
    if (gate >> 40) & 0xf != GATE_TRAP {
        cleared |= RFLAGS_IF;
    }
    rflags & !cleared
}

fn deliver_long(vmcb: &mut Vmcb, memory: &mut GuestMemory, error_code: u64) -> Result<(), DeliveryFailed> {
    let idtr = vmcb.segment(offset::IDTR);
    if VECTOR_VC * 16 + 15 > u64::from(idtr.limit) {
        return Err(DeliveryFailed("#VC outside the IDT"));
    }
    let low = read_u64(vmcb, memory, idtr.base + VECTOR_VC * 16)?;
    let high = read_u64(vmcb, memory, idtr.base + VECTOR_VC * 16 + 8)?;
    if low & GATE_PRESENT == 0 {
        return Err(DeliveryFailed("#VC gate not present"));
    }
    let handler = (low & 0xffff) | ((low >> 32) & 0xffff_0000) | (high << 32);
    let selector = (low >> 16) as u16;
    let ist = (low >> 32) & 0x7;
    let rsp = vmcb.state(offset::RSP);
    let stack_top = if ist == 0 {
        rsp
    } else {
        let tr = vmcb.segment(offset::TR);
        read_u64(vmcb, memory, tr.base + 0x24 + (ist - 1) * 8)?
    } & !0xf;
    let ss = vmcb.segment(offset::SS);
    let cs = vmcb.segment(offset::CS);
    let rflags = vmcb.state(offset::RFLAGS);
    let frame = [error_code, vmcb.state(offset::RIP), u64::from(cs.selector), rflags, rsp, u64::from(ss.selector)];
    let frame_base = stack_top - frame.len() as u64 * 8;
    let mut bytes = [0u8; 48];
    for (chunk, value) in bytes.chunks_exact_mut(8).zip(frame) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    if !memory.write_virtual(vmcb, frame_base, &bytes) {
        return Err(DeliveryFailed("#VC stack not writable"));
    }
    let code = code_segment(vmcb, memory, selector)?;
    vmcb.set_segment(offset::CS, code);
    vmcb.set_state(offset::RSP, frame_base);
    vmcb.set_state(offset::RIP, handler);
    vmcb.set_state(offset::RFLAGS, new_rflags(rflags, low));
    Ok(())
}

fn deliver_protected(vmcb: &mut Vmcb, memory: &mut GuestMemory, error_code: u64) -> Result<(), DeliveryFailed> {
    let idtr = vmcb.segment(offset::IDTR);
    if VECTOR_VC * 8 + 7 > u64::from(idtr.limit) {
        return Err(DeliveryFailed("#VC outside the IDT"));
    }
    let gate = read_u64(vmcb, memory, idtr.base + VECTOR_VC * 8)?;
    if gate & GATE_PRESENT == 0 {
        return Err(DeliveryFailed("#VC gate not present"));
    }
    let handler = (gate & 0xffff) | ((gate >> 32) & 0xffff_0000);
    let selector = (gate >> 16) as u16;
    // Same privilege (ring 0 throughout): EFLAGS, CS, EIP and the error code go on the current stack.
    let ss = vmcb.segment(offset::SS);
    let esp = vmcb.state(offset::RSP) & 0xffff_ffff;
    let rflags = vmcb.state(offset::RFLAGS);
    let cs = vmcb.segment(offset::CS);
    let frame = [error_code as u32, vmcb.state(offset::RIP) as u32, u32::from(cs.selector), rflags as u32];
    let frame_base = (esp - 16) & 0xffff_ffff;
    let mut bytes = [0u8; 16];
    for (chunk, value) in bytes.chunks_exact_mut(4).zip(frame) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    if !memory.write_virtual(vmcb, ss.base + frame_base, &bytes) {
        return Err(DeliveryFailed("#VC stack not writable"));
    }
    let code = code_segment(vmcb, memory, selector)?;
    vmcb.set_segment(offset::CS, code);
    vmcb.set_state(offset::RSP, frame_base);
    vmcb.set_state(offset::RIP, handler);
    vmcb.set_state(offset::RFLAGS, new_rflags(rflags, gate));
    Ok(())
}

/// EVENTINJ fields (APM vol. 2, 15.20): valid, type 3 (exception), error code valid.
const EVENT_VALID: u64 = 1 << 31;
const EVENT_EXCEPTION: u64 = 3 << 8;
const EVENT_ERROR_CODE: u64 = 1 << 11;

/// Injects exception `vector` through EVENTINJ (for the vectors QEMU delivers correctly).
pub fn inject_exception(vmcb: &mut Vmcb, vector: u8, error_code: Option<u32>) {
    let mut event = EVENT_VALID | EVENT_EXCEPTION | u64::from(vector);
    if let Some(code) = error_code {
        event |= EVENT_ERROR_CODE | (u64::from(code) << 32);
    }
    vmcb.set(control::EVENTINJ, event);
}
