//! How a launch gets its sealed model (DESIGN.md §11): the untrusted host hands the guest the blob through fw_cfg
//! (`protocol::sealed_blob::FW_CFG_MODEL`), and binds the launch to the blob's digest where the guest can read it
//! in its own evidence and the host cannot change it afterwards:
//!
//! | launch | binding | QEMU (or the simulated platform) |
//! |--------|---------|----------------------------------|
//! | SEV-SNP | HOST_DATA, the digest's first 32 bytes | `sev-snp-guest,host-data=BASE64` |
//! | TDX | MRCONFIGID, the whole digest | `tdx-guest`'s `"mrconfigid":"BASE64"` |
//! | simulated SNP / TDX | the same fields, set by the simulated firmware | `host_data=HEX` on the hypervisor's line |
//! | plain | the simulated report's HOST_DATA | fw_cfg `opt/ampoule/host-data`, 64 hex digits |
//!
//! Why fw_cfg and not the network: the guest already drives the device, its DMA interface gives bounded reads at
//! any offset (select and skip), and loading the model does not depend on the key dance's connection.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use protocol::message::KeyId;
use protocol::sealed_blob::{BlobDigest, BlobHeader, FW_CFG_HOST_DATA, FW_CFG_MODEL, HEADER_LEN, launch_binding};

use crate::qemu::Tee;

/// A blob for one launch and the digest the launch is bound to (the blob's own, unless a test lies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDelivery {
    /// The sealed blob the host hands over.
    pub blob: PathBuf,
    /// The digest the launch is bound to.
    pub digest: BlobDigest,
    /// The key the blob's header names: the one the guest asks the broker for.
    pub key_id: KeyId,
}

impl ModelDelivery {
    /// Delivers `blob`, bound to its own digest (read from its header, which must parse).
    pub fn of(blob: &Path) -> Result<ModelDelivery> {
        let header = header_of(blob)?;
        Ok(ModelDelivery { blob: blob.to_path_buf(), digest: *header.digest(), key_id: header.key_id })
    }

    /// What the launch reports for `tee`: the binding zero-extended to 48 bytes.
    pub fn binding(&self, tee: Tee) -> [u8; 48] {
        let tee = match tee {
            Tee::Plain => protocol::tee::Tee::Plain,
            Tee::Snp => protocol::tee::Tee::Snp,
            Tee::Tdx => protocol::tee::Tee::Tdx,
        };
        launch_binding(tee, &self.digest)
    }

    /// QEMU's `host-data=` of `sev-snp-guest`: the binding's 32 bytes in base64.
    pub fn snp_host_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.binding(Tee::Snp)[..32])
    }

    /// QEMU's `mrconfigid` of `tdx-guest`: the 48 bytes in base64.
    pub fn tdx_mrconfigid(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.binding(Tee::Tdx))
    }

    /// The simulated platform's `host_data=` word: 64 (SNP) or 96 (TDX) hex digits.
    pub fn hypervisor_word(&self, tee: Tee) -> String {
        let binding = self.binding(tee);
        let len = if tee == Tee::Tdx { 48 } else { 32 };
        format!("host_data={}", hex::encode(&binding[..len]))
    }

    /// QEMU's fw_cfg arguments: the blob, and in plain mode the simulated HOST_DATA.
    pub fn fw_cfg_args(&self, tee: Tee) -> Vec<String> {
        let mut args = vec!["-fw_cfg".into(), format!("name={FW_CFG_MODEL},file={}", self.blob.display())];
        if tee == Tee::Plain {
            let host_data = hex::encode(&self.binding(Tee::Plain)[..32]);
            args.extend(["-fw_cfg".into(), format!("name={FW_CFG_HOST_DATA},string={host_data}")]);
        }
        args
    }
}

/// The header of the blob at `path`, strictly parsed.
pub fn header_of(path: &Path) -> Result<BlobHeader> {
    use std::io::Read;
    let mut bytes = [0u8; HEADER_LEN];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut bytes))
        .with_context(|| format!("reading the sealed model {}", path.display()))?;
    BlobHeader::parse(&bytes).map_err(|e| anyhow!("{} is not a sealed model: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> ModelDelivery {
        let mut digest = [0u8; 48];
        digest.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 + 1);
        ModelDelivery { blob: "/m/mlp.sealed".into(), digest, key_id: [7; 16] }
    }

    #[test]
    fn each_launch_gets_its_field() {
        let d = delivery();
        assert_eq!(&d.binding(Tee::Snp)[32..], &[0; 16]);
        assert_eq!(d.binding(Tee::Tdx), d.digest);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(d.snp_host_data()).unwrap(), &d.digest[..32]);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(d.tdx_mrconfigid()).unwrap(), d.digest);
        assert_eq!(d.hypervisor_word(Tee::Tdx).len(), "host_data=".len() + 96);
        assert_eq!(d.hypervisor_word(Tee::Snp).len(), "host_data=".len() + 64);
        let plain = d.fw_cfg_args(Tee::Plain).join(" ");
        assert!(plain.contains("name=opt/ampoule/model,file=/m/mlp.sealed"));
        assert!(plain.contains(&format!("name=opt/ampoule/host-data,string={}", hex::encode(&d.digest[..32]))));
        assert!(!d.fw_cfg_args(Tee::Snp).join(" ").contains("host-data"));
    }
}
