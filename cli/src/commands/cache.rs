//! `lode cache dir`: show or set the cache folder, as `dvc cache dir` does.

use crate::cli::{CacheArgs, CacheCommand};
use crate::commands::Ui;
use crate::repo::config::{path_for_storage, ConfigError, Level, Section, Value};
use crate::{ExitCode, LodeError};

fn missing_dir() -> ConfigError {
    ConfigError::Invalid("option 'dir' doesn't exist in section 'cache'".into())
}

pub fn run(args: CacheArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let CacheCommand::Dir {
        value,
        unset,
        level,
    } = args.command;
    let level = level.level();
    let cwd = &ui.cwd;
    let (mut config, _) = super::config::open_config(cwd)?;
    let section = Section::plain("cache");

    if value.is_none() && !unset {
        let shown = match level {
            Some(l) => {
                if l.is_repo() && !config.in_repo() {
                    return Err(ConfigError::Invalid("Not inside a DVC repo".into()).into());
                }
                let file = config.file(l).ok_or_else(missing_dir)?;
                let v = file.get(&section, "dir").ok_or_else(missing_dir)?;
                crate::repo::config::display_value(&file.conf_dir(), &section, "dir", v)
            }
            None => match config.get("cache", "dir") {
                Some(d) => d,
                None if config.in_repo() => config.cache_dir().display().to_string(),
                None => return Err(missing_dir().into()),
            },
        };
        ui.out.line(shown)?;
        return Ok(ExitCode::Ok);
    }

    config.edit(level.unwrap_or(Level::Repo), |file, _| {
        if unset {
            if file.get(&section, "dir").is_none() {
                return Err(missing_dir());
            }
            file.unset(&section, "dir");
        } else {
            let v = path_for_storage(&file.conf_dir(), cwd, value.as_deref().unwrap_or(""));
            file.set(&section, "dir", Value::Str(v));
        }
        Ok(())
    })?;
    Ok(ExitCode::Ok)
}
