//! Settings from a TOML file, overridden by environment variables.
//!
//! ```sh
//! cargo run --features serde --example config_file                      # examples/filesink.toml
//! FILESINK_ROTATION=hourly FILESINK_FORMAT=text \
//!     cargo run --features serde --example config_file -- my-settings.toml
//! ```
//!
//! The `[log]` table of the file is a `FileSinkConfig`; every `FILESINK_<KEY>` environment
//! variable then overrides `<key>` (`FILESINK_DIR`, `FILESINK_RETENTION`, ...). A bad value
//! in either place stops the program with an error naming the key and the value.

use tracing_filesink::FileSinkConfig;
use tracing_subscriber::prelude::*;

const ENV_PREFIX: &str = "FILESINK_";

fn main() {
    if let Err(e) = run() {
        eprintln!("config_file: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/filesink.toml".to_string());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut file: toml::Table = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let log = file
        .remove("log")
        .ok_or_else(|| format!("{path}: no [log] table"))?;
    let mut config: FileSinkConfig = log.try_into().map_err(|e| format!("{path}: {e}"))?;
    for (name, value) in std::env::vars() {
        if let Some(key) = name.strip_prefix(ENV_PREFIX) {
            config
                .set(&key.to_ascii_lowercase(), &value)
                .map_err(|e| format!("environment variable {name}: {e}"))?;
        }
    }

    let (layer, _guard) = config.builder().build()?;
    tracing_subscriber::registry().with(layer).init();
    for i in 0..3 {
        tracing::info!(i, "configured from {path}");
    }
    log::warn!(target: "some_dependency", "a record from the log crate");
    println!(
        "logged 4 events into {}",
        config.dir.join(format!("{}.log", config.stem)).display()
    );
    Ok(())
}
