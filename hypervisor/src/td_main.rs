//! The TDX personality's run: build the TD, start every vCPU in the TD reset state (the application vCPU first,
//! until it parks), run the boot vCPU until the TD ends.

use ovmf::exit::ExitCode;
use ovmf::layout::TD_HOB;
use ovmf::metadata::Metadata;
use protocol::console::Value;
use simulated_platform::tdx::TD_XFAM;
use simulated_platform::tdx::reset::{self, TdVcpuReset};
use simulated_platform::vmsa::offset;

use crate::config::Config;
use crate::guest_cpu::GuestCpu;
use crate::guest_memory::{AliasBit, GuestMemory, shared_bit};
use crate::nested_paging::NestedTables;
use crate::platform_memory::PlatformMemory;
use crate::statics::{self, Statics};
use crate::svm::{Segment, misc1};
use crate::td_vcpu::{TdCounts, TdVcpu};
use crate::vcpu::RunEnd;
use crate::{log, td_launch, tdx_module};

/// Flat 32-bit segments: code (present, execute/read, accessed, D, G) and data (read/write, accessed, B, G).
const FLAT_CODE: Segment = Segment { selector: 0x08, attributes: 0xc9b, limit: 0xffff_ffff, base: 0 };
const FLAT_DATA: Segment = Segment { selector: 0x10, attributes: 0xc93, limit: 0xffff_ffff, base: 0 };

fn vcpu(
    vmcb: &'static mut crate::svm::Vmcb,
    extended: &'static mut crate::svm::ExtendedState,
    state: TdVcpuReset,
    index: u32,
) -> TdVcpu {
    vmcb.set_segment(offset::CS, FLAT_CODE);
    for at in [offset::DS, offset::ES, offset::SS, offset::FS, offset::GS] {
        vmcb.set_segment(at, FLAT_DATA);
    }
    vmcb.set_segment(offset::GDTR, Segment { selector: 0, attributes: 0, limit: 0, base: 0 });
    vmcb.set_segment(offset::IDTR, Segment { selector: 0, attributes: 0, limit: 0, base: 0 });
    vmcb.set_segment(offset::LDTR, Segment { selector: 0, attributes: 0x82, limit: 0xffff, base: 0 });
    vmcb.set_segment(offset::TR, Segment { selector: 0, attributes: 0x8b, limit: 0xffff, base: 0 });
    // The SVM guest needs EFER.SVME besides the TD's LME and NXE; CR0.ET reads as 1 on every CPU of this era.
    vmcb.set_state(offset::EFER, (state.efer & !(1 << 8)) | (1 << 12));
    vmcb.set_state(offset::CR0, state.cr0 | (1 << 4));
    vmcb.set_state(offset::CR4, state.cr4);
    vmcb.set_state(offset::RFLAGS, 0x2);
    vmcb.set_state(offset::RIP, state.rip);
    vmcb.set_state(offset::DR7, 0x400);
    vmcb.set_state(offset::DR6, 0xffff_0ff0);
    vmcb.set_state(offset::G_PAT, 0x0007_0406_0007_0406);
    extended.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    extended.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    let mut td_vcpu = TdVcpu { cpu: GuestCpu::new(vmcb, extended), index, ve_info: None, counts: TdCounts::default() };
    td_vcpu.cpu.registers.rbx = state.rbx;
    td_vcpu.cpu.registers.rcx = state.rcx;
    td_vcpu.cpu.registers.rdx = state.rdx;
    td_vcpu.cpu.registers.rsi = state.rsi;
    td_vcpu.cpu.registers.r[0] = state.r8;
    td_vcpu
}

/// Logs the boot vCPU's counts.
pub fn log_counts(counts: &TdCounts, memory: &PlatformMemory) {
    log::info(
        "exits",
        &[
            ("total", Value::U64(counts.total)),
            ("ve_cpuid", Value::U64(counts.ve_cpuid)),
            ("ve_io", Value::U64(counts.ve_io)),
            ("ve_msr", Value::U64(counts.ve_msr)),
            ("ve_other", Value::U64(counts.ve_other)),
            ("cpuid_virtualized", Value::U64(counts.cpuid_virtualized)),
            ("tdcalls", Value::U64(counts.tdcalls)),
            ("accepts_2m", Value::U64(counts.accepts_2m)),
            ("accepts_4k", Value::U64(counts.accepts_4k)),
            ("vmcalls", Value::U64(counts.vmcalls)),
            ("accepted_pages", Value::U64(memory.validated_pages() as u64)),
        ],
    );
}

/// Builds and runs the TD.
pub fn run(image: &[u8], metadata: &Metadata, config: &Config, statics: Statics) -> ! {
    let tables = NestedTables::new(statics.nested_tables);
    let nested_address_bits = tables.address_bits();
    if u32::from(config.gpaw) > nested_address_bits {
        log::error(
            "TD build refused",
            &[("why", Value::Str("GPAW 52 needs 5-level nested tables: the CPU lacks LA57"))],
        );
        log::exit(ExitCode::PlatformStopped)
    }
    let mut memory = PlatformMemory::new(
        GuestMemory::new(statics.image, AliasBit::Shared, shared_bit(config.gpaw)),
        statics.ram_rmp,
        statics.image_rmp,
        tables,
    );
    let mut hostile = crate::misbehaviour::Misbehaviour::new(config.hostile);
    let built = match td_launch::build(image, metadata, &mut memory, &mut hostile) {
        Ok(built) => built,
        Err(error) => {
            log::error("TD build refused", &[("why", Value::Str(error.0))]);
            log::exit(ExitCode::PlatformStopped)
        }
    };
    if memory.sync_all().is_err() {
        log::fatal("nested page tables full");
    }
    let mut hex = [0u8; 96];
    log::info(
        "launched",
        &[
            ("tee", Value::Str("tdx")),
            ("mrtd", Value::Str(log::hex(&built.mrtd, &mut hex))),
            ("pages", Value::U64(built.pages.into())),
            ("nested_tables", Value::U64(memory.tables_used() as u64)),
            ("nested_address_bits", Value::U64(nested_address_bits.into())),
            ("vcpus", Value::U64(config.vcpus.into())),
            ("gpaw", Value::U64(config.gpaw.into())),
            ("attributes", Value::Hex(config.td_attributes)),
            ("mrconfigid", Value::Str(log::hex(&config.host_data, &mut [0u8; 96]))),
        ],
    );
    let launched = simulated_platform::firmware_channel::TdLaunched {
        mrtd: built.mrtd,
        attributes: config.td_attributes,
        xfam: TD_XFAM,
        mr_config_id: config.host_data,
    };
    // Without a channel (a boot-only run) no report or quote can be made.
    let _ = crate::firmware::td_launched(&launched);
    let mut td = tdx_module::Td {
        gpaw: config.gpaw,
        attributes: config.td_attributes,
        vcpus: config.vcpus,
        trace_exits: config.trace_exits,
        hostile,
    };
    let root = memory.nested_root();
    let mut boot = vcpu(statics.vmcb, statics.extended, reset::vcpu(0, config.gpaw, TD_HOB.base), 0);
    statics::intercepts(boot.cpu.vmcb, statics.iopm, statics.msrpm, root, 0);
    if config.vcpus == 2 {
        let mut application = vcpu(statics.vmcb_ap, statics.extended_ap, reset::vcpu(1, config.gpaw, TD_HOB.base), 1);
        statics::intercepts(application.cpu.vmcb, statics.iopm, statics.msrpm, root, misc1::PAUSE);
        if let Err(end) = application.park(&mut memory) {
            finish(end, &boot, &memory);
        }
        log::info("vcpu parked", &[("index", Value::U64(1)), ("rip", Value::Hex(application.cpu.rip()))]);
    }
    let end = boot.run(&mut memory, &mut td);
    finish(end, &boot, &memory)
}

fn finish(end: RunEnd, boot: &TdVcpu, memory: &PlatformMemory) -> ! {
    log_counts(&boot.counts, memory);
    match end {
        RunEnd::TdFatal(code) => {
            log::error("guest terminated", &[("tee", Value::Str("tdx")), ("error_code", Value::U64(code))]);
            log::exit(ExitCode::GuestTerminated)
        }
        RunEnd::Terminated { .. } => log::exit(ExitCode::GuestTerminated),
        RunEnd::Stopped(why) => {
            log::error("guest stopped", &[("why", Value::Str(why)), ("rip", Value::Hex(boot.cpu.rip()))]);
            log::exit(ExitCode::PlatformStopped)
        }
    }
}
