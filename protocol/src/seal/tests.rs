use super::*;
use hpke::rand_core::{Infallible, TryCryptoRng, TryRng};

/// A deterministic generator for tests (SplitMix64): not for real keys.
pub(crate) struct TestRng(pub u64);

impl TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

#[test]
fn a_sealed_key_opens_only_with_its_key_info_and_aad() {
    let mut rng = TestRng(1);
    let guest = EphemeralKeyPair::generate(&mut rng);
    let aad = key_release_aad(&[7; 16], 1000);
    let (enc, ct) = seal(&guest.public_key(), &[42; 32], KEY_RELEASE_INFO, &aad, &mut rng).unwrap();
    assert_eq!(ct.len(), 32 + 16);
    assert_eq!(&guest.open(&enc, &ct, KEY_RELEASE_INFO, &aad).unwrap()[..], &[42; 32]);

    let other = EphemeralKeyPair::generate(&mut rng);
    assert_eq!(other.open(&enc, &ct, KEY_RELEASE_INFO, &aad), Err(SealError::Open));
    assert_eq!(guest.open(&enc, &ct, b"other info", &aad), Err(SealError::Open));
    assert_eq!(guest.open(&enc, &ct, KEY_RELEASE_INFO, &key_release_aad(&[7; 16], 1001)), Err(SealError::Open));
    let mut tampered = ct.clone();
    tampered[0] ^= 1;
    assert_eq!(guest.open(&enc, &tampered, KEY_RELEASE_INFO, &aad), Err(SealError::Open));
}
