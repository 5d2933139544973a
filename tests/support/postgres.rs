//! A private PostgreSQL cluster per test, from Debian's `postgresql` package: `initdb` into a
//! temporary directory (as the `postgres` user when the tests run as root, since the server
//! refuses to run as root), listening only on a Unix socket inside that directory. Never a
//! shared server. Dropping it stops the server at once and removes everything.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The tests run as root, so the server's programs run as `postgres`.
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn server_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql: install Debian's postgresql \
             package (scripts/setup.sh does)"
        )
    })
}

impl PrivateCluster {
    pub fn start() -> Self {
        let bin = server_bin();
        let dir = tempfile::Builder::new()
            .prefix("connlog-pg-")
            .tempdir()
            .unwrap();
        // The directory just made belongs to whoever we are.
        let as_postgres = dir.path().metadata().unwrap().uid() == 0;
        let cluster = Self {
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(cluster.dir.path())
                .status()
                .expect("running chown");
            assert!(status.success(), "chown postgres {:?}", cluster.dir.path());
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let options = format!(
            "-k {} -c listen_addresses='' -c max_connections=40",
            cluster.dir.path().display()
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-l",
                &cluster.dir.path().join("server.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("running a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection string for `database` (`postgres` exists from the start).
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} user=postgres dbname={database}",
            self.socket_dir().display()
        )
    }

    /// A client of `database`, for the tests' own looks at what connlog stored.
    pub fn client(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(database), postgres::NoTls).unwrap()
    }

    /// How many events connlog holds in `database`; `None` when it has no connlog schema.
    pub fn connlog_events(&self, database: &str) -> Option<i64> {
        let mut client = self.client(database);
        let has_schema: bool = client
            .query_one("SELECT to_regclass('connlog.events') IS NOT NULL", &[])
            .unwrap()
            .get(0);
        has_schema.then(|| {
            client
                .query_one("SELECT count(*) FROM connlog.events", &[])
                .unwrap()
                .get(0)
        })
    }

    /// A new empty database, and its connection string.
    pub fn create_database(&self, name: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(name)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
