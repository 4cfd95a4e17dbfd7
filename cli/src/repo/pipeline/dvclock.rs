//! `dvc.lock`: reading the hashes, command and parameter values DVC recorded for each stage,
//! and writing entries back exactly as DVC writes them (see `docs/pipelines.md`).

use std::path::Path;

use lode_proto::{HashKind, ObjectId};

use super::emit::{self, Emit};
use super::schema::{join, Checker, Ty};
use super::yaml::{self, key_text, Node, Value};
use super::PipelineError;

/// A file or directory a lock entry records (a dependency or an output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    pub path: String,
    /// `hash: md5` (DVC 3); without it the entry is a DVC 2 one (md5-dos2unix).
    pub kind: HashKind,
    /// The recorded `md5`, when it is a valid one.
    pub oid: Option<ObjectId>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

/// What the lock records for one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct LockStage {
    pub cmd: Node,
    pub deps: Vec<LockItem>,
    /// Parameter values per parameters file.
    pub params: Vec<(String, Vec<(String, Node)>)>,
    pub outs: Vec<LockItem>,
}

/// A parsed `dvc.lock`.
#[derive(Debug, Clone, Default)]
pub struct Lock {
    pub stages: Vec<(String, LockStage)>,
}

impl Lock {
    pub fn stage(&self, name: &str) -> Option<&LockStage> {
        self.stages.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

const DATA_KEYS: &[&str] = &[
    "md5",
    "etag",
    "checksum",
    "size",
    "nfiles",
    "isexec",
    "version_id",
    "path",
    "cloud",
    "files",
    "hash",
    "dataset",
];

fn check_items(c: &mut Checker, node: &Node, path: &[String]) {
    for (ip, item) in c.items(node, path) {
        for (k, v) in c.keys(item, &ip, DATA_KEYS, &["path"]) {
            let p = join(&ip, &k);
            match k.as_str() {
                "md5" | "etag" | "checksum"
                    if !matches!(v.value, Value::Str(_) | Value::Int(_) | Value::Null) =>
                {
                    c.push("expected str", &p);
                }
                "size" | "nfiles" => {
                    c.ty(v, Ty::Int, &p, false);
                }
                "isexec" => {
                    c.ty(v, Ty::Bool, &p, false);
                }
                "version_id" | "path" | "hash" => {
                    c.ty(v, Ty::Str, &p, false);
                }
                "files" => {
                    c.ty(v, Ty::List, &p, false);
                }
                "cloud" | "dataset" => {
                    c.ty(v, Ty::Dict, &p, false);
                }
                _ => {}
            }
        }
    }
}

fn check(root: &Node) -> Checker {
    let mut c = Checker::default();
    for (k, v) in c.keys(root, &[], &["schema", "datasets", "stages"], &["schema"]) {
        let p = vec![k.clone()];
        match k.as_str() {
            "schema" if v.as_str() != Some("2.0") => {
                c.push("invalid schema version", &p);
            }
            "stages" => {
                let Value::Map(entries) = &v.value else {
                    c.push("expected a dictionary", &p);
                    continue;
                };
                for (name, st) in entries {
                    let sp = join(&p, &key_text(name).unwrap_or_default());
                    if name.as_str().is_none() {
                        c.push("extra keys not allowed", &sp);
                        continue;
                    }
                    for (sk, sv) in c.keys(st, &sp, &["cmd", "deps", "params", "outs"], &["cmd"]) {
                        let fp = join(&sp, &sk);
                        match sk.as_str() {
                            "cmd" if !matches!(sv.value, Value::Str(_) | Value::Seq(_)) => {
                                c.push("expected str", &fp);
                            }
                            "deps" | "outs" => check_items(&mut c, sv, &fp),
                            "params" => {
                                if let Value::Map(files) = &sv.value {
                                    for (f, vals) in files {
                                        let pp = join(&fp, &key_text(f).unwrap_or_default());
                                        c.ty(vals, Ty::Map, &pp, false);
                                    }
                                } else {
                                    c.push("expected a dictionary", &fp);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    c
}

fn item_of(node: &Node) -> LockItem {
    let s = |k: &str| {
        node.get(k).and_then(|n| match &n.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        })
    };
    let int = |k: &str| match node.get(k).map(|n| &n.value) {
        Some(Value::Int(i)) if *i >= 0 => Some(*i as u64),
        _ => None,
    };
    LockItem {
        path: s("path").unwrap_or_default(),
        kind: if s("hash").as_deref() == Some("md5") {
            HashKind::Md5
        } else {
            HashKind::Md5Dos2unix
        },
        oid: s("md5").and_then(|m| m.to_lowercase().parse().ok()),
        size: int("size"),
        nfiles: int("nfiles"),
        isexec: matches!(
            node.get("isexec").map(|n| &n.value),
            Some(Value::Bool(true))
        ),
    }
}

fn items_of(node: Option<&Node>) -> Vec<LockItem> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().map(item_of).collect(),
        _ => Vec::new(),
    }
}

/// Parses and validates the text of the `dvc.lock` at `path`.
pub fn parse(path: &Path, text: &str) -> Result<Lock, PipelineError> {
    let root = yaml::parse(text)
        .map_err(|e| super::syntax(path, e.to_string()))?
        .unwrap_or(Node::new(Value::Map(Vec::new())));
    let c = check(&root);
    if !c.problems.is_empty() {
        let errors = c.messages(&root);
        return Err(super::invalid(path, errors));
    }
    let mut lock = Lock::default();
    if let Some(Value::Map(entries)) = root.get("stages").map(|n| &n.value) {
        for (name, st) in entries {
            let params = match st.get("params").map(|n| &n.value) {
                Some(Value::Map(files)) => files
                    .iter()
                    .map(|(f, vals)| {
                        let vals = match &vals.value {
                            Value::Map(v) => v
                                .iter()
                                .filter_map(|(k, v)| key_text(k).map(|k| (k, v.clone())))
                                .collect(),
                            _ => Vec::new(),
                        };
                        (key_text(f).unwrap_or_default(), vals)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            lock.stages.push((
                name.as_str().unwrap_or_default().to_string(),
                LockStage {
                    cmd: st.get("cmd").cloned().unwrap_or(Node::new(Value::Null)),
                    deps: items_of(st.get("deps")),
                    params,
                    outs: items_of(st.get("outs")),
                },
            ));
        }
    }
    Ok(lock)
}

fn emit_value(n: &Node) -> Emit {
    match &n.value {
        Value::Null => Emit::Null,
        Value::Bool(b) => Emit::Raw(if *b { "true" } else { "false" }.into()),
        Value::Int(i) => Emit::Raw(i.to_string()),
        Value::Float(f) => Emit::Raw(emit::yaml_float(*f)),
        Value::Str(s) => Emit::Str(s.clone()),
        Value::Seq(items) => Emit::Seq(items.iter().map(emit_value).collect()),
        Value::Map(entries) => Emit::Map(
            entries
                .iter()
                .map(|(k, v)| (key_text(k).unwrap_or_default(), emit_value(v)))
                .collect(),
        ),
    }
}

fn emit_item(i: &LockItem) -> Emit {
    let mut m = vec![("path".to_string(), Emit::Str(i.path.clone()))];
    if i.kind == HashKind::Md5 {
        m.push(("hash".into(), Emit::Str("md5".into())));
    }
    if let Some(oid) = i.oid {
        m.push(("md5".into(), Emit::Str(oid.to_string())));
    }
    if let Some(s) = i.size {
        m.push(("size".into(), Emit::Raw(s.to_string())));
    }
    if let Some(n) = i.nfiles {
        m.push(("nfiles".into(), Emit::Raw(n.to_string())));
    }
    if i.isexec {
        m.push(("isexec".into(), Emit::Raw("true".into())));
    }
    Emit::Map(m)
}

/// The text of one stage's entry under `stages:`, as DVC writes it: dependencies and outputs
/// sorted by path, parameter files with `params.yaml` first and the rest sorted, their keys
/// sorted.
pub fn render_stage(name: &str, st: &LockStage) -> String {
    let mut body = vec![("cmd".to_string(), emit_value(&st.cmd))];
    let sorted = |items: &[LockItem]| {
        let mut v = items.to_vec();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        Emit::Seq(v.iter().map(emit_item).collect())
    };
    if !st.deps.is_empty() {
        body.push(("deps".into(), sorted(&st.deps)));
    }
    let mut params: Vec<&(String, Vec<(String, Node)>)> = st.params.iter().collect();
    params.sort_by(|a, b| (a.0 != "params.yaml", &a.0).cmp(&(b.0 != "params.yaml", &b.0)));
    if !params.is_empty() {
        body.push((
            "params".into(),
            Emit::Map(
                params
                    .iter()
                    .map(|(f, vals)| {
                        let mut vals: Vec<&(String, Node)> = vals.iter().collect();
                        vals.sort_by(|a, b| a.0.cmp(&b.0));
                        (
                            f.clone(),
                            Emit::Map(
                                vals.iter()
                                    .map(|(k, v)| (k.clone(), emit_value(v)))
                                    .collect(),
                            ),
                        )
                    })
                    .collect(),
            ),
        ));
    }
    if !st.outs.is_empty() {
        body.push(("outs".into(), sorted(&st.outs)));
    }
    emit::mapping(&[(name.to_string(), Emit::Map(body))], 2)
}

/// The lock's text after recording `updates` (stage name and entry): entries already there are
/// replaced where they stand, new ones appended, everything else left as it was. `None` when
/// there is no lock yet.
pub fn updated_text(
    path: &Path,
    current: Option<&str>,
    updates: &[(String, LockStage)],
) -> Result<String, PipelineError> {
    let Some(text) = current.filter(|t| !t.trim().is_empty()) else {
        let mut out = String::from("schema: '2.0'\nstages:\n");
        for (name, st) in updates {
            out.push_str(&render_stage(name, st));
        }
        return Ok(out);
    };
    let root = yaml::parse(text)
        .map_err(|e| super::syntax(path, e.to_string()))?
        .unwrap_or(Node::new(Value::Map(Vec::new())));
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        if let Some(l) = lines.last_mut() {
            l.push('\n');
        }
    }
    let stages = root.get("stages");
    let block = stages.and_then(|s| stage_spans(&root, s, lines.len()));
    let Some((spans, end_of_block)) = block else {
        // No block-style `stages:` to edit in place: write the whole lock out again.
        let mut all = parse(path, text)?;
        for (name, st) in updates {
            match all.stages.iter_mut().find(|(n, _)| n == name) {
                Some(e) => e.1 = st.clone(),
                None => all.stages.push((name.clone(), st.clone())),
            }
        }
        return updated_text(path, None, &all.stages);
    };
    // Replace from the last entry up, so earlier line numbers stay valid.
    let mut appended = String::new();
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for (name, st) in updates {
        let rendered = render_stage(name, st);
        match spans.iter().find(|(n, _, _)| n == name) {
            Some((_, from, to)) => replacements.push((*from, *to, rendered)),
            None => appended.push_str(&rendered),
        }
    }
    replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
    if !appended.is_empty() {
        lines.insert(end_of_block, appended);
    }
    for (from, to, rendered) in replacements {
        lines.splice(from..to, std::iter::once(rendered));
    }
    Ok(lines.concat())
}

/// For a block-style `stages:` mapping: each entry's name with its first line and the line after
/// it (0-based), and the line after the whole block.
/// A stage entry's name, first line and the line after it (0-based).
type Span = (String, usize, usize);

fn stage_spans(root: &Node, stages: &Node, nlines: usize) -> Option<(Vec<Span>, usize)> {
    let Value::Map(entries) = &stages.value else {
        return None;
    };
    let Value::Map(top) = &root.value else {
        return None;
    };
    // The block ends where the next top-level key starts.
    let stages_key_line = top
        .iter()
        .find(|(k, _)| k.as_str() == Some("stages"))
        .map(|(k, _)| k.mark.line)?;
    let end_of_block = top
        .iter()
        .map(|(k, _)| k.mark.line)
        .filter(|l| *l > stages_key_line)
        .min()
        .map(|l| l - 1)
        .unwrap_or(nlines);
    if entries.is_empty() {
        return Some((Vec::new(), end_of_block));
    }
    if entries[0].0.mark.line <= stages_key_line {
        // `stages: {...}` on one line.
        return None;
    }
    let mut spans = Vec::new();
    for (i, (k, _)) in entries.iter().enumerate() {
        let from = k.mark.line - 1;
        let to = entries
            .get(i + 1)
            .map(|(nk, _)| nk.mark.line - 1)
            .unwrap_or(end_of_block);
        if to <= from {
            return None;
        }
        spans.push((k.as_str().unwrap_or_default().to_string(), from, to));
    }
    Some((spans, end_of_block))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by DVC 3.67.1 (`dvc repro`).
    const LOCK: &str = "schema: '2.0'
stages:
  prep:
    cmd: cp data/in.txt out.txt
    deps:
    - path: data/in.txt
      hash: md5
      md5: b1946ac92492d2347c6235b4d2611184
      size: 6
    outs:
    - path: out.txt
      hash: md5
      md5: b1946ac92492d2347c6235b4d2611184
      size: 6
  train@a:
    cmd: echo a > model-a.bin
    params:
      params.yaml:
        lr: 0.1
    outs:
    - path: model-a.bin
      hash: md5
      md5: 60b725f10c9c85c70d97880dfe8191b3
      size: 2
  dirout:
    cmd: mkdir -p images && echo a > images/a.txt && echo b > images/b.txt
    outs:
    - path: images
      hash: md5
      md5: 6ea46d53348e675e87743182f72de908.dir
      size: 4
      nfiles: 2
";

    #[test]
    fn round_trips_dvc_entries() {
        let p = Path::new("/r/dvc.lock");
        let lock = parse(p, LOCK).unwrap();
        assert_eq!(lock.stages.len(), 3);
        let mut rendered = String::from("schema: '2.0'\nstages:\n");
        for (n, s) in &lock.stages {
            rendered.push_str(&render_stage(n, s));
        }
        assert_eq!(rendered, LOCK);
        let dir = &lock.stage("dirout").unwrap().outs[0];
        assert_eq!(dir.nfiles, Some(2));
        assert!(dir.oid.unwrap().is_dir());
        let mut changed = lock.stage("train@a").unwrap().clone();
        changed.outs[0].size = Some(3);
        let text = updated_text(
            p,
            Some(LOCK),
            &[
                ("train@a".into(), changed),
                ("new".into(), lock.stage("prep").unwrap().clone()),
            ],
        )
        .unwrap();
        assert!(
            text.contains("      md5: 60b725f10c9c85c70d97880dfe8191b3\n      size: 3\n  dirout:")
        );
        assert!(text.ends_with("      nfiles: 2\n  new:\n    cmd: cp data/in.txt out.txt\n    deps:\n    - path: data/in.txt\n      hash: md5\n      md5: b1946ac92492d2347c6235b4d2611184\n      size: 6\n    outs:\n    - path: out.txt\n      hash: md5\n      md5: b1946ac92492d2347c6235b4d2611184\n      size: 6\n"));
    }

    #[test]
    fn rejects_bad_locks_like_dvc() {
        let p = Path::new("dvc.lock");
        let e = parse(p, "schema: 2.0\nstages:\n  prep:\n    cmd: x\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "'./dvc.lock' validation failed.\n\ninvalid schema version, in schema"
        );
        let e = parse(
            p,
            "schema: '2.0'\nstages:\n  prep:\n    outs:\n    - md5: abc\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("required key not provided, in stages -> prep -> cmd, line 4, column 5"),
            "{e}"
        );
        assert!(e.contains("required key not provided, in stages -> prep -> outs -> 0 -> path, line 5, column 7"), "{e}");
    }
}
