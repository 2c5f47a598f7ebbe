//! A private PostgreSQL cluster for development and tests, from Debian's `postgresql` package: initialized in a
//! directory of its own, listening on 127.0.0.1 only, on a port of its own, its socket in that directory, one role
//! (`ampoule`) with a random password (scram-sha-256; the password in a file of mode 0600), stopped when dropped.
//! PostgreSQL refuses to run as root: a root process runs the server as the package's `postgres` user.
//! Production points the broker at its own PostgreSQL instead (`[store] postgres = "..."`).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use zeroize::Zeroizing;

/// The role the cluster is made with.
pub const ROLE: &str = "ampoule";
/// The system user a root process runs the server as.
const SERVER_USER: &str = "postgres";

/// A running cluster.
pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    password: Zeroizing<String>,
    as_root: bool,
}

impl LocalCluster {
    /// Starts the cluster in `dir` on `port`, initializing it first if `dir` holds none.
    pub fn start(dir: &Path, port: u16) -> Result<LocalCluster> {
        let bin = server_bin()?;
        let as_root = is_root();
        let data = dir.join("data");
        let password_file = dir.join("password");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if !data.join("PG_VERSION").exists() {
            let password = Zeroizing::new(random_hex()?);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&password_file)
                .with_context(|| format!("creating {}", password_file.display()))?;
            std::io::Write::write_all(&mut file, password.as_bytes())?;
            if as_root {
                chown_to_server_user(dir)?;
                chown_to_server_user(&password_file)?;
            }
            let mut initdb = server_command(&bin.join("initdb"), as_root);
            initdb.arg("-D").arg(&data).args(["-U", ROLE, "--auth=scram-sha-256", "--no-instructions", "--pwfile"]);
            initdb.arg(&password_file);
            run(&mut initdb, &dir.join("initdb.log"), "initdb")?;
        }
        let password =
            Zeroizing::new(std::fs::read_to_string(&password_file).context("reading the cluster's password")?);
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=on",
            dir.display()
        );
        let mut start = server_command(&bin.join("pg_ctl"), as_root);
        start.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-o", &options, "-w", "start"]);
        run(&mut start, &dir.join("pg_ctl.log"), "pg_ctl start")?;
        Ok(LocalCluster { bin, dir: dir.to_path_buf(), data, port, password, as_root })
    }

    /// The connection string for the cluster's `postgres` database as its role (it holds the password: never log
    /// it).
    pub fn params(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "host=127.0.0.1 port={} user={ROLE} password={} dbname=postgres connect_timeout=10",
            self.port,
            self.password.as_str()
        ))
    }

    /// The registry's `[store]` for this cluster: the connection string without the password, and the password's
    /// file (mode 0600).
    pub fn store_config(&self) -> super::StoreConfig {
        super::StoreConfig {
            sqlite: None,
            postgres: Some(format!("host=127.0.0.1 port={} user={ROLE} dbname=postgres connect_timeout=10", self.port)),
            password_file: Some(self.dir.join("password")),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let mut stop = server_command(&self.bin.join("pg_ctl"), self.as_root);
        stop.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]);
        let _ = stop.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
    }
}

/// `/usr/lib/postgresql/<newest>/bin`.
fn server_bin() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("no {}: install Debian's postgresql", root.display()))?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!("no PostgreSQL server under {}: install Debian's postgresql", root.display()),
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// `program`, run as [`SERVER_USER`] when this process is root.
fn server_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVER_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_to_server_user(path: &Path) -> Result<()> {
    let status = Command::new("chown").arg(SERVER_USER).arg(path).status().context("running chown")?;
    ensure!(status.success(), "chown {SERVER_USER} {} failed", path.display());
    let mode = if path.is_dir() { 0o700 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn run(command: &mut Command, log: &Path, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("running {what}"))?;
    std::fs::write(log, [output.stdout.as_slice(), output.stderr.as_slice()].concat())?;
    ensure!(output.status.success(), "{what} failed; see {}", log.display());
    Ok(())
}

fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}
