//! `minsheng backup` and `minsheng restore`: a consistent copy of the whole database in one file,
//! and its way back into an empty database.
//!
//! - SQLite: the backup is `VACUUM INTO`, an online, transactionally consistent copy (the service
//!   may keep running); the restore checks the file (`PRAGMA integrity_check`, and that its
//!   migrations are ones this binary knows), copies it into place, and applies any newer
//!   migrations. Restoring over an existing file needs `--force` and a stopped service.
//! - PostgreSQL: `pg_dump --format=custom` and `pg_restore` (the PostgreSQL client tools must be
//!   on `PATH`); a `search_path` in the URL's `options` limits the dump to that schema. The
//!   restore runs in one transaction, so a failed restore leaves the target as it was.
//!
//! Both write the output under a temporary name and rename it when complete, so a backup file
//! that exists is whole.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};
use diesel_migrations::MigrationHarness;

use super::{Backend, ConnectionFactory, DbConn, SQLITE_MIGRATIONS};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Writes a backup of the database at `url` to `output`; refuses an existing `output` unless
/// `force`. Returns a one-line summary.
pub fn backup(url: &str, output: &Path, force: bool) -> Result<String, String> {
    if output.exists() && !force {
        return Err(format!("{} already exists; pass --force to overwrite it", output.display()));
    }
    let partial = partial_name(output);
    remove_if_exists(&partial)?;
    match Backend::from_url(url) {
        Backend::Sqlite => {
            let mut conn = open(url)?;
            let target = sql_string(&partial.to_string_lossy());
            conn.batch_execute(&format!("VACUUM INTO {target}")).map_err(|e| format!("backup failed: {e}"))?;
        }
        Backend::Postgres => {
            let mut cmd = Command::new("pg_dump");
            cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"]).arg(&partial);
            if let Some(schema) = pg_schema(url) {
                cmd.arg(format!("--schema={schema}"));
            }
            cmd.arg(format!("--dbname={url}"));
            run_tool(cmd, "pg_dump")?;
        }
    }
    std::fs::rename(&partial, output).map_err(|e| format!("cannot move the backup into place: {e}"))?;
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    Ok(format!("backup written to {} ({bytes} bytes)", output.display()))
}

/// Restores the backup `input` into the database at `url`, which must hold no tables unless
/// `force`; then applies the migrations this binary has and the backup lacks.
pub fn restore(url: &str, input: &Path, force: bool) -> Result<String, String> {
    if !input.is_file() {
        return Err(format!("{} is not a file", input.display()));
    }
    match Backend::from_url(url) {
        Backend::Sqlite => restore_sqlite(url, input, force)?,
        Backend::Postgres => {
            if !force && table_count(url)? > 0 {
                return Err("the target database is not empty; restore into an empty database, or pass --force to \
                            replace what it holds"
                    .to_owned());
            }
            let mut cmd = Command::new("pg_restore");
            cmd.args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]);
            if force {
                cmd.args(["--clean", "--if-exists"]);
            }
            cmd.arg(format!("--dbname={url}")).arg(input);
            run_tool(cmd, "pg_restore")?;
        }
    }
    let mut conn = open(url)?;
    let applied = super::run_migrations(&mut conn)?;
    Ok(format!("restored {} ({applied} newer migrations applied)", input.display()))
}

fn restore_sqlite(url: &str, input: &Path, force: bool) -> Result<(), String> {
    use diesel::Connection;
    let target = PathBuf::from(super::sqlite_path(url));
    if target.exists() && !force && table_count(url)? > 0 {
        return Err(format!(
            "{} is not empty; restore into a new file, or stop the service and pass --force to replace it",
            target.display()
        ));
    }
    let mut source = SqliteConnection::establish(&input.to_string_lossy())
        .map_err(|e| format!("cannot open {}: {e}", input.display()))?;
    let check: Vec<Line> = diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check()")
        .load(&mut source)
        .map_err(|e| format!("{} is not a SQLite database: {e}", input.display()))?;
    if check.len() != 1 || check.first().is_none_or(|l| l.line != "ok") {
        let problems: Vec<String> = check.into_iter().take(5).map(|l| l.line).collect();
        return Err(format!("{} is damaged: {}", input.display(), problems.join("; ")));
    }
    let applied =
        source.applied_migrations().map_err(|e| format!("{} is not a Minsheng database: {e}", input.display()))?;
    let known: Vec<String> = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    if let Some(unknown) = applied.iter().map(ToString::to_string).find(|v| !known.contains(v)) {
        return Err(format!(
            "{} comes from a newer Minsheng (migration {unknown}); restore it with that version",
            input.display()
        ));
    }
    let partial = partial_name(&target);
    remove_if_exists(&partial)?;
    let into = sql_string(&partial.to_string_lossy());
    source.batch_execute(&format!("VACUUM INTO {into}")).map_err(|e| format!("restore failed: {e}"))?;
    drop(source);
    for suffix in ["-wal", "-shm"] {
        remove_if_exists(&PathBuf::from(format!("{}{suffix}", target.display())))?;
    }
    std::fs::rename(&partial, &target).map_err(|e| format!("cannot move the restored database into place: {e}"))
}

/// Tables in the database's search path (PostgreSQL) or file (SQLite).
fn table_count(url: &str) -> Result<i64, String> {
    let mut conn = open(url)?;
    let sql = match &conn {
        DbConn::Pg(_) => {
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ANY (current_schemas(false))"
        }
        DbConn::Sqlite(_) => "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'",
    };
    let rows: Vec<Count> =
        diesel::sql_query(sql).load(&mut conn).map_err(|e| format!("cannot inspect the target: {e}"))?;
    Ok(rows.first().map_or(0, |c| c.n))
}

fn open(url: &str) -> Result<DbConn, String> {
    ConnectionFactory::new(url, 5000).open().map_err(|e| format!("cannot open the database: {e}"))
}

/// Runs a PostgreSQL client tool; its own messages go to our stderr.
fn run_tool(mut cmd: Command, name: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{name} is not on PATH; install the PostgreSQL client tools (e.g. the postgresql-client package) of the \
             server's major version or newer"
        ),
        _ => format!("cannot run {name}: {e}"),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status}); its messages are above"))
    }
}

/// The schema named by `options=-csearch_path=…` in a PostgreSQL URL, if any (the first one).
fn pg_schema(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let options = query.split('&').find_map(|pair| pair.strip_prefix("options="))?;
    let options = percent_decode(options);
    let value = options.split_once("search_path=")?.1;
    let first = value.split([',', ' ']).next()?.trim_matches('"');
    (!first.is_empty()).then(|| first.to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A SQL string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn remove_if_exists(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}
