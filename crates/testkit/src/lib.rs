//! Test support: a real PostgreSQL server for the suites that need one.
//!
//! [`PgServer::start`] runs `initdb` (once per machine and PostgreSQL
//! version: the cluster is kept as a template under the temp dir and copied)
//! and `pg_ctl start` in a fresh temp dir, on a free loopback port, and stops
//! the server when dropped. The binaries come from `PEEDY_PG_BIN` (a
//! directory), else `PATH`, else Debian's `/usr/lib/postgresql/<version>/bin`.
//! Without them the calling test fails with the install hint: a suite that
//! needs PostgreSQL never passes silently without it.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI), the
//! server runs as the `postgres` user (which Debian's package creates) via
//! `runuser`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure is a failed test
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// How to get the binaries, said once per failure.
pub const INSTALL_HINT: &str = "PostgreSQL's server binaries (initdb, pg_ctl, postgres) were not found: \
install them (Debian: `apt-get install postgresql`; .ci/run does) or point PEEDY_PG_BIN at their directory";

/// A PostgreSQL server in a temp dir, stopped (immediately) on drop.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<String>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("data", &self.data_dir())
            .field("port", &self.port)
            .finish()
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let has = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("PEEDY_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `bin/program args` as `run_as` (if set).
fn command(bin: &Path, run_as: Option<&str>, program: &str) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(user).arg("--").arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    }
}

fn chown_to(path: &Path, user: &str) {
    check(
        "chown",
        Command::new("chown").arg("-R").arg(user).arg(path).output(),
    );
}

/// The initdb'd cluster every server copies (initdb takes seconds; a copy
/// takes milliseconds).
fn template(bin: &Path, run_as: Option<&str>) -> PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let version = check(
                "postgres --version",
                Command::new(bin.join("postgres")).arg("--version").output(),
            );
            let version = String::from_utf8_lossy(&version.stdout)
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>();
            let path = std::env::temp_dir().join(format!(
                "peedy-pg-template-{version}-{}",
                run_as.unwrap_or("self")
            ));
            if path.join("PG_VERSION").is_file() {
                return path;
            }
            // Made aside and renamed into place: test binaries run at once.
            let staging = tempfile::Builder::new()
                .prefix("peedy-pg-initdb-")
                .tempdir()
                .unwrap()
                .keep();
            let data = staging.join("data");
            if let Some(user) = run_as {
                chown_to(&staging, user);
            }
            check(
                "initdb",
                command(bin, run_as, "initdb")
                    .arg("-D")
                    .arg(&data)
                    .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
                    .args(["--locale=C", "--no-sync"])
                    .output(),
            );
            if std::fs::rename(&data, &path).is_err() && !path.join("PG_VERSION").is_file() {
                panic!("could not move the initdb template to {}", path.display());
            }
            let _ = std::fs::remove_dir_all(&staging);
            path
        })
        .clone()
}

impl PgServer {
    /// Starts a fresh server (panics with [`INSTALL_HINT`] when PostgreSQL
    /// is not installed).
    pub fn start() -> PgServer {
        let bin = find_bin_dir().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let run_as = running_as_root().then(|| "postgres".to_owned());
        let template = template(&bin, run_as.as_deref());
        let dir = tempfile::Builder::new()
            .prefix("peedy-pg-")
            .tempdir()
            .unwrap();
        check(
            "copy the template cluster",
            Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(dir.path().join("data"))
                .output(),
        );
        if let Some(user) = &run_as {
            chown_to(dir.path(), user);
        }
        let port = free_port();
        let server = PgServer {
            bin,
            dir,
            port,
            run_as,
        };
        server.start_again();
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self) -> Command {
        let mut c = command(&self.bin, self.run_as.as_deref(), "pg_ctl");
        c.arg("-D").arg(self.data_dir());
        c
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port
    /// and data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        check(
            "pg_ctl start",
            self.pg_ctl()
                .args(["-w", "-t", "60", "-o", &options, "-l"])
                .arg(self.dir.path().join("server.log"))
                .arg("start")
                .output(),
        );
        self.watch_this_process();
    }

    /// A server outlives a test process that is killed, or one that keeps
    /// it in a `static` (statics are never dropped): a small shell loop stops
    /// it once this process is gone.
    fn watch_this_process(&self) {
        let stop = format!(
            "{} -D '{}' -m immediate stop",
            match &self.run_as {
                Some(user) => format!(
                    "runuser -u {user} -- '{}'",
                    self.bin.join("pg_ctl").display()
                ),
                None => format!("'{}'", self.bin.join("pg_ctl").display()),
            },
            self.data_dir().display()
        );
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{}'",
            std::process::id(),
            self.dir.path().display()
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    /// One server for the whole test binary, started on first use and
    /// stopped after the process exits; give each test its own
    /// [`fresh_database`](Self::fresh_database).
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    /// Stops the server: `fast` (clients are disconnected, a clean
    /// shutdown), as an operator restarting the database would.
    pub fn stop(&self) {
        check(
            "pg_ctl stop",
            self.pg_ctl().args(["-w", "-m", "fast", "stop"]).output(),
        );
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the `postgres` database (superuser, no password).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database and returns its URL (one per test, so
    /// tests sharing a server do not see each other's rows).
    pub async fn fresh_database(&self) -> String {
        let name = format!("peedy_test_{:016x}", rand::random::<u64>());
        let admin = sqlx::PgPool::connect(&self.url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        self.url_of(&name)
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_answers_restarts_and_makes_databases() {
        let pg = PgServer::start();
        let url = pg.fresh_database().await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one, 1);
        pool.close().await;
        pg.stop();
        // One connection attempt (a pool would keep retrying for 30 s).
        use sqlx::Connection as _;
        assert!(
            sqlx::PgConnection::connect(&url).await.is_err(),
            "stopped server answered"
        );
        pg.start_again();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let (two,): (i32,) = sqlx::query_as("SELECT 2").fetch_one(&pool).await.unwrap();
        assert_eq!(two, 2);
    }
}
