//! Sealing is a deploy, not a build: `cargo xtask seal` makes a fresh key and a new blob outside the image, and
//! registers the key for (the image's measurement, the blob's digest) only. Sealing again rotates: the state then
//! releases the new key to a launch bound to the new blob, and nothing to a launch bound to the old one; the image
//! is byte for byte the same throughout. The guest side is the loader's real dance and load with the simulated
//! attester over loopback (QEMU is not needed for what is tested here).

use std::net::TcpStream;
use std::path::Path;

use broker::config::Config;
use broker::keys::KeyStore;
use loader::model_load::{self, BlobSource, Expected, LoadError, ModelBound, NotDelivered};
use loader::{LoaderError, ReleasedKey, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;
use protocol::sealed_blob::BlobDigest;
use protocol::tee::Tee;
use xtask::dance::{plain_measurement, serve_in_process};
use xtask::image::{self, BuildOptions, Variant};
use xtask::manifest::ModelManifest;
use xtask::model_delivery::{ModelDelivery, header_of};
use xtask::sealing::{load_keys, seal_and_register_with};

/// A blob as the host would hand it over, from memory.
struct Bytes(Vec<u8>);

impl BlobSource for Bytes {
    fn declared_len(&mut self) -> Result<u64, NotDelivered> {
        Ok(self.0.len() as u64)
    }

    fn read(&mut self, offset: u64, into: &mut [u8]) -> Result<(), NotDelivered> {
        let start = usize::try_from(offset).map_err(|_| NotDelivered)?;
        into.copy_from_slice(self.0.get(start..start + into.len()).ok_or(NotDelivered)?);
        Ok(())
    }
}

/// Runs the dance of a plain-mode launch of `measurement` bound to `digest`, for `blob`'s key, against the broker
/// that `state` describes.
fn dance(
    dir: &Path,
    measurement: [u8; 48],
    digest: &BlobDigest,
    blob: &Path,
    state: &Path,
) -> Result<ReleasedKey, LoaderError<std::io::Error>> {
    let config = Config::load(&state.join("broker.toml")).unwrap();
    let keys = KeyStore::load(&state.join("keys.toml")).unwrap();
    let key_id = header_of(blob).unwrap().key_id;
    let broker = serve_in_process(dir, config, keys, key_id, Some(ModelDelivery::of(blob).unwrap())).unwrap();
    let stream = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    let host_data = digest[..32].try_into().unwrap();
    let mut attester = SimulatedAttester::new(measurement).with_host_data(host_data);
    let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    let result = obtain_key(&mut StreamTransport(stream), &mut attester, &mut rng, key_id, |_| ());
    broker.stop();
    result
}

/// The guest's load of `blob` for a launch bound to `digest`, with `key`.
fn load(blob: &[u8], digest: &BlobDigest, key: &[u8; 32]) -> Result<usize, LoadError> {
    let mut source = Bytes(blob.to_vec());
    let mut host_data = [0u8; 48];
    host_data[..32].copy_from_slice(&digest[..32]);
    let models = [ModelBound { model_id: mlp().model_id(), max_plaintext_len: 1 << 20 }];
    let expected = Expected { models: &models, tee: Tee::Plain, host_data };
    let header = model_load::read_header(&mut source, &expected)?;
    model_load::load(&mut source, &header, key).map(|weights| weights.len())
}

#[test]
fn sealing_again_rotates_the_key_and_leaves_the_image_as_it_was() {
    let root = xtask::paths::repo_root();
    let dir = xtask::paths::target_dir(&root).join("test-rotation");
    let _ = std::fs::remove_dir_all(&dir);
    let build = |name: &str| {
        let options = BuildOptions { out_dir: dir.join(name), ..BuildOptions::for_checkout(&root) };
        image::build(Variant::Release, &options).unwrap().bytes
    };
    let before = build("image-before");
    let measurement = plain_measurement(&before);
    let (blob, state) = (dir.join("models/mlp.sealed"), dir.join("state"));
    let weights = root.join(mlp().weights());

    let a = seal_and_register_with(mlp().model_id(), &weights, &blob, &state, measurement).unwrap();
    let blob_a = std::fs::read(&blob).unwrap();
    let key_a = **load_keys(&state).unwrap().get(&a.key_id).unwrap();
    let b = seal_and_register_with(mlp().model_id(), &weights, &blob, &state, measurement).unwrap();
    let blob_b = std::fs::read(&blob).unwrap();
    assert_eq!(build("image-after"), before, "sealing changed the image");
    assert_ne!(a.digest, b.digest);
    assert_ne!(a.key_id, b.key_id);

    // The new blob's launch gets the new key, which opens the new blob only.
    let key_b = dance(&dir.join("b"), measurement, &b.digest, &blob, &state).unwrap();
    assert_eq!(key_b.key_id, b.key_id);
    assert_eq!(load(&blob_b, &b.digest, &key_b.key), Ok(std::fs::read(&weights).unwrap().len()));
    assert!(matches!(load(&blob_a, &a.digest, &key_b.key), Err(LoadError::Chunk(_))));
    // The old blob's launch: its digest is no longer registered, so the broker refuses, and the old key is gone.
    std::fs::write(dir.join("old.sealed"), &blob_a).unwrap();
    let refused = dance(&dir.join("a"), measurement, &a.digest, &dir.join("old.sealed"), &state).err();
    assert!(matches!(refused, Some(LoaderError::Refused(RefusalCode::HostDataMismatch))), "{refused:?}");
    assert!(load_keys(&state).unwrap().get(&a.key_id).is_none());
    assert!(matches!(load(&blob_b, &b.digest, &key_a), Err(LoadError::Chunk(_))));
    // A launch bound to the new blob that asks for the old key: the key is not the one the entry binds.
    let old_key = dance(&dir.join("b-a"), measurement, &b.digest, &dir.join("old.sealed"), &state).err();
    assert!(matches!(old_key, Some(LoaderError::Refused(RefusalCode::KeyNotForMeasurement))), "{old_key:?}");
    // And the guest itself refuses the new blob for a launch bound to the old one, before any key.
    assert_eq!(load(&blob_b, &a.digest, &key_b.key), Err(LoadError::NotThisLaunch));
}

#[test]
fn sealing_one_model_keeps_the_other_models_deployments() {
    let root = xtask::paths::repo_root();
    let dir = xtask::paths::target_dir(&root).join("test-rotation-two-models");
    let _ = std::fs::remove_dir_all(&dir);
    let (state, weights, measurement) = (dir.join("state"), root.join(mlp().weights()), [0x3c; 48]);
    let other =
        seal_and_register_with([0x0f; 16], &weights, &dir.join("models/other.sealed"), &state, measurement).unwrap();
    let first = seal_and_register_with(mlp().model_id(), &weights, &dir.join("models/mlp.sealed"), &state, measurement)
        .unwrap();
    let second =
        seal_and_register_with(mlp().model_id(), &weights, &dir.join("models/mlp.sealed"), &state, measurement)
            .unwrap();
    let keys = load_keys(&state).unwrap();
    assert!(keys.get(&other.key_id).is_some() && keys.get(&second.key_id).is_some());
    assert!(keys.get(&first.key_id).is_none());
    let config = std::fs::read_to_string(state.join("broker.toml")).unwrap();
    assert_eq!(config.matches("[[allow]]").count(), 2, "{config}");
    for (sealing, registered) in [(&other, true), (&first, false), (&second, true)] {
        assert_eq!(config.contains(&hex::encode(sealing.digest)), registered, "{config}");
    }
    Config::load(&state.join("broker.toml")).expect("the state's broker.toml loads");
}

fn mlp() -> ModelManifest {
    xtask::manifest::named(&xtask::paths::repo_root(), "mlp").unwrap()
}
