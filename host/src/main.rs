//! The `switchboard` command.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard::Config;
use tracing_subscriber::EnvFilter;

// Plugin calls allocate and free many short-lived buffers on every thread;
// glibc's malloc spent a fifth of the host's CPU on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Connect chat platforms to bot providers through sandboxed WebAssembly plugins")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short, env = "SWITCHBOARD_CONFIG", default_value = "switchboard.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file and the plugins it names, then exit.
    CheckConfig {
        #[arg(long, short, env = "SWITCHBOARD_CONFIG", default_value = "switchboard.toml")]
        config: PathBuf,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// List the plugins the host can use (shipped and configured).
    Plugins {
        #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run an administrative action of a connector's channel plugin, e.g.
    /// `register-bot` for Bitrix24.
    Action {
        #[arg(long, short, env = "SWITCHBOARD_CONFIG", default_value = "switchboard.toml")]
        config: PathBuf,
        /// Connector id.
        #[arg(long)]
        connector: String,
        /// Action name.
        name: String,
        /// Arguments as key=value.
        #[arg(value_parser = parse_pair)]
        args: Vec<(String, String)>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check a component offline, as the host checks it before use: is it a
    /// WebAssembly component, within the size limit, does it compile, import
    /// only what plugins may use, export a plugin interface of the contract,
    /// and carry a valid manifest. Exits 1 naming the problem.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Take the limits (`[sandbox] max_plugin_bytes`) from this configuration.
        #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected key=value, got `{text}`"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config } => serve(Config::load(&config)?).await,
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            let app = switchboard::app::App::start(&config).await?;
            println!("configuration OK: {} connector(s)", app.connectors.len());
            Ok(())
        }
        Command::Plugin { command: PluginCommand::Check { file, config } } => check_plugin(&file, config.as_deref()),
        Command::Plugins { config } => {
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::from_toml_str("")?,
            };
            for (name, kind) in switchboard::app::load_runtime(&config).await?.plugin_names() {
                println!("{name}\t{kind}");
            }
            Ok(())
        }
        Command::Action { config, connector, name, args } => {
            let config = Config::load(&config)?;
            let app = switchboard::app::App::start(&config).await?;
            let connector = app.connector(&connector).map_err(|e| anyhow::anyhow!("{e}"))?;
            match app.runtime.run_action(&connector.channel, name, args).await.context("running the action")? {
                Ok(report) => {
                    println!("{report}");
                    Ok(())
                }
                Err(error) => bail!("{:?}: {}", error.kind, error.message),
            }
        }
    }
}

fn check_plugin(file: &std::path::Path, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::from_toml_str("")?,
    };
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = switchboard::runtime::Runtime::new(config.sandbox.clone(), 1)?;
    let checked =
        runtime.check_plugin(&wasm).map_err(|refusal| anyhow::anyhow!("{} cannot be used as a plugin: {refusal} [{}]", file.display(), refusal.code()))?;
    let manifest = &checked.manifest;
    let named = match (&manifest.name, &manifest.version) {
        (Some(name), Some(version)) => format!(" `{name}` {version}"),
        (Some(name), None) => format!(" `{name}`"),
        _ => String::new(),
    };
    println!("{}: OK, a {} plugin{named} for switchboard:plugin@{} ({} bytes)", file.display(), checked.kind, switchboard::runtime::CONTRACT, wasm.len());
    println!("imports: {}", checked.imports.join(", "));
    let list = |items: &[String]| if items.is_empty() { "none".to_string() } else { items.join(", ") };
    println!(
        "manifest: outbound hosts {}; endpoint settings {}; secret variables {}",
        list(&manifest.outbound_hosts),
        list(&manifest.outbound_host_settings),
        list(&manifest.secret_variables)
    );
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = switchboard::Server::start(config).await?;
    let addr = server.local_addr();
    let signal = shutdown_signal().await?;
    tracing::info!(%addr, signal, "shutting down: no new requests; finishing running jobs");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Wait for SIGTERM (how orchestrators stop a process) or Ctrl-C.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.map(|()| "interrupt").map_err(Into::into),
            _ = terminate.recv() => Ok("terminate"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("interrupt")
    }
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
