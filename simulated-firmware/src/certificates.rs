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

/// 2020-01-01 00:00 UTC and 2049-12-31 00:00 UTC: the default validity, fixed so the chain is the same on every
/// run (UTCTime reaches 2049).
pub const DEFAULT_VALIDITY: (u64, u64) = (1_577_836_800, 2_524_521_600);

fn validity((not_before, not_after): (u64, u64)) -> Validity {
    let at = |seconds| Time::UtcTime(UtcTime::from_unix_duration(std::time::Duration::from_secs(seconds)).unwrap());
    Validity { not_before: at(not_before), not_after: at(not_after) }
}

/// What a test chain's certificates say besides their keys: each one's validity (Unix seconds, not before and not
/// after) and the common names, so tests can make the chain wrong in exactly one way.
#[derive(Clone, Copy, Debug)]
pub struct ChainSpec<'a> {
    /// The ARK's validity.
    pub ark_validity: (u64, u64),
    /// The ASK's.
    pub ask_validity: (u64, u64),
    /// The VCEK's.
    pub vcek_validity: (u64, u64),
    /// The ARK's common name (its subject and issuer).
    pub ark_name: &'a str,
    /// The ASK's common name (its subject).
    pub ask_name: &'a str,
    /// The issuer the VCEK names (the ASK's name, unless a test says otherwise).
    pub vcek_issuer: &'a str,
    /// The VCEK's common name.
    pub vcek_name: &'a str,
}

impl Default for ChainSpec<'_> {
    fn default() -> Self {
        ChainSpec {
            ark_validity: DEFAULT_VALIDITY,
            ask_validity: DEFAULT_VALIDITY,
            vcek_validity: DEFAULT_VALIDITY,
            ark_name: "ARK-Test",
            ask_name: "SEV-Test",
            vcek_issuer: "SEV-Test",
            vcek_name: "SEV-VCEK",
        }
    }
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

/// A certificate for `subject_key` named `subject`, signed by `issuer_key` as `issuer`, valid over `valid`.
#[allow(clippy::too_many_arguments)]
fn certificate(
    serial: u8,
    issuer: &str,
    issuer_key: &RsaPrivateKey,
    subject: &str,
    subject_key: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
    valid: (u64, u64),
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let algorithm = AlgorithmIdentifierOwned { oid: RSA_SSA_PSS, parameters: None };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).expect("a one-byte serial"),
        signature: algorithm.clone(),
        issuer: name(issuer),
        validity: validity(valid),
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
        TestChain::with_spec(seed, vcek, subject, &ChainSpec::default())
    }

    /// The chain as `spec` describes it (same keys as [`TestChain::new`] for the same seed).
    pub fn with_spec(seed: u64, vcek: &SigningKey, subject: &VcekSubject<'_>, spec: &ChainSpec<'_>) -> TestChain {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ark_key = RsaPrivateKey::new(&mut rng, RSA_BITS).expect("an RSA key");
        let ask_key = RsaPrivateKey::new(&mut rng, RSA_BITS).expect("an RSA key");
        let (ark_name, ask_name) = (spec.ark_name, spec.ask_name);
        let ark_spki = rsa_spki(&ark_key);
        let ark = certificate(1, ark_name, &ark_key, ark_name, ark_spki, Vec::new(), spec.ark_validity, &mut rng);
        let ask_spki = rsa_spki(&ask_key);
        let ask = certificate(2, ark_name, &ark_key, ask_name, ask_spki, Vec::new(), spec.ask_validity, &mut rng);
        let svn = |value: u8| value.to_der().expect("an INTEGER encodes");
        let [bootloader, tee, snp, microcode] = subject.tcb;
        let extensions = vec![
            extension(BL_SPL, svn(bootloader)),
            extension(TEE_SPL, svn(tee)),
            extension(SNP_SPL, svn(snp)),
            extension(UCODE_SPL, svn(microcode)),
            extension(HW_ID, subject.chip_id.to_vec()),
        ];
        let vcek_spki = p384_spki(vcek);
        let (issuer, name, valid) = (spec.vcek_issuer, spec.vcek_name, spec.vcek_validity);
        let vcek = certificate(3, issuer, &ask_key, name, vcek_spki, extensions, valid, &mut rng);
        TestChain { ark, ask, vcek }
    }
}
