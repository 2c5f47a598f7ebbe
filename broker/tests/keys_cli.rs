//! `ampoule-broker keys ...` end to end: a SoftHSM2 token of the test's own (the child processes get its
//! configuration in their environment) and a SQLite registry; every command, the bad inputs, the audit trail, and
//! that no key appears in plaintext in anything the commands leave behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use broker::custody::softhsm::{CONF_ENV, SoftHsm};

struct Setup {
    dir: PathBuf,
    config: PathBuf,
    softhsm: SoftHsm,
}

fn setup(name: &str) -> Setup {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "target", "keys-cli-tests", name].iter().collect();
    let _ = std::fs::remove_dir_all(&dir);
    let softhsm = SoftHsm::ensure(&dir.join("softhsm")).unwrap();
    let token = softhsm.ensure_token("keys").unwrap();
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\naudit_log = \"audit.jsonl\"\n\n[custody]\nmodule = \"{}\"\ntoken = \"keys\"\n\
             pin_file = \"{}\"\n\n[store]\nsqlite = \"registry.db\"\n",
            token.module.display(),
            token.pin_file.unwrap().display()
        ),
    )
    .unwrap();
    Setup { dir, config, softhsm }
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ampoule-broker"))
            .arg("--config")
            .arg(&self.config)
            .arg("keys")
            .args(args)
            .env(CONF_ENV, self.softhsm.conf())
            .output()
            .unwrap()
    }

    /// The command's JSON lines; it must succeed.
    fn ok(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The command's error; it must fail.
    fn refused(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

const MEASUREMENT: &str =
    "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";
const DIGEST: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";

#[test]
fn every_lifecycle_command_and_its_bad_inputs() {
    let setup = setup("lifecycle");
    let created = setup.ok(&["create"]);
    let key_id = created[0]["key_id"].as_str().unwrap().to_string();
    assert_eq!(created[0]["version"], 1);
    let bind = |version: &str, tee: &str, measurement: &str| {
        ["bind", &key_id, "--version", version, "--tee", tee, "--measurement", measurement, "--model-digest", DIGEST]
            .map(str::to_string)
    };
    setup.ok(&args(&bind("1", "plain", MEASUREMENT)));
    setup.ok(&args(&bind("1", "snp", MEASUREMENT)));
    // Bad inputs: each a clear error, nothing changed.
    assert!(setup.refused(&args(&bind("1", "plain", MEASUREMENT))).contains("exists"));
    assert!(setup.refused(&args(&bind("1", "plain", "4d4d"))).contains("48 bytes"));
    assert!(setup.refused(&args(&bind("1", "plain", "not hex"))).contains("not hex"));
    assert!(setup.refused(&args(&bind("1", "sgx", MEASUREMENT))).contains("unknown tee"));
    assert!(setup.refused(&args(&bind("7", "plain", MEASUREMENT))).contains("no version 7"));
    let unknown = "00112233445566778899aabbccddeeff";
    assert!(setup.refused(&["rotate", unknown]).contains("no key"));
    assert!(setup.refused(&["retire", unknown]).contains("no such active version"));
    assert!(setup.refused(&["retire", "zz"]).contains("not hex"));

    let rotated = setup.ok(&["rotate", &key_id]);
    assert_eq!(rotated[0]["version"], 2);
    setup.ok(&args(&bind("2", "plain", MEASUREMENT)));
    assert_eq!(setup.ok(&["retire", &key_id, "--version", "1"])[0]["retired_versions"], 1);
    assert!(setup.refused(&["retire", &key_id, "--version", "1"]).contains("no such active version"));
    let listed = setup.ok(&["list"]);
    let states: Vec<_> = listed.iter().map(|v| (v["version"].as_u64().unwrap(), v["state"].clone())).collect();
    assert_eq!(states, [(1, "retired".into()), (2, "active".into())]);
    assert_eq!(listed[0]["bindings"].as_array().unwrap().len(), 2);
    assert_eq!(setup.ok(&["retire", &key_id])[0]["retired_versions"], 1);
    assert!(setup.refused(&["retire", &key_id]).contains("no such active version"));
    assert!(setup.refused(&["rotate", &key_id]).contains("retired"));

    // Every act that took effect is audited, in order; the refused ones are not.
    let trail = setup.ok(&["export-audit"]);
    let actions: Vec<_> = trail.iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["create", "bind", "bind", "rotate", "bind", "retire", "retire"]);
    assert!(trail.iter().all(|e| e["actor"] == "admin" && e["key_id"] == key_id.as_str()));
}

#[test]
fn the_old_key_store_is_imported_once_and_no_key_stays_on_disk_in_plaintext() {
    let setup = setup("import");
    let key = [0x6b_u8; 32];
    let old = setup.dir.join("keys.toml");
    let key_id = "0123456789abcdef0123456789abcdef";
    std::fs::write(&old, format!("[keys]\n\"{key_id}\" = \"{}\"\n", hex::encode(key))).unwrap();
    let imported = setup.ok(&["import", old.to_str().unwrap()]);
    assert_eq!(imported[0]["key_id"], key_id);
    assert!(!old.exists(), "the imported key store is still there");
    // A second store naming a key the registry has is refused whole, and left where it is.
    let second = setup.dir.join("keys2.toml");
    let other_id = "fedcba9876543210fedcba9876543210";
    let text =
        format!("[keys]\n\"{key_id}\" = \"{}\"\n\"{other_id}\" = \"{}\"\n", hex::encode(key), hex::encode([7u8; 32]));
    std::fs::write(&second, text).unwrap();
    assert!(setup.refused(&["import", second.to_str().unwrap()]).contains("already in the registry"));
    assert!(second.exists());
    std::fs::remove_file(&second).unwrap();
    assert!(setup.refused(&["import", old.to_str().unwrap()]).contains("reading"));
    assert_eq!(setup.ok(&["list"])[0]["key_id"], key_id);
    // Nothing under the test's directory (registry, WAL, token files, logs) holds the key in plaintext.
    let forms = [key.to_vec(), hex::encode(key).into_bytes(), base64_of(&key).into_bytes()];
    for file in files_under(&setup.dir) {
        let bytes = std::fs::read(&file).unwrap();
        for form in &forms {
            assert!(!bytes.windows(form.len()).any(|w| w == form.as_slice()), "{} holds the key", file.display());
        }
    }
}

fn args(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Standard base64 with padding (the form a key would take in a JSON or TOML file written by another tool).
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
