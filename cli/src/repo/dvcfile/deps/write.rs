//! Writing import stages as DVC does: the `.dvc` text of `dvc import` and `dvc import-url`,
//! and the stage hash (`md5:` at the top) DVC computes over them.

use lode_proto::{HashKind, ObjectId};

use super::super::{yaml_scalar, Out};
use super::{hash_fields, Dep, Setting};
use crate::hash::manifest::push_json_string;

/// The text DVC writes for a new stage file without a command: an import (`deps:` naming the
/// source) or an `import-url`. Always `frozen: true`, as both commands write it.
pub fn render_import(deps: &[Dep], outs: &[Out]) -> String {
    let mut s = format!("md5: {}\nfrozen: true\ndeps:\n", stage_md5(deps, outs));
    for dep in deps {
        render_dep(&mut s, dep);
    }
    s.push_str("outs:\n");
    for out in outs {
        let mut fields = hash_fields(out.oid, out.size, out.nfiles, out.isexec, out.kind);
        fields.push(("path", yaml_scalar(&out.path)));
        if !out.cache {
            fields.push(("cache", "false".into()));
        }
        push_entry(&mut s, &fields);
    }
    s
}

fn render_dep(s: &mut String, dep: &Dep) {
    let Some(repo) = &dep.repo else {
        let mut fields = hash_fields(dep.oid, dep.size, dep.nfiles, dep.isexec, dep.kind);
        fields.push(("path", yaml_scalar(&dep.path)));
        push_entry(s, &fields);
        return;
    };
    s.push_str(&format!("- path: {}\n  repo:\n", yaml_scalar(&dep.path)));
    s.push_str(&format!("    url: {}\n", yaml_scalar(&repo.url)));
    for (key, value) in [("rev", &repo.rev), ("rev_lock", &repo.rev_lock)] {
        if let Some(v) = value {
            s.push_str(&format!("    {key}: {}\n", yaml_scalar(v)));
        }
    }
    for (key, value) in [("config", &repo.config), ("remote", &repo.remote)] {
        if let Some(v) = value {
            render_setting(s, key, v, 4);
        }
    }
}

fn render_setting(s: &mut String, key: &str, value: &Setting, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Setting::Str(v) => s.push_str(&format!("{pad}{}: {}\n", yaml_scalar(key), yaml_scalar(v))),
        Setting::Map(entries) if entries.is_empty() => {
            s.push_str(&format!("{pad}{}: {{}}\n", yaml_scalar(key)))
        }
        Setting::Map(entries) => {
            s.push_str(&format!("{pad}{}:\n", yaml_scalar(key)));
            for (k, v) in entries {
                render_setting(s, k, v, indent + 2);
            }
        }
    }
}

fn push_entry(s: &mut String, fields: &[(&str, String)]) {
    for (n, (k, v)) in fields.iter().enumerate() {
        s.push_str(if n == 0 { "- " } else { "  " });
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push('\n');
    }
}

/// A JSON value as Python's `json.dumps(..., sort_keys=True)` writes it.
enum Json {
    Str(String),
    Bool(bool),
    Arr(Vec<Json>),
    Obj(std::collections::BTreeMap<String, Json>),
}

impl Json {
    fn write(&self, s: &mut String) {
        match self {
            Json::Str(v) => push_json_string(s, v),
            Json::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Json::Arr(items) => {
                s.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        s.push_str(", ");
                    }
                    item.write(s);
                }
                s.push(']');
            }
            Json::Obj(map) => {
                s.push('{');
                for (n, (k, v)) in map.iter().enumerate() {
                    if n > 0 {
                        s.push_str(", ");
                    }
                    push_json_string(s, k);
                    s.push_str(": ");
                    v.write(s);
                }
                s.push('}');
            }
        }
    }
}

fn obj<const N: usize>(pairs: [(&str, Option<Json>); N]) -> Json {
    Json::Obj(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn setting_json(v: &Setting) -> Json {
    match v {
        Setting::Str(s) => Json::Str(s.clone()),
        Setting::Map(entries) => Json::Obj(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), setting_json(v)))
                .collect(),
        ),
    }
}

fn hash_json(oid: Option<ObjectId>, kind: HashKind) -> [(&'static str, Option<Json>); 2] {
    [
        ("md5", oid.map(|o| Json::Str(o.to_string()))),
        (
            "hash",
            (kind == HashKind::Md5).then(|| Json::Str("md5".into())),
        ),
    ]
}

/// DVC's stage hash: the md5 of the stage as sorted JSON, leaving out what does not change
/// what the stage produces (`frozen`, sizes, file counts, the executable bit, annotations).
pub fn stage_md5(deps: &[Dep], outs: &[Out]) -> String {
    let deps: Vec<Json> = deps
        .iter()
        .map(|d| match &d.repo {
            Some(r) => obj([
                ("path", Some(Json::Str(d.path.clone()))),
                (
                    "repo",
                    Some(obj([
                        ("url", Some(Json::Str(r.url.clone()))),
                        ("rev", r.rev.clone().map(Json::Str)),
                        ("rev_lock", r.rev_lock.clone().map(Json::Str)),
                        ("config", r.config.as_ref().map(setting_json)),
                        ("remote", r.remote.as_ref().map(setting_json)),
                    ])),
                ),
            ]),
            None => {
                let [md5, hash] = hash_json(d.oid, d.kind);
                obj([md5, hash, ("path", Some(Json::Str(d.path.clone())))])
            }
        })
        .collect();
    let outs: Vec<Json> = outs
        .iter()
        .map(|o| {
            let [md5, hash] = hash_json(o.oid, o.kind);
            obj([
                md5,
                hash,
                ("path", Some(Json::Str(o.path.clone()))),
                ("cache", (!o.cache).then_some(Json::Bool(false))),
            ])
        })
        .collect();
    let mut stage = std::collections::BTreeMap::new();
    if !deps.is_empty() {
        stage.insert("deps".to_string(), Json::Arr(deps));
    }
    if !outs.is_empty() {
        stage.insert("outs".to_string(), Json::Arr(outs));
    }
    let mut text = String::new();
    Json::Obj(stage).write(&mut text);
    hex::encode(crate::hash::md5_bytes(text.as_bytes()))
}
