//! Sealing is a deploy, not a build: `cargo xtask seal` makes a fresh key in the registry and a new blob outside
//! the image, and binds the key for (the image's measurement, the blob's digest) only. Sealing again rotates: a new
//! version of the key, bound to the new blob, the old version retired; the state's standalone broker then releases
//! the new version to a launch bound to the new blob, and nothing to a launch bound to the old one; the image is
//! byte for byte the same throughout. The guest side is the loader's real dance and load with the simulated
//! attester over loopback (QEMU is not needed for what is tested here).

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use broker::Broker;
use broker::config::Config;
use broker::registry::KeyState;
use loader::model_load::{self, BlobSource, Expected, LoadError, ModelBound, NotDelivered};
use loader::{LoaderError, ReleasedKey, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;
use protocol::sealed_blob::BlobDigest;
use protocol::tee::Tee;
use xtask::broker_state::BrokerState;
use xtask::dance::plain_measurement;
use xtask::image::{self, BuildOptions, Variant};
use xtask::manifest::ModelManifest;
use xtask::model_delivery::header_of;
use xtask::sealing::seal_and_register_with;

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

/// Runs the dance of a plain-mode launch of `measurement` bound to `digest`, asking for `key_id`, against the
/// standalone broker the state's `broker.toml` describes.
fn dance(
    measurement: [u8; 48],
    digest: &BlobDigest,
    key_id: [u8; 16],
    state: &BrokerState,
) -> Result<ReleasedKey, LoaderError<std::io::Error>> {
    let broker = Arc::new(Broker::from_config_file(&state.dir.join("broker.toml")).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let serving = {
        let (broker, stop) = (broker.clone(), stop.clone());
        std::thread::spawn(move || broker::server::serve(broker, listener, stop))
    };
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let host_data = digest[..32].try_into().unwrap();
    let mut attester = SimulatedAttester::new(measurement).with_host_data(host_data);
    let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    let result = obtain_key(&mut StreamTransport(stream), &mut attester, &mut rng, key_id, |_| ());
    stop.store(true, Ordering::SeqCst);
    broker::server::wake(([127, 0, 0, 1], port).into());
    serving.join().unwrap().unwrap();
    result
}

/// Version `version` of `key_id` in `state`'s registry, unwrapped by the token.
fn key_version(state: &BrokerState, key_id: &[u8; 16], version: u32) -> [u8; 32] {
    let (custody, _store, mut registry) = state.open().unwrap();
    let wrapped = registry.versions(key_id).unwrap().into_iter().find(|v| v.version == version).unwrap().wrapped;
    *custody.unwrap(key_id, version, &wrapped).unwrap()
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
    let (blob, state) = (dir.join("models/mlp.sealed"), BrokerState::scratch(&dir.join("state")));
    let weights = root.join(mlp().weights());

    let a = seal_and_register_with(mlp().model_id(), &weights, &blob, &state, measurement).unwrap();
    let blob_a = std::fs::read(&blob).unwrap();
    let b = seal_and_register_with(mlp().model_id(), &weights, &blob, &state, measurement).unwrap();
    let blob_b = std::fs::read(&blob).unwrap();
    assert_eq!(build("image-after"), before, "sealing changed the image");
    assert_ne!(a.digest, b.digest);
    assert_eq!((a.key_id, a.version, b.version), (b.key_id, 1, 2), "sealing again makes a new version of the key");
    assert_eq!(header_of(&blob).unwrap().key_id, b.key_id);
    let versions = state.open().unwrap().2.versions(&a.key_id).unwrap();
    let states: Vec<_> = versions.iter().map(|v| (v.version, v.state)).collect();
    assert_eq!(states, [(1, KeyState::Retired), (2, KeyState::Active)]);
    let key_a = key_version(&state, &a.key_id, 1);

    // The new blob's launch gets the new version, which opens the new blob only.
    let key_b = dance(measurement, &b.digest, b.key_id, &state).unwrap();
    assert_eq!(key_b.key_id, b.key_id);
    assert_eq!(*key_b.key, key_version(&state, &b.key_id, 2));
    assert_eq!(load(&blob_b, &b.digest, &key_b.key), Ok(std::fs::read(&weights).unwrap().len()));
    assert!(matches!(load(&blob_a, &a.digest, &key_b.key), Err(LoadError::Chunk(_))));
    // The old blob's launch: its version is retired, so the broker refuses; the old key opens nothing new.
    let refused = dance(measurement, &a.digest, a.key_id, &state).err();
    assert!(matches!(refused, Some(LoaderError::Refused(RefusalCode::HostDataMismatch))), "{refused:?}");
    assert!(matches!(load(&blob_b, &b.digest, &key_a), Err(LoadError::Chunk(_))));
    // A launch bound to the new blob that asks for a key it is not bound to.
    let other_key = dance(measurement, &b.digest, [0x5a; 16], &state).err();
    assert!(matches!(other_key, Some(LoaderError::Refused(RefusalCode::KeyNotForMeasurement))), "{other_key:?}");
    // And the guest itself refuses the new blob for a launch bound to the old one, before any key.
    assert_eq!(load(&blob_b, &a.digest, &key_b.key), Err(LoadError::NotThisLaunch));
}

#[test]
fn sealing_one_model_keeps_the_other_models_deployments() {
    let root = xtask::paths::repo_root();
    let dir = xtask::paths::target_dir(&root).join("test-rotation-two-models");
    let _ = std::fs::remove_dir_all(&dir);
    let state = BrokerState::scratch(&dir.join("state"));
    let (weights, measurement) = (root.join(mlp().weights()), [0x3c; 48]);
    let other =
        seal_and_register_with([0x0f; 16], &weights, &dir.join("models/other.sealed"), &state, measurement).unwrap();
    let first = seal_and_register_with(mlp().model_id(), &weights, &dir.join("models/mlp.sealed"), &state, measurement)
        .unwrap();
    let second =
        seal_and_register_with(mlp().model_id(), &weights, &dir.join("models/mlp.sealed"), &state, measurement)
            .unwrap();
    let mut registry = state.open().unwrap().2;
    let active = |registry: &mut broker::registry::Registry, key_id, version| {
        registry.versions(key_id).unwrap().iter().any(|v| v.version == version && v.state == KeyState::Active)
    };
    assert!(active(&mut registry, &other.key_id, 1) && active(&mut registry, &second.key_id, 2));
    assert!(!active(&mut registry, &first.key_id, 1));
    let policy = std::fs::read_to_string(state.dir.join("policy.toml")).unwrap();
    assert_eq!(policy.matches("[[allow]]").count(), 2, "{policy}");
    for (sealing, pinned) in [(&other, true), (&first, false), (&second, true)] {
        assert_eq!(policy.contains(&hex::encode(sealing.digest)), pinned, "{policy}");
    }
    Config::load(&state.dir.join("policy.toml")).expect("the state's policy.toml loads");
    Config::load(&state.dir.join("broker.toml")).expect("the state's broker.toml loads");
}

fn mlp() -> ModelManifest {
    xtask::manifest::named(&xtask::paths::repo_root(), "mlp").unwrap()
}
