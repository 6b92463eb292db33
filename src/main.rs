//! The `minsheng` command: `serve` (the default), `migrate`, `create-admin`, `seed-demo`, `backup`,
//! `restore`, `rebuild-stats`.

use clap::{Parser, Subcommand};

use minsheng::config::Config;
use minsheng::domain::types::Role;
use minsheng::service::users::{is_username, NewUser};

#[derive(Parser)]
#[command(name = "minsheng", version, about = "Minsheng case tracking service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an administrator.
    CreateAdmin {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Password (at least 10 characters, not a common one).
        #[arg(long)]
        password: String,
        /// Jurisdiction whose subtree the admin manages; omitted → the whole tree.
        #[arg(long)]
        jurisdiction_code: Option<String>,
    },
    /// Fill an empty database with a realistic province-sized data set (for demos and benchmarks).
    SeedDemo {
        /// How many cases.
        #[arg(long, default_value_t = 100_000)]
        cases: u64,
        /// Cities in the province.
        #[arg(long, default_value_t = 16)]
        cities: u32,
        /// Counties per city.
        #[arg(long, default_value_t = 8)]
        counties_per_city: u32,
        /// Townships per county.
        #[arg(long, default_value_t = 10)]
        townships_per_county: u32,
        /// Random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a consistent copy of the whole database to a file, while the service runs
    /// (SQLite: VACUUM INTO; PostgreSQL: pg_dump --format=custom).
    Backup {
        /// The backup file to write.
        #[arg(long)]
        output: std::path::PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into the database named by DATABASE_URL, which must be empty
    /// (SQLite: a new file; PostgreSQL: pg_restore into an empty database), then migrate it.
    Restore {
        /// The backup file to read.
        #[arg(long)]
        input: std::path::PathBuf,
        /// Replace what the target holds (stop the service first).
        #[arg(long)]
        force: bool,
    },
    /// Recompute the kept statistics from the cases and their audit trails (after a restore or
    /// a repair, or for cases logged before the statistics migration).
    RebuildStats,
}

fn main() {
    limit_malloc_arenas();
    minsheng::init_logging();
    let cli = Cli::parse();
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if !matches!(command, Command::Serve) {
        config.pool_min_idle = 0;
    }
    let result = match command {
        Command::Serve => actix_web::rt::System::new().block_on(minsheng::serve(config)),
        Command::Migrate => minsheng::init_state(config).map(|_| println!("database is up to date")),
        Command::CreateAdmin { username, password, jurisdiction_code } => {
            create_admin(config, username, password, jurisdiction_code)
        }
        Command::SeedDemo { cases, cities, counties_per_city, townships_per_county, seed } => {
            let plan = minsheng::seed::SeedPlan { cases, cities, counties_per_city, townships_per_county, seed };
            seed_demo(config, &plan)
        }
        Command::Backup { output, force } => {
            minsheng::db::backup::backup(&config.database_url, &output, force).map(|done| println!("{done}"))
        }
        Command::Restore { input, force } => {
            minsheng::db::backup::restore(&config.database_url, &input, force).map(|done| println!("{done}"))
        }
        Command::RebuildStats => rebuild_stats(config),
    };
    if let Err(e) = result {
        fail(&e);
    }
}

fn create_admin(
    config: Config,
    username: String,
    password: String,
    jurisdiction_code: Option<String>,
) -> Result<(), String> {
    if !is_username(&username) {
        return Err("the username must be 3-64 characters: letters, digits, '_', '.', '@', '-'".to_owned());
    }
    minsheng::auth::password::check_policy(&password, &username)
        .map_err(|why| format!("weak password: the password {why}"))?;
    let state = minsheng::init_state(config)?;
    let hash = state.hasher.hash(&password)?;
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    let new = NewUser {
        username,
        password: String::new(),
        role: Role::Admin,
        jurisdiction_code,
        department_id: None,
        display_name: None,
    };
    let user = minsheng::service::users::create_admin(&mut conn, new, hash).map_err(|e| match e {
        minsheng::error::AppError::Validation(errors) => {
            errors.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    })?;
    println!("created admin {} ({})", user.username, user.id);
    Ok(())
}

fn seed_demo(config: Config, plan: &minsheng::seed::SeedPlan) -> Result<(), String> {
    let state = minsheng::init_state(config)?;
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let report = minsheng::seed::seed(&mut conn, plan, |done| {
        if done % 50_000 == 0 || done == plan.cases {
            eprintln!("seed-demo: {done} cases ({:.0} s)", started.elapsed().as_secs_f64());
        }
    })
    .map_err(|e| e.to_string())?;
    println!(
        "seeded {} jurisdictions, {} departments, {} cases, {} events in {:.1} s",
        report.jurisdictions,
        report.departments,
        report.cases,
        report.events,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn rebuild_stats(config: Config) -> Result<(), String> {
    let window = chrono::Duration::from_std(config.response_window).map_err(|e| e.to_string())?;
    let state = minsheng::init_state(config)?;
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let report = minsheng::service::stats::rebuild(&mut conn, window, |done| {
        if done % 100_000 == 0 {
            eprintln!("rebuild-stats: {done} cases ({:.0} s)", started.elapsed().as_secs_f64());
        }
    })
    .map_err(|e| e.to_string())?;
    println!(
        "rebuilt the statistics of {} cases ({} with corrected facts): {} sums, {} histograms, in {:.1} s",
        report.cases,
        report.facts_fixed,
        report.rows,
        report.histogram_rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fail(message: &str) -> ! {
    eprintln!("minsheng: {message}");
    std::process::exit(1);
}

/// glibc gives each thread that allocates an arena of its own (up to eight per core) and keeps
/// what is freed in it: the blocking threads that run the units of work left 86 MiB of heap
/// resident after the bench harness's load, 42 MiB with two arenas, at the same throughput
/// (docs/BENCHMARKS.md, run 7). `MALLOC_ARENA_MAX` in the environment, if set, is left to decide.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of the allocator; this runs first in `main`,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
