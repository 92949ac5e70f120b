//! A throwaway PostgreSQL server of the test's own, which the test may stop and start
//! (the shared one `scripts/test.sh` starts is not the test's to stop).
//!
//! [`PgServer::start`] finds the server binaries (`pg_config --bindir`, else
//! `/usr/lib/postgresql/15/bin`), runs `initdb` in a fresh temporary directory and
//! starts the server on a free loopback port. `postgres` refuses to run as root, so as
//! root it runs as the unprivileged `postgres` user (created if missing), as
//! `scripts/test.sh` does. [`PgServer::stop`] and [`PgServer::restart`] use `pg_ctl`
//! on the same data directory and port; dropping the server stops it (immediate mode)
//! and removes its directory.
//!
//! The server runs with `fsync=off`: it is thrown away, and its host never loses
//! power here. Stopping it in immediate mode is a server crash (no shutdown
//! checkpoint; WAL recovery on the next start), which keeps every commit made with
//! `synchronous_commit=on` since the OS keeps what the server wrote.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the test server could not be set up, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// No server binaries were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found (pg_config --bindir, \
         /usr/lib/postgresql/15/bin): install PostgreSQL 15's server package"
    )]
    NoBinaries,
    /// A file system step (temporary directory, a free port) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("{command} failed ({status}): {output}")]
    Command {
        /// The command, by name.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed, and the server log's tail where there is one.
        output: String,
    },
}

/// Where the binaries are, or `None`.
fn bindir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    from_config
        .into_iter()
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
        .find(|d| has_all(d))
}

/// True when this process runs as root (`id -u` says 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A running (or stopped) throwaway server.
#[derive(Debug)]
pub struct PgServer {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `Some(user)` when commands run as that user (this process is root).
    run_as: Option<String>,
    user: String,
    running: bool,
}

impl PgServer {
    /// Sets up a server in a new temporary directory and starts it.
    pub fn start() -> Result<PgServer, PgServerError> {
        let bindir = bindir().ok_or(PgServerError::NoBinaries)?;
        let io = |what| move |source| PgServerError::Io { what, source };
        let dir = tempfile::Builder::new()
            .prefix("evlog-pg-")
            .tempdir()
            .map_err(io("creating the server's directory"))?;
        let (run_as, user) = if is_root() {
            let user = "postgres".to_owned();
            let exists = Command::new("id")
                .args(["-u", &user])
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                run(Command::new("useradd").args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    &user,
                ]))?;
            }
            run(Command::new("chown").arg(&user).arg(dir.path()))?;
            (Some(user.clone()), user)
        } else {
            let out = Command::new("id")
                .arg("-un")
                .output()
                .map_err(io("running id -un"))?;
            (None, String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free loopback port"))?
            .port();
        let mut server = PgServer {
            bindir,
            dir,
            port,
            run_as,
            user,
            running: false,
        };
        let data = server.data_dir();
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", &server.user])
            .args(["-A", "trust", "--no-sync", "--encoding=UTF8", "--locale=C"]);
        run(&mut initdb)?;
        server.restart()?;
        Ok(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `bindir/program`, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A URL of the server's `postgres` database, as its superuser.
    pub fn url(&self) -> String {
        format!("postgres://{}@{}/postgres", self.user, self.addr())
    }

    /// Starts the (stopped) server on its port and waits until it accepts
    /// connections (`pg_ctl -w`).
    pub fn restart(&mut self) -> Result<(), PgServerError> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off \
             -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &opts, "-w", "-t", "30", "start"]);
        // Set first: if the start half-succeeds, drop still stops the server.
        self.running = true;
        run(&mut start).map_err(|e| self.with_log(e))?;
        tracing::debug!(addr = %self.addr(), "test server started");
        Ok(())
    }

    /// Stops the server: `fast` (sessions terminated, a shutdown checkpoint) or
    /// `immediate` (a crash: recovery from the WAL on the next start).
    pub fn stop(&mut self, mode: StopMode) -> Result<(), PgServerError> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode.as_str(), "-w", "-t", "30", "stop"]);
        run(&mut stop).map_err(|e| self.with_log(e))?;
        self.running = false;
        tracing::debug!(addr = %self.addr(), ?mode, "test server stopped");
        Ok(())
    }

    /// Adds the server log's tail to a command's error.
    fn with_log(&self, e: PgServerError) -> PgServerError {
        match e {
            PgServerError::Command {
                command,
                status,
                mut output,
            } => {
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                output.push_str("\nserver log (last lines):\n");
                for line in tail.into_iter().rev() {
                    output.push_str(line);
                    output.push('\n');
                }
                PgServerError::Command {
                    command,
                    status,
                    output,
                }
            }
            other => other,
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop(StopMode::Immediate);
        }
    }
}

/// How [`PgServer::stop`] stops the server (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Sessions terminated, a shutdown checkpoint.
    Fast,
    /// A crash: no checkpoint; the next start recovers from the WAL.
    Immediate,
}

impl StopMode {
    fn as_str(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Runs `command`, failing with its output unless it succeeds.
fn run(command: &mut Command) -> Result<(), PgServerError> {
    let name = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = command.output().map_err(|source| PgServerError::Command {
        command: name.clone(),
        status: "not started".into(),
        output: source.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(PgServerError::Command {
        command: name,
        status: out.status.to_string(),
        output,
    })
}
