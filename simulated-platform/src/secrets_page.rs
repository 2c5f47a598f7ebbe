//! The secrets page as the firmware writes it at launch (SEV-SNP Firmware ABI, 8.17.2.5 "PAGE_TYPE_SECRETS",
//! table "Secrets Page Format", version 3): the VM platform communication keys, fresh for every launch, and an
//! OS area the firmware leaves zero. The layout is the one the guest reads (`ovmf::snp::secrets_page`).

use ovmf::snp::secrets_page::PAGE_LEN;

/// VERSION written by this firmware.
pub const VERSION: u32 = 3;
const OFFSET_VERSION: usize = 0x000;
const OFFSET_FMS: usize = 0x008;
const OFFSET_VMPCK0: usize = 0x020;

/// The page for a launch with keys `vmpck` (VMPCK0..3) on a CPU of signature `fms` (family, model, stepping).
pub fn encode(vmpck: &[[u8; 32]; 4], fms: u32) -> [u8; PAGE_LEN] {
    let mut page = [0u8; PAGE_LEN];
    page[OFFSET_VERSION..OFFSET_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
    page[OFFSET_FMS..OFFSET_FMS + 4].copy_from_slice(&fms.to_le_bytes());
    for (i, key) in vmpck.iter().enumerate() {
        page[OFFSET_VMPCK0 + 32 * i..OFFSET_VMPCK0 + 32 * (i + 1)].copy_from_slice(key);
    }
    page
}

#[cfg(test)]
mod tests {
    use ovmf::snp::secrets_page::SecretsPage;

    use super::*;

    #[test]
    fn the_guest_reads_back_its_keys_and_a_zero_counter() {
        let keys = [[1u8; 32], [2; 32], [3; 32], [4; 32]];
        let page = encode(&keys, 0x0080_0f12);
        let view = SecretsPage::new(&page).unwrap();
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(view.vmpck(n), Ok(key));
            assert_eq!(view.msg_seqno(n), Ok(0));
        }
    }
}
