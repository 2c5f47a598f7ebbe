//! `cargo xtask build`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use xtask::image::{self, BuildOptions, Variant};

use super::parse_hex_u64;

/// Build ampoule.bin and print its path, size and SHA-256.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Print one JSON object (keys: image, size, sha256).
    #[arg(long)]
    pub json: bool,
    /// Show cargo's output.
    #[arg(long, short)]
    pub verbose: bool,
    /// Which image: the release image, or the test image that raises faults on request.
    #[arg(long, value_enum, default_value = "release")]
    pub variant: Variant,
    /// Also write the image as an IGVM file (ampoule.igvm; native, SEV-SNP and TDX platforms).
    #[arg(long)]
    pub igvm: bool,
    /// With --igvm: the vCPU model whose CPUID signature goes into the SNP VMSA.
    #[arg(long, default_value = xtask::measure::DEFAULT_VCPU_TYPE)]
    pub vcpu_type: String,
    /// With --igvm: SEV_FEATURES of the SNP VMSA, hex.
    #[arg(long, default_value = "0x1", value_parser = parse_hex_u64)]
    pub guest_features: u64,
}

/// Runs the command.
pub fn run(root: &std::path::Path, args: BuildArgs) -> Result<ExitCode> {
    let BuildArgs { json, verbose, variant, igvm, vcpu_type, guest_features } = args;
    let started = Instant::now();
    let options = BuildOptions { verbose, ..BuildOptions::for_checkout(root) };
    let built = image::build(variant, &options)?;
    let igvm_file = if igvm {
        let vcpu_type = xtask::measure::VcpuType::by_name(&vcpu_type)?;
        let launch = xtask::measure::SnpLaunch { vcpus: 1, vcpu_type, guest_features };
        Some(write_igvm(&built, &launch)?)
    } else {
        None
    };
    if json {
        let mut value = serde_json::json!({
            "image": built.path,
            "size": built.bytes.len(),
            "sha256": built.sha256_hex(),
        });
        if let Some((path, bytes)) = &igvm_file {
            value["igvm"] = serde_json::json!({
                "path": path, "size": bytes.len(), "sha256": image::sha256_hex(bytes),
            });
        }
        println!("{value}");
    } else {
        println!("image  {}", built.path.display());
        println!("size   {} bytes", built.bytes.len());
        println!("sha256 {}", built.sha256_hex());
        if let Some((path, bytes)) = &igvm_file {
            println!("igvm   {} ({} bytes, sha256 {})", path.display(), bytes.len(), image::sha256_hex(bytes));
        }
        eprintln!("xtask: built in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders `built` as ampoule.igvm beside it; returns the path and bytes.
pub fn write_igvm(built: &image::BuiltImage, launch: &xtask::measure::SnpLaunch) -> Result<(PathBuf, Vec<u8>)> {
    let metadata = ovmf::metadata::parse(&built.bytes, ovmf::layout::GUEST_RAM_SIZE)
        .map_err(|e| anyhow::anyhow!("malformed image metadata: {e}"))?;
    let bytes = xtask::igvm::to_bytes(&xtask::igvm::render(&built.bytes, &metadata, launch)?)?;
    let path = built.path.with_extension("igvm");
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, bytes))
}
