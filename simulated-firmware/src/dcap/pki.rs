//! The simulated Intel PKI, in the shape of Intel's SGX PKI (Intel SGX PCK Certificate and Certificate Revocation
//! List Profile Specification):
//!
//! ```text
//! root CA (self-signed) ──┬── PCK Platform CA ── PCK certificate (the platform's; SGX extension)
//!                         └── TCB signing certificate (signs the TCB info and the QE identity)
//! ```
//!
//! All keys are ECDSA P-256 and all signatures ECDSA with SHA-256, as Intel's. The root CA and the PCK Platform CA
//! each publish a CRL (version 2, with CRL number and authority key identifier), which dcap-qvl requires for every
//! certificate of every chain.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2_010::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{Any, BitString, ObjectIdentifier, OctetString, Uint, UtcTime};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Encode, EncodePem, EncodeValue, Tag, Tagged};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{TbsCertificate, Version};

use super::{Dates, PlatformTcb};

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// id-ecPublicKey and prime256v1 (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The SGX extension's OIDs (PCK Certificate Profile, "SGX Extensions").
mod sgx_oid {
    use super::ObjectIdentifier;
    const fn oid(text: &str) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(text)
    }
    pub const SGX_EXTENSIONS: ObjectIdentifier = oid("1.2.840.113741.1.13.1");
    pub const PPID: ObjectIdentifier = oid("1.2.840.113741.1.13.1.1");
    pub const TCB: ObjectIdentifier = oid("1.2.840.113741.1.13.1.2");
    pub const PCESVN: ObjectIdentifier = oid("1.2.840.113741.1.13.1.2.17");
    pub const CPUSVN: ObjectIdentifier = oid("1.2.840.113741.1.13.1.2.18");
    pub const PCE_ID: ObjectIdentifier = oid("1.2.840.113741.1.13.1.3");
    pub const FMSPC: ObjectIdentifier = oid("1.2.840.113741.1.13.1.4");
    pub const SGX_TYPE: ObjectIdentifier = oid("1.2.840.113741.1.13.1.5");
    pub const PLATFORM_INSTANCE_ID: ObjectIdentifier = oid("1.2.840.113741.1.13.1.6");
    pub const CONFIGURATION: ObjectIdentifier = oid("1.2.840.113741.1.13.1.7");
    pub const DYNAMIC_PLATFORM: ObjectIdentifier = oid("1.2.840.113741.1.13.1.7.1");
    pub const CACHED_KEYS: ObjectIdentifier = oid("1.2.840.113741.1.13.1.7.2");
    pub const SMT_ENABLED: ObjectIdentifier = oid("1.2.840.113741.1.13.1.7.3");
    /// TCB component `n` (1..=16) under [`TCB`].
    pub fn tcb_component(n: u8) -> ObjectIdentifier {
        ObjectIdentifier::new(&format!("1.2.840.113741.1.13.1.2.{n}")).expect("a valid OID")
    }
}

/// 2020-01-01 and 2049-12-31 (UTCTime reaches 2049): the certificates' default validity, fixed so that every run
/// makes the same certificates.
pub const CERTIFICATE_VALIDITY: (u64, u64) = (1_577_836_800, 2_524_521_600);

/// What the simulated PKI's certificates say besides their keys, so that a test can make it wrong in one way.
#[derive(Clone, Copy, Debug)]
pub struct PkiSpec {
    /// The PCK certificate's validity (Unix seconds: not before, not after).
    pub pck_validity: (u64, u64),
    /// The TCB-signing certificate's validity.
    pub tcb_signing_validity: (u64, u64),
    /// The PCK Platform CA lists the platform's PCK certificate as revoked.
    pub pck_revoked: bool,
}

impl Default for PkiSpec {
    fn default() -> Self {
        PkiSpec { pck_validity: CERTIFICATE_VALIDITY, tcb_signing_validity: CERTIFICATE_VALIDITY, pck_revoked: false }
    }
}

/// A key and the certificate that names it.
pub struct KeyPair {
    /// The private key.
    pub key: SigningKey,
    /// The certificate (DER).
    pub certificate: Vec<u8>,
    name: Name,
}

/// The simulated PKI: its four keys and certificates.
pub struct SimulatedIntelPki {
    /// The root CA (self-signed): the trust anchor the broker is given as `root_ca`.
    pub root: KeyPair,
    /// The PCK Platform CA.
    pub platform_ca: KeyPair,
    /// The platform's PCK key and certificate: signs the quoting enclave's report.
    pub pck: KeyPair,
    /// The TCB-signing key and certificate: signs the TCB info and the QE identity.
    pub tcb_signing: KeyPair,
    spec: PkiSpec,
}

/// The PCK certificate's serial number.
const PCK_SERIAL: u8 = 4;

fn name(common_name: &str) -> Name {
    format!("CN={common_name},O=Ampoule simulated platform,C=ZZ").parse().expect("a valid name")
}

fn time(seconds: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(std::time::Duration::from_secs(seconds)).expect("before 2050"))
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let point = key.verifying_key().to_encoded_point(false);
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: EC_PUBLIC_KEY, parameters: Some((&PRIME256V1).into()) },
        subject_public_key: BitString::from_bytes(point.as_bytes()).expect("a point fits"),
    }
}

/// The key identifier of `key`: the leftmost 160 bits of the SHA-256 of its point (RFC 7093 §2, method 1).
fn key_identifier(key: &SigningKey) -> OctetString {
    let digest = Sha256::digest(key.verifying_key().to_encoded_point(false).as_bytes());
    OctetString::new(&digest[..20]).expect("20 bytes")
}

fn signature_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA256, parameters: None }
}

/// The DER of an ECDSA P-256/SHA-256 signature of `message` by `key`.
fn sign(key: &SigningKey, message: &[u8]) -> BitString {
    let signature: Signature = key.sign(message);
    BitString::from_bytes(signature.to_der().as_bytes()).expect("a signature fits")
}

/// `extension` encoded for a certificate or a CRL issued by `issuer`, critical when RFC 5280 says so.
fn encoded<E: AsExtension>(extension: E, issuer: &Name) -> Extension {
    extension.to_extension(issuer, &[]).expect("an extension encodes")
}

fn any_of<T: Tagged + EncodeValue>(value: T) -> Any {
    Any::encode_from(&value).expect("a value encodes")
}

/// A DER SEQUENCE of `items`.
fn sequence(items: &[Any]) -> Any {
    let content: Vec<u8> = items.iter().flat_map(|item| item.to_der().expect("an item encodes")).collect();
    Any::new(Tag::Sequence, content).expect("a sequence encodes")
}

/// One entry of the SGX extension: SEQUENCE { OID, value }.
fn sgx_entry(oid: ObjectIdentifier, value: Any) -> Any {
    sequence(&[any_of(oid), value])
}

fn octets(bytes: &[u8]) -> Any {
    any_of(OctetString::new(bytes).expect("short octets"))
}

/// The SGX extension of a PCK certificate issued by a Platform CA: PPID, TCB (16 components, PCESVN, CPUSVN),
/// PCE-ID, FMSPC, SGX type (Scalable), platform instance ID and configuration.
fn sgx_extension(platform: &PlatformTcb) -> Extension {
    let mut tcb: Vec<Any> = (1..=16u8)
        .map(|n| sgx_entry(sgx_oid::tcb_component(n), any_of(platform.cpu_svn[usize::from(n) - 1])))
        .collect();
    tcb.push(sgx_entry(sgx_oid::PCESVN, any_of(platform.pce_svn)));
    tcb.push(sgx_entry(sgx_oid::CPUSVN, octets(&platform.cpu_svn)));
    let configuration = sequence(&[
        sgx_entry(sgx_oid::DYNAMIC_PLATFORM, any_of(false)),
        sgx_entry(sgx_oid::CACHED_KEYS, any_of(true)),
        sgx_entry(sgx_oid::SMT_ENABLED, any_of(false)),
    ]);
    let extension = sequence(&[
        sgx_entry(sgx_oid::PPID, octets(&[0x9a; 16])),
        sgx_entry(sgx_oid::TCB, sequence(&tcb)),
        sgx_entry(sgx_oid::PCE_ID, octets(&platform.pce_id)),
        sgx_entry(sgx_oid::FMSPC, octets(&platform.fmspc)),
        sgx_entry(sgx_oid::SGX_TYPE, Any::new(Tag::Enumerated, [1u8]).expect("an ENUMERATED")),
        sgx_entry(sgx_oid::PLATFORM_INSTANCE_ID, octets(&[0x1d; 16])),
        sgx_entry(sgx_oid::CONFIGURATION, configuration),
    ]);
    Extension {
        extn_id: sgx_oid::SGX_EXTENSIONS,
        critical: false,
        extn_value: OctetString::new(extension.to_der().expect("the extension encodes")).expect("it fits"),
    }
}

/// What a certificate is for: a CA (path length), or an end entity with extra extensions.
enum Role {
    Authority { path_len: Option<u8> },
    EndEntity { extensions: Vec<Extension> },
}

/// A certificate for `subject` naming `subject_key`, signed by `issuer` (itself for the root).
fn certificate(
    serial: u8,
    issuer: (&Name, &SigningKey),
    subject: &Name,
    subject_key: &SigningKey,
    role: Role,
    valid: (u64, u64),
) -> Vec<u8> {
    let (issuer_name, issuer_key) = issuer;
    let (ca, path_len_constraint, usages, mut extra) = match role {
        Role::Authority { path_len } => (true, path_len, KeyUsages::KeyCertSign | KeyUsages::CRLSign, Vec::new()),
        Role::EndEntity { extensions } => {
            (false, None, KeyUsages::DigitalSignature | KeyUsages::NonRepudiation, extensions)
        }
    };
    let mut extensions = vec![
        encoded(BasicConstraints { ca, path_len_constraint }, subject),
        encoded(KeyUsage(usages), subject),
        encoded(SubjectKeyIdentifier(key_identifier(subject_key)), subject),
        encoded(authority_key_identifier(issuer_key), subject),
    ];
    extensions.append(&mut extra);
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).expect("a one-byte serial"),
        signature: signature_algorithm(),
        issuer: issuer_name.clone(),
        validity: Validity { not_before: time(valid.0), not_after: time(valid.1) },
        subject: subject.clone(),
        subject_public_key_info: spki(subject_key),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signature = sign(issuer_key, &tbs.to_der().expect("the TBS encodes"));
    Certificate { tbs_certificate: tbs, signature_algorithm: signature_algorithm(), signature }
        .to_der()
        .expect("a certificate encodes")
}

fn authority_key_identifier(issuer_key: &SigningKey) -> AuthorityKeyIdentifier {
    AuthorityKeyIdentifier {
        key_identifier: Some(key_identifier(issuer_key)),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    }
}

fn pem(der: &[u8]) -> String {
    use x509_cert::der::Decode;
    Certificate::from_der(der).expect("our own certificate").to_pem(LineEnding::LF).expect("PEM encodes")
}

impl SimulatedIntelPki {
    /// The PKI for `platform`, as Intel's would certify it.
    pub fn new(platform: &PlatformTcb) -> SimulatedIntelPki {
        SimulatedIntelPki::with_spec(platform, PkiSpec::default())
    }

    /// The PKI as `spec` describes it (the same keys).
    pub fn with_spec(platform: &PlatformTcb, spec: PkiSpec) -> SimulatedIntelPki {
        let key = |byte: u8| SigningKey::from_slice(&[byte; 32]).expect("a valid P-256 scalar");
        let (root_key, platform_key, pck_key, tcb_key) = (key(0x21), key(0x22), key(0x23), key(0x24));
        let root_name = name("Ampoule Simulated SGX Root CA");
        let root_role = Role::Authority { path_len: None };
        let root = certificate(1, (&root_name, &root_key), &root_name, &root_key, root_role, CERTIFICATE_VALIDITY);
        let platform_name = name("Ampoule Simulated SGX PCK Platform CA");
        let platform_role = Role::Authority { path_len: Some(0) };
        let issuer = (&root_name, &root_key);
        let platform_ca = certificate(2, issuer, &platform_name, &platform_key, platform_role, CERTIFICATE_VALIDITY);
        let tcb_name = name("Ampoule Simulated SGX TCB Signing");
        let tcb_role = Role::EndEntity { extensions: Vec::new() };
        let tcb_signing = certificate(3, issuer, &tcb_name, &tcb_key, tcb_role, spec.tcb_signing_validity);
        let pck_name = name("Ampoule Simulated SGX PCK Certificate");
        let pck_role = Role::EndEntity { extensions: vec![sgx_extension(platform)] };
        let pck_issuer = (&platform_name, &platform_key);
        let pck = certificate(PCK_SERIAL, pck_issuer, &pck_name, &pck_key, pck_role, spec.pck_validity);
        SimulatedIntelPki {
            root: KeyPair { key: root_key, certificate: root, name: root_name },
            platform_ca: KeyPair { key: platform_key, certificate: platform_ca, name: platform_name },
            pck: KeyPair { key: pck_key, certificate: pck, name: pck_name },
            tcb_signing: KeyPair { key: tcb_key, certificate: tcb_signing, name: tcb_name },
            spec,
        }
    }

    /// The PCK certificate chain as the quoting enclave puts it into a quote (certification data type 5): PEM,
    /// the PCK certificate, then the Platform CA, then the root.
    pub fn pck_chain_pem(&self) -> String {
        [&self.pck, &self.platform_ca, &self.root].iter().map(|pair| pem(&pair.certificate)).collect()
    }

    /// The TCB-signing chain as the PCS serves it with the TCB info and the QE identity (PEM: signer, root).
    pub fn tcb_signing_chain_pem(&self) -> String {
        pem(&self.tcb_signing.certificate) + &pem(&self.root.certificate)
    }

    /// The PCK CRL's issuer chain (PEM: the Platform CA, the root).
    pub fn platform_ca_chain_pem(&self) -> String {
        pem(&self.platform_ca.certificate) + &pem(&self.root.certificate)
    }

    /// The root CA's CRL (DER), revoking nothing, dated `dates`.
    pub fn root_ca_crl(&self, dates: Dates) -> Vec<u8> {
        crl(&self.root, 1, &[], dates)
    }

    /// The PCK Platform CA's CRL (DER), dated `dates`: it revokes the platform's PCK certificate if the spec
    /// says so.
    pub fn pck_crl(&self, dates: Dates) -> Vec<u8> {
        let revoked: &[u8] = if self.spec.pck_revoked { &[PCK_SERIAL] } else { &[] };
        crl(&self.platform_ca, 1, revoked, dates)
    }
}

/// A CRL (version 2) issued by `issuer` with CRL number `number`, revoking the serials `revoked`.
fn crl(issuer: &KeyPair, number: u8, revoked: &[u8], dates: Dates) -> Vec<u8> {
    let revoked_certificates: Vec<RevokedCert> = revoked
        .iter()
        .map(|&serial| RevokedCert {
            serial_number: SerialNumber::new(&[serial]).expect("a one-byte serial"),
            revocation_date: time(dates.issued),
            crl_entry_extensions: None,
        })
        .collect();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signature_algorithm(),
        issuer: issuer.name.clone(),
        this_update: time(dates.issued),
        next_update: Some(time(dates.next_update)),
        revoked_certificates: (!revoked_certificates.is_empty()).then_some(revoked_certificates),
        crl_extensions: Some(vec![
            encoded(CrlNumber(Uint::new(&[number]).expect("a one-byte number")), &issuer.name),
            encoded(authority_key_identifier(&issuer.key), &issuer.name),
        ]),
    };
    let signature = sign(&issuer.key, &tbs.to_der().expect("the TBS encodes"));
    CertificateList { tbs_cert_list: tbs, signature_algorithm: signature_algorithm(), signature }
        .to_der()
        .expect("a CRL encodes")
}
