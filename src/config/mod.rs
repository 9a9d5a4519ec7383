//! Configuration: the TOML file an operator writes, its defaults, and the
//! checks `check-config` runs so that every mistake is explained (where,
//! what was expected, what was found) before the daemon starts.

pub mod budget;
mod callbacks;
mod http;
mod logins;
mod lookup;
mod model;
mod owner;
pub mod reload;
mod reports;
mod sms;
mod validate;
mod wall;

pub use callbacks::*;
pub use http::*;
pub use logins::*;
pub use lookup::*;
pub use model::*;
pub use reports::*;
pub use sms::*;
pub use validate::{
    environment_problems, is_source_name, missing_path, plausible_address, warnings, ConfigError,
    Problem,
};
pub use wall::*;

use std::path::{Path, PathBuf};

/// Loads, parses and validates a config file. Relative paths inside it are
/// resolved against the file's own directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(&text, path)
}

/// Parses and validates config text that was read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut cfg: Config =
        toml::from_str(text).map_err(|e| validate::syntax_error(text, path, e))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    cfg.resolve_paths(&base);
    cfg.file = path.to_path_buf();
    let problems = validate::check(&cfg);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
}
