//! `.dvc` files: parsing with validation, writing byte for byte as DVC does, in-place updates
//! (docs/dvc-formats.md §1).
//!
//! Reading accepts any YAML 1.2 layout and key order, and validates the keys allowed at every level
//! the way DVC's schema does, so a file DVC rejects is rejected here with the same message.
//! `deps:` entries (imports) are modelled in [`deps`]. Writing a new file emits DVC's fixed block
//! layout directly. Updating an existing file edits only the lines of the values that changed, so
//! comments, key order and other keys survive as they do with DVC's round-trip YAML; keys that
//! are new to an entry are appended at the end of its mapping.

use std::fmt;
use std::path::{Path, PathBuf};

use lode_proto::{HashKind, ObjectId};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

pub mod deps;

pub use deps::Dep;

/// Keys DVC allows at the top level of a `.dvc` file.
pub const TOP_KEYS: &[&str] = &[
    "md5",
    "wdir",
    "deps",
    "outs",
    "locked",
    "frozen",
    "meta",
    "always_changed",
    "desc",
];

/// Keys DVC allows in an entry of `outs:`.
pub const OUT_KEYS: &[&str] = &[
    "md5",
    "checksum",
    "etag",
    "size",
    "nfiles",
    "isexec",
    "version_id",
    "path",
    "persist",
    "cloud",
    "hash",
    "desc",
    "type",
    "labels",
    "meta",
    "cache",
    "remote",
    "push",
    "files",
    "fs_config",
];

/// Keys DVC allows in an entry of `deps:`.
pub const DEP_KEYS: &[&str] = &[
    "md5",
    "checksum",
    "etag",
    "size",
    "nfiles",
    "isexec",
    "version_id",
    "path",
    "persist",
    "cloud",
    "hash",
    "repo",
    "db",
    "files",
    "fs_config",
];

/// Keys DVC allows in the `repo:` of an import's dependency.
pub const REPO_KEYS: &[&str] = &["url", "rev", "rev_lock", "config", "remote"];

/// Keys DVC allows in an entry of an output's `files:` list.
pub const FILE_KEYS: &[&str] = &[
    "md5",
    "checksum",
    "etag",
    "size",
    "nfiles",
    "isexec",
    "version_id",
    "relpath",
    "cloud",
];

#[derive(Debug, thiserror::Error)]
pub enum DvcFileError {
    #[error("failed to read '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write '{}': {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not parseable as YAML; DVC words this "is invalid".
    #[error("{}", self.message(None))]
    Syntax { path: PathBuf, detail: String },
    /// Parseable YAML that DVC's schema rejects.
    #[error("{}", self.message(None))]
    Invalid { path: PathBuf, errors: Vec<String> },
}

impl DvcFileError {
    /// DVC's message, naming the file relative to `cwd` (`'./data.csv.dvc'`) when given.
    fn message(&self, cwd: Option<&Path>) -> String {
        match self {
            DvcFileError::Syntax { path, detail } => {
                format!("'{}' is invalid.\n\n{detail}", display_name(path, cwd))
            }
            DvcFileError::Invalid { path, errors } => {
                validation_message(&display_name(path, cwd), errors)
            }
            other => other.to_string(),
        }
    }

    /// The command error for this failure with the exit code the calling command uses for it
    /// (`status` exits 1 on an invalid `.dvc` file, `add` and `checkout` 255), the file named
    /// relative to `cwd` as DVC names it.
    pub fn into_lode(self, code: crate::ExitCode, cwd: &Path) -> crate::LodeError {
        match self {
            DvcFileError::Syntax { .. } | DvcFileError::Invalid { .. } => crate::LodeError::Bare {
                msg: self.message(Some(cwd)),
                code,
            },
            other => crate::LodeError::DvcFile(other),
        }
    }
}

/// Every `.dvc` file of the repository at `root`, sorted, skipping what `ignored` rejects
/// (absolute path, is-dir). Folders that are outputs of `.dvc` files found next to them are not
/// descended into: data directories can be huge and never hold `.dvc` files DVC would use.
pub fn collect(root: &Path, ignored: &crate::hash::walk::IgnoreFn<'_>) -> Vec<PathBuf> {
    collect_named(root, ignored, &|name| {
        name.as_encoded_bytes().ends_with(b".dvc") && name.len() > 4
    })
}

/// Like [`collect`], for every file whose name `want` accepts (`.dvc` files decide which
/// folders are outputs either way).
pub(crate) fn collect_named(
    root: &Path,
    ignored: &crate::hash::walk::IgnoreFn<'_>,
    want: &(dyn Fn(&std::ffi::OsStr) -> bool + Sync),
) -> Vec<PathBuf> {
    let mut found = collect_in(root, ignored, want);
    found.sort();
    found
}

fn collect_in(
    dir: &Path,
    ignored: &crate::hash::walk::IgnoreFn<'_>,
    want: &(dyn Fn(&std::ffi::OsStr) -> bool + Sync),
) -> Vec<PathBuf> {
    use rayon::prelude::*;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut dvc_files = Vec::new();
    let mut subdirs = Vec::new();
    for ent in rd.flatten() {
        let path = ent.path();
        let Ok(ft) = ent.file_type() else { continue };
        let is_dir = if ft.is_symlink() {
            // Links to folders are not followed: they may point anywhere, even back up.
            false
        } else {
            ft.is_dir()
        };
        let name = ent.file_name();
        if is_dir {
            if name != ".git" && name != ".dvc" && !ignored(&path, true) {
                subdirs.push(path);
            }
            continue;
        }
        let is_dvc = name.as_encoded_bytes().ends_with(b".dvc") && name.len() > 4;
        let wanted = want(&name);
        if !(is_dvc || wanted) || !path.is_file() || ignored(&path, false) {
            continue;
        }
        if is_dvc {
            dvc_files.push(path.clone());
        }
        if wanted {
            files.push(path);
        }
    }
    let outputs: Vec<PathBuf> = dvc_files
        .iter()
        .filter_map(|f| DvcFile::load(f).ok())
        .flat_map(|d| (0..d.outs.len()).map(move |i| d.out_path(i)))
        .collect();
    subdirs.retain(|d| !outputs.contains(d));
    let nested: Vec<Vec<PathBuf>> = subdirs
        .par_iter()
        .map(|d| collect_in(d, ignored, want))
        .collect();
    files.extend(nested.into_iter().flatten());
    files
}

fn validation_message(display: &str, errors: &[String]) -> String {
    match errors {
        [] => format!("'{display}' validation failed."),
        [one] if one == "expected a dictionary" => {
            format!("'{display}' validation failed: expected a dictionary.")
        }
        [one] => format!("'{display}' validation failed.\n\n{one}"),
        many => format!(
            "'{display}' validation failed: {} errors.\n\n{}",
            many.len(),
            many.join("\n\n")
        ),
    }
}

/// One entry of `outs:` as lode understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// The output path relative to the `.dvc` file's folder, with `/` separators, as written.
    pub path: String,
    /// The recorded hash; `None` when absent or not a valid md5 (DVC then sees the output as changed).
    pub oid: Option<ObjectId>,
    /// `hash: md5` means DVC 3; no `hash:` key means a DVC 2 entry hashed with md5-dos2unix.
    pub kind: HashKind,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
    /// `cache: false` outputs are tracked but never stored in the cache.
    pub cache: bool,
    /// `push: false` outputs are cached and fetched but never pushed.
    pub push: bool,
}

/// The values `add` and `commit` record for an output. Writing them to an entry that already has a
/// legacy kind keeps it legacy only if `kind` says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub path: String,
    pub oid: ObjectId,
    pub kind: HashKind,
    pub size: u64,
    /// Set for directories (number of files, empty directories not counted).
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

impl OutRecord {
    fn fields(&self) -> Vec<(&'static str, String)> {
        deps::hash_fields(
            Some(self.oid),
            Some(self.size),
            self.nfiles,
            self.isexec,
            self.kind,
        )
    }
}

/// A parsed `.dvc` file, kept with its text so that updates can edit it in place.
#[derive(Debug, Clone)]
pub struct DvcFile {
    /// Where the file lives (as given to [`DvcFile::load`]).
    pub path: PathBuf,
    /// The stage hash DVC records for imports (`md5:` at the top).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by `lode update`, pinned by tests")
    )]
    pub md5: Option<String>,
    /// `frozen: true`: DVC does not update the file's outputs from its dependencies.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by `lode update`, pinned by tests")
    )]
    pub frozen: bool,
    pub deps: Vec<Dep>,
    pub outs: Vec<Out>,
    text: String,
    layouts: Vec<Option<OutLayout>>,
}

/// Where each key of a block-style out entry sits, for line edits.
#[derive(Debug, Clone)]
struct OutLayout {
    /// Column (0-based, in chars) of the entry's keys.
    indent: usize,
    /// Last line (0-based) used by the entry.
    last_line: usize,
    keys: Vec<KeyPos>,
}

#[derive(Debug, Clone)]
struct KeyPos {
    key: String,
    /// The key's line (0-based).
    line: usize,
    /// For a scalar value on the key's own line: its char columns (0-based, end exclusive).
    value_cols: Option<(usize, usize)>,
}

impl DvcFile {
    /// Reads and validates a `.dvc` file.
    pub fn load(path: &Path) -> Result<DvcFile, DvcFileError> {
        let bytes = std::fs::read(path).map_err(|source| DvcFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        DvcFile::from_bytes(path, bytes)
    }

    /// Validates `bytes` (read from the file at `path`) as a `.dvc` file.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<DvcFile, DvcFileError> {
        let text = String::from_utf8(bytes).map_err(|e| DvcFileError::Syntax {
            path: path.to_path_buf(),
            detail: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        })?;
        DvcFile::parse(path, text)
    }

    /// Validates `text` as the content of the `.dvc` file at `path`.
    pub fn parse(path: &Path, text: String) -> Result<DvcFile, DvcFileError> {
        let root = build_tree(&text).map_err(|detail| DvcFileError::Syntax {
            path: path.to_path_buf(),
            detail,
        })?;
        let mut errors = Vec::new();
        let mut outs = Vec::new();
        let mut deps = Vec::new();
        let mut layouts = Vec::new();
        let (mut md5, mut frozen) = (None, false);
        match &root {
            None => {}
            Some(Node::Map { entries, .. }) => {
                for (k, v) in entries {
                    let key = k.as_str().unwrap_or_default();
                    if !TOP_KEYS.contains(&key) {
                        errors.push(format!("extra keys not allowed, in {key}"));
                        continue;
                    }
                    match key {
                        "outs" => match v {
                            Node::Seq { items, .. } => {
                                for (i, item) in items.iter().enumerate() {
                                    if let Some((out, layout)) =
                                        read_out(item, &format!("outs -> {i}"), &mut errors)
                                    {
                                        outs.push(out);
                                        layouts.push(layout);
                                    }
                                }
                            }
                            Node::Null => {}
                            _ => errors.push("expected a list, in outs".into()),
                        },
                        "deps" => match v {
                            Node::Seq { items, .. } => {
                                for (i, item) in items.iter().enumerate() {
                                    if let Some(dep) =
                                        deps::read_dep(item, &format!("deps -> {i}"), &mut errors)
                                    {
                                        deps.push(dep);
                                    }
                                }
                            }
                            Node::Null => {}
                            _ => errors.push("expected a list, in deps".into()),
                        },
                        "locked" | "frozen" | "always_changed" => {
                            check_type(v, Ty::Bool, key, None, &mut errors);
                            if key == "frozen" {
                                frozen = v.as_str().and_then(parse_bool).unwrap_or(false);
                            }
                        }
                        "md5" | "wdir" | "desc" => {
                            check_type(v, Ty::Str, key, None, &mut errors);
                            if key == "md5" {
                                md5 = v.as_str().map(str::to_string);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(_) => errors.push("expected a dictionary".into()),
        }
        if !errors.is_empty() {
            return Err(DvcFileError::Invalid {
                path: path.to_path_buf(),
                errors,
            });
        }
        Ok(DvcFile {
            path: path.to_path_buf(),
            md5,
            frozen,
            deps,
            outs,
            text,
            layouts,
        })
    }

    /// The folder output paths are relative to.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The workspace path of output `i`.
    pub fn out_path(&self, i: usize) -> PathBuf {
        let mut p = self.dir().to_path_buf();
        for part in self.outs[i].path.split('/').filter(|s| !s.is_empty()) {
            p.push(part);
        }
        p
    }

    /// The file's current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of this file after recording `rec` in output `i`, edited in place.
    pub fn updated_text(&self, i: usize, rec: &OutRecord) -> String {
        let Some(Some(layout)) = self.layouts.get(i) else {
            // Flow-style entries can't be edited line by line; DVC's own rewrite would also
            // normalise them, so emit the canonical form.
            let recs: Vec<OutRecord> = self
                .outs
                .iter()
                .enumerate()
                .map(|(j, o)| {
                    if j == i {
                        rec.clone()
                    } else {
                        OutRecord {
                            path: o.path.clone(),
                            oid: o.oid.unwrap_or(rec.oid),
                            kind: o.kind,
                            size: o.size.unwrap_or(0),
                            nfiles: o.nfiles,
                            isexec: o.isexec,
                        }
                    }
                })
                .collect();
            return render_many(&recs);
        };
        let mut lines: Vec<String> = self.text.split_inclusive('\n').map(String::from).collect();
        if lines.last().is_some_and(|l| !l.ends_with('\n')) {
            if let Some(l) = lines.last_mut() {
                l.push('\n');
            }
        }
        let wanted = rec.fields();
        let mut remove: Vec<usize> = Vec::new();
        for kp in &layout.keys {
            let new_value = wanted.iter().find(|(k, _)| *k == kp.key).map(|(_, v)| v);
            match (kp.key.as_str(), new_value) {
                (_, Some(v)) => {
                    if let Some((a, b)) = kp.value_cols {
                        if let Some(line) = lines.get_mut(kp.line) {
                            *line = replace_cols(line, a, b, v);
                        }
                    }
                }
                ("nfiles" | "isexec", None) if kp.value_cols.is_some() => {
                    remove.push(kp.line);
                }
                _ => {}
            }
        }
        let mut appended = String::new();
        for (k, v) in &wanted {
            if !layout.keys.iter().any(|kp| kp.key == *k) {
                appended.push_str(&" ".repeat(layout.indent));
                appended.push_str(&format!("{k}: {v}\n"));
            }
        }
        let mut out = String::with_capacity(self.text.len() + appended.len());
        for (n, line) in lines.iter().enumerate() {
            if !remove.contains(&n) {
                out.push_str(line);
            }
            if n == layout.last_line {
                out.push_str(&appended);
            }
        }
        if layout.last_line >= lines.len() {
            out.push_str(&appended);
        }
        out
    }
}

/// The text DVC writes for a new `.dvc` file holding one output.
pub fn render_new(rec: &OutRecord) -> String {
    render_many(std::slice::from_ref(rec))
}

fn render_many(recs: &[OutRecord]) -> String {
    let mut s = String::from("outs:\n");
    for rec in recs {
        let mut first = true;
        let mut fields = rec.fields();
        fields.push(("path", yaml_scalar(&rec.path)));
        for (k, v) in fields {
            s.push_str(if first { "- " } else { "  " });
            first = false;
            s.push_str(k);
            s.push_str(": ");
            s.push_str(&v);
            s.push('\n');
        }
    }
    s
}

/// Writes `text` to `path` through a temp file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), DvcFileError> {
    let err = |source| DvcFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
    // The temp file is created 0600; a .dvc file is committed to Git like any other file.
    let mode = 0o666 & !crate::cache::umask();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )
    .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The `'./data.csv.dvc'`-style name DVC uses in messages: relative to `cwd`; without one, a
/// relative path is shown as given and an absolute one whole.
pub fn display_name(path: &Path, cwd: Option<&Path>) -> String {
    let rel = match cwd {
        Some(cwd) => crate::hash::walk::relative_to(path, cwd),
        None => path.to_path_buf(),
    };
    let s = rel.to_string_lossy().into_owned();
    if s.starts_with("../") || s.starts_with('/') {
        s
    } else {
        format!("./{s}")
    }
}

fn replace_cols(line: &str, a: usize, b: usize, v: &str) -> String {
    let byte = |c: usize| line.char_indices().nth(c).map_or(line.len(), |(i, _)| i);
    let (ba, bb) = (byte(a), byte(b));
    format!("{}{}{}", &line[..ba], v, &line[bb..])
}

// ---------------------------------------------------------------------------------------------
// YAML tree

#[derive(Debug)]
enum Node {
    Null,
    Scalar {
        value: String,
        plain: bool,
        start: Marker,
        end: Marker,
    },
    Seq {
        items: Vec<Node>,
    },
    Map {
        entries: Vec<(Node, Node)>,
        flow: bool,
    },
}

impl Node {
    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn start(&self) -> Option<Marker> {
        match self {
            Node::Scalar { start, .. } => Some(*start),
            Node::Map { entries, .. } => entries.first().and_then(|(k, _)| k.start()),
            Node::Seq { items } => items.first().and_then(Node::start),
            Node::Null => None,
        }
    }

    fn last_line(&self) -> Option<usize> {
        match self {
            Node::Scalar { end, start, .. } => {
                // A multi-line scalar ends where its last char is; `end` can point past a newline.
                Some(if end.line() > start.line() && end.col() == 0 {
                    end.line() - 1
                } else {
                    end.line()
                })
            }
            Node::Map { entries, .. } => entries
                .iter()
                .flat_map(|(k, v)| [k.last_line(), v.last_line()])
                .flatten()
                .max(),
            Node::Seq { items } => items.iter().filter_map(Node::last_line).max(),
            Node::Null => None,
        }
    }
}

/// Parses the first YAML document into a tree. `Ok(None)` for an empty file.
fn build_tree(text: &str) -> Result<Option<Node>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    let mut root: Option<Node> = None;
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| {
            format!(
                "{}, in line {}, column {}",
                e.info(),
                e.marker().line(),
                e.marker().col() + 1
            )
        })?;
        let node = match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Alias(_) => Node::Null,
            Event::Scalar(value, style, _, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                if plain && is_null(&value) {
                    Node::Null
                } else {
                    Node::Scalar {
                        value: value.into_owned(),
                        plain,
                        start: span.start,
                        end: span.end,
                    }
                }
            }
            Event::SequenceStart(..) => {
                stack.push((Node::Seq { items: Vec::new() }, None));
                continue;
            }
            Event::MappingStart(..) => {
                let flow = char_at(text, span.start) == Some('{');
                stack.push((
                    Node::Map {
                        entries: Vec::new(),
                        flow,
                    },
                    None,
                ));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some((n, _)) => n,
                None => return Err("unbalanced YAML structure".into()),
            },
        };
        match stack.last_mut() {
            None => {
                root = Some(node);
                break;
            }
            Some((Node::Seq { items }, _)) => items.push(node),
            Some((Node::Map { entries, .. }, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(k) => entries.push((k, node)),
            },
            Some(_) => return Err("unexpected YAML structure".into()),
        }
    }
    Ok(root)
}

fn char_at(text: &str, m: Marker) -> Option<char> {
    let line = text.lines().nth(m.line().saturating_sub(1))?;
    line.chars().nth(m.col())
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    List,
    Dict,
}

fn type_ok(v: &Node, ty: Ty) -> bool {
    match (ty, v) {
        (Ty::Str, Node::Scalar { .. }) => true,
        (Ty::Int, Node::Scalar { value, plain, .. }) => *plain && parse_int(value).is_some(),
        (Ty::Bool, Node::Scalar { value, plain, .. }) => *plain && parse_bool(value).is_some(),
        (Ty::List, Node::Seq { .. }) => true,
        (Ty::Dict, Node::Map { .. }) => true,
        _ => false,
    }
}

fn check_type(v: &Node, ty: Ty, path: &str, at: Option<Marker>, errors: &mut Vec<String>) {
    if matches!(v, Node::Null) || type_ok(v, ty) {
        return;
    }
    let what = match ty {
        Ty::Str => "expected str",
        Ty::Int => "expected int",
        Ty::Bool => "expected bool",
        Ty::List => "expected a list",
        Ty::Dict => "expected a dictionary",
    };
    errors.push(format!("{what}, in {path}{}", location(at)));
}

fn location(at: Option<Marker>) -> String {
    match at {
        Some(m) => format!(", line {}, column {}", m.line(), m.col() + 1),
        None => String::new(),
    }
}

fn out_key_type(key: &str) -> Option<Ty> {
    Some(match key {
        "md5" | "checksum" | "etag" | "version_id" | "path" | "hash" | "desc" | "type"
        | "remote" | "relpath" => Ty::Str,
        "size" | "nfiles" => Ty::Int,
        "isexec" | "persist" | "cache" | "push" => Ty::Bool,
        "labels" | "files" => Ty::List,
        "cloud" | "fs_config" => Ty::Dict,
        _ => return None,
    })
}

fn read_out(node: &Node, at: &str, errors: &mut Vec<String>) -> Option<(Out, Option<OutLayout>)> {
    let Node::Map { entries, flow } = node else {
        errors.push(format!("expected a dictionary, in {at}"));
        return None;
    };
    let here = node.start();
    let before = errors.len();
    let mut out = Out {
        path: String::new(),
        oid: None,
        kind: HashKind::Md5Dos2unix,
        size: None,
        nfiles: None,
        isexec: false,
        cache: true,
        push: true,
    };
    let mut has_path = false;
    let mut keys = Vec::new();
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        if !OUT_KEYS.contains(&key) {
            errors.push(format!(
                "extra keys not allowed, in {at} -> {key}{}",
                location(here)
            ));
            continue;
        }
        if let Some(ty) = out_key_type(key) {
            check_type(v, ty, &format!("{at} -> {key}"), here, errors);
        }
        if key == "files" {
            if let Node::Seq { items } = v {
                for (i, item) in items.iter().enumerate() {
                    check_file_entry(item, &format!("{at} -> files -> {i}"), errors);
                }
            }
        }
        let text = v.as_str();
        match key {
            "path" => {
                has_path = text.is_some();
                out.path = text.unwrap_or_default().to_string();
            }
            "md5" => out.oid = text.and_then(|t| t.parse().ok()),
            "hash" => {
                out.kind = if text == Some("md5") {
                    HashKind::Md5
                } else {
                    HashKind::Md5Dos2unix
                }
            }
            "size" => out.size = text.and_then(parse_int),
            "nfiles" => out.nfiles = text.and_then(parse_int),
            "isexec" => out.isexec = text.and_then(parse_bool).unwrap_or(false),
            "cache" => out.cache = text.and_then(parse_bool).unwrap_or(true),
            "push" => out.push = text.and_then(parse_bool).unwrap_or(true),
            _ => {}
        }
        if let Some(ks) = k.start() {
            let value_cols = match v {
                Node::Scalar { start, end, .. }
                    if start.line() == ks.line() && end.line() == ks.line() =>
                {
                    Some((start.col(), end.col()))
                }
                _ => None,
            };
            keys.push(KeyPos {
                key: key.to_string(),
                line: ks.line() - 1,
                value_cols,
            });
        }
    }
    if !has_path && errors.len() == before {
        errors.push(format!(
            "required key not provided, in {at} -> path{}",
            location(here)
        ));
    }
    if errors.len() != before {
        return None;
    }
    let layout = match (flow, here, node.last_line()) {
        (false, Some(start), Some(last)) => Some(OutLayout {
            indent: start.col(),
            last_line: last - 1,
            keys,
        }),
        _ => None,
    };
    Some((out, layout))
}

fn check_file_entry(node: &Node, at: &str, errors: &mut Vec<String>) {
    let Node::Map { entries, .. } = node else {
        errors.push(format!("expected a dictionary, in {at}"));
        return;
    };
    let here = node.start();
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        if !FILE_KEYS.contains(&key) {
            errors.push(format!(
                "extra keys not allowed, in {at} -> {key}{}",
                location(here)
            ));
        } else if let Some(ty) = out_key_type(key) {
            check_type(v, ty, &format!("{at} -> {key}"), here, errors);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// YAML 1.2 scalar resolution, as DVC's ruamel.yaml does it

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<u64> {
    let t = s.strip_prefix('+').unwrap_or(s).replace('_', "");
    if let Some(h) = t.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = t.strip_prefix("0o") {
        return u64::from_str_radix(o, 8).ok();
    }
    if let Some(b) = t.strip_prefix("0b") {
        return u64::from_str_radix(b, 2).ok();
    }
    t.parse().ok()
}

fn all(s: &str, f: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(f)
}

/// Whether a plain scalar would read back as something other than a string (ruamel's 1.2 resolver).
fn resolves_to_non_string(s: &str) -> bool {
    if is_null(s) || parse_bool(s).is_some() || s == "<<" || s == "=" {
        return true;
    }
    let digits_ = |x: &str| all(x, |b| b.is_ascii_digit() || b == b'_');
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    // int
    if let Some(r) = unsigned.strip_prefix("0b") {
        if all(r, |b| b == b'0' || b == b'1' || b == b'_') {
            return true;
        }
    }
    if let Some(r) = unsigned.strip_prefix("0x") {
        if all(r, |b| b.is_ascii_hexdigit() || b == b'_') {
            return true;
        }
    }
    if let Some(r) = unsigned.strip_prefix("0o") {
        if all(r, |b| (b'0'..=b'7').contains(&b) || b == b'_') {
            return true;
        }
    }
    if digits_(unsigned) {
        return true;
    }
    // float
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let exp_ok = |e: &str| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        all(e, |b| b.is_ascii_digit())
    };
    let (mantissa, exp) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    if exp.is_none_or(exp_ok) {
        if let Some((int, frac)) = mantissa.split_once('.') {
            let int_ok = digits_(int) && int.as_bytes()[0].is_ascii_digit();
            let frac_ok = frac.is_empty() || digits_(frac);
            if int_ok && frac_ok {
                return true;
            }
            // `.5`: only without a sign, and an exponent needs its own sign.
            if int.is_empty()
                && unsigned.len() == s.len()
                && digits_(frac)
                && exp.is_none_or(|e| e.starts_with(['-', '+']) && exp_ok(e))
            {
                return true;
            }
        } else if exp.is_some() && digits_(mantissa) && mantissa.as_bytes()[0].is_ascii_digit() {
            return true;
        }
    }
    // date: YYYY-MM-DD (the date-time forms contain ':' and get quoted anyway)
    let b = s.as_bytes();
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return true;
    }
    false
}

/// `s` as DVC's YAML emitter writes a string value: bare when that reads back as the same string,
/// single-quoted otherwise, double-quoted with escapes when it holds non-printable characters.
pub fn yaml_scalar(s: &str) -> String {
    if s.chars().any(|c| !printable(c)) {
        return double_quoted(s);
    }
    if plain_ok(s) {
        s.to_string()
    } else if s.contains('\'') && !s.contains('"') {
        double_quoted(s)
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

fn plain_ok(s: &str) -> bool {
    if s.is_empty() || resolves_to_non_string(s) {
        return false;
    }
    if s == "---" || s == "..." || s.starts_with("--- ") || s.starts_with("... ") {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let first = chars[0];
    let followed_by_space = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && followed_by_space(0) {
        return false;
    }
    if first == ' ' || chars[chars.len() - 1] == ' ' {
        return false;
    }
    for (i, c) in chars.iter().enumerate() {
        match c {
            ':' if i > 0 && followed_by_space(i) => return false,
            '#' if i > 0 && chars[i - 1] == ' ' => return false,
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => return false,
            _ => {}
        }
    }
    true
}

fn double_quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\0' => o.push_str("\\0"),
            c if printable(c) => o.push(c),
            c if (c as u32) < 0x100 => o.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) < 0x10000 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    o.push('"');
    o
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DvcFile, DvcFileError> {
        DvcFile::parse(Path::new("data.csv.dvc"), text.to_string())
    }

    const DVC3: &str = "outs:\n- md5: b202f333fba4fd38d4b8e5e693077aab\n  size: 10\n  hash: md5\n  path: data.csv\n";

    #[test]
    fn reads_dvc3_and_legacy() {
        let f = parse(DVC3).unwrap();
        assert_eq!(f.outs.len(), 1);
        let o = &f.outs[0];
        assert_eq!(o.path, "data.csv");
        assert_eq!(o.kind, HashKind::Md5);
        assert_eq!(o.size, Some(10));
        assert_eq!(
            o.oid.unwrap().to_string(),
            "b202f333fba4fd38d4b8e5e693077aab"
        );
        let legacy = parse(
            "outs:\n- path: yes\n  md5: e5ebd4c02cefbe7955977c67ada242b7\n  size: 10\n  isexec: true\n",
        )
        .unwrap();
        assert_eq!(legacy.outs[0].kind, HashKind::Md5Dos2unix);
        assert_eq!(legacy.outs[0].path, "yes");
        assert!(legacy.outs[0].isexec);
    }

    #[test]
    fn rejects_unknown_keys_with_location() {
        let e = parse(&format!("{DVC3}  foo: 1\n")).unwrap_err().to_string();
        assert_eq!(
            e,
            "'./data.csv.dvc' validation failed.\n\nextra keys not allowed, in outs -> 0 -> foo, line 2, column 3"
        );
        let e = parse("outs:\n- md5: b202f333fba4fd38d4b8e5e693077aab\n  path: x\n  files:\n  - relpath: x\n    bar: 2\nfoo: 1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "'./data.csv.dvc' validation failed: 2 errors.\n\nextra keys not allowed, in outs -> 0 -> files -> 0 -> bar, line 5, column 5\n\nextra keys not allowed, in foo");
        let e = parse("outs:\n- md5: x\n  size: nope\n  path: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("expected int, in outs -> 0 -> size, line 2, column 3"),
            "{e}"
        );
        let e = parse("foo\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "'./data.csv.dvc' validation failed: expected a dictionary."
        );
        let e = parse("outs:\n- md5: a\n  size: [10\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("'./data.csv.dvc' is invalid.\n\n"), "{e}");
    }

    #[test]
    fn writes_like_dvc() {
        let rec = OutRecord {
            path: "data.csv".into(),
            oid: "b202f333fba4fd38d4b8e5e693077aab".parse().unwrap(),
            kind: HashKind::Md5,
            size: 10,
            nfiles: None,
            isexec: false,
        };
        assert_eq!(render_new(&rec), DVC3);
        let dir = OutRecord {
            path: "images".into(),
            oid: "26790b247ad68956ea76533aaf3f914f.dir".parse().unwrap(),
            nfiles: Some(4),
            size: 21,
            isexec: false,
            kind: HashKind::Md5,
        };
        assert_eq!(render_new(&dir), "outs:\n- md5: 26790b247ad68956ea76533aaf3f914f.dir\n  size: 21\n  nfiles: 4\n  hash: md5\n  path: images\n");
    }

    #[test]
    fn quotes_like_ruamel() {
        let cases = [
            ("a: b.txt", "'a: b.txt'"),
            ("123", "'123'"),
            ("#hash.txt", "'#hash.txt'"),
            ("yes", "yes"),
            ("-dash.txt", "-dash.txt"),
            ("it's.txt", "it's.txt"),
            ("é.txt", "é.txt"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("x:", "'x:'"),
            ("x:y", "x:y"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("null", "'null'"),
            ("True", "'True'"),
            ("1.5", "'1.5'"),
            ("1e3", "'1e3'"),
            ("0x1f", "'0x1f'"),
            ("2001-12-14", "'2001-12-14'"),
            ("'q", "\"'q\""),
            ("\"dq", "'\"dq'"),
            ("?a", "?a"),
            ("? a", "'? a'"),
            ("-", "'-'"),
            ("--", "--"),
            ("---", "'---'"),
            ("NaN", "NaN"),
            (".5", "'.5'"),
            ("1_000", "'1_000'"),
            ("+1", "'+1'"),
            ("1:20", "1:20"),
            ("a,b", "a,b"),
            ("a\tb", "\"a\\tb\""),
            ("a\u{7f}b", "\"a\\x7Fb\""),
            ("日本.txt", "日本.txt"),
            ("a b", "a b"),
            ("<<", "'<<'"),
            ("=", "'='"),
        ];
        for (input, want) in cases {
            assert_eq!(yaml_scalar(input), want, "{input:?}");
        }
    }

    #[test]
    fn updates_in_place() {
        let legacy = "# keep me\nouts:\n- md5: e5ebd4c02cefbe7955977c67ada242b7  # inline\n  size: 10\n  path: data.csv\n  desc: hello\nmeta:\n  a: 1\n";
        let f = parse(legacy).unwrap();
        let rec = OutRecord {
            path: "data.csv".into(),
            oid: "023b88dcb57c430dd1f28ffe6dbe8388".parse().unwrap(),
            kind: HashKind::Md5,
            size: 12,
            nfiles: None,
            isexec: false,
        };
        assert_eq!(
            f.updated_text(0, &rec),
            "# keep me\nouts:\n- md5: 023b88dcb57c430dd1f28ffe6dbe8388  # inline\n  size: 12\n  path: data.csv\n  desc: hello\n  hash: md5\nmeta:\n  a: 1\n"
        );
        let any_order = "outs:\n- path: d\n  hash: md5\n  isexec: true\n  md5: b202f333fba4fd38d4b8e5e693077aab\n  size: 10\n";
        let f = parse(any_order).unwrap();
        let rec = OutRecord {
            path: "d".into(),
            oid: "26790b247ad68956ea76533aaf3f914f.dir".parse().unwrap(),
            kind: HashKind::Md5,
            size: 21,
            nfiles: Some(4),
            isexec: false,
        };
        assert_eq!(
            f.updated_text(0, &rec),
            "outs:\n- path: d\n  hash: md5\n  md5: 26790b247ad68956ea76533aaf3f914f.dir\n  size: 21\n  nfiles: 4\n"
        );
    }
}
