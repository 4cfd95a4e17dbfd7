//! `.dvc/config` and `.dvc/config.local` (plus the global and system files), read, merged,
//! validated and rewritten as DVC does (docs/dvc-formats.md §5).
//!
//! Each file is parsed with configobj's rules ([`configobj`]), then shaped as DVC shapes it:
//! section names and keys lowercased, `remote "name"` / `machine "name"` / `db "name"` headers
//! recognised in quoted or bare form. Rewriting a file drops comments and empty plain sections,
//! writes plain sections first and named ones after, and normalises relative paths (`cache.dir`,
//! remote `url`, ...), which are always relative to the folder of the file that holds them.

pub mod configobj;
pub mod schema;

use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

pub use configobj::{Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// DVC's `ConfigError`: the text after `config file error: `.
    #[error("config file error: {0}")]
    Invalid(String),
    /// A file that configobj would not parse.
    #[error("config file error: {}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("config file error: {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which file a value lives in, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    System,
    Global,
    Repo,
    Local,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::System, Level::Global, Level::Repo, Level::Local];

    /// Where this level's file is. `dvc_dir` is needed for the repository levels.
    pub fn file_path(self, dvc_dir: Option<&Path>) -> Option<PathBuf> {
        match self {
            Level::System => Some(system_config_dir().join("config")),
            Level::Global => Some(global_config_dir().join("config")),
            Level::Repo => dvc_dir.map(|d| d.join("config")),
            Level::Local => dvc_dir.map(|d| d.join("config.local")),
        }
    }

    pub fn is_repo(self) -> bool {
        matches!(self, Level::Repo | Level::Local)
    }
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$DVC_GLOBAL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/dvc`, else `~/.config/dvc` (as platformdirs).
pub fn global_config_dir() -> PathBuf {
    if let Some(d) = env_dir("DVC_GLOBAL_CONFIG_DIR") {
        return d;
    }
    let base = env_dir("XDG_CONFIG_HOME").unwrap_or_else(|| {
        env_dir("HOME")
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(".config")
    });
    base.join("dvc")
}

/// `$DVC_SYSTEM_CONFIG_DIR`, else the first of `$XDG_CONFIG_DIRS` (default `/etc/xdg`) + `/dvc`.
pub fn system_config_dir() -> PathBuf {
    if let Some(d) = env_dir("DVC_SYSTEM_CONFIG_DIR") {
        return d;
    }
    let first = std::env::var("XDG_CONFIG_DIRS")
        .ok()
        .and_then(|v| v.split(':').find(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/xdg"));
    first.join("dvc")
}

/// A section as DVC names it: `core`, or a named one such as `remote "storage"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Section {
    Plain(String),
    Named { kind: String, name: String },
}

static NAMED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*(remote|machine|db)\s*"(.*)"\s*$"#).expect("static regex"));

/// The kinds of named sections, in the order DVC writes them.
const NAMED_KINDS: [&str; 3] = ["remote", "machine", "db"];

impl Section {
    /// Parses a header as DVC does after lowercasing it (`remote "Foo"` names remote `foo`).
    pub fn parse(header: &str) -> Section {
        let lower = header.to_lowercase();
        match NAMED.captures(&lower) {
            Some(c) => Section::Named {
                kind: c[1].to_string(),
                name: c[2].to_string(),
            },
            None => Section::Plain(lower),
        }
    }

    pub fn remote(name: &str) -> Section {
        Section::Named {
            kind: "remote".into(),
            name: name.to_lowercase(),
        }
    }

    pub fn plain(name: &str) -> Section {
        Section::Plain(name.to_string())
    }

    /// The header text written between the brackets.
    pub fn header(&self) -> String {
        match self {
            Section::Plain(n) => n.clone(),
            Section::Named { kind, name } => format!("{kind} \"{name}\""),
        }
    }

    /// The dotted prefix `dvc config -l` prints: `core`, `remote.storage`.
    pub fn dotted(&self) -> String {
        match self {
            Section::Plain(n) => n.clone(),
            Section::Named { kind, name } => format!("{kind}.{name}"),
        }
    }
}

/// Plain sections DVC's schema always has (empty when no file sets them).
pub const SCHEMA_SECTIONS: [&str; 10] = [
    "core", "cache", "state", "index", "feature", "plots", "exp", "parsing", "hydra", "studio",
];

/// Keys whose values are paths, stored relative to the config file's folder.
pub fn is_path_key(section: &Section, key: &str) -> bool {
    match section {
        Section::Plain(s) => s == "cache" && key == "dir",
        Section::Named { kind, .. } => match kind.as_str() {
            "remote" => matches!(
                key,
                "url"
                    | "gdrive_user_credentials_file"
                    | "gdrive_service_account_json_file_path"
                    | "credentialpath"
                    | "configpath"
                    | "keyfile"
                    | "cert_path"
                    | "key_path"
            ),
            "machine" => matches!(key, "startup_script" | "setup_script"),
            _ => false,
        },
    }
}

static URL_LIKE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\w+://").expect("static regex"));

/// Lexical normalisation of an absolute path, as Python's `os.path.normpath`.
fn normpath(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// `os.path.relpath(path, start)` for absolute, normalised paths, with `/` separators.
fn relpath(path: &Path, start: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let s: Vec<_> = start.components().collect();
    let common = p.iter().zip(&s).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); s.len() - common];
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn expand_user(v: &str) -> Option<PathBuf> {
    let rest = v.strip_prefix('~')?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let home = env_dir("HOME")?;
    Some(home.join(rest.trim_start_matches('/')))
}

/// A stored path value as DVC resolves it on load: URLs and absolute paths as they are, `~`
/// expanded, anything else joined to the config file's folder.
pub fn resolve_path(conf_dir: &Path, value: &str) -> String {
    if URL_LIKE.is_match(value) || value.starts_with('/') {
        return value.to_string();
    }
    if let Some(p) = expand_user(value) {
        return p.to_string_lossy().into_owned();
    }
    normpath(&conf_dir.join(value))
        .to_string_lossy()
        .into_owned()
}

/// How DVC rewrites a path it loaded from a file: relative paths come back normalised.
fn normalise_stored(conf_dir: &Path, value: &str) -> String {
    if URL_LIKE.is_match(value) || value.starts_with('/') || value.starts_with('~') {
        return value.to_string();
    }
    relpath(&normpath(&conf_dir.join(value)), &normpath(conf_dir))
}

/// How DVC stores a path the user typed: a relative path is taken from `cwd` and stored relative
/// to the config file's folder (`../store` typed at the root lands as `../../store`).
pub fn path_for_storage(conf_dir: &Path, cwd: &Path, value: &str) -> String {
    if URL_LIKE.is_match(value) || value.starts_with('/') || value.starts_with('~') {
        return value.to_string();
    }
    relpath(&normpath(&cwd.join(value)), &normpath(conf_dir))
}

/// One config file, shaped as DVC's dict of it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// Keys outside any section (invalid for DVC, but kept so they are not silently lost).
    pub scalars: Table,
    pub sections: Vec<(Section, Table)>,
}

fn upsert(table: &mut Table, key: String, value: Value) {
    match table.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => table.push((key, value)),
    }
}

impl ConfigFile {
    pub fn empty(path: PathBuf) -> ConfigFile {
        ConfigFile {
            path,
            scalars: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Reads a file; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8(b).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile::empty(path.to_path_buf()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Ok(ConfigFile::empty(path.to_path_buf()))
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(path, &text)
    }

    /// Parses `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let doc = configobj::parse(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.0,
        })?;
        let mut file = ConfigFile::empty(path.to_path_buf());
        for (k, v) in doc.scalars {
            upsert(&mut file.scalars, k.to_lowercase(), v);
        }
        for (header, table) in doc.sections {
            let section = Section::parse(&header);
            let mut lowered = Vec::new();
            for (k, v) in table {
                upsert(&mut lowered, k.to_lowercase(), v);
            }
            // Two headers that lowercase alike: the later replaces the earlier, in its place.
            match file.sections.iter_mut().find(|(s, _)| *s == section) {
                Some(slot) => slot.1 = lowered,
                None => file.sections.push((section, lowered)),
            }
        }
        let conf_dir = file.conf_dir();
        for (section, table) in &mut file.sections {
            for (k, v) in table.iter_mut() {
                if let Value::Str(s) = v {
                    if is_path_key(section, k) {
                        *s = normalise_stored(&conf_dir, s);
                    }
                }
            }
        }
        Ok(file)
    }

    /// The folder relative paths in this file are relative to.
    pub fn conf_dir(&self) -> PathBuf {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
    }

    pub fn section(&self, section: &Section) -> Option<&Table> {
        self.sections
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, t)| t)
    }

    pub fn has_section(&self, section: &Section) -> bool {
        self.section(section).is_some()
    }

    /// The section's table, created at the end when missing.
    pub fn section_mut(&mut self, section: &Section) -> &mut Table {
        let idx = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.clone(), Vec::new()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[idx].1
    }

    pub fn get(&self, section: &Section, key: &str) -> Option<&Value> {
        self.section(section)?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn set(&mut self, section: &Section, key: &str, value: Value) {
        upsert(self.section_mut(section), key.to_string(), value);
    }

    /// Removes a key; `true` when it was there.
    pub fn unset(&mut self, section: &Section, key: &str) -> bool {
        let Some(table) = self
            .sections
            .iter_mut()
            .find(|(s, _)| s == section)
            .map(|(_, t)| t)
        else {
            return false;
        };
        let before = table.len();
        table.retain(|(k, _)| k != key);
        before != table.len()
    }

    pub fn remove_section(&mut self, section: &Section) -> Option<Table> {
        let idx = self.sections.iter().position(|(s, _)| s == section)?;
        Some(self.sections.remove(idx).1)
    }

    /// Renames a section. DVC re-inserts the table under the new key, so it moves to the end.
    pub fn rename_section(&mut self, from: &Section, to: &Section) -> bool {
        match self.remove_section(from) {
            Some(t) => {
                self.sections.push((to.clone(), t));
                true
            }
            None => false,
        }
    }

    /// The names of this file's remotes, in file order.
    pub fn remote_names(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter_map(|(s, _)| match s {
                Section::Named { kind, name } if kind == "remote" => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The text DVC would write for this file.
    pub fn to_text(&self) -> Result<String, ConfigError> {
        let mut doc = configobj::Document {
            scalars: self.scalars.clone(),
            sections: Vec::new(),
        };
        for (s, t) in &self.sections {
            if let Section::Plain(name) = s {
                if !t.is_empty() {
                    doc.sections.push((name.clone(), t.clone()));
                }
            }
        }
        for kind in NAMED_KINDS {
            for (s, t) in &self.sections {
                if let Section::Named { kind: k, .. } = s {
                    if k == kind {
                        doc.sections.push((s.header(), t.clone()));
                    }
                }
            }
        }
        configobj::write(&doc).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Writes the file, creating its folder.
    pub fn save(&self) -> Result<(), ConfigError> {
        let text = self.to_text()?;
        let io = |source| ConfigError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&self.path, text).map_err(io)
    }

    /// Entries as `dvc config -l` lists one file: named sections first, then plain ones, path
    /// values resolved to absolute paths as DVC shows them.
    pub fn flattened(&self) -> Vec<(String, String)> {
        let conf_dir = self.conf_dir();
        let mut out = Vec::new();
        let mut push = |s: &Section, t: &Table| {
            for (k, v) in t {
                out.push((
                    format!("{}.{k}", s.dotted()),
                    display_value(&conf_dir, s, k, v),
                ));
            }
        };
        for kind in NAMED_KINDS {
            for (s, t) in &self.sections {
                if matches!(s, Section::Named { kind: k, .. } if k == kind) {
                    push(s, t);
                }
            }
        }
        for (s, t) in &self.sections {
            if matches!(s, Section::Plain(_)) {
                push(s, t);
            }
        }
        for (k, v) in &self.scalars {
            out.push((k.clone(), v.display()));
        }
        out
    }
}

/// A value as DVC shows it: path keys resolved against the file's folder, lists as Python lists.
pub fn display_value(conf_dir: &Path, section: &Section, key: &str, value: &Value) -> String {
    match value {
        Value::Str(s) if is_path_key(section, key) => resolve_path(conf_dir, s),
        v => v.display(),
    }
}

/// A remote's merged options, path values resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    pub name: String,
    /// `url` and the other options, in first-seen order, later levels overriding earlier ones.
    pub options: Vec<(String, String)>,
}

impl RemoteConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn url(&self) -> Option<&str> {
        self.get("url")
    }
}

/// The merged configuration of a repository (or, outside one, of the user and the system).
#[derive(Debug, Default, Clone)]
pub struct Config {
    /// The repository's `.dvc` folder; empty outside a repository.
    pub dvc_dir: PathBuf,
    files: Vec<(Level, ConfigFile)>,
}

impl Config {
    /// Loads and validates every level, as every DVC command that opens a repository does.
    pub fn load(dvc_dir: &Path) -> Result<Config, ConfigError> {
        let config = Self::load_unvalidated(Some(dvc_dir))?;
        config.validate(None)?;
        Ok(config)
    }

    /// Loads every level without validating (what `dvc config` and `dvc remote` do).
    pub fn load_unvalidated(dvc_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut files = Vec::new();
        for level in Level::ALL {
            if let Some(path) = level.file_path(dvc_dir) {
                files.push((level, ConfigFile::read(&path)?));
            }
        }
        Ok(Config {
            dvc_dir: dvc_dir.map(Path::to_path_buf).unwrap_or_default(),
            files,
        })
    }

    /// The configuration of another repository read from Git: the user's and the system's
    /// levels from disk and `repo`, that repository's committed `.dvc/config` (its
    /// `config.local` is never in Git), validated.
    pub fn of_source(repo: ConfigFile) -> Result<Config, ConfigError> {
        let dvc_dir = repo.conf_dir();
        let mut files = Vec::new();
        for level in [Level::System, Level::Global] {
            if let Some(path) = level.file_path(None) {
                files.push((level, ConfigFile::read(&path)?));
            }
        }
        files.push((Level::Repo, repo));
        let config = Config { dvc_dir, files };
        config.validate(None)?;
        Ok(config)
    }

    pub fn in_repo(&self) -> bool {
        !self.dvc_dir.as_os_str().is_empty()
    }

    /// The levels this config can read: all four in a repository, system and global outside.
    pub fn levels(&self) -> Vec<Level> {
        self.files.iter().map(|(l, _)| *l).collect()
    }

    pub fn file(&self, level: Level) -> Option<&ConfigFile> {
        self.files.iter().find(|(l, _)| *l == level).map(|(_, f)| f)
    }

    /// Sections merged key by key over the levels below `upto` (all levels when `None`).
    pub fn merged(&self, upto: Option<Level>) -> Vec<(Section, Table)> {
        let mut out: Vec<(Section, Table)> = Vec::new();
        for (level, file) in &self.files {
            if upto.is_some_and(|u| *level >= u) {
                break;
            }
            merge_into(&mut out, file);
        }
        out
    }

    fn validate(&self, upto_with: Option<&ConfigFile>) -> Result<(), ConfigError> {
        let merged = match upto_with {
            None => self.merged(None),
            Some(file) => {
                let level = self
                    .files
                    .iter()
                    .find(|(_, f)| f.path == file.path)
                    .map(|(l, _)| *l);
                let mut m = self.merged(level);
                merge_into(&mut m, file);
                m
            }
        };
        schema::validate(&merged).map_err(ConfigError::Invalid)
    }

    /// The highest-precedence value of `key` in `section` and the level that set it.
    pub fn get_value(&self, section: &Section, key: &str) -> Option<(Level, &ConfigFile, &Value)> {
        self.files
            .iter()
            .rev()
            .find_map(|(l, f)| f.get(section, key).map(|v| (*l, f, v)))
    }

    /// A merged value, e.g. `get("cache", "type")` or `get("remote \"storage\"", "url")`. Path
    /// values come back absolute (relative ones resolved against the folder of the file that set
    /// them); a list comes back joined with `,`.
    pub fn get(&self, section: &str, key: &str) -> Option<String> {
        let section = Section::parse(section);
        let key = key.to_lowercase();
        let (_, file, value) = self.get_value(&section, &key)?;
        Some(match value {
            Value::Str(s) if is_path_key(&section, &key) => resolve_path(&file.conf_dir(), s),
            Value::Str(s) => s.clone(),
            Value::List(items) => items.join(","),
        })
    }

    /// A boolean option as DVC's schema reads it (`true`/`false`, any case).
    pub fn get_bool(&self, section: &str, key: &str) -> Option<bool> {
        self.get(section, key)
            .map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The cache folder: `cache.dir` resolved against the folder of the file that set it, else
    /// `.dvc/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        match self.get("cache", "dir") {
            Some(d) => PathBuf::from(d),
            None => self.dvc_dir.join("cache"),
        }
    }

    /// `cache.type`: the link types to try, in order. Default `reflink,copy`.
    pub fn cache_types(&self) -> Vec<String> {
        match self.get_value(&Section::plain("cache"), "type") {
            Some((_, _, Value::List(items))) => {
                items.iter().map(|s| s.trim().to_string()).collect()
            }
            Some((_, _, Value::Str(s))) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            None => vec!["reflink".into(), "copy".into()],
        }
    }

    /// `cache.shared = group`: cache folders get mode 02775.
    pub fn cache_shared_group(&self) -> bool {
        self.get("cache", "shared")
            .is_some_and(|v| v.eq_ignore_ascii_case("group"))
    }

    /// `core.remote`, the default remote's name.
    pub fn core_remote(&self) -> Option<String> {
        self.get("core", "remote").map(|r| r.to_lowercase())
    }

    /// The names of all remotes, merged over the levels, in first-seen order.
    pub fn remote_names(&self) -> Vec<String> {
        self.merged(None)
            .into_iter()
            .filter_map(|(s, _)| match s {
                Section::Named { kind, name } if kind == "remote" => Some(name),
                _ => None,
            })
            .collect()
    }

    /// A remote's options merged over the levels, or `None` when no level defines it.
    pub fn remote(&self, name: &str) -> Option<RemoteConfig> {
        let section = Section::remote(name);
        let mut options: Vec<(String, String)> = Vec::new();
        let mut found = false;
        for (_, file) in &self.files {
            let Some(table) = file.section(&section) else {
                continue;
            };
            found = true;
            let conf_dir = file.conf_dir();
            for (k, v) in table {
                let shown = match v {
                    Value::Str(s) if is_path_key(&section, k) => resolve_path(&conf_dir, s),
                    Value::Str(s) => s.clone(),
                    Value::List(items) => items.join(","),
                };
                match options.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = shown,
                    None => options.push((k.clone(), shown)),
                }
            }
        }
        found.then(|| RemoteConfig {
            name: section_name(&section),
            options,
        })
    }

    /// Changes one level's file as DVC's `Config.edit` does: `change` edits a copy, the result is
    /// validated merged with the levels below it, then written. The loaded config is updated.
    pub fn edit<F>(&mut self, level: Level, change: F) -> Result<(), ConfigError>
    where
        F: FnOnce(&mut ConfigFile, &Config) -> Result<(), ConfigError>,
    {
        if level.is_repo() && !self.in_repo() {
            return Err(ConfigError::Invalid("Not inside a DVC repo".into()));
        }
        let mut file = match self.file(level) {
            Some(f) => f.clone(),
            None => {
                let path = level
                    .file_path(Some(&self.dvc_dir))
                    .ok_or_else(|| ConfigError::Invalid("Not inside a DVC repo".into()))?;
                ConfigFile::empty(path)
            }
        };
        change(&mut file, self)?;
        self.validate(Some(&file))?;
        file.save()?;
        match self.files.iter_mut().find(|(l, _)| *l == level) {
            Some(slot) => slot.1 = file,
            None => {
                self.files.push((level, file));
                self.files.sort_by_key(|(l, _)| *l);
            }
        }
        Ok(())
    }
}

fn section_name(section: &Section) -> String {
    match section {
        Section::Plain(n) => n.clone(),
        Section::Named { name, .. } => name.clone(),
    }
}

fn merge_into(out: &mut Vec<(Section, Table)>, file: &ConfigFile) {
    for (section, table) in &file.sections {
        let idx = match out.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                out.push((section.clone(), Vec::new()));
                out.len() - 1
            }
        };
        for (k, v) in table {
            upsert(&mut out[idx].1, k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/r/.dvc/config"), text).expect("parse")
    }

    #[test]
    fn lowercases_and_names_sections() {
        let f = file("[CORE]\nRemote = Storage\n[remote \"MyStore\"]\nURL = http://h/x\n");
        assert_eq!(
            f.get(&Section::plain("core"), "remote"),
            Some(&Value::Str("Storage".into()))
        );
        assert_eq!(f.remote_names(), vec!["mystore".to_string()]);
        assert_eq!(
            f.to_text().expect("text"),
            "[core]\n    remote = Storage\n['remote \"mystore\"']\n    url = http://h/x\n"
        );
    }

    #[test]
    fn rewrite_drops_empty_plain_sections_and_orders_named_last() {
        let f = file("['remote \"a\"']\nurl = /x\n[cache]\n[core]\nremote = a\n");
        assert_eq!(
            f.to_text().expect("text"),
            "[core]\n    remote = a\n['remote \"a\"']\n    url = /x\n"
        );
    }

    #[test]
    fn relative_paths_are_normalised_and_resolved() {
        let f = file("[cache]\ndir = ./x/../../cache/\n['remote \"r\"']\nurl = ../store\n");
        assert_eq!(
            f.get(&Section::plain("cache"), "dir"),
            Some(&Value::Str("../cache".into()))
        );
        assert_eq!(
            display_value(
                Path::new("/r/.dvc"),
                &Section::remote("r"),
                "url",
                &Value::Str("../store".into())
            ),
            "/r/store"
        );
        assert_eq!(
            path_for_storage(Path::new("/r/.dvc"), Path::new("/r"), "../relstore"),
            "../../relstore"
        );
        assert_eq!(
            path_for_storage(Path::new("/r/.dvc"), Path::new("/r/sub"), "c"),
            "../sub/c"
        );
        assert_eq!(
            path_for_storage(Path::new("/r/.dvc"), Path::new("/r"), "s3://b/x"),
            "s3://b/x"
        );
        assert_eq!(
            path_for_storage(Path::new("/r/.dvc"), Path::new("/r"), "/abs"),
            "/abs"
        );
    }

    #[test]
    fn merges_levels_key_by_key() {
        let repo = file("[core]\nremote = a\n['remote \"a\"']\nurl = /x\nuser = u\n");
        let local = ConfigFile::parse(
            Path::new("/r/.dvc/config.local"),
            "['remote \"a\"']\npassword = p\nuser = v\n",
        )
        .expect("parse");
        let config = Config {
            dvc_dir: PathBuf::from("/r/.dvc"),
            files: vec![(Level::Repo, repo), (Level::Local, local)],
        };
        let r = config.remote("a").expect("remote");
        assert_eq!(r.url(), Some("/x"));
        assert_eq!(r.get("user"), Some("v"));
        assert_eq!(r.get("password"), Some("p"));
        assert_eq!(config.core_remote().as_deref(), Some("a"));
        assert_eq!(config.get("remote \"a\"", "user").as_deref(), Some("v"));
        assert_eq!(config.cache_types(), vec!["reflink", "copy"]);
        assert_eq!(config.cache_dir(), PathBuf::from("/r/.dvc/cache"));
    }

    #[test]
    fn cache_settings() {
        let config = Config {
            dvc_dir: PathBuf::from("/r/.dvc"),
            files: vec![(
                Level::Repo,
                file("[cache]\ntype = hardlink, symlink\nshared = Group\ndir = ../c\n"),
            )],
        };
        assert_eq!(config.cache_types(), vec!["hardlink", "symlink"]);
        assert!(config.cache_shared_group());
        assert_eq!(config.cache_dir(), PathBuf::from("/r/c"));
    }
}
