//! `lode config`: get, set, unset and list options, as `dvc config` does.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::cli::ConfigArgs;
use crate::commands::Ui;
use crate::repo::config::{
    display_value, is_path_key, path_for_storage, Config, ConfigError, ConfigFile, Level, Section,
    Value, SCHEMA_SECTIONS,
};
use crate::repo::Repo;
use crate::{ExitCode, LodeError};

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<top>(remote|db)\.)?(?P<section>[^\.]*)\.(?P<option>[^\.]*)$")
        .expect("static regex")
});

/// Checks a `section.option` / `remote.name.option` argument, as DVC's parser does.
pub fn parse_name(value: &str) -> Result<String, String> {
    if NAME.is_match(value) {
        Ok(value.to_string())
    } else {
        Err(
            "name argument should look like remote.name.option or db.name.option or \
             section.option"
                .into(),
        )
    }
}

struct Name {
    /// `remote` or `db` for named sections.
    top: Option<String>,
    section: String,
    option: String,
}

impl Name {
    fn parse(value: &str) -> Result<Name, LodeError> {
        let caps = NAME
            .captures(value)
            .ok_or_else(|| LodeError::Other(parse_name(value).err().unwrap_or_default()))?;
        Ok(Name {
            top: caps
                .name("top")
                .map(|m| m.as_str().trim_end_matches('.').to_string()),
            section: caps["section"].to_lowercase(),
            option: caps["option"].to_lowercase(),
        })
    }

    fn section(&self) -> Section {
        match &self.top {
            Some(kind) => Section::Named {
                kind: kind.clone(),
                name: self.section.clone(),
            },
            None => Section::Plain(self.section.clone()),
        }
    }
}

/// The merged config of the repository around `cwd` (or only the user's and
/// the system's outside one), not validated: `dvc config` must work on a broken file too.
pub(crate) fn open_config(cwd: &Path) -> Result<(Config, Option<PathBuf>), LodeError> {
    let root = Repo::find_root_opt(cwd)?;
    let dvc_dir = root.as_ref().map(|r| r.join(".dvc"));
    Ok((Config::load_unvalidated(dvc_dir.as_deref())?, root))
}

fn levels_for(config: &Config, level: Option<Level>) -> Result<Vec<Level>, LodeError> {
    match level {
        Some(l) if l.is_repo() && !config.in_repo() => {
            Err(ConfigError::Invalid("Not inside a DVC repo".into()).into())
        }
        Some(l) => Ok(vec![l]),
        None => Ok(config.levels()),
    }
}

/// `--show-origin` prefix: the file, relative to the repository root for repository levels.
fn origin(config: &Config, root: Option<&PathBuf>, level: Level) -> String {
    let path = level
        .file_path(config.in_repo().then_some(config.dvc_dir.as_path()))
        .unwrap_or_default();
    let shown = match (level.is_repo(), root) {
        (true, Some(r)) => path
            .strip_prefix(r)
            .map(|p| p.to_path_buf())
            .unwrap_or(path),
        _ => path,
    };
    format!("{}\t", shown.display())
}

/// The section exists at this level as DVC sees it (schema sections always exist).
fn has_section(file: Option<&ConfigFile>, section: &Section) -> bool {
    if let Section::Plain(name) = section {
        if SCHEMA_SECTIONS.contains(&name.as_str()) {
            return true;
        }
    }
    file.is_some_and(|f| f.has_section(section))
}

fn check(file: Option<&ConfigFile>, name: &Name) -> Result<(), ConfigError> {
    let kind = name.top.as_deref().unwrap_or("section");
    let section = name.section();
    if !has_section(file, &section) {
        return Err(ConfigError::Invalid(format!(
            "{kind} '{}' doesn't exist",
            name.section
        )));
    }
    if file.and_then(|f| f.get(&section, &name.option)).is_none() {
        return Err(ConfigError::Invalid(format!(
            "option '{}' doesn't exist in {kind} '{}'",
            name.option, name.section
        )));
    }
    Ok(())
}

pub fn run(args: ConfigArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let level = args.level.level();
    if args.show_origin && (args.value.is_some() || args.unset) {
        return Err(LodeError::Failed(
            "--show-origin can't be used together with any of these options: -u/--unset, value"
                .into(),
        ));
    }
    let (mut config, root) = open_config(&ui.cwd)?;
    if args.list {
        if args.name.is_some() || args.value.is_some() || args.unset {
            return Err(LodeError::Failed(
                "-l/--list can't be used together with any of these options: -u/--unset, name, \
                 value"
                    .into(),
            ));
        }
        for l in levels_for(&config, level)? {
            let Some(file) = config.file(l) else { continue };
            let prefix = if args.show_origin {
                origin(&config, root.as_ref(), l)
            } else {
                String::new()
            };
            let lines: Vec<String> = file
                .flattened()
                .into_iter()
                .map(|(k, v)| format!("{prefix}{k}={v}"))
                .collect();
            if !lines.is_empty() {
                ui.out.line(lines.join("\n"))?;
            }
        }
        return Ok(ExitCode::Ok);
    }
    let Some(raw_name) = args.name.as_deref() else {
        return Err(LodeError::Failed("name argument is required".into()));
    };
    let name = Name::parse(raw_name)?;

    if args.value.is_none() && !args.unset {
        let mut levels = levels_for(&config, level)?;
        levels.reverse();
        for l in levels {
            let file = config.file(l);
            match check(file, &name) {
                Ok(()) => {
                    let section = name.section();
                    if let Some(f) = file {
                        if let Some(v) = f.get(&section, &name.option) {
                            let prefix = if args.show_origin {
                                origin(&config, root.as_ref(), l)
                            } else {
                                String::new()
                            };
                            let shown = display_value(&f.conf_dir(), &section, &name.option, v);
                            ui.out.line(format_args!("{prefix}{shown}"))?;
                            break;
                        }
                    }
                }
                Err(e) if level.is_some() => return Err(e.into()),
                Err(_) => continue,
            }
        }
        return Ok(ExitCode::Ok);
    }

    let cwd = &ui.cwd;
    let unset = args.unset;
    let value = args.value.clone();
    config.edit(level.unwrap_or(Level::Repo), |file, _| {
        let section = name.section();
        if unset {
            check(Some(file), &name)?;
            file.unset(&section, &name.option);
        } else {
            let mut v = value.unwrap_or_default();
            if is_path_key(&section, &name.option) {
                v = path_for_storage(&file.conf_dir(), cwd, &v);
            }
            file.set(&section, &name.option, Value::Str(v));
        }
        Ok(())
    })?;
    Ok(ExitCode::Ok)
}
