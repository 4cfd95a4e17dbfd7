//! `.dvcignore`: gitignore-syntax patterns applied wherever a tree is walked (docs/dvc-formats.md
//! §6).
//!
//! The rules are DVC's, which differ from Git's in places:
//! * each line is stripped of whitespace at both ends; empty lines and `#` lines are skipped;
//! * patterns are translated to regular expressions as pathspec's `GitIgnoreSpecPattern` does and
//!   matched from the start of the path relative to the repository root;
//! * a `.dvcignore` in a subdirectory is rebased onto the root (`*.log` in `sub/` becomes
//!   `sub/**/*.log`) and appended after its parents' patterns; the last matching pattern wins,
//!   except that among consecutive ignore patterns the first one is the one reported;
//! * a path is ignored when it or any of its parent directories is; a negation cannot bring back
//!   a file below an ignored directory;
//! * built-in patterns `.hg/`, `.git/`, `.git`, `.dvc/` come first, and a subdirectory holding its
//!   own `.dvc/` (a nested repository) is always ignored;
//! * a subdirectory's `.dvcignore` is read only when its parents don't ignore it.
//!
//! [`DvcIgnore`] loads `.dvcignore` files lazily, one directory at a time, and caches them, so it
//! can be shared by threads walking a tree in parallel.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use regex::{Regex, RegexSet};

pub const DVCIGNORE_FILE: &str = ".dvcignore";

const BUILTIN: [&str; 4] = [".hg/", ".git/", ".git", ".dvc/"];

#[derive(Debug, thiserror::Error)]
pub enum DvcIgnoreError {
    #[error("failed to read '{}': {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{}' is outside of the repository", .0.display())]
    Outside(PathBuf),
}

/// The pattern that decided a path is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreMatch {
    /// The `.dvcignore` file relative to the repository root (`.dvcignore`, `sub/.dvcignore`);
    /// empty for a built-in pattern or a nested repository.
    pub source: PathBuf,
    /// 1-based line number in `source`; 0 when there is no file.
    pub line: usize,
    /// The pattern as written (stripped), or the reason when there is no file.
    pub pattern: String,
}

impl fmt::Display for IgnoreMatch {
    /// `.dvcignore:1:*.tmp`, as DVC prints it in errors and `check-ignore`; `:.git` for a
    /// built-in pattern, `in sub_repo:name` for a nested repository.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.as_os_str().is_empty() {
            if self.line == 0 && self.pattern.starts_with("in sub_repo:") {
                return f.write_str(&self.pattern);
            }
            return write!(f, ":{}", self.pattern);
        }
        write!(
            f,
            "{}:{}:{}",
            self.source.to_string_lossy(),
            self.line,
            self.pattern
        )
    }
}

#[derive(Debug)]
struct Rule {
    /// The anchored regex source; compiled into its group's set.
    regex: String,
    ignore: bool,
    dir_only: bool,
    info: Arc<IgnoreMatch>,
}

/// Consecutive rules DVC evaluates together: runs of ignore rules of the same kind are one
/// alternation (the first matching alternative is reported); each negation stands alone.
#[derive(Debug)]
struct Group {
    ignore: bool,
    dir_only: bool,
    rules: Vec<Arc<Rule>>,
    set: RegexSet,
}

impl Group {
    fn new(rules: Vec<Arc<Rule>>) -> Option<Group> {
        let first = rules.first()?;
        let set = RegexSet::new(rules.iter().map(|r| r.regex.as_str())).ok()?;
        Some(Group {
            ignore: first.ignore,
            dir_only: first.dir_only,
            set,
            rules,
        })
    }

    /// The first rule (in file order) matching `path`.
    fn first_match(&self, path: &str) -> Option<&Arc<Rule>> {
        self.set
            .matches(path)
            .iter()
            .next()
            .and_then(|i| self.rules.get(i))
    }
}

/// The merged, root-relative patterns that apply inside one directory.
#[derive(Debug, Default)]
struct PatternSet {
    rules: Vec<Arc<Rule>>,
    groups: Vec<Group>,
}

impl PatternSet {
    fn new(rules: Vec<Arc<Rule>>) -> PatternSet {
        let mut runs: Vec<Vec<Arc<Rule>>> = Vec::new();
        for r in &rules {
            match runs.last_mut() {
                Some(run) if r.ignore && run[0].ignore && run[0].dir_only == r.dir_only => {
                    run.push(r.clone())
                }
                _ => runs.push(vec![r.clone()]),
            }
        }
        let groups = runs.into_iter().filter_map(Group::new).collect();
        PatternSet { rules, groups }
    }

    /// The deciding rule for one path (no parent check), as DVC's `_find_matching_pattern`.
    fn find(&self, path: &str, is_dir: bool) -> Option<(bool, Arc<IgnoreMatch>)> {
        let with_slash = format!("{path}/");
        let candidates: &[&str] = if is_dir && !path.ends_with('/') {
            &[path, &with_slash]
        } else {
            &[path]
        };
        for g in self.groups.iter().rev() {
            if g.dir_only && !is_dir {
                continue;
            }
            for p in candidates {
                if let Some(r) = g.first_match(p) {
                    return Some((g.ignore, r.info.clone()));
                }
            }
        }
        None
    }
}

/// Translates one glob segment as pathspec's `_translate_segment_glob` (`'raise'` mode: `None`
/// for an unclosed bracket, which Git discards). The regex is for Rust's engine, so characters
/// that are special only inside Rust's bracket classes are escaped.
fn translate_glob(seg: &str) -> Option<String> {
    let chars: Vec<char> = seg.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut escape = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if escape {
            escape = false;
            out.push_str(&regex::escape(&c.to_string()));
        } else if c == '\\' {
            escape = true;
        } else if c == '*' {
            out.push_str("[^/]*");
        } else if c == '?' {
            out.push_str("[^/]");
        } else if c == '[' {
            let mut j = i;
            if j < chars.len() && (chars[j] == '!' || chars[j] == '^') {
                j += 1;
            }
            if j < chars.len() && chars[j] == ']' {
                j += 1;
            }
            while j < chars.len() && chars[j] != ']' {
                j += 1;
            }
            if j >= chars.len() {
                return None;
            }
            j += 1;
            let mut expr = String::from("[");
            if chars[i] == '!' || chars[i] == '^' {
                expr.push('^');
                i += 1;
            }
            let body: String = chars[i..j - 1].iter().collect();
            for (k, bc) in body.chars().enumerate() {
                match bc {
                    '\\' => expr.push_str("\\\\"),
                    '[' | '&' | '~' => {
                        expr.push('\\');
                        expr.push(bc);
                    }
                    ']' if k == 0 => expr.push_str("\\]"),
                    _ => expr.push(bc),
                }
            }
            expr.push(']');
            out.push_str(&expr);
            i = j;
        } else {
            out.push_str(&regex::escape(&c.to_string()));
        }
    }
    if escape {
        return None;
    }
    Some(out)
}

const DIR_MARK: &str = "/";
const DIR_MARK_OPT: &str = "(?:/|$)";

/// pathspec's `GitIgnoreSpecPattern.pattern_to_regex`: `None` for a pattern that matches
/// nothing (blank, comment, `/`, invalid); else the regex and whether it ignores (`true`) or
/// re-includes (`false`).
fn pattern_to_regex(pattern: &str) -> Option<(String, bool)> {
    let mut p = if pattern.ends_with("\\ ") {
        pattern
    } else {
        pattern.trim_end()
    };
    if p.is_empty() || p.starts_with('#') || p == "/" {
        return None;
    }
    let ignore = match p.strip_prefix('!') {
        Some(rest) => {
            p = rest;
            false
        }
        None => true,
    };
    let mut segs: Vec<&str> = p.split('/').collect();
    let is_dir_pattern = segs.last().is_some_and(|s| s.is_empty());
    if segs[0].is_empty() {
        segs.remove(0);
    } else if (segs.len() == 1 || (segs.len() == 2 && segs[1].is_empty())) && segs[0] != "**" {
        segs.insert(0, "**");
    }
    if segs.is_empty() {
        return None;
    }
    if let Some(last) = segs.last_mut() {
        if last.is_empty() {
            *last = "**";
        }
    }
    let mut i = segs.len() - 1;
    while i > 0 {
        if segs[i - 1] == "**" && segs[i] == "**" {
            segs.remove(i);
        }
        i -= 1;
    }
    let regex = match segs.as_slice() {
        ["**"] if is_dir_pattern => DIR_MARK.to_string(),
        ["**"] | ["**", "*"] => ".".to_string(),
        ["**", "*", "**"] => {
            if is_dir_pattern {
                DIR_MARK.to_string()
            } else {
                "/".to_string()
            }
        }
        _ => {
            let mut out = String::new();
            let mut need_slash = false;
            let end = segs.len() - 1;
            for (i, seg) in segs.iter().enumerate() {
                if *seg == "**" {
                    if i == 0 {
                        out.push_str("^(?:.+/)?");
                    } else if i < end {
                        out.push_str("(?:/.+)?");
                        need_slash = true;
                    } else {
                        out.push('/');
                    }
                } else {
                    if i == 0 {
                        out.push('^');
                    }
                    if need_slash {
                        out.push('/');
                    }
                    if *seg == "*" {
                        out.push_str("[^/]+");
                    } else {
                        out.push_str(&translate_glob(seg)?);
                    }
                    if i == end {
                        out.push_str(DIR_MARK_OPT);
                    }
                    need_slash = true;
                }
            }
            out
        }
    };
    Some((regex, ignore))
}

/// DVC's `change_rule`: rebases a pattern from `.dvcignore` in `rel` (a `/`-joined directory
/// below the root) onto the root.
fn rebase_rule(rule: &str, rel: &str) -> String {
    let rule = rule.trim();
    if rule.starts_with('#') {
        return rule.to_string();
    }
    let (negate, rule) = match rule.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, rule),
    };
    let head = match rule.char_indices().last() {
        Some((idx, _)) => &rule[..idx],
        None => "",
    };
    let (match_all, rule) = if head.contains('/') && !rule.starts_with("**/") {
        (false, rule.strip_prefix('/').unwrap_or(rule))
    } else {
        (true, rule.strip_prefix("**/").unwrap_or(rule))
    };
    let rule = rule.strip_prefix('\\').unwrap_or(rule);
    let rule = if match_all {
        format!("/**/{rule}")
    } else {
        format!("/{rule}")
    };
    let rule = if negate {
        format!("!/{rel}{rule}")
    } else {
        format!("/{rel}{rule}")
    };
    match rule.strip_prefix('/') {
        Some(r) => r.to_string(),
        None => rule.strip_prefix("./").unwrap_or(&rule).to_string(),
    }
}

fn compile(pattern: &str, info: IgnoreMatch) -> Option<Arc<Rule>> {
    let (regex, ignore) = pattern_to_regex(pattern)?;
    // Python's `re.match` anchors at the start only.
    let regex = format!("^(?:{regex})");
    // A pattern Rust's engine rejects is dropped, as Git drops invalid ones.
    Regex::new(&regex).ok()?;
    Some(Arc::new(Rule {
        regex,
        ignore,
        dir_only: pattern.ends_with('/'),
        info: Arc::new(info),
    }))
}

/// `/`-joined form of a clean relative path; `None` if it climbs out with `..` or is absolute.
fn rel_string(rel: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

#[derive(Debug)]
struct DirState {
    /// The rules for paths directly inside this directory.
    patterns: Arc<PatternSet>,
    /// Why this directory itself is ignored (it, a parent, or being a nested repository).
    ignored: Option<Arc<IgnoreMatch>>,
}

/// The `.dvcignore` rules of one repository. Cheap to share between threads (`Send + Sync`):
/// each directory's merged patterns are built on first use and cached.
#[derive(Debug)]
pub struct DvcIgnore {
    root: PathBuf,
    dirs: RwLock<HashMap<String, Arc<DirState>>>,
}

impl DvcIgnore {
    /// Rules for the repository rooted at `root` (the folder holding `.dvc/`). Nothing is read
    /// until a path is checked.
    pub fn new(root: &Path) -> DvcIgnore {
        DvcIgnore {
            root: root.to_path_buf(),
            dirs: RwLock::new(HashMap::new()),
        }
    }

    /// Whether `rel` (relative to the root; `/`-separated components, no leading `/`) is
    /// ignored, and by which pattern. `is_dir` says whether `rel` is a directory: dir-only
    /// patterns (`logs/`) match only directories. The root itself is never ignored.
    pub fn check(&self, rel: &Path, is_dir: bool) -> Result<Option<IgnoreMatch>, DvcIgnoreError> {
        let rel = rel_string(rel).ok_or_else(|| DvcIgnoreError::Outside(rel.to_path_buf()))?;
        if rel.is_empty() {
            return Ok(None);
        }
        // A directory's own verdict is cached with it; it is the same one DVC reaches from the
        // parent's rules, since rules from deeper `.dvcignore` files only match below them.
        if is_dir {
            return Ok(self.dir_state(&rel)?.ignored.as_deref().cloned());
        }
        let parent = self.dir_state(parent_of(&rel))?;
        if let Some(m) = &parent.ignored {
            return Ok(Some((**m).clone()));
        }
        Ok(match parent.patterns.find(&rel, false) {
            Some((true, info)) => Some((*info).clone()),
            _ => None,
        })
    }

    /// Like [`check`](Self::check) without the details. A `.dvcignore` that cannot be read
    /// counts as empty here; use `check` where that must be reported.
    pub fn is_ignored(&self, rel: &Path, is_dir: bool) -> bool {
        matches!(self.check(rel, is_dir), Ok(Some(_)))
    }

    /// Same check for an absolute path (or one relative to the current directory).
    pub fn check_abs(
        &self,
        path: &Path,
        is_dir: bool,
    ) -> Result<Option<IgnoreMatch>, DvcIgnoreError> {
        let abs = std::path::absolute(path).map_err(|source| DvcIgnoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let rel = abs
            .strip_prefix(&self.root)
            .map_err(|_| DvcIgnoreError::Outside(abs.clone()))?;
        self.check(rel, is_dir)
    }

    fn dir_state(&self, rel_dir: &str) -> Result<Arc<DirState>, DvcIgnoreError> {
        if let Ok(map) = self.dirs.read() {
            if let Some(s) = map.get(rel_dir) {
                return Ok(s.clone());
            }
        }
        let state = Arc::new(self.build_state(rel_dir)?);
        if let Ok(mut map) = self.dirs.write() {
            // Another thread may have built it meanwhile; both results are identical.
            map.entry(rel_dir.to_string())
                .or_insert_with(|| state.clone());
        }
        Ok(state)
    }

    fn build_state(&self, rel_dir: &str) -> Result<DirState, DvcIgnoreError> {
        if rel_dir.is_empty() {
            let rules = BUILTIN
                .iter()
                .filter_map(|p| {
                    compile(
                        p,
                        IgnoreMatch {
                            source: PathBuf::new(),
                            line: 0,
                            pattern: p.to_string(),
                        },
                    )
                })
                .collect();
            let builtin = Arc::new(PatternSet::new(rules));
            let patterns = self.with_file(&builtin, "")?;
            return Ok(DirState {
                patterns,
                ignored: None,
            });
        }
        let parent = self.dir_state(parent_of(rel_dir))?;
        let ignored = match &parent.ignored {
            Some(m) => Some(m.clone()),
            None if self.root.join(rel_dir).join(".dvc").is_dir() => {
                let name = rel_dir.rsplit('/').next().unwrap_or(rel_dir);
                Some(Arc::new(IgnoreMatch {
                    source: PathBuf::new(),
                    line: 0,
                    pattern: format!("in sub_repo:{name}"),
                }))
            }
            None => match parent.patterns.find(rel_dir, true) {
                Some((true, info)) => Some(info),
                _ => None,
            },
        };
        // Nothing below an ignored directory is ever matched, so its `.dvcignore` is not read.
        let patterns = if ignored.is_some() {
            parent.patterns.clone()
        } else {
            self.with_file(&parent.patterns, rel_dir)?
        };
        Ok(DirState { patterns, ignored })
    }

    /// `base` plus the rules of `rel_dir/.dvcignore`, when it exists and `base` doesn't hide it.
    fn with_file(
        &self,
        base: &Arc<PatternSet>,
        rel_dir: &str,
    ) -> Result<Arc<PatternSet>, DvcIgnoreError> {
        let unchanged = || base.clone();
        let file_rel = if rel_dir.is_empty() {
            DVCIGNORE_FILE.to_string()
        } else {
            format!("{rel_dir}/{DVCIGNORE_FILE}")
        };
        if matches!(base.find(&file_rel, false), Some((true, _))) {
            return Ok(unchanged());
        }
        let file_abs = self.root.join(&file_rel);
        let text = match std::fs::read(&file_abs) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) || file_abs.is_dir() =>
            {
                return Ok(unchanged());
            }
            Err(source) => {
                return Err(DvcIgnoreError::Io {
                    path: file_abs,
                    source,
                })
            }
        };
        let mut rules = base.rules.clone();
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let pattern = if rel_dir.is_empty() {
                line.to_string()
            } else {
                rebase_rule(line, rel_dir)
            };
            let info = IgnoreMatch {
                source: PathBuf::from(&file_rel),
                line: idx + 1,
                pattern: line.to_string(),
            };
            if let Some(rule) = compile(&pattern, info) {
                rules.push(rule);
            }
        }
        Ok(Arc::new(PatternSet::new(rules)))
    }
}

fn parent_of(rel: &str) -> &str {
    match rel.rfind('/') {
        Some(i) => &rel[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// Expected results were produced by DVC 3.67.1's `DvcIgnoreFilter` on the same tree.
    #[test]
    fn matches_dvc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".dvc")).expect("mkdir");
        std::fs::create_dir_all(root.join("repo2/.dvc")).expect("mkdir");
        write(
            root,
            ".dvcignore",
            "*.tmp\n  spaced.txt  \n# comment\n!keep.tmp\nlogs/\n/rootonly\nsub/deep/*.bin\ndata/\n!data/x\n*/\n",
        );
        write(
            root,
            "sub/.dvcignore",
            "*.log\n!important.log\n/anchored\nnested/dir/\n!*.tmp\n",
        );
        let ign = DvcIgnore::new(root);
        let cases: &[(&str, bool, Option<&str>)] = &[
            ("a.tmp", false, Some(".dvcignore:1:*.tmp")),
            ("keep.tmp", false, None),
            ("spaced.txt", false, Some(".dvcignore:2:spaced.txt")),
            ("logs", true, Some(".dvcignore:5:logs/")),
            ("logs", false, None),
            ("x/logs/y", false, Some(".dvcignore:5:logs/")),
            ("rootonly", false, Some(".dvcignore:6:/rootonly")),
            ("sub/rootonly", false, None),
            ("sub/deep/a.bin", false, Some(".dvcignore:7:sub/deep/*.bin")),
            ("sub/a.bin", false, None),
            ("data/x", true, Some(".dvcignore:8:data/")),
            ("data/y", false, Some(".dvcignore:8:data/")),
            ("data/x/z", false, Some(".dvcignore:8:data/")),
            ("sub/a.log", false, Some("sub/.dvcignore:1:*.log")),
            ("sub/important.log", false, None),
            ("a.log", false, None),
            ("sub/anchored", false, Some("sub/.dvcignore:3:/anchored")),
            ("anchored", false, None),
            ("sub/deep/anchored", false, None),
            ("sub/nested/dir", true, Some("sub/.dvcignore:4:nested/dir/")),
            (
                "sub/nested/dir/f",
                false,
                Some("sub/.dvcignore:4:nested/dir/"),
            ),
            ("sub/b.tmp", false, None),
            ("sub/c/b.tmp", false, None),
            (".git", true, Some(":.git")),
            (".git/x", false, Some(":.git")),
            (".dvc/config", false, Some(":.dvc/")),
            (".hg/x", false, Some(":.hg/")),
            ("repo2", true, Some("in sub_repo:repo2")),
            ("repo2/x", false, Some("in sub_repo:repo2")),
            ("dir", true, None),
            ("a/b", false, None),
            ("sub/deep/x.bin", false, Some(".dvcignore:7:sub/deep/*.bin")),
        ];
        for (path, is_dir, want) in cases {
            let got = ign
                .check(Path::new(path), *is_dir)
                .expect("check")
                .map(|m| m.to_string());
            assert_eq!(got.as_deref(), *want, "{path} (dir: {is_dir})");
            assert_eq!(ign.is_ignored(Path::new(path), *is_dir), want.is_some());
        }
    }

    #[test]
    fn child_dvcignore_hidden_by_parent_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, ".dvcignore", "sub/.dvcignore\n");
        write(root, "sub/.dvcignore", "*.txt\n");
        let ign = DvcIgnore::new(root);
        assert!(!ign.is_ignored(Path::new("sub/a.txt"), false));
    }

    #[test]
    fn regexes_follow_pathspec() {
        let re = |p: &str| pattern_to_regex(p).map(|(r, _)| r);
        assert_eq!(re("foo").as_deref(), Some("^(?:.+/)?foo(?:/|$)"));
        assert_eq!(re("foo/").as_deref(), Some("^(?:.+/)?foo/"));
        assert_eq!(re("/a/**/b").as_deref(), Some("^a(?:/.+)?/b(?:/|$)"));
        assert_eq!(re("*").as_deref(), Some("."));
        assert_eq!(re("a[!b]?").as_deref(), Some("^(?:.+/)?a[^b][^/](?:/|$)"));
        assert_eq!(re("[oops"), None);
        assert_eq!(re("/"), None);
        assert_eq!(
            pattern_to_regex("!x").map(|(_, ignore)| ignore),
            Some(false)
        );
        assert_eq!(rebase_rule("*.log", "sub"), "sub/**/*.log");
        assert_eq!(rebase_rule("/anchored", "sub"), "sub/anchored");
        assert_eq!(rebase_rule("!*.tmp", "a/b"), "!/a/b/**/*.tmp");
        assert_eq!(rebase_rule("nested/dir/", "sub"), "sub/nested/dir/");
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DvcIgnore>();
    }
}
