//! The `minsheng` command: `serve` (the default), `migrate`, `create-admin`.

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
}

fn main() {
    minsheng::init_logging();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(minsheng::serve(config)),
        Command::Migrate => minsheng::init_state(config).map(|_| println!("database is up to date")),
        Command::CreateAdmin { username, password, jurisdiction_code } => {
            create_admin(config, username, password, jurisdiction_code)
        }
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

fn fail(message: &str) -> ! {
    eprintln!("minsheng: {message}");
    std::process::exit(1);
}
