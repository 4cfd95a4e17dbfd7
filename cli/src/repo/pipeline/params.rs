//! Parameters files (`params.yaml` and the like): reading them as DVC does, picking dotted keys,
//! and comparing values with the ones a `dvc.lock` recorded.

use std::path::Path;

use super::yaml::{self, key_text, Node, Value};

/// Reads a parameters or `vars` file by its extension: YAML (and JSON, which YAML reads) or
/// TOML. An empty YAML file is an empty mapping.
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<Node, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_string())?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "toml" => {
            let v: toml::Value = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
            Ok(from_toml(v))
        }
        "py" => Err("Python parameters files are not supported".into()),
        _ => match yaml::parse(text) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Ok(Node::new(Value::Map(Vec::new()))),
            Err(_) => Err("YAML file structure is corrupted".into()),
        },
    }
}

fn from_toml(v: toml::Value) -> Node {
    Node::new(match v {
        toml::Value::String(s) => Value::Str(s),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::Seq(a.into_iter().map(from_toml).collect()),
        toml::Value::Table(t) => Value::Map(
            t.into_iter()
                .map(|(k, v)| (Node::new(Value::Str(k)), from_toml(v)))
                .collect(),
        ),
    })
}

/// The value at a dotted key path (`train.epochs`), as DVC looks parameters up.
pub fn lookup<'n>(root: &'n Node, key: &str) -> Option<&'n Node> {
    let mut cur = root;
    for part in key.split('.') {
        cur = match &cur.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| key_text(k).as_deref() == Some(part))
                .map(|(_, v)| v)?,
            Value::Seq(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The parameters `keys` name in `root` (all top-level ones when `keys` is empty), in order;
/// keys missing from the file are left out.
pub fn pick(root: &Node, keys: &[String]) -> Vec<(String, Node)> {
    if keys.is_empty() {
        return match &root.value {
            Value::Map(entries) => entries
                .iter()
                .filter_map(|(k, v)| key_text(k).map(|k| (k, v.clone())))
                .collect(),
            _ => Vec::new(),
        };
    }
    let mut out: Vec<(String, Node)> = Vec::new();
    for k in keys {
        if out.iter().any(|(o, _)| o == k) {
            continue;
        }
        if let Some(v) = lookup(root, k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

/// Python's `==` on loaded values: numbers compare across int, float and bool, mappings ignore
/// key order.
pub fn same(a: &Node, b: &Node) -> bool {
    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| key_text(k2) == key_text(k))
                        .is_some_and(|(_, v2)| same(v, v2))
                })
        }
        (x, y) => match (num(x), num(y)) {
            (Some(p), Some(q)) => p == q,
            _ => false,
        },
    }
}

/// How each parameter differs from what the lock recorded, in DVC's order and words
/// (`new`, `deleted`, `modified`); empty when nothing changed.
pub fn changes(
    keys: &[String],
    actual: &[(String, Node)],
    locked: &[(String, Node)],
) -> Vec<(String, &'static str)> {
    let order: Vec<String> = if keys.is_empty() {
        let mut o: Vec<String> = actual.iter().map(|(k, _)| k.clone()).collect();
        for (k, _) in locked {
            if !o.contains(k) {
                o.push(k.clone());
            }
        }
        o
    } else {
        let mut o: Vec<String> = Vec::new();
        for k in keys {
            if !o.contains(k) {
                o.push(k.clone());
            }
        }
        o
    };
    let find = |list: &[(String, Node)], k: &str| {
        list.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for k in order {
        let st = match (find(actual, &k), find(locked, &k)) {
            (None, _) => "deleted",
            (Some(_), None) => "new",
            (Some(a), Some(l)) if !same(&a, &l) => "modified",
            _ => continue,
        };
        out.push((k, st));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_like_python() {
        let doc = yaml::parse("a: 1\nb: {x: [1, 2.0]}\nc: true\n")
            .unwrap()
            .unwrap();
        let other = yaml::parse("a: 1.0\nb: {x: [1.0, 2]}\nc: 1\n")
            .unwrap()
            .unwrap();
        for k in ["a", "b", "c"] {
            assert!(
                same(lookup(&doc, k).unwrap(), lookup(&other, k).unwrap()),
                "{k}"
            );
        }
        assert_eq!(lookup(&doc, "b.x.1").unwrap().value, Value::Float(2.0));
        let actual = pick(&doc, &["a".into(), "zz".into()]);
        let locked = vec![("a".to_string(), Node::new(Value::Int(2)))];
        assert_eq!(
            changes(&["a".into(), "zz".into()], &actual, &locked),
            vec![("a".to_string(), "modified"), ("zz".to_string(), "deleted")]
        );
    }
}
