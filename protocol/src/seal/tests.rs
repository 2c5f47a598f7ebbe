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

/// RFC 9180 appendix A.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode): the published values.
/// The RFC has no X25519 vectors with AES-256-GCM; these pin the KEM and the key schedule our suite shares with
/// A.1, and the pyhpke interop test (xtask/tests/hpke.rs) checks the AES-256-GCM suite itself.
mod rfc9180_a1 {
    use super::*;
    use alloc::vec::Vec;
    use hpke::aead::AesGcm128;

    const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
    const IKM_E: &str = "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234";
    const PK_EM: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
    const IKM_R: &str = "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037";
    const PK_RM: &str = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
    const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
    const AAD_0: &str = "436f756e742d30";
    const CT_0: &str = "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Yields the vector's ephemeral input keying material as "randomness".
    struct Ikm(Vec<u8>);

    impl TryRng for Ikm {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            unreachable!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.copy_from_slice(&self.0[..dst.len()]);
            Ok(())
        }
    }

    impl TryCryptoRng for Ikm {}

    #[test]
    fn derive_key_pair_gives_the_published_keys() {
        let (_, pk_r) = Kem::derive_keypair(&unhex(IKM_R));
        assert_eq!(pk_r.to_bytes().as_slice(), unhex(PK_RM));
        let (_, pk_e) = Kem::derive_keypair(&unhex(IKM_E));
        assert_eq!(pk_e.to_bytes().as_slice(), unhex(PK_EM));
    }

    #[test]
    fn the_first_encryption_matches_the_published_ciphertext() {
        let (sk_r, pk_r) = Kem::derive_keypair(&unhex(IKM_R));
        let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk_r,
            &unhex(INFO),
            &unhex(PT),
            &unhex(AAD_0),
            &mut Ikm(unhex(IKM_E)),
        )
        .unwrap();
        assert_eq!(enc.to_bytes().as_slice(), unhex(PK_EM));
        assert_eq!(ct, unhex(CT_0));
        let opened = hpke::single_shot_open::<AesGcm128, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk_r,
            &enc,
            &unhex(INFO),
            &ct,
            &unhex(AAD_0),
        )
        .unwrap();
        assert_eq!(opened, unhex(PT));
    }
}
