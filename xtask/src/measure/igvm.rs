//! The measurements of an IGVM file, computed by Ampoule's own code from the file's directives (the same PAGE_INFO
//! chain and PAGE.ADD/MR.EXTEND records as the `-bios` launch): `cargo xtask measure --igvm`.
//!
//! Only what `crate::igvm::render` produces is modeled; any other directive is refused by name rather than
//! measured by guesswork.

use anyhow::{Result, anyhow, bail};
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader};
use igvm_defs::{IgvmPageDataType, IgvmPlatformType};
use ovmf::layout::PAGE_SIZE;
use sha2::{Digest, Sha384};
use zerocopy::IntoBytes;

use super::snp::{Digest384, LaunchDigest, PageType};
use super::tdx::Mrtd;

/// What `measure --igvm` reports.
#[derive(Clone, Debug)]
pub struct IgvmMeasurements {
    /// The SNP launch digest of the file's SNP platform.
    pub snp: Digest384,
    /// The MRTD of the file's TDX platform.
    pub mrtd: Digest384,
}

/// A page's contents, zero-padded to 4 KiB (an empty page is all zeros).
fn padded(data: &[u8]) -> Result<[u8; PAGE_SIZE as usize]> {
    let mut page = [0u8; PAGE_SIZE as usize];
    page.get_mut(..data.len())
        .ok_or_else(|| anyhow!("page data of {} bytes exceeds 4 KiB", data.len()))?
        .copy_from_slice(data);
    Ok(page)
}

fn mask_of(file: &IgvmFile, platform_type: IgvmPlatformType) -> Result<u32> {
    file.platforms()
        .iter()
        .map(|IgvmPlatformHeader::SupportedPlatform(p)| p)
        .find(|p| p.platform_type == platform_type)
        .map(|p| p.compatibility_mask)
        .ok_or_else(|| anyhow!("the IGVM file has no {platform_type:?} platform"))
}

fn applies(directive: &IgvmDirectiveHeader, mask: u32) -> bool {
    directive.compatibility_mask().is_none_or(|m| m & mask != 0)
}

/// Parses an IGVM file and computes its SNP launch digest and TDX MRTD.
pub fn measure_igvm(bytes: &[u8]) -> Result<IgvmMeasurements> {
    let file = IgvmFile::new_from_binary(bytes, None).map_err(|e| anyhow!("not a valid IGVM file: {e}"))?;
    let (snp_mask, tdx_mask) = (mask_of(&file, IgvmPlatformType::SEV_SNP)?, mask_of(&file, IgvmPlatformType::TDX)?);
    let has_policy = file.initializations().iter().any(
        |h| matches!(h, IgvmInitializationHeader::GuestPolicy { compatibility_mask, .. } if compatibility_mask & snp_mask != 0),
    );
    if !has_policy {
        bail!("the IGVM file has no SNP guest policy");
    }

    let mut snp = LaunchDigest([0; 48]);
    let mut mrtd = Mrtd::new();
    for directive in file.directives() {
        match directive {
            IgvmDirectiveHeader::PageData { gpa, flags, data_type, data, .. } => {
                if flags.shared() || flags.is_2mb_page() {
                    bail!("shared and 2 MiB page data are not modeled (page at {gpa:#x})");
                }
                let page = padded(data)?;
                if applies(directive, snp_mask) {
                    match *data_type {
                        IgvmPageDataType::SECRETS => snp.update(PageType::Secrets, *gpa, &[0; 48]),
                        IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF => {
                            snp.update(PageType::Cpuid, *gpa, &[0; 48])
                        }
                        IgvmPageDataType::NORMAL if flags.unmeasured() => {
                            snp.update(PageType::Unmeasured, *gpa, &[0; 48])
                        }
                        IgvmPageDataType::NORMAL => snp.update(PageType::Normal, *gpa, &Sha384::digest(page).into()),
                        other => bail!("page data type {other:?} is not modeled"),
                    }
                }
                if applies(directive, tdx_mask) {
                    mrtd.add_page(*gpa, (!flags.unmeasured()).then_some(&page[..]));
                }
            }
            IgvmDirectiveHeader::SnpVpContext { gpa, vmsa, .. } if applies(directive, snp_mask) => {
                let page = padded(vmsa.as_bytes())?;
                snp.update(PageType::Vmsa, *gpa, &Sha384::digest(page).into());
            }
            other => {
                let name = format!("{other:?}");
                bail!("IGVM directive {} is not modeled by measure", name.split([' ', '{', '(']).next().unwrap_or("?"))
            }
        }
    }
    Ok(IgvmMeasurements { snp: snp.0, mrtd: mrtd.finish() })
}
