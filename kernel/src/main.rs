//! The Ampoule guest kernel: what runs after the reset stub (`ovmf/src/reset/`) enters 64-bit mode.
//!
//! Boot order: platform (from the stub's boot info) -> W^X page tables (with the C-bit under SNP, the shared bit
//! under TDX) -> GDT/TSS -> IDT -> under SNP: GHCB, shared pages, heap validation; under TDX: TD HOB check, shared
//! pages, heap acceptance -> serial log -> heap -> `booted` record -> self-checks -> (with
//! a network device) TSC calibration, the key dance, unsealing the model, serving clients; else exit. Nothing before
//! the serial console may do port I/O: under SNP it raises #VC, which needs the GHCB; under TDX, #VE. Everything that is not
//! hardware lives in host-testable crates (`ovmf`, `protocol`, `loader`).
#![no_std]
#![no_main]

extern crate alloc;
// The memory functions the compiler calls; linked for their symbols.
extern crate memfns;

mod attester;
mod exit;
#[cfg(feature = "fault-injection")]
mod fault_injection;
mod fw_cfg;
mod gdt;
mod heap;
mod image;
mod interrupts;
mod key_dance;
mod logger;
mod model;
mod net;
mod paging;
mod panic;
mod pci;
mod platform;
mod rng;
mod sections;
mod self_check;
mod serial;
mod service;
mod shared;
mod snp;
mod tdx;
mod time;
mod virtio_net;
mod virtqueue;

use loader::SimulatedAttester;
use ovmf::exit::ExitCode;
use ovmf::layout::boot_scratch::BootInfo;

use crate::attester::GuestAttester;
use loader::model_load;
use protocol::sealed_blob::FW_CFG_HOST_DATA;

use crate::exit::exit;
use crate::fw_cfg::FwCfg;
use crate::logger::Hex;
use crate::paging::Encryption;
use crate::platform::Tee;

/// The kernel's entry, called by `entry64.s` on the boot stack with the boot info the stub wrote.
#[unsafe(no_mangle)]
extern "C" fn ampoule_main(boot_info: *const BootInfo) -> ! {
    let main_tsc = time::rdtsc();
    // SAFETY: entry64.s passes BOOT_INFO, which the stub wrote and the boot page tables still map (paging::init
    // unmaps it, so it is copied first).
    let boot = unsafe { boot_info.read() };
    let reset_tsc = boot.reset_tsc;
    let tee = platform::detect(&boot);
    let encryption = match tee {
        Tee::Snp => snp::encryption(boot.c_bit),
        Tee::Tdx => tdx::encryption(),
        Tee::Plain | Tee::SevWithoutSnp => Encryption::None,
    };
    paging::init(encryption);
    gdt::init();
    interrupts::init();
    let private_heap = match tee {
        Tee::Snp => Some(snp::init()),
        Tee::Tdx => Some(tdx::init()),
        Tee::Plain | Tee::SevWithoutSnp => None,
    };
    serial::COM1.lock().init();
    logger::init();
    let heap = match private_heap.map_or_else(heap::from_e820, Ok) {
        Ok(heap) => heap,
        Err(e) => {
            log::error!(target: "kernel", reason:? = e, min = ovmf::memory_map::MIN_HEAP_SIZE; "no heap in the memory map");
            exit(ExitCode::SelfCheckFailed);
        }
    };
    if let Err(missing) = heap::init(heap) {
        log::error!(target: "kernel", address:% = Hex(missing.address), need = heap.end(); "guest RAM too small for the heap");
        exit(ExitCode::SelfCheckFailed);
    }
    if tee == Tee::SevWithoutSnp {
        log::error!(target: "platform", tee = tee.as_str(); "platform not supported yet");
        exit(ExitCode::PlatformUnsupported);
    }
    let booted_tsc = time::rdtsc();
    log::info!(target: "kernel",
        tee = tee.as_str(),
        validated_pages = heap::private_pages(),
        heap_mib = heap.size >> 20,
        reset_to_main_cycles = main_tsc.wrapping_sub(reset_tsc),
        main_to_booted_cycles = booted_tsc.wrapping_sub(main_tsc),
        version = env!("CARGO_PKG_VERSION");
        "booted");
    if let Err(failure) = self_check::run_all() {
        log::error!(target: "self_check", check = failure.check, reason = failure.reason; "self-check failed");
        exit(ExitCode::SelfCheckFailed);
    }
    #[cfg(feature = "fault-injection")]
    fault_injection::run();
    match virtio_net::VirtioNet::probe() {
        Ok(Some(nic)) => attest_unseal_and_serve(nic, tee),
        Ok(None) => log::info!(target: "kernel", "no network device (boot-only run)"),
        Err(e) => key_dance::fail("network device failed", e),
    }
    log::info!(target: "kernel", cycles = time::rdtsc().wrapping_sub(reset_tsc); "done");
    exit(ExitCode::Success)
}

/// How long the guest waits for the gateway's ARP reply before serving anyway (the first client then waits for
/// smoltcp's own request).
const GATEWAY_ARP_TIMEOUT_MS: u64 = 500;

/// The attester for `tee`; ends the run if the platform cannot make evidence. In plain mode the simulated
/// report's HOST_DATA is what the host hands over in `fw_cfg` (zero if nothing).
fn guest_attester(tee: Tee, fw_cfg: &mut FwCfg) -> GuestAttester {
    if tee == Tee::Tdx {
        return GuestAttester::Tdx(tdx::attester());
    }
    if tee == Tee::Snp {
        let Some(attester) = snp::attester() else { key_dance::fail("no evidence", "secrets-page-unusable") };
        return GuestAttester::Snp(attester);
    }
    // Plain mode: the measurement is the image's SHA-384, which `cargo xtask measure` prints too.
    let measurement = image::measurement();
    log::info!(target: "kernel", measurement:% = key_dance::HexBytes(&measurement); "measured");
    let mut host_data = [0u8; 32];
    if let Some(file) = fw_cfg.find(FW_CFG_HOST_DATA) {
        let mut text = [0u8; 64];
        let read = file.size as usize == text.len() && fw_cfg.read(file, 0, &mut text).is_ok();
        let Some(parsed) = read.then(|| model_load::parse_host_data_hex(&text)).flatten() else {
            key_dance::fail("no evidence", "host-data-malformed")
        };
        host_data = parsed;
    }
    GuestAttester::Simulated(SimulatedAttester::new(measurement).with_host_data(host_data))
}

/// The main job: check the host's sealed model against the launch's binding, attest to the broker for the key it
/// names, unseal the model, serve clients.
fn attest_unseal_and_serve(nic: virtio_net::VirtioNet, tee: Tee) -> ! {
    // A 10 ms PIT interval: after the booted record, and only when timers are needed.
    let tsc_hz = time::calibrate();
    log::info!(target: "kernel", tsc_hz = tsc_hz; "calibrated");
    let Some(mut fw_cfg) = FwCfg::probe() else { key_dance::fail("no sealed model", "no-fw-cfg-device") };
    let mut attester = guest_attester(tee, &mut fw_cfg);
    let mut blob = match model::FwCfgBlob::open(fw_cfg) {
        Ok(blob) => blob,
        Err(e) => key_dance::fail("no sealed model", e.reason()),
    };
    let header = match model::read_header(&mut blob, &mut attester) {
        Ok(header) => header,
        Err(reason) => key_dance::fail("sealed model refused", reason),
    };
    log::info!(target: "loader", digest:% = key_dance::HexBytes(header.digest()), key_id:% = key_dance::HexBytes(&header.key_id),
        sealed_bytes = header.sealed_len(); "sealed model found");
    let mut network = net::Network::up(nic);
    let key = key_dance::obtain(&mut network, &mut attester, header.key_id);
    let started = time::rdtsc();
    let (graph, weight_bytes) = match model::unseal(&mut blob, &header, &key) {
        Ok(loaded) => loaded,
        Err(reason) => key_dance::fail("model not unsealed", reason),
    };
    // The model key is erased here: nothing needs it once the weights are loaded.
    drop(key);
    log::info!(target: "loader", model = graph.model().name, weight_bytes = weight_bytes, heap_used = heap::used(), heap_peak = heap::peak(),
        ms = time::cycles_to_ms(time::rdtsc().wrapping_sub(started)); "model unsealed");
    let service_key = protocol::seal::EphemeralKeyPair::generate(&mut rng::HardwareRng);
    let mut service = loader::Service::new(attester, service_key);
    service.set_attested();
    service.load_model(model::LoadedModel::new(graph));
    let started = time::rdtsc();
    let resolved = network.resolve_gateway(GATEWAY_ARP_TIMEOUT_MS);
    log::info!(target: "net", resolved = resolved,
        ms = time::cycles_to_ms(time::rdtsc().wrapping_sub(started)); "gateway");
    service::serve(&mut network, &mut service, service::batch_limits())
}
