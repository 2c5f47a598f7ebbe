//! Key custody: a model key exists outside the broker's memory only wrapped by a key-encryption key (KEK) that lives
//! in a PKCS#11 token and cannot leave it. The KEK is an AES-256 key generated inside the token as CKA_SENSITIVE and
//! not CKA_EXTRACTABLE: the token encrypts and decrypts with it and never hands it out. A model key is wrapped with
//! the token's AES-GCM under a fresh 96-bit IV, its id and version as additional data, so a wrapped key opens only
//! as the key it was made for, only in the token that made it, and not at all once a bit of it changes. Unwrapped,
//! it is in the broker's memory (`Zeroizing`) for the instant it takes to seal it to a guest.
//!
//! Any PKCS#11 module works (`[custody]` in the broker's configuration: the module's path and the token's label);
//! the PIN comes from a file of mode 0600 or the environment, never from the configuration. Development and tests
//! use SoftHSM2 ([`softhsm`]).

pub mod softhsm;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail, ensure};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use protocol::message::KeyId;
use serde::Deserialize;
use zeroize::Zeroizing;

/// The KEK's label in the token.
pub const KEK_LABEL: &str = "ampoule-kek";
/// The environment variable a PIN may come from instead of a file.
pub const PIN_ENV: &str = "AMPOULE_TOKEN_PIN";
/// The additional data's prefix: what the wrapped bytes are.
const AAD_PREFIX: &[u8] = b"ampoule-model-key/v1";
/// AES-GCM's IV and tag, in bytes.
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// A wrapped model key: IV, the 32 encrypted bytes, the tag.
pub const WRAPPED_LEN: usize = IV_LEN + 32 + TAG_LEN;

/// Where the token is (`[custody]` in the broker's configuration).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The PKCS#11 module (a shared library: SoftHSM2's, or an HSM vendor's).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// A file holding the user PIN (mode 0600); without it the PIN comes from [`PIN_ENV`].
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
}

impl TokenConfig {
    /// The user PIN: the file's first line (the file must be the owner's alone), or [`PIN_ENV`].
    pub fn pin(&self) -> Result<AuthPin> {
        let text = match &self.pin_file {
            Some(path) => {
                check_private(path)?;
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => Zeroizing::new(
                std::env::var(PIN_ENV)
                    .with_context(|| format!("no pin_file in [custody] and no {PIN_ENV} in the environment"))?,
            ),
        };
        let pin = text.lines().next().unwrap_or_default().trim();
        ensure!(!pin.is_empty(), "the token PIN is empty");
        Ok(AuthPin::new(pin.into()))
    }
}

/// Refuses a secret file that others can read or write.
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
    ensure!(mode & 0o077 == 0, "{} has mode {:o}: a PIN file must be the owner's alone (0600)", path.display(), mode);
    Ok(())
}

/// Why a wrapped key did not open. Says which, never what the bytes were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwrapError {
    /// Not [`WRAPPED_LEN`] bytes.
    Malformed,
    /// The token refused it: another token's KEK, another key's id or version, or changed bytes.
    Refused,
}

/// A logged-in session with the token and its KEK.
pub struct KeyCustody {
    session: Mutex<Session>,
    kek: ObjectHandle,
    // The module, kept loaded while its session is open.
    _pkcs11: Pkcs11,
}

impl KeyCustody {
    /// Opens the token and finds its KEK; fails if the token has none ([`KeyCustody::open_or_create_kek`] makes
    /// one: an administrative act).
    pub fn open(config: &TokenConfig) -> Result<KeyCustody> {
        let (pkcs11, session) = login(config)?;
        let kek = find_kek(&session)?.with_context(|| format!("token {:?} has no {KEK_LABEL}", config.token))?;
        Ok(KeyCustody { session: Mutex::new(session), kek, _pkcs11: pkcs11 })
    }

    /// Opens the token and finds its KEK, generating it in the token first if there is none.
    pub fn open_or_create_kek(config: &TokenConfig) -> Result<KeyCustody> {
        let (pkcs11, session) = login(config)?;
        let kek = match find_kek(&session)? {
            Some(kek) => kek,
            None => generate_kek(&session)?,
        };
        Ok(KeyCustody { session: Mutex::new(session), kek, _pkcs11: pkcs11 })
    }

    /// Wraps `key`, version `version` of key `key_id`, under the KEK.
    pub fn wrap(&self, key_id: &KeyId, version: u32, key: &[u8; 32]) -> Result<Vec<u8>> {
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let aad = additional_data(key_id, version);
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let mut iv_param = iv;
        let mechanism = Mechanism::AesGcm(GcmParams::new(&mut iv_param, &aad, (TAG_LEN as u64 * 8).into())?);
        let sealed = session.encrypt(&mechanism, self.kek, key).context("the token refused to wrap")?;
        ensure!(sealed.len() == 32 + TAG_LEN, "the token's AES-GCM gave {} bytes for 32", sealed.len());
        Ok([&iv[..], &sealed].concat())
    }

    /// Opens a wrapped key as version `version` of key `key_id`.
    pub fn unwrap(&self, key_id: &KeyId, version: u32, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, UnwrapError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(UnwrapError::Malformed);
        }
        let (iv, sealed) = wrapped.split_at(IV_LEN);
        let mut iv: [u8; IV_LEN] = iv.try_into().map_err(|_| UnwrapError::Malformed)?;
        let aad = additional_data(key_id, version);
        let mechanism =
            GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into()).map_err(|_| UnwrapError::Malformed)?;
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let opened = Zeroizing::new(
            session.decrypt(&Mechanism::AesGcm(mechanism), self.kek, sealed).map_err(|_| UnwrapError::Refused)?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if opened.len() != key.len() {
            return Err(UnwrapError::Refused);
        }
        key.copy_from_slice(&opened);
        Ok(key)
    }

    /// The KEK's value as the token answers a request to read it: `None` when it refuses, which it must.
    pub fn try_read_kek(&self) -> Option<Vec<u8>> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let attributes = session.get_attributes(self.kek, &[cryptoki::object::AttributeType::Value]).ok()?;
        attributes.into_iter().find_map(|a| match a {
            Attribute::Value(value) => Some(value),
            _ => None,
        })
    }
}

/// `AAD_PREFIX | key id | version (big-endian)`.
fn additional_data(key_id: &KeyId, version: u32) -> Vec<u8> {
    [AAD_PREFIX, &key_id[..], &version.to_be_bytes()].concat()
}

/// The PKCS#11 module at `path`, loaded and initialized once per process (a module is process-global state: a
/// second `C_Initialize` is refused) and kept for the process's life; its tokens' sessions are independent.
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pkcs11)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(pkcs11.clone());
    }
    let pkcs11 = Pkcs11::new(path).with_context(|| format!("loading the PKCS#11 module {}", path.display()))?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).context("initializing the module")?;
    modules.push((path.to_path_buf(), pkcs11.clone()));
    Ok(pkcs11)
}

fn login(config: &TokenConfig) -> Result<(Pkcs11, Session)> {
    let pkcs11 = module(&config.module)?;
    let mut found = None;
    for slot in pkcs11.get_slots_with_token().context("listing the module's tokens")? {
        let info = pkcs11.get_token_info(slot).context("reading a token's label")?;
        if info.label().trim_end() == config.token {
            found = Some(slot);
            break;
        }
    }
    let Some(slot) = found else { bail!("no token labelled {:?} in {}", config.token, config.module.display()) };
    let session = pkcs11.open_rw_session(slot).context("opening a session with the token")?;
    match session.login(UserType::User, Some(&config.pin()?)) {
        // A login is the application's, not the session's (PKCS#11, C_Login): while another session of this process is
        // logged in to the token, this one is too.
        Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) | Ok(()) => Ok((pkcs11, session)),
        Err(e) => Err(e).context("logging in to the token"),
    }
}

fn find_kek(session: &Session) -> Result<Option<ObjectHandle>> {
    let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(KEK_LABEL.into())];
    let found = session.find_objects(&template).context("searching the token for its KEK")?;
    ensure!(found.len() <= 1, "the token holds {} keys labelled {KEK_LABEL}", found.len());
    Ok(found.first().copied())
}

fn generate_kek(session: &Session) -> Result<ObjectHandle> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Label(KEK_LABEL.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
    ];
    session.generate_key(&Mechanism::AesKeyGen, &template).context("generating the KEK in the token")
}

#[cfg(test)]
mod tests;
