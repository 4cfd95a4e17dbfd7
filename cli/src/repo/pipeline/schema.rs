//! Checking a parsed `dvc.yaml` or `dvc.lock` against the keys and types DVC allows, with DVC's
//! wording for each problem and the line and column it points at.

use super::yaml::{key_text, Node, Value};

/// One problem: DVC's message and the key path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: &'static str,
    pub path: Vec<String>,
}

/// Collects problems while walking a document.
#[derive(Debug, Default)]
pub struct Checker {
    pub problems: Vec<Problem>,
}

/// What a value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    /// A mapping, as a schema of keys requires it ("expected a dictionary").
    Map,
    /// A mapping, as a type alternative requires it ("expected dict").
    Dict,
    List,
    Any,
}

impl Checker {
    pub fn push(&mut self, message: &'static str, path: &[String]) {
        self.problems.push(Problem {
            message,
            path: path.to_vec(),
        });
    }

    /// Checks `node` is of type `ty` (null is allowed where `nullable`); true when it is.
    pub fn ty(&mut self, node: &Node, ty: Ty, path: &[String], nullable: bool) -> bool {
        let ok = match (ty, &node.value) {
            (_, Value::Null) => nullable,
            (Ty::Any, _) => true,
            (Ty::Str, Value::Str(_)) => true,
            (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Int, Value::Int(_)) => true,
            (Ty::Map | Ty::Dict, Value::Map(_)) => true,
            (Ty::List, Value::Seq(_)) => true,
            _ => false,
        };
        if !ok {
            self.push(
                match ty {
                    Ty::Str => "expected str",
                    Ty::Bool => "expected bool",
                    Ty::Int => "expected int",
                    Ty::Map => "expected a dictionary",
                    Ty::Dict => "expected dict",
                    Ty::List | Ty::Any => "expected a list",
                },
                path,
            );
        }
        ok
    }

    /// The entries of a mapping that a schema of keys applies to: reports a non-mapping, keys not
    /// in `allowed` and missing `required` keys, and returns the allowed entries.
    pub fn keys<'n>(
        &mut self,
        node: &'n Node,
        path: &[String],
        allowed: &[&str],
        required: &[&str],
    ) -> Vec<(String, &'n Node)> {
        let Value::Map(entries) = &node.value else {
            self.push("expected a dictionary", path);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let key = match &k.value {
                Value::Str(s) => s.clone(),
                _ => key_text(k).unwrap_or_default(),
            };
            if matches!(k.value, Value::Str(_)) && allowed.contains(&key.as_str()) {
                out.push((key, v));
            } else {
                self.push("extra keys not allowed", &join(path, &key));
            }
        }
        for r in required {
            if !out.iter().any(|(k, _)| k == r) {
                self.push("required key not provided", &join(path, r));
            }
        }
        out
    }

    /// Each item of a list (reporting a non-list), with its path.
    pub fn items<'n>(&mut self, node: &'n Node, path: &[String]) -> Vec<(Vec<String>, &'n Node)> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (join(path, &i.to_string()), n))
                .collect(),
            _ => {
                self.push("expected a list", path);
                Vec::new()
            }
        }
    }

    /// The problems as DVC lists them under "validation failed", each with its location in
    /// `root`: in document order, a mapping's missing keys after its other problems.
    pub fn messages(&self, root: &Node) -> Vec<String> {
        let mut problems: Vec<&Problem> = self.problems.iter().collect();
        problems.sort_by_cached_key(|p| position(root, &p.path));
        problems
            .into_iter()
            .map(|p| {
                let mut s = p.message.to_string();
                if !p.path.is_empty() {
                    s.push_str(", in ");
                    s.push_str(&p.path.join(" -> "));
                }
                if let Some(n) = locate(root, &p.path) {
                    s.push_str(&format!(", line {}, column {}", n.mark.line, n.mark.col));
                }
                s
            })
            .collect()
    }
}

/// Where a path is in the document: the index of each key or item along it, a missing key
/// counting as after every present one.
fn position(root: &Node, path: &[String]) -> Vec<usize> {
    let mut out = Vec::with_capacity(path.len());
    let mut cur = Some(root);
    for p in path {
        let next = cur.and_then(|n| match &n.value {
            Value::Map(entries) => entries
                .iter()
                .position(|(k, _)| key_text(k).as_deref() == Some(p.as_str()))
                .map(|i| (i, &entries[i].1)),
            Value::Seq(items) => p
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i).map(|n| (i, n))),
            _ => None,
        });
        match next {
            Some((i, n)) => {
                out.push(i);
                cur = Some(n);
            }
            None => {
                out.push(usize::MAX);
                cur = None;
            }
        }
    }
    out
}

pub fn join(path: &[String], key: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(key.to_string());
    p
}

/// The collection DVC points at for a problem at `path`: the value there if it is a mapping or
/// list, else the nearest such parent, going up at most three levels.
fn locate<'n>(root: &'n Node, path: &[String]) -> Option<&'n Node> {
    let mut p = path.to_vec();
    let mut step = 1;
    while !p.is_empty() && step < 5 {
        if let Some(n) = root.at(&p) {
            if n.is_collection() {
                return Some(n);
            }
        }
        step += 1;
        p.pop();
    }
    None
}
