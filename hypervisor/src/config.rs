//! The platform's options, from the multiboot command line (`-append`): `key=value` words, numbers in hex with
//! `0x` or decimal, after the kernel's name. run-qemu passes what it would give QEMU + KVM for `run-qemu --tee snp`.

use simulated_platform::hostile::HostileKind;
use simulated_platform::vmsa::VcpuConfig;

/// What the launch is configured with.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The boot vCPU (signature of the vCPU model, SEV_FEATURES).
    pub vcpu: VcpuConfig,
    /// The guest policy (it enters the report, not the digest).
    pub policy: u64,
    /// The one misbehaviour of this run, if any (`hostile=KIND`).
    pub hostile: Option<HostileKind>,
    /// The platform: SEV-SNP (`tee=snp`, the default) or TDX (`tee=tdx`).
    pub tdx: bool,
    /// vCPUs (`vcpus=N`; a TD runs 2 so the stub's parking path runs; SNP launches 1).
    pub vcpus: u32,
    /// Record the first N exits of the boot vCPU (`trace_exits=N`; TDX only): for debugging the platform.
    pub trace_exits: u64,
    /// The TD's ATTRIBUTES (`attributes=`; QEMU's default sets SEPT_VE_DISABLE, bit 28).
    pub td_attributes: u64,
    /// The TD's guest physical address width (`gpaw=48` or `gpaw=52`): its shared bit is GPA[GPAW - 1]. GPAW 52
    /// needs 5-level nested tables, so a host paging with LA57 (QEMU's `-cpu max` has it).
    pub gpaw: u8,
    /// What the host binds the launch to (`host_data=HEX`): SNP's HOST_DATA (64 hex digits, 32 bytes) or a TD's
    /// MRCONFIGID (96 hex digits, 48 bytes); zero-extended to 48 bytes, zero unless given.
    pub host_data: [u8; 48],
    /// Back 2 MiB page-state changes with 512 small RMP entries (`small_rmp_pages=1`), as a host may (GHCB
    /// specification §4.1.6): the guest must then validate page by page.
    pub small_rmp_pages: bool,
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// 32 or 48 bytes from 64 or 96 hex digits, zero-extended to 48.
fn hex_bytes(text: &str) -> Option<[u8; 48]> {
    if !matches!(text.len(), 64 | 96) {
        return None;
    }
    let mut bytes = [0u8; 48];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(core::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

/// Parses the command line; `Err` names the word that is wrong.
pub fn parse(cmdline: &str) -> Result<Config, &str> {
    let mut config = Config {
        vcpu: VcpuConfig { signature: 0, sev_features: 1 },
        policy: 0x3_0000,
        hostile: None,
        tdx: false,
        vcpus: 1,
        td_attributes: 1 << 28,
        gpaw: 48,
        trace_exits: 0,
        small_rmp_pages: false,
        host_data: [0; 48],
    };
    let mut signature = None;
    // QEMU's multiboot loader puts the kernel's file name first.
    for word in cmdline.split_ascii_whitespace().skip(1) {
        let (key, value) = word.split_once('=').ok_or(word)?;
        if key == "tee" {
            config.tdx = match value {
                "snp" => false,
                "tdx" => true,
                _ => return Err(word),
            };
            continue;
        }
        if key == "host_data" {
            config.host_data = hex_bytes(value).ok_or(word)?;
            continue;
        }
        if key == "hostile" {
            config.hostile = Some(HostileKind::from_name(value).ok_or(word)?);
            continue;
        }
        let value = number(value).ok_or(word)?;
        match key {
            "signature" => signature = Some(u32::try_from(value).map_err(|_| word)?),
            "guest_features" => config.vcpu.sev_features = value,
            "policy" => config.policy = value,
            "small_rmp_pages" => config.small_rmp_pages = value != 0,
            "vcpus" if (1..=2).contains(&value) => config.vcpus = value as u32,
            "attributes" => config.td_attributes = value,
            "gpaw" if value == 48 || value == 52 => config.gpaw = value as u8,
            "trace_exits" => config.trace_exits = value,
            _ => return Err(word),
        }
    }
    config.vcpu.signature = match (signature, config.tdx) {
        (Some(signature), _) => signature,
        // A TD's vCPU model does not enter MRTD.
        (None, true) => 0,
        (None, false) => return Err("signature"),
    };
    Ok(config)
}
