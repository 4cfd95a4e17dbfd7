//! `dvc.yaml`: validation against DVC's schema, then the stages it defines, with `foreach` and
//! `matrix` groups expanded and `${}` resolved from `params.yaml` and `vars`.

use std::path::{Path, PathBuf};

use super::interp::{self, Context, InterpError};
use super::schema::{join, Checker, Ty};
use super::yaml::{self, key_text, Node, Value};
use super::{shown, Files, PipelineError};
use crate::hash::walk::normalize;

/// An output as a stage declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutDecl {
    /// The path as written (the key of its `dvc.lock` entry).
    pub path: String,
    pub cache: bool,
    pub persist: bool,
    pub push: bool,
    pub remote: Option<String>,
}

/// A params dependency: a parameters file (relative to the stage's folder) and its keys (none:
/// the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsDecl {
    pub path: String,
    pub keys: Vec<String>,
}

/// One stage, resolved (a `foreach` or `matrix` group yields one per item).
#[derive(Debug, Clone)]
pub struct StageDef {
    pub name: String,
    /// The folder paths are relative to: the `dvc.yaml`'s, or its `wdir`.
    pub wdir: PathBuf,
    /// `cmd` as resolved: a string or a list of them.
    pub cmd: Node,
    pub deps: Vec<String>,
    pub params: Vec<ParamsDecl>,
    /// `outs`, then `metrics`, then `plots`.
    pub outs: Vec<OutDecl>,
    pub frozen: bool,
    pub always_changed: bool,
}

const STAGE_KEYS: &[&str] = &[
    "matrix",
    "cmd",
    "wdir",
    "deps",
    "params",
    "vars",
    "frozen",
    "meta",
    "desc",
    "always_changed",
    "outs",
    "metrics",
    "plots",
];
const OUT_FLAGS: &[&str] = &[
    "desc",
    "type",
    "labels",
    "meta",
    "cache",
    "persist",
    "checkpoint",
    "remote",
    "push",
];
/// Plots take the output flags and these rendering properties.
const PLOT_PROPS: &[&str] = &[
    "template", "x", "y", "x_label", "y_label", "title", "header",
];

fn check_flags(c: &mut Checker, flags: &Node, path: &[String], plot: bool) {
    let allowed: Vec<&str> = if plot {
        OUT_FLAGS.iter().chain(PLOT_PROPS).copied().collect()
    } else {
        OUT_FLAGS.to_vec()
    };
    for (k, v) in c.keys(flags, path, &allowed, &[]) {
        let p = join(path, &k);
        let ty = match k.as_str() {
            "cache" | "persist" | "checkpoint" | "push" | "header" => Ty::Bool,
            "labels" => Ty::List,
            "meta" => Ty::Any,
            _ => Ty::Str,
        };
        if c.ty(v, ty, &p, false) && k == "labels" {
            for (ip, item) in c.items(v, &p) {
                c.ty(item, Ty::Str, &ip, false);
            }
        }
    }
}

fn check_out_list(c: &mut Checker, node: &Node, path: &[String], plots: bool) {
    for (ip, item) in c.items(node, path) {
        match &item.value {
            Value::Str(_) => {}
            Value::Map(entries) => {
                for (k, v) in entries {
                    let Some(key) = k.as_str() else {
                        c.push(
                            "extra keys not allowed",
                            &join(&ip, &key_text(k).unwrap_or_default()),
                        );
                        continue;
                    };
                    let p = join(&ip, key);
                    match (&v.value, plots) {
                        (Value::Seq(list), true) => {
                            for (n, f) in list.iter().enumerate() {
                                check_flags(c, f, &join(&p, &n.to_string()), true);
                            }
                        }
                        (_, true) => check_flags(c, v, &p, true),
                        (_, false) => check_flags(c, v, &p, false),
                    }
                }
            }
            _ => c.push("expected str", &ip),
        }
    }
}

fn check_stage(c: &mut Checker, node: &Node, path: &[String]) {
    for (k, v) in c.keys(node, path, STAGE_KEYS, &["cmd"]) {
        let p = join(path, &k);
        match k.as_str() {
            "cmd" if !matches!(v.value, Value::Str(_) | Value::Seq(_)) => {
                c.push("expected str", &p);
            }
            "matrix" => {
                if let Value::Map(entries) = &v.value {
                    for (mk, mv) in entries {
                        let mp = join(&p, &key_text(mk).unwrap_or_default());
                        if !matches!(mv.value, Value::Str(_) | Value::Seq(_)) {
                            c.push("expected str", &mp);
                        }
                    }
                } else {
                    c.push("expected a dictionary", &p);
                }
            }
            "wdir" | "desc" => {
                c.ty(v, Ty::Str, &p, false);
            }
            "frozen" | "always_changed" => {
                c.ty(v, Ty::Bool, &p, false);
            }
            "deps" => {
                for (ip, item) in c.items(v, &p) {
                    c.ty(item, Ty::Str, &ip, false);
                }
            }
            "params" | "vars" => {
                for (ip, item) in c.items(v, &p) {
                    if !matches!(item.value, Value::Str(_) | Value::Map(_)) {
                        c.push("expected str", &ip);
                    }
                }
            }
            "outs" | "metrics" => check_out_list(c, v, &p, false),
            "plots" => check_out_list(c, v, &p, true),
            _ => {}
        }
    }
}

/// Checks a parsed `dvc.yaml` against DVC's schema.
fn check(root: &Node) -> Checker {
    let mut c = Checker::default();
    let top = c.keys(
        root,
        &[],
        &[
            "datasets",
            "plots",
            "stages",
            "vars",
            "params",
            "metrics",
            "artifacts",
        ],
        &[],
    );
    for (k, v) in top {
        let p = vec![k.clone()];
        match k.as_str() {
            "stages" => {
                let Value::Map(entries) = &v.value else {
                    c.push("expected a dictionary", &p);
                    continue;
                };
                for (name, def) in entries {
                    let Some(name) = name.as_str() else {
                        c.push(
                            "extra keys not allowed",
                            &join(&p, &key_text(name).unwrap_or_default()),
                        );
                        continue;
                    };
                    let sp = join(&p, name);
                    let is_foreach = def.get("foreach").is_some() || def.get("do").is_some();
                    if is_foreach {
                        for (fk, fv) in c.keys(def, &sp, &["foreach", "do"], &["foreach", "do"]) {
                            let fp = join(&sp, &fk);
                            if fk == "foreach" {
                                if !matches!(
                                    fv.value,
                                    Value::Map(_) | Value::Seq(_) | Value::Str(_)
                                ) {
                                    c.push("expected dict", &fp);
                                }
                            } else {
                                check_stage(&mut c, fv, &fp);
                            }
                        }
                    } else {
                        check_stage(&mut c, def, &sp);
                    }
                }
            }
            "vars" => {
                for (ip, item) in c.items(v, &p) {
                    if !matches!(item.value, Value::Str(_) | Value::Map(_)) {
                        c.push("expected str", &ip);
                    }
                }
            }
            "params" | "metrics" => {
                for (ip, item) in c.items(v, &p) {
                    c.ty(item, Ty::Str, &ip, false);
                }
            }
            "plots" => {
                for (ip, item) in c.items(v, &p) {
                    if !matches!(item.value, Value::Str(_) | Value::Map(_)) {
                        c.push("expected str", &ip);
                    }
                }
            }
            "artifacts" => {
                c.ty(v, Ty::Map, &p, false);
            }
            _ => {}
        }
    }
    c
}

/// Parses and validates the text of a `dvc.yaml`; `Ok(None)` when it holds nothing.
pub fn parse(path: &Path, text: &str) -> Result<Option<Node>, PipelineError> {
    let root = yaml::parse(text).map_err(|e| super::syntax(path, e.to_string()))?;
    let Some(root) = root else {
        return Ok(None);
    };
    let c = check(&root);
    if !c.problems.is_empty() {
        let errors = c.messages(&root);
        return Err(super::invalid(path, errors));
    }
    Ok(Some(root))
}

/// Where DVC says a resolution problem is: `failed to parse '<where>' in '<file>':<detail>`.
fn failed(where_: &str, file: &str, e: InterpError) -> PipelineError {
    PipelineError::Resolve(format!(
        "failed to parse {where_} in '{file}':{}{e}",
        e.separator()
    ))
}

/// The stages of the `dvc.yaml` at `path` (absolute), parsed from `text`.
/// Files are named relative to `cwd` in messages.
pub fn stages(
    path: &Path,
    text: &str,
    files: &dyn Files,
    cwd: &Path,
) -> Result<Vec<StageDef>, PipelineError> {
    let Some(root) = parse(path, text)? else {
        return Ok(Vec::new());
    };
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file = shown(path, cwd);
    let mut vars = Vars {
        cwd: cwd.to_path_buf(),
        ..Vars::default()
    };
    vars.load_default(&dir, files)
        .map_err(|e| vars_error("'vars'", &file, e))?;
    if let Some(v) = root.get("vars") {
        if let Err(e) = no_interpolation(v) {
            return Err(PipelineError::Resolve(format!(
                "failed to parse 'vars' in '{file}': {e}"
            )));
        }
        vars.load_list(v, &dir, files, "")
            .map_err(|e| vars_error("'vars'", &file, e))?;
    }
    let mut out = Vec::new();
    let Some(Value::Map(defs)) = root.get("stages").map(|n| &n.value) else {
        return Ok(out);
    };
    for (name, def) in defs {
        let name = name.as_str().unwrap_or_default();
        if let Some(foreach) = def.get("foreach") {
            let template = def.get("do").cloned().unwrap_or(Node::new(Value::Null));
            check_syntax(&template, name, &file)?;
            let items = vars
                .ctx
                .resolve(foreach, "foreach")
                .map_err(|e| failed(&format!("'stages.{name}.foreach'"), &file, e))?;
            let (is_map, pairs) = foreach_pairs(&items).ok_or_else(|| {
                PipelineError::Resolve(format!(
                    "failed to resolve 'stages.{name}.foreach' in '{file}': expected list/dictionary, got {}",
                    items.type_name()
                ))
            })?;
            for (key, item) in pairs {
                let mut ctx = vars.clone();
                ctx.ctx.set("item", item);
                if is_map {
                    ctx.ctx.set("key", Node::new(Value::Str(key.clone())));
                }
                let generated = format!("{name}@{key}");
                out.push(resolve_stage(
                    &ctx, &generated, &template, &dir, &file, files,
                )?);
            }
        } else if let Some(matrix) = def.get("matrix") {
            let mut template = def.clone();
            if let Value::Map(entries) = &mut template.value {
                entries.retain(|(k, _)| k.as_str() != Some("matrix"));
            }
            check_syntax(&template, name, &file)?;
            let resolved = vars
                .ctx
                .resolve(matrix, "matrix")
                .map_err(|e| failed(&format!("'stages.{name}.matrix'"), &file, e))?;
            for (key, item) in matrix_pairs(&resolved) {
                let mut ctx = vars.clone();
                ctx.ctx.set("key", Node::new(Value::Str(key.clone())));
                ctx.ctx.set("item", item);
                let generated = format!("{name}@{key}");
                out.push(resolve_stage(
                    &ctx, &generated, &template, &dir, &file, files,
                )?);
            }
        } else {
            check_syntax(def, name, &file)?;
            out.push(resolve_stage(&vars, name, def, &dir, &file, files)?);
        }
    }
    Ok(out)
}

fn vars_error(where_: &str, file: &str, e: VarsError) -> PipelineError {
    let sep = if e.own_line { "\n" } else { " " };
    PipelineError::Resolve(format!(
        "failed to parse {where_} in '{file}':{sep}{}",
        e.message
    ))
}

fn no_interpolation(n: &Node) -> Result<(), &'static str> {
    match &n.value {
        Value::Str(s) if interp::is_interpolated(s) => Err("interpolating is not allowed"),
        Value::Seq(items) => items.iter().try_for_each(no_interpolation),
        Value::Map(entries) => entries
            .iter()
            .try_for_each(|(k, v)| no_interpolation(k).and_then(|_| no_interpolation(v))),
        _ => Ok(()),
    }
}

/// Reports the first malformed `${}` of a stage definition, field by field.
fn check_syntax(def: &Node, name: &str, file: &str) -> Result<(), PipelineError> {
    fn walk(n: &Node) -> Result<(), InterpError> {
        match &n.value {
            Value::Str(s) => interp::check(s),
            Value::Seq(items) => items.iter().try_for_each(walk),
            Value::Map(entries) => entries
                .iter()
                .try_for_each(|(k, v)| walk(k).and_then(|_| walk(v))),
            _ => Ok(()),
        }
    }
    if let Value::Map(entries) = &def.value {
        for (k, v) in entries {
            let key = key_text(k).unwrap_or_default();
            walk(v).map_err(|e| failed(&format!("'stages.{name}.{key}'"), file, e))?;
        }
    }
    Ok(())
}

/// The items of a resolved `foreach`, keyed as DVC names the generated stages.
fn foreach_pairs(items: &Node) -> Option<(bool, Vec<(String, Node)>)> {
    match &items.value {
        Value::Map(entries) => Some((
            true,
            entries
                .iter()
                .map(|(k, v)| (key_text(k).unwrap_or_default(), v.clone()))
                .collect(),
        )),
        Value::Seq(list) => {
            let composite = list.iter().any(Node::is_collection);
            Some((
                false,
                list.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let key = if composite {
                            i.to_string()
                        } else {
                            interp::to_str(v).unwrap_or_default()
                        };
                        (key, v.clone())
                    })
                    .collect(),
            ))
        }
        _ => None,
    }
}

/// Every combination of a resolved `matrix`, keyed `a-b-...` as DVC names them.
fn matrix_pairs(matrix: &Node) -> Vec<(String, Node)> {
    let Value::Map(dims) = &matrix.value else {
        return Vec::new();
    };
    let dims: Vec<(String, Vec<Node>)> = dims
        .iter()
        .map(|(k, v)| {
            let values = match &v.value {
                Value::Seq(items) => items.clone(),
                _ => vec![v.clone()],
            };
            (key_text(k).unwrap_or_default(), values)
        })
        .collect();
    let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
    for (_, values) in &dims {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..values.len()).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|combo| {
            let mut fragments = Vec::new();
            let mut item = Vec::new();
            for ((k, values), i) in dims.iter().zip(combo) {
                let v = &values[i];
                fragments.push(if v.is_collection() {
                    format!("{k}{i}")
                } else {
                    interp::to_str(v).unwrap_or_default()
                });
                item.push((Node::new(Value::Str(k.clone())), v.clone()));
            }
            (fragments.join("-"), Node::new(Value::Map(item)))
        })
        .collect()
}

fn resolve_stage(
    vars: &Vars,
    name: &str,
    def: &Node,
    dir: &Path,
    file: &str,
    files: &dyn Files,
) -> Result<StageDef, PipelineError> {
    let ctx = &vars.ctx;
    let wdir = match def.get("wdir") {
        Some(w) => {
            let w = ctx
                .resolve_str(w.as_str().unwrap_or_default(), "wdir")
                .map_err(|e| failed(&format!("'stages.{name}.wdir'"), file, e))?;
            normalize(&dir.join(interp::to_str(&w).unwrap_or_default()))
        }
        None => dir.to_path_buf(),
    };
    let mut local = vars.clone();
    if let Some(v) = def.get("vars") {
        if let Err(e) = no_interpolation(v) {
            return Err(PipelineError::Resolve(format!(
                "failed to parse 'stages.{name}.vars' in '{file}': {e}"
            )));
        }
        local
            .load_list(v, &wdir, files, name)
            .map_err(|e| vars_error(&format!("stage '{name}'"), file, e))?;
    }
    let ctx = &local.ctx;
    let field = |key: &str| -> Result<Option<Node>, PipelineError> {
        match def.get(key) {
            None => Ok(None),
            Some(v) => ctx
                .resolve(v, key)
                .map(Some)
                .map_err(|e| failed(&format!("'stages.{name}.{key}'"), file, e)),
        }
    };
    let cmd = field("cmd")?.unwrap_or(Node::new(Value::Null));
    let strings = |n: Option<Node>| -> Vec<String> {
        match n.map(|n| n.value) {
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| interp::to_str(i).unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        }
    };
    let deps = strings(field("deps")?);
    let params = params_decls(field("params")?);
    let mut outs = Vec::new();
    for key in ["outs", "metrics", "plots"] {
        if let Some(list) = field(key)? {
            merge_outs(&mut outs, &list);
        }
    }
    let flag = |key: &str| -> Result<bool, PipelineError> {
        Ok(matches!(
            field(key)?.map(|n| n.value),
            Some(Value::Bool(true))
        ))
    };
    Ok(StageDef {
        name: name.to_string(),
        wdir,
        cmd,
        deps,
        params,
        outs,
        frozen: flag("frozen")?,
        always_changed: flag("always_changed")?,
    })
}

/// Adds the outputs of one list, merging the flags of a path given twice.
fn merge_outs(outs: &mut Vec<OutDecl>, list: &Node) {
    let Value::Seq(items) = &list.value else {
        return;
    };
    for item in items {
        let entries: Vec<(String, Option<&Node>)> = match &item.value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (interp::to_str(k).unwrap_or_default(), Some(v)))
                .collect(),
            _ => vec![(interp::to_str(item).unwrap_or_default(), None)],
        };
        for (path, flags) in entries {
            let idx = match outs.iter().position(|o| o.path == path) {
                Some(i) => i,
                None => {
                    outs.push(OutDecl {
                        path: path.clone(),
                        cache: true,
                        persist: false,
                        push: true,
                        remote: None,
                    });
                    outs.len() - 1
                }
            };
            let o = &mut outs[idx];
            // A plot may list several property sets; the flags of each apply.
            let sets: Vec<&Node> = match flags.map(|f| &f.value) {
                Some(Value::Seq(list)) => list.iter().collect(),
                Some(_) => flags.into_iter().collect(),
                None => Vec::new(),
            };
            for set in sets {
                let b = |k: &str| match set.get(k).map(|n| &n.value) {
                    Some(Value::Bool(b)) => Some(*b),
                    _ => None,
                };
                if let Some(v) = b("cache") {
                    o.cache = v;
                }
                if let Some(v) = b("persist") {
                    o.persist = v;
                }
                if let Some(v) = b("push") {
                    o.push = v;
                }
                if let Some(r) = set.get("remote").and_then(Node::as_str) {
                    o.remote = Some(r.to_string());
                }
            }
        }
    }
}

/// `params:` entries grouped per file as DVC groups them: bare names belong to `params.yaml`,
/// a file given without keys is tracked whole.
fn params_decls(list: Option<Node>) -> Vec<ParamsDecl> {
    let Some(Value::Seq(items)) = list.map(|n| n.value) else {
        return Vec::new();
    };
    let whole: Vec<String> = items
        .iter()
        .filter_map(|i| match &i.value {
            Value::Map(entries) => Some(entries.iter().filter_map(|(k, v)| {
                let empty = match &v.value {
                    Value::Null => true,
                    Value::Seq(s) => s.is_empty(),
                    _ => false,
                };
                empty.then(|| interp::to_str(k).unwrap_or_default())
            })),
            _ => None,
        })
        .flatten()
        .collect();
    let mut out: Vec<ParamsDecl> = Vec::new();
    let mut add = |path: &str, keys: Vec<String>| {
        let i = match out.iter().position(|p| p.path == path) {
            Some(i) => i,
            None => {
                out.push(ParamsDecl {
                    path: path.to_string(),
                    keys: Vec::new(),
                });
                out.len() - 1
            }
        };
        if whole.iter().any(|w| w == path) {
            out[i].keys.clear();
        } else {
            out[i].keys.extend(keys);
        }
    };
    for item in &items {
        match &item.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let keys = match &v.value {
                        Value::Seq(ks) => ks
                            .iter()
                            .map(|k| interp::to_str(k).unwrap_or_default())
                            .collect(),
                        _ => Vec::new(),
                    };
                    add(&interp::to_str(k).unwrap_or_default(), keys);
                }
            }
            _ => {
                if !whole.iter().any(|w| w == "params.yaml") {
                    add(
                        "params.yaml",
                        vec![interp::to_str(item).unwrap_or_default()],
                    );
                }
            }
        }
    }
    out
}

/// A problem loading `vars`: DVC's message, and whether it goes on a line of its own.
pub struct VarsError {
    pub message: String,
    pub own_line: bool,
}

fn plain(message: String) -> VarsError {
    VarsError {
        message,
        own_line: false,
    }
}

/// The context `${}` is resolved in, and where its values came from.
#[derive(Debug, Clone, Default)]
struct Vars {
    ctx: Context,
    /// For each top-level name, the source it was loaded from (for DVC's redefinition message).
    sources: Vec<(String, String)>,
    /// Files loaded: path and the keys taken from it (`None`: all of it).
    imports: Vec<(PathBuf, Option<Vec<String>>)>,
    /// The folder messages name files relative to.
    cwd: PathBuf,
}

impl Vars {
    fn load_default(&mut self, dir: &Path, files: &dyn Files) -> Result<(), VarsError> {
        let p = dir.join("params.yaml");
        if files.read(&p).ok().flatten().is_some() {
            self.merge_file("params.yaml", dir, files)?;
        }
        Ok(())
    }

    fn load_list(
        &mut self,
        list: &Node,
        dir: &Path,
        files: &dyn Files,
        stage: &str,
    ) -> Result<(), VarsError> {
        let Value::Seq(items) = &list.value else {
            return Ok(());
        };
        for (i, item) in items.iter().enumerate() {
            match &item.value {
                Value::Str(s) => self.merge_file(s, dir, files)?,
                Value::Map(entries) => {
                    let joiner = if stage.is_empty() { "" } else { "." };
                    let source = format!("{stage}{joiner}vars[{i}]");
                    let entries: Vec<(String, Node)> = entries
                        .iter()
                        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v.clone())))
                        .collect();
                    self.merge(entries, &source)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn merge_file(&mut self, item: &str, dir: &Path, files: &dyn Files) -> Result<(), VarsError> {
        let (file, keys) = match item.split_once(':') {
            Some((f, k)) => (
                f,
                Some(
                    k.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                ),
            ),
            None => (item, None),
        };
        let keys = keys.filter(|k| !k.is_empty());
        let path = normalize(&dir.join(file));
        let shown = shown(&path, &self.cwd);
        if let Some((_, loaded)) = self.imports.iter().find(|(p, _)| *p == path) {
            match (&keys, loaded) {
                (None, None) => return Ok(()),
                (None, Some(_)) => {
                    return Err(VarsError {
                        message: format!("cannot load '{item}' as it's partially loaded already"),
                        own_line: true,
                    })
                }
                (Some(_), None) => {
                    return Err(VarsError {
                        message: format!("cannot partially load '{item}' as it's already loaded."),
                        own_line: true,
                    })
                }
                (Some(k), Some(l)) if k.iter().any(|x| l.contains(x)) => {
                    return Err(VarsError {
                        message: format!("cannot load '{item}' as it's partially loaded already"),
                        own_line: true,
                    })
                }
                _ => {}
            }
        }
        if files.is_dir(&path) {
            return Err(plain(format!("'{shown}' is a directory")));
        }
        let bytes = files
            .read(&path)
            .map_err(|e| plain(format!("unable to read: '{shown}': {e}")))?
            .ok_or_else(|| plain(format!("'{shown}' does not exist")))?;
        let data = super::params::parse_file(&path, &bytes)
            .map_err(|e| plain(format!("unable to read: '{shown}', {e}")))?;
        let Value::Map(entries) = data.value else {
            return Err(plain(format!(
                "expected a dictionary, got '{}' in file '{shown}'",
                data.type_name()
            )));
        };
        let mut entries: Vec<(String, Node)> = entries
            .into_iter()
            .filter_map(|(k, v)| key_text(&k).map(|k| (k, v)))
            .collect();
        if let Some(keys) = &keys {
            let mut picked = Vec::new();
            for k in keys {
                match entries.iter().find(|(ek, _)| ek == k) {
                    Some(e) => picked.push(e.clone()),
                    None => {
                        return Err(plain(format!("could not find '{k}' in '{shown}'")));
                    }
                }
            }
            entries = picked;
        }
        self.merge(entries, &shown)?;
        match self.imports.iter_mut().find(|(p, _)| *p == path) {
            Some((_, Some(l))) => l.extend(keys.unwrap_or_default()),
            Some(_) => {}
            None => self.imports.push((path, keys)),
        }
        Ok(())
    }

    fn merge(&mut self, entries: Vec<(String, Node)>, source: &str) -> Result<(), VarsError> {
        for (k, v) in entries {
            match self.ctx.entries.iter_mut().find(|(ek, _)| *ek == k) {
                Some((_, existing)) => {
                    let old = self
                        .sources
                        .iter()
                        .find(|(sk, _)| *sk == k)
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default();
                    merge_into(existing, v, &k).map_err(|at| VarsError {
                        message: format!(
                            "cannot redefine '{at}' from '{source}' as it already exists in '{old}'"
                        ),
                        own_line: true,
                    })?;
                }
                None => {
                    self.ctx.entries.push((k.clone(), v));
                    self.sources.push((k, source.to_string()));
                }
            }
        }
        Ok(())
    }
}

/// Merges mappings key by key; anything else already present is a conflict at the returned path.
fn merge_into(into: &mut Node, new: Node, at: &str) -> Result<(), String> {
    match (&mut into.value, new.value) {
        (Value::Map(old), Value::Map(add)) => {
            for (k, v) in add {
                let ks = key_text(&k).unwrap_or_default();
                let sub = format!("{at}.{ks}");
                match old
                    .iter_mut()
                    .find(|(ok, _)| key_text(ok).as_deref() == Some(&ks))
                {
                    Some((_, existing)) => merge_into(existing, v, &sub)?,
                    None => old.push((k, v)),
                }
            }
            Ok(())
        }
        _ => Err(at.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::MemFiles;
    use super::*;

    fn load(files: &MemFiles, text: &str) -> Result<Vec<StageDef>, PipelineError> {
        stages(Path::new("/r/dvc.yaml"), text, files, Path::new("/r"))
    }

    #[test]
    fn expands_foreach_and_matrix() {
        let files = MemFiles::new(&[("/r/params.yaml", "models: [a, b]\nlr: 0.1\n")]);
        let text = "stages:
  train:
    foreach: ${models}
    do:
      cmd: echo ${item} ${lr}
      outs:
      - model-${item}.bin:
          push: false
  grid:
    matrix:
      m: [x, y]
      n: [1, {q: 2}]
    cmd: run ${item.m}
    wdir: sub
    metrics:
    - ${key}.json:
        cache: false
";
        let st = load(&files, text).unwrap();
        let names: Vec<&str> = st.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "train@a",
                "train@b",
                "grid@x-1",
                "grid@x-n1",
                "grid@y-1",
                "grid@y-n1"
            ]
        );
        assert_eq!(st[1].outs[0].path, "model-b.bin");
        assert!(!st[1].outs[0].push);
        assert_eq!(st[1].cmd.value, Value::Str("echo b 0.1".into()));
        assert_eq!(st[3].outs[0].path, "x-n1.json");
        assert!(!st[3].outs[0].cache);
        assert_eq!(st[3].wdir, PathBuf::from("/r/sub"));
    }

    #[test]
    fn validation_messages_point_at_dvc_locations() {
        let files = MemFiles::new(&[]);
        let e = load(&files, "stages:\n  prep:\n    outs:\n    - a\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("validation failed.\n\nrequired key not provided, in stages -> prep -> cmd, line 3, column 5"),
            "{e}"
        );
        let e = load(
            &files,
            "stages:\n  prep:\n    cmd: x\n    outs:\n    - a:\n        cache: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with(
                "expected bool, in stages -> prep -> outs -> 0 -> a -> cache, line 6, column 9"
            ),
            "{e}"
        );
        let e = load(&files, "stages:\n  prep:\n    cmd: x\n    deps: [1]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("expected str, in stages -> prep -> deps -> 0, line 4, column 11"),
            "{e}"
        );
        let e = load(
            &files,
            "stages:\n  prep:\n    cmd: x\n    outs: [a, b]\n    bad: 1\n    worse: 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("validation failed: 2 errors.\n\nextra keys not allowed, in stages -> prep -> bad, line 3, column 5\n\nextra keys not allowed, in stages -> prep -> worse, line 3, column 5"), "{e}");
        let e = load(&files, "stages: 3\n").unwrap_err().to_string();
        assert!(
            e.ends_with("validation failed.\n\nexpected a dictionary, in stages"),
            "{e}"
        );
        let e = load(
            &files,
            "stages:\n  prep:\n    foreach: 3\n    do:\n      cmd: x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("expected dict, in stages -> prep -> foreach, line 3, column 5"),
            "{e}"
        );
    }

    #[test]
    fn resolution_errors_name_the_field() {
        let files = MemFiles::new(&[]);
        let e = load(
            &files,
            "stages:\n  prep:\n    cmd: x\n    outs:\n    - ${nope}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("failed to parse 'stages.prep.outs' in '"),
            "{e}"
        );
        assert!(e.ends_with("dvc.yaml': Could not find 'nope'"), "{e}");
        let e = load(
            &files,
            "vars:\n- a: 1\n- a: 2\nstages:\n  prep:\n    cmd: x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with(
                "dvc.yaml':\ncannot redefine 'a' from 'vars[1]' as it already exists in 'vars[0]'"
            ),
            "{e}"
        );
        let e = load(&files, "vars:\n- nope.yaml\nstages:\n  prep:\n    cmd: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("nope.yaml' does not exist"), "{e}");
    }

    #[test]
    fn params_grouped_per_file() {
        let files = MemFiles::new(&[]);
        let st = load(
            &files,
            "stages:\n  s:\n    cmd: x\n    params:\n    - lr\n    - other.yaml: [a, b]\n    - epochs\n    - whole.json:\n",
        )
        .unwrap();
        assert_eq!(
            st[0].params,
            vec![
                ParamsDecl {
                    path: "params.yaml".into(),
                    keys: vec!["lr".into(), "epochs".into()]
                },
                ParamsDecl {
                    path: "other.yaml".into(),
                    keys: vec!["a".into(), "b".into()]
                },
                ParamsDecl {
                    path: "whole.json".into(),
                    keys: vec![]
                },
            ]
        );
    }
}
