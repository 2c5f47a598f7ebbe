//! A test VCEK chain in AMD's shape, for the simulated PSP: an ARK (self-signed) and an ASK, both RSA with
//! RSASSA-PSS/SHA-384 signatures, and a VCEK certificate for the PSP's P-384 key, signed by the ASK, carrying the
//! extensions AMD's key distribution service puts in (hwID and the SPLs of the TCB). The broker checks such a chain
//! exactly as it checks AMD's: the sev crate verifies the signatures, `VcekIdentity` reads the extensions.
//!
//! Keys come from a seeded generator, so every run makes the same chain; none of it is secret.

use p384::ecdsa::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::{RsaPrivateKey, pss::BlindedSigningKey};
use sha2_010::Sha384;
use x509_cert::Certificate;
use x509_cert::der::asn1::{BitString, ObjectIdentifier, OctetString, UtcTime};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{TbsCertificate, Version};

/// RSASSA-PSS (RFC 4055), the signature algorithm of AMD's ARK, ASK and VCEK certificates.
const RSA_SSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-ecPublicKey and secp384r1 (RFC 5480): the VCEK's key.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// AMD's VCEK extensions: blSPL, teeSPL, snpSPL, ucodeSPL, hwID.
const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Test RSA keys are 2048 bits (AMD's are 4096): the checks are the same, key generation much faster.
const RSA_BITS: usize = 2048;

/// An ARK, ASK and VCEK, DER-encoded.
pub struct TestChain {
    /// The self-signed root.
    pub ark: Vec<u8>,
    /// The intermediate, signed by the ARK.
    pub ask: Vec<u8>,
    /// The VCEK certificate, signed by the ASK.
    pub vcek: Vec<u8>,
}

/// The TCB and chip a VCEK certificate names: boot loader, TEE, SNP and microcode SVNs, and the chip id.
pub struct VcekSubject<'a> {
    /// The SVNs.
    pub tcb: [u8; 4],
    /// hwID: the report's CHIP_ID (64 bytes).
    pub chip_id: &'a [u8],
}

fn name(common_name: &str) -> Name {
    format!("CN={common_name},O=Ampoule test,C=ZZ").parse().expect("a valid name")
}

fn validity() -> Validity {
    let at = |seconds| Time::UtcTime(UtcTime::from_unix_duration(std::time::Duration::from_secs(seconds)).unwrap());
    // 2020-01-01 to 2049-12-31: fixed, so the chain is the same on every run.
    Validity { not_before: at(1_577_836_800), not_after: at(2_524_521_600) }
}

fn rsa_spki(key: &RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key().to_public_key_der().expect("an RSA key encodes");
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("its own encoding parses")
}

fn p384_spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let point = key.verifying_key().to_encoded_point(false);
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: EC_PUBLIC_KEY, parameters: Some((&SECP384R1).into()) },
        subject_public_key: BitString::from_bytes(point.as_bytes()).expect("a point fits"),
    }
}

fn extension(oid: ObjectIdentifier, value: Vec<u8>) -> Extension {
    Extension { extn_id: oid, critical: false, extn_value: OctetString::new(value).expect("a short value") }
}

/// A certificate for `subject_key` named `subject`, signed by `issuer_key` as `issuer`.
fn certificate(
    serial: u8,
    issuer: &str,
    issuer_key: &RsaPrivateKey,
    subject: &str,
    subject_key: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let algorithm = AlgorithmIdentifierOwned { oid: RSA_SSA_PSS, parameters: None };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).expect("a one-byte serial"),
        signature: algorithm.clone(),
        issuer: name(issuer),
        validity: validity(),
        subject: name(subject),
        subject_public_key_info: subject_key,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let signer = BlindedSigningKey::<Sha384>::new(issuer_key.clone());
    let signature = signer.sign_with_rng(rng, &tbs.to_der().expect("the TBS encodes"));
    let signature = BitString::from_bytes(&signature.to_bytes()).expect("a signature fits");
    Certificate { tbs_certificate: tbs, signature_algorithm: algorithm, signature }.to_der().expect("encodes")
}

impl TestChain {
    /// The chain for `vcek` (the simulated PSP's signing key) naming `subject`, from keys seeded with `seed`.
    pub fn new(seed: u64, vcek: &SigningKey, subject: &VcekSubject<'_>) -> TestChain {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ark_key = RsaPrivateKey::new(&mut rng, RSA_BITS).expect("an RSA key");
        let ask_key = RsaPrivateKey::new(&mut rng, RSA_BITS).expect("an RSA key");
        let ark = certificate(1, "ARK-Test", &ark_key, "ARK-Test", rsa_spki(&ark_key), Vec::new(), &mut rng);
        let ask = certificate(2, "ARK-Test", &ark_key, "SEV-Test", rsa_spki(&ask_key), Vec::new(), &mut rng);
        let svn = |value: u8| value.to_der().expect("an INTEGER encodes");
        let [bootloader, tee, snp, microcode] = subject.tcb;
        let extensions = vec![
            extension(BL_SPL, svn(bootloader)),
            extension(TEE_SPL, svn(tee)),
            extension(SNP_SPL, svn(snp)),
            extension(UCODE_SPL, svn(microcode)),
            extension(HW_ID, subject.chip_id.to_vec()),
        ];
        let vcek = certificate(3, "SEV-Test", &ask_key, "SEV-VCEK", p384_spki(vcek), extensions, &mut rng);
        TestChain { ark, ask, vcek }
    }
}
