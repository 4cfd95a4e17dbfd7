//! `lode remote add|modify|list|default|remove|rename`, as `dvc remote` does.

use crate::cli::{
    RemoteAddArgs, RemoteArgs, RemoteCommand, RemoteDefaultArgs, RemoteListArgs, RemoteModifyArgs,
    RemoteRemoveArgs, RemoteRenameArgs,
};
use crate::commands::Ui;
use crate::repo::config::{
    display_value, is_path_key, path_for_storage, Config, ConfigError, ConfigFile, Level, Section,
    Value,
};
use crate::{ExitCode, LodeError};

fn not_found(name: &str) -> ConfigError {
    ConfigError::Invalid(format!("remote '{name}' doesn't exist."))
}

/// Expands tabs to 8-column stops, as DVC's console output does for `remote list`.
fn expand_tabs(s: &str) -> String {
    let mut out = String::new();
    let mut col = 0;
    for c in s.chars() {
        if c == '\t' {
            let n = 8 - col % 8;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += 1;
        }
    }
    out
}

/// The order DVC updates `core.remote` in the other files after a remove or rename.
const LEVELS_DESC: [Level; 4] = [Level::Local, Level::Repo, Level::Global, Level::System];

pub fn run(args: RemoteArgs, ui: &Ui) -> Result<ExitCode, LodeError> {
    let (mut config, _) = super::config::open_config(&ui.cwd)?;
    match args.command {
        RemoteCommand::Add(a) => add(&mut config, ui, a),
        RemoteCommand::Modify(a) => modify(&mut config, ui, a),
        RemoteCommand::List(a) => list(&config, ui, a),
        RemoteCommand::Default(a) => default(&mut config, ui, a),
        RemoteCommand::Remove(a) => remove(&mut config, a),
        RemoteCommand::Rename(a) => rename(&mut config, a),
    }
}

fn add(config: &mut Config, ui: &Ui, args: RemoteAddArgs) -> Result<ExitCode, LodeError> {
    let name = args.name.to_lowercase();
    if args.default {
        ui.out
            .line(format_args!("Setting '{name}' as a default remote."))?;
    }
    config.edit(args.level.level().unwrap_or(Level::Repo), |file, _| {
        let section = Section::remote(&name);
        if file.has_section(&section) && !args.force {
            return Err(ConfigError::Invalid(format!(
                "remote '{name}' already exists. Use `-f|--force` to overwrite it."
            )));
        }
        let url = path_for_storage(&file.conf_dir(), &ui.cwd, &args.url);
        let table = file.section_mut(&section);
        table.clear();
        table.push(("url".into(), Value::Str(url)));
        if args.default {
            file.set(&Section::plain("core"), "remote", Value::Str(name.clone()));
        }
        Ok(())
    })?;
    if crate::remote::is_lode_server_url(&args.url) {
        ui.out.note(crate::remote::token_hint(&name));
    }
    Ok(ExitCode::Ok)
}

fn modify(config: &mut Config, ui: &Ui, args: RemoteModifyArgs) -> Result<ExitCode, LodeError> {
    let name = args.name.to_lowercase();
    let option = args.option;
    let lvl = args.level.level();
    config.edit(lvl.unwrap_or(Level::Repo), |file, config| {
        let section = Section::remote(&name);
        let exists_below = config.merged(lvl).iter().any(|(s, _)| *s == section);
        if !exists_below && !file.has_section(&section) {
            return Err(not_found(&name));
        }
        if args.unset {
            file.section_mut(&section);
            file.unset(&section, &option);
            return Ok(());
        }
        let Some(value) = args.value else {
            return Err(ConfigError::Invalid(format!(
                "expected str for dictionary value @ data['remote']['{name}']['{option}']"
            )));
        };
        let value = if is_path_key(&section, &option) {
            path_for_storage(&file.conf_dir(), &ui.cwd, &value)
        } else {
            value
        };
        file.set(&section, &option, Value::Str(value));
        Ok(())
    })?;
    Ok(ExitCode::Ok)
}

fn list(config: &Config, ui: &Ui, args: RemoteListArgs) -> Result<ExitCode, LodeError> {
    let lvl = args.level.level();
    if lvl.is_some_and(Level::is_repo) && !config.in_repo() {
        return Err(ConfigError::Invalid("Not inside a DVC repo".into()).into());
    }
    let (names, default): (Vec<String>, Option<String>) = match lvl {
        None => (config.remote_names(), config.get("core", "remote")),
        Some(l) => match config.file(l) {
            Some(f) => (
                f.remote_names(),
                f.get(&Section::plain("core"), "remote").map(Value::display),
            ),
            None => (Vec::new(), None),
        },
    };
    for name in names {
        let url = match lvl {
            None => config
                .remote(&name)
                .and_then(|r| r.url().map(str::to_string)),
            Some(l) => config.file(l).and_then(|f| {
                let section = Section::remote(&name);
                f.get(&section, "url")
                    .map(|v| display_value(&f.conf_dir(), &section, "url", v))
            }),
        }
        .unwrap_or_default();
        let line = if default.as_deref() == Some(name.as_str()) {
            format!("{name}\t{url}\t(default)")
        } else {
            format!("{name}\t{url}")
        };
        ui.out.line(expand_tabs(&line).trim_end())?;
    }
    Ok(ExitCode::Ok)
}

fn default(config: &mut Config, ui: &Ui, args: RemoteDefaultArgs) -> Result<ExitCode, LodeError> {
    let lvl = args.level.level();
    if args.name.is_none() && !args.unset {
        return show_default(config, ui, lvl);
    }
    let name = args.name.map(|n| n.to_lowercase());
    config.edit(lvl.unwrap_or(Level::Repo), |file, config| {
        let core = Section::plain("core");
        if args.unset {
            file.unset(&core, "remote");
            return Ok(());
        }
        let name = name.unwrap_or_default();
        let section = Section::remote(&name);
        let known =
            file.has_section(&section) || config.merged(lvl).iter().any(|(s, _)| *s == section);
        if !known {
            return Err(ConfigError::Invalid(
                "default remote must be present in remote list.".into(),
            ));
        }
        file.set(&core, "remote", Value::Str(name));
        Ok(())
    })?;
    Ok(ExitCode::Ok)
}

/// `remote default` without a name: prints the default remote, and fails when there is none.
fn show_default(config: &Config, ui: &Ui, lvl: Option<Level>) -> Result<ExitCode, LodeError> {
    if lvl.is_some_and(Level::is_repo) && !config.in_repo() {
        return Err(ConfigError::Invalid("Not inside a DVC repo".into()).into());
    }
    let current = match lvl {
        None => config.get("core", "remote"),
        Some(l) => config
            .file(l)
            .and_then(|f| f.get(&Section::plain("core"), "remote").map(Value::display)),
    };
    match current {
        Some(r) => {
            ui.out.line(r)?;
            Ok(ExitCode::Ok)
        }
        None => {
            ui.out.line("No default remote set")?;
            Ok(ExitCode::Failed)
        }
    }
}

fn remove(config: &mut Config, args: RemoteRemoveArgs) -> Result<ExitCode, LodeError> {
    let name = args.name.to_lowercase();
    let up_to = args.level.level().unwrap_or(Level::Repo);
    config.edit(up_to, |file, _| {
        if file.remove_section(&Section::remote(&name)).is_none() {
            return Err(not_found(&name));
        }
        Ok(())
    })?;
    for l in LEVELS_DESC {
        config.edit(l, |file, _| {
            if default_is(file, &name) {
                file.unset(&Section::plain("core"), "remote");
            }
            Ok(())
        })?;
        if l == up_to {
            break;
        }
    }
    Ok(ExitCode::Ok)
}

fn rename(config: &mut Config, args: RemoteRenameArgs) -> Result<ExitCode, LodeError> {
    let name = args.name.to_lowercase();
    let new = args.new;
    if config.remote_names().contains(&new) {
        return Err(ConfigError::Invalid(format!(
            "Rename failed. Remote name '{new}' already exists."
        ))
        .into());
    }
    let up_to = args.level.level().unwrap_or(Level::Repo);
    let rename_default = |file: &mut ConfigFile| {
        if default_is(file, &name) {
            file.set(&Section::plain("core"), "remote", Value::Str(new.clone()));
        }
    };
    config.edit(up_to, |file, _| {
        let to = Section::Named {
            kind: "remote".into(),
            name: new.clone(),
        };
        if !file.rename_section(&Section::remote(&name), &to) {
            return Err(not_found(&name));
        }
        rename_default(file);
        Ok(())
    })?;
    for l in LEVELS_DESC {
        if l == up_to {
            break;
        }
        config.edit(l, |file, _| {
            rename_default(file);
            Ok(())
        })?;
    }
    Ok(ExitCode::Ok)
}

/// Whether `file` names `name` as the default remote.
fn default_is(file: &ConfigFile, name: &str) -> bool {
    matches!(
        file.get(&Section::plain("core"), "remote"),
        Some(Value::Str(r)) if r == name
    )
}

#[cfg(test)]
mod tests {
    use super::expand_tabs;

    #[test]
    fn tabs_expand_to_eight_columns() {
        assert_eq!(expand_tabs("b\t/x\t(default)"), "b       /x      (default)");
        assert_eq!(
            expand_tabs("longername_remote_x\thttp://h/x"),
            "longername_remote_x     http://h/x"
        );
    }
}
