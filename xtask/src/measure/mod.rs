//! `cargo xtask measure`: the launch measurements of an image, computed by Ampoule's own code from the image's
//! own metadata (parsed strictly by `ovmf::metadata`, so a malformed image gets an error, never a digest).
//!
//! - [`snp`]: the SEV-SNP launch digest for the QEMU configuration run-qemu uses.
//! - [`tdx`]: the TDX MRTD.

pub mod snp;
pub mod tdx;
pub mod vcpu;
pub mod vmsa;

use anyhow::{Result, anyhow};
use ovmf::layout::GUEST_RAM_SIZE;
use ovmf::metadata::{self, Metadata};

pub use snp::{Digest384, SnpLaunch};
pub use vcpu::{DEFAULT_VCPU_TYPE, VcpuType};

/// The guest features QEMU >= 9.1 passes on host kernels >= 6.10 (SEV_FEATURES.SNPActive).
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;

/// The measurements of one image.
#[derive(Clone, Debug)]
pub struct Measurements {
    /// The SNP launch digest.
    pub snp: Digest384,
    /// The TDX MRTD.
    pub mrtd: Digest384,
    /// The metadata both were computed from.
    pub metadata: Metadata,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the image's metadata and computes both measurements.
pub fn measure(image: &[u8], launch: &SnpLaunch) -> Result<Measurements> {
    anyhow::ensure!(launch.vcpus >= 1, "a guest needs at least one vCPU");
    let metadata = metadata::parse(image, GUEST_RAM_SIZE).map_err(|e| anyhow!("malformed image metadata: {e}"))?;
    Ok(Measurements { snp: snp::launch_digest(image, &metadata, launch), mrtd: tdx::mrtd(image, &metadata), metadata })
}
