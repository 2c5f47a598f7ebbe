//! `cargo xtask measure`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::image::{self, BuildOptions, Variant};

use super::build::write_igvm;
use super::parse_hex_u64;

/// Print the SEV-SNP launch digest and the TDX MRTD of the image (built unless --image is given).
#[derive(clap::Args)]
pub struct MeasureArgs {
    /// Measure this image instead of building one.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// vCPU count (one VMSA each in the SNP digest; 1..=4096).
    #[arg(long, default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(xtask::qemu::MAX_VCPUS)))]
    pub vcpus: u32,
    /// QEMU vCPU model (its CPUID signature is in every VMSA).
    #[arg(long, default_value = xtask::measure::DEFAULT_VCPU_TYPE)]
    pub vcpu_type: String,
    /// SEV_FEATURES of the VMSAs, hex (0x1 for QEMU >= 9.1 on host kernels >= 6.10).
    #[arg(long, default_value = "0x1", value_parser = parse_hex_u64)]
    pub guest_features: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Rewrite docs/measurement.md's table of predicted SNP digests (1, 2, 4, 8 vCPUs) and MRTD for this image.
    #[arg(long)]
    pub write_table: bool,
    /// Measure the IGVM rendering (--image names an .igvm file; by default it is built with the other options).
    #[arg(long)]
    pub igvm: bool,
}

/// Runs the command.
pub fn run(root: &std::path::Path, args: MeasureArgs) -> Result<ExitCode> {
    let MeasureArgs { image, vcpus, vcpu_type, guest_features, json, write_table, igvm } = args;
    let vcpu_type = xtask::measure::VcpuType::by_name(&vcpu_type)?;
    let launch = xtask::measure::SnpLaunch { vcpus, vcpu_type, guest_features };
    if igvm {
        anyhow::ensure!(!write_table, "--write-table is for the -bios image");
        return measure_igvm(root, image, &launch, json);
    }
    let (path, bytes) = match image {
        Some(path) => {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            (path, bytes)
        }
        None => {
            let built = image::build(Variant::Release, &BuildOptions::for_checkout(root))?;
            (built.path, built.bytes)
        }
    };
    let m = xtask::measure::measure(&bytes, &launch).with_context(|| format!("measuring {}", path.display()))?;
    if write_table {
        let doc_path = root.join(xtask::measure::TABLE_DOC);
        let doc = std::fs::read_to_string(&doc_path)?;
        let table = xtask::measure::digest_table(&bytes)?;
        std::fs::write(&doc_path, xtask::measure::with_digest_table(&doc, &table)?)?;
        eprintln!("xtask: updated the digest table in {}", doc_path.display());
    }
    let (snp, mrtd) = (xtask::measure::hex(&m.snp), xtask::measure::hex(&m.mrtd));
    let plain = xtask::measure::hex(&xtask::dance::plain_measurement(&bytes));
    if json {
        let value = serde_json::json!({
            "image": path,
            "sha256": image::sha256_hex(&bytes),
            "snp": { "launch_digest": snp, "vcpus": vcpus, "vcpu_type": vcpu_type.name,
                     "guest_features": format!("{guest_features:#x}") },
            "tdx": { "mrtd": mrtd },
            "plain": { "measurement": plain },
        });
        println!("{value}");
    } else {
        println!("image               {}", path.display());
        println!("sha256              {}", image::sha256_hex(&bytes));
        println!("snp launch digest   {snp}");
        println!("                    vcpus={vcpus} vcpu-type={} guest-features={guest_features:#x}", vcpu_type.name);
        println!("tdx mrtd            {mrtd}");
        println!("plain measurement   {plain}");
        println!("                    (SHA-384 of the image, what a plain-mode guest reports in simulated evidence)");
    }
    Ok(ExitCode::SUCCESS)
}

fn measure_igvm(
    root: &std::path::Path,
    image: Option<PathBuf>,
    launch: &xtask::measure::SnpLaunch,
    json: bool,
) -> Result<ExitCode> {
    let (path, bytes) = match image {
        Some(path) => {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            (path, bytes)
        }
        None => write_igvm(&image::build(Variant::Release, &BuildOptions::for_checkout(root))?, launch)?,
    };
    let m = xtask::measure::igvm::measure_igvm(&bytes).with_context(|| format!("measuring {}", path.display()))?;
    let (snp, mrtd) = (xtask::measure::hex(&m.snp), xtask::measure::hex(&m.mrtd));
    if json {
        let value = serde_json::json!({
            "igvm": path, "sha256": image::sha256_hex(&bytes),
            "snp": { "launch_digest": snp, "vcpus": 1 }, "tdx": { "mrtd": mrtd },
        });
        println!("{value}");
    } else {
        println!("igvm                {}", path.display());
        println!("sha256              {}", image::sha256_hex(&bytes));
        println!("snp launch digest   {snp}");
        println!("                    (IGVM launch, 1 vCPU, VMSA as in the file)");
        println!("tdx mrtd            {mrtd}");
    }
    Ok(ExitCode::SUCCESS)
}
