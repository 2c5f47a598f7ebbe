//! `cargo xtask measure`: the launch measurements of an image, computed by Ampoule's own code from the image's
//! own metadata (parsed strictly by `ovmf::metadata`, so a malformed image gets an error, never a digest).
//!
//! - [`snp`]: the SEV-SNP launch digest for the QEMU configuration run-qemu uses.
//! - [`tdx`]: the TDX MRTD.

pub mod igvm;
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
    anyhow::ensure!(
        (1..=crate::qemu::MAX_VCPUS).contains(&launch.vcpus),
        "--vcpus {} is out of range: a launch has 1..={} vCPUs",
        launch.vcpus,
        crate::qemu::MAX_VCPUS
    );
    let metadata = metadata::parse(image, GUEST_RAM_SIZE).map_err(|e| anyhow!("malformed image metadata: {e}"))?;
    Ok(Measurements { snp: snp::launch_digest(image, &metadata, launch), mrtd: tdx::mrtd(image, &metadata), metadata })
}

/// The document that holds the table of the release's measurements (relative to the repository root).
pub const TABLE_DOC: &str = "docs/measurement.md";
/// The vCPU counts of that table of predicted SNP digests.
pub const TABLE_VCPUS: [u32; 4] = [1, 2, 4, 8];
/// The markers around the table in [`TABLE_DOC`].
pub const TABLE_BEGIN: &str = "<!-- snp-digest-table:begin (cargo xtask measure --write-table) -->";
/// See [`TABLE_BEGIN`].
pub const TABLE_END: &str = "<!-- snp-digest-table:end -->";

/// The table of the release's measurements: SNP launch digests of `image` for 1, 2, 4 and 8 vCPUs of the default type, and its MRTD.
/// The image is code only, so these are the release's measurements whatever model a deployment seals: the
/// sealed model enters the launch through HOST_DATA / MRCONFIGID, never the measurement.
pub fn digest_table(image: &[u8]) -> Result<String> {
    let vcpu_type = VcpuType::by_name(DEFAULT_VCPU_TYPE)?;
    let mut table = format!(
        "| vCPUs ({DEFAULT_VCPU_TYPE}, guest features {DEFAULT_GUEST_FEATURES:#x}) | SNP launch digest |\n|---:|---|\n"
    );
    let mut mrtd = None;
    for vcpus in TABLE_VCPUS {
        let m = measure(image, &SnpLaunch { vcpus, vcpu_type, guest_features: DEFAULT_GUEST_FEATURES })?;
        table += &format!("| {vcpus} | `{}` |\n", hex(&m.snp));
        mrtd = Some(m.mrtd);
    }
    let mrtd = mrtd.expect("the table has rows");
    table += &format!("\nTDX MRTD (any vCPU count): `{}`\n", hex(&mrtd));
    Ok(table)
}

/// `doc` with the text between the table markers replaced by `table`.
pub fn with_digest_table(doc: &str, table: &str) -> Result<String> {
    let (before, rest) = doc.split_once(TABLE_BEGIN).ok_or_else(|| anyhow!("{TABLE_DOC} has no table marker"))?;
    let (_, after) = rest.split_once(TABLE_END).ok_or_else(|| anyhow!("{TABLE_DOC} has no table end marker"))?;
    Ok(format!("{before}{TABLE_BEGIN}\n{table}{TABLE_END}{after}"))
}
