//! Building `ampoule.bin`: compile the guest workspace (kernel/) and lay its ELF's load segments out as the flat
//! firmware image that QEMU maps below 4 GiB (`-bios`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use object::Endianness;
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use ovmf::layout::{BIOS_SIZE_GRANULE, IMAGE, IMAGE_END, RESET_VECTOR};
use sha2::{Digest, Sha256};

use crate::paths;

/// Which image to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The image users run: no test features.
    Release,
    /// The test image that raises a fault on request (kernel feature `fault-injection`).
    FaultInjection,
}

impl Variant {
    fn file_name(self) -> &'static str {
        match self {
            Variant::Release => "ampoule.bin",
            Variant::FaultInjection => "ampoule-fault-injection.bin",
        }
    }

    fn cargo_features(self) -> &'static [&'static str] {
        match self {
            Variant::Release => &[],
            Variant::FaultInjection => &["--features", "fault-injection"],
        }
    }
}

/// A built image.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// Where it was written.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl BuiltImage {
    /// The SHA-256 of the image, in hex.
    pub fn sha256_hex(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Options of one build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The checkout to build from.
    pub root: PathBuf,
    /// The cargo target directory for the guest.
    pub target_dir: PathBuf,
    /// Where to write the image.
    pub out_dir: PathBuf,
    /// `CARGO_HOME` for the build, if not the inherited one (repro uses a second one).
    pub cargo_home: Option<PathBuf>,
    /// Show cargo's output.
    pub verbose: bool,
}

impl BuildOptions {
    /// The usual build: this checkout, `target/kernel`, images in `target/ampoule`.
    pub fn for_checkout(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            target_dir: paths::target_dir(root).join("kernel"),
            out_dir: paths::image_dir(root),
            cargo_home: None,
            verbose: false,
        }
    }
}

/// The `CARGO_HOME` cargo will use: `$CARGO_HOME`, else `$HOME/.cargo`.
pub fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// Builds the guest and writes the flat image: code only, a function of the source tree (the sealed model is
/// handed over at run time).
pub fn build(variant: Variant, options: &BuildOptions) -> Result<BuiltImage> {
    let kernel_dir = options.root.join("kernel");
    let cargo_home = match &options.cargo_home {
        Some(home) => home.clone(),
        None => cargo_home()?,
    };
    // No path of this machine may reach the image: map the checkout and CARGO_HOME to fixed names.
    let remap = format!(
        "target.{}.rustflags=[\"--remap-path-prefix={}=/ampoule\", \"--remap-path-prefix={}=/cargo\"]",
        paths::GUEST_TARGET,
        toml_escape(&options.root)?,
        toml_escape(&cargo_home)?,
    );
    let mut cargo = paths::cargo(&kernel_dir);
    cargo
        .args(["build", "--release", "--locked", "--bin", "ampoule"])
        .args(variant.cargo_features())
        .arg("--target-dir")
        .arg(&options.target_dir)
        .args(["--config", &remap])
        .env("CARGO_HOME", &cargo_home)
        // The guest's flags come from kernel/.cargo/config.toml alone: drop whatever the caller's environment has.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env("SOURCE_DATE_EPOCH", "0");
    if !options.verbose {
        cargo.arg("--quiet");
    }
    let status = cargo.status().context("running cargo for the guest")?;
    ensure!(status.success(), "building the guest failed ({status})");
    let elf_path = options.target_dir.join(paths::GUEST_TARGET).join("release/ampoule");
    let elf = fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let bytes = flatten(&elf)?;
    fs::create_dir_all(&options.out_dir)?;
    let path = options.out_dir.join(variant.file_name());
    fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(BuiltImage { path, bytes })
}

fn toml_escape(path: &Path) -> Result<String> {
    let s = path.to_str().context("paths must be UTF-8")?;
    ensure!(!s.contains(['"', '\\', '=']), "path {s:?} cannot be remapped (contains '\"', '\\\\' or '=')");
    Ok(s.to_string())
}

/// Lays out the ELF's load segments at their physical (load) addresses in an image of exactly `IMAGE.size` bytes
/// ending at 4 GiB. Bytes not covered by a segment are zero. Refuses segments outside the image or overlapping.
pub fn flatten(elf: &[u8]) -> Result<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(elf).context("the guest binary is not a 64-bit ELF")?;
    let endian = file.endian();
    let mut image = vec![0u8; IMAGE.size as usize];
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for header in file.elf_program_headers() {
        if header.p_type(endian) != PT_LOAD || header.p_filesz(endian) == 0 {
            continue;
        }
        let start = header.p_paddr(endian);
        let data = header.data(endian, elf).map_err(|()| anyhow::anyhow!("segment data out of file bounds"))?;
        let end = start.checked_add(data.len() as u64).context("segment wraps around")?;
        ensure!(
            start >= IMAGE.base && end <= IMAGE_END,
            "load segment {start:#x}..{end:#x} lies outside the image {:#x}..{IMAGE_END:#x}",
            IMAGE.base
        );
        if let Some((a, b)) = placed.iter().find(|(a, b)| start < *b && *a < end) {
            bail!("load segments {start:#x}..{end:#x} and {a:#x}..{b:#x} overlap");
        }
        placed.push((start, end));
        let offset = (start - IMAGE.base) as usize;
        image[offset..offset + data.len()].copy_from_slice(data);
    }
    validate(&image)?;
    Ok(image)
}

/// What reset16.s puts at the reset vector: MOV EAX, CR0; TEST AL, 1; JNZ +3; JMP rel16 (the 16-bit path). The
/// 32-bit path's JMP rel32 follows.
const RESET_VECTOR_DISPATCH: [u8; 8] = [0x0f, 0x20, 0xc0, 0xa8, 0x01, 0x75, 0x03, 0xe9];

/// Checks that `bytes` look like an Ampoule image: the layout's exact size (a multiple of 64 KiB, as QEMU requires)
/// and a jump instruction at the reset vector.
pub fn validate(bytes: &[u8]) -> Result<()> {
    let len = bytes.len() as u64;
    ensure!(len > 0, "the image is empty");
    ensure!(
        len.is_multiple_of(BIOS_SIZE_GRANULE),
        "the image is {len} bytes, not a multiple of 64 KiB: QEMU cannot map it as firmware (truncated?)"
    );
    ensure!(len == IMAGE.size, "the image is {len} bytes; an Ampoule image is exactly {} bytes", IMAGE.size);
    let reset = &bytes[(len - (IMAGE_END - RESET_VECTOR.base)) as usize..];
    ensure!(
        reset.starts_with(&RESET_VECTOR_DISPATCH),
        "no mode dispatch at the reset vector (4 GiB - 16): not an Ampoule image"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_reset_jump() -> Vec<u8> {
        let mut bytes = vec![0u8; IMAGE.size as usize];
        let at = bytes.len() - 16;
        bytes[at..at + RESET_VECTOR_DISPATCH.len()].copy_from_slice(&RESET_VECTOR_DISPATCH);
        bytes
    }

    #[test]
    fn validate_accepts_a_well_formed_image() {
        validate(&image_with_reset_jump()).unwrap();
    }

    #[test]
    fn validate_refuses_empty_truncated_and_wrong_size_images() {
        let good = image_with_reset_jump();
        let err = |b: &[u8]| validate(b).unwrap_err().to_string();
        assert!(err(&[]).contains("empty"));
        assert!(err(&good[..good.len() - 100]).contains("not a multiple of 64 KiB"));
        assert!(err(&good[64 * 1024..]).contains("exactly"));
        let mut no_jump = good.clone();
        let at = no_jump.len() - 16;
        no_jump[at] = 0x90;
        assert!(err(&no_jump).contains("reset vector"));
    }

    #[test]
    fn flatten_refuses_what_is_not_an_elf() {
        assert!(flatten(b"not an elf").is_err());
    }
}
