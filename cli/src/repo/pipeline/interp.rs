//! `${...}` in `dvc.yaml`: the values a stage's strings refer to (`vars`, `params.yaml`, a
//! `foreach` item or `matrix` combination), substituted as DVC does.

use super::emit::python_float;
use super::yaml::{key_text, Node, Value};

/// Why a string could not be resolved; the text after DVC's "failed to parse ..." preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpError {
    /// The expression inside `${}` is not a valid key path (printed on lines of its own).
    Parse(String),
    /// The key is not in the context.
    NotFound(String),
    /// A list or mapping inside a longer string (printed on a line of its own).
    Type(String),
}

impl InterpError {
    /// DVC puts a line break after the preamble for parse and type errors, a space otherwise.
    pub fn separator(&self) -> &'static str {
        match self {
            InterpError::NotFound(_) => " ",
            _ => "\n",
        }
    }
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Parse(m) | InterpError::Type(m) => f.write_str(m),
            InterpError::NotFound(k) => write!(f, "Could not find '{k}'"),
        }
    }
}

/// The values `${}` can refer to: a mapping from names to values.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub entries: Vec<(String, Node)>,
}

/// One `${...}` in a string: its byte range and the expression inside.
struct Found<'a> {
    start: usize,
    end: usize,
    inner: &'a str,
}

/// The `${...}` of `s` not escaped with a backslash.
fn matches(s: &str) -> Vec<Found<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'$' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\') {
            if let Some(close) = s[i + 2..].find('}') {
                let end = i + 2 + close + 1;
                out.push(Found {
                    start: i,
                    end,
                    inner: &s[i + 2..i + 2 + close],
                });
                i = end;
                continue;
            }
            break;
        }
        i += 1;
    }
    out
}

/// Whether `s` holds a `${...}`.
pub fn is_interpolated(s: &str) -> bool {
    !matches(s).is_empty()
}

/// The dotted key path of an expression (`a.b[0]` is `a.b.0`), or DVC's parse error.
fn parse_expr(inner: &str) -> Result<String, InterpError> {
    let chars: Vec<char> = inner.chars().collect();
    let bad = |at: usize, what: &str| {
        InterpError::Parse(format!(
            "${{{inner}}}\n{}^\nParseException: {what}  (at char {}), (line:1, col:{})",
            " ".repeat(at + 2),
            at + 2,
            at + 3
        ))
    };
    let word = |from: usize| -> usize {
        let mut j = from;
        while j < chars.len() && !matches!(chars[j], '.' | '[' | ']') {
            j += 1;
        }
        j
    };
    let mut parts = Vec::new();
    let mut i = word(0);
    if i == 0 {
        return Err(bad(0, "Expected W:(^.[]), found end of text"));
    }
    parts.push(chars[..i].iter().collect::<String>());
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let j = word(i + 1);
                if j == i + 1 {
                    return Err(bad(
                        i,
                        &format!("Expected end of text, found '{}'", chars[i]),
                    ));
                }
                parts.push(chars[i + 1..j].iter().collect());
                i = j;
            }
            '[' => {
                let j = word(i + 1);
                if j == i + 1 || chars.get(j) != Some(&']') {
                    return Err(bad(
                        i,
                        &format!("Expected end of text, found '{}'", chars[i]),
                    ));
                }
                parts.push(chars[i + 1..j].iter().collect());
                i = j + 1;
            }
            c => return Err(bad(i, &format!("Expected end of text, found '{c}'"))),
        }
    }
    Ok(parts.join("."))
}

/// Checks every `${}` of `s` for syntax errors without resolving them.
pub fn check(s: &str) -> Result<(), InterpError> {
    for m in matches(s) {
        parse_expr(m.inner)?;
    }
    Ok(())
}

impl Context {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets a top-level value, replacing one of the same name.
    pub fn set(&mut self, key: &str, value: Node) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// The value at a dotted key path.
    pub fn select(&self, key: &str) -> Result<&Node, InterpError> {
        let normalized = key.replace('[', ".").replace(']', "");
        let mut parts = normalized.split('.');
        let first = parts.next().unwrap_or_default().trim();
        let mut cur = self
            .get(first)
            .ok_or_else(|| InterpError::NotFound(key.to_string()))?;
        for p in parts {
            let p = p.trim();
            cur = match &cur.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| key_text(k).as_deref() == Some(p))
                    .map(|(_, v)| v),
                Value::Seq(items) => p.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
            .ok_or_else(|| InterpError::NotFound(key.to_string()))?;
        }
        Ok(cur)
    }

    /// Resolves every string of `node` (mapping keys too). `key` is the stage field the value
    /// belongs to: only `cmd` may take a mapping, and `foreach` anything.
    pub fn resolve(&self, node: &Node, key: &str) -> Result<Node, InterpError> {
        let value = match &node.value {
            Value::Str(s) => {
                return self.resolve_str(s, key).map(|v| Node {
                    mark: node.mark,
                    ..v
                })
            }
            Value::Seq(items) => Value::Seq(
                items
                    .iter()
                    .map(|i| self.resolve(i, key))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((self.resolve(k, key)?, self.resolve(v, key)?)))
                    .collect::<Result<_, InterpError>>()?,
            ),
            other => other.clone(),
        };
        Ok(Node {
            value,
            mark: node.mark,
        })
    }

    /// A string with its `${}` substituted: the value itself when the string is exactly one
    /// `${}`, else the text with each value spelled as Python would.
    pub fn resolve_str(&self, s: &str, key: &str) -> Result<Node, InterpError> {
        let found = matches(s);
        if found.is_empty() {
            return Ok(Node::new(Value::Str(s.replace("\\${", "${"))));
        }
        if found.len() == 1 && found[0].start == 0 && found[0].end == s.len() {
            let path = parse_expr(found[0].inner)?;
            let v = self.select(&path)?;
            validate(v, key)?;
            return Ok(v.clone());
        }
        let mut buf = String::new();
        let mut idx = 0;
        for m in &found {
            let path = parse_expr(m.inner)?;
            let v = self.select(&path)?;
            validate(v, key)?;
            buf.push_str(&s[idx..m.start]);
            buf.push_str(&to_str(v)?);
            idx = m.end;
        }
        buf.push_str(&s[idx..]);
        Ok(Node::new(Value::Str(buf.replace("\\${", "${"))))
    }
}

fn validate(v: &Node, key: &str) -> Result<(), InterpError> {
    let composite = matches!(v.value, Value::Seq(_) | Value::Map(_));
    if composite && !key.contains("foreach") && !(key == "cmd" && matches!(v.value, Value::Map(_)))
    {
        return Err(InterpError::Type(format!(
            "Cannot interpolate data of type '{}'",
            v.type_name()
        )));
    }
    Ok(())
}

/// A value as text, as DVC writes it into a string: booleans in lower case, a mapping as
/// `--key value` arguments.
pub fn to_str(v: &Node) -> Result<String, InterpError> {
    Ok(match &v.value {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => python_float(*f),
        Value::Str(s) => s.clone(),
        Value::Seq(_) => python_repr(v),
        Value::Map(_) => {
            let mut flat = Vec::new();
            flatten("", v, &mut flat);
            let mut out = String::new();
            for (k, val) in flat {
                match &val.value {
                    Value::Bool(true) => out.push_str(&format!("--{k} ")),
                    Value::Bool(false) => {}
                    Value::Str(s) => out.push_str(&format!("--{k} {} ", shell_quote(s))),
                    Value::Seq(items) => {
                        for (n, it) in items.iter().enumerate() {
                            let s = match &it.value {
                                Value::Str(s) => shell_quote(s),
                                Value::Seq(_) | Value::Map(_) => {
                                    return Err(InterpError::Parse(format!(
                                        "Cannot interpolate nested iterable in '{k}'"
                                    )))
                                }
                                _ => to_str(it)?,
                            };
                            if n == 0 {
                                out.push_str(&format!("--{k} {s} "));
                            } else {
                                out.push_str(&format!("{s} "));
                            }
                        }
                    }
                    _ => out.push_str(&format!("--{k} {} ", python_repr(val))),
                }
            }
            out.trim_end().to_string()
        }
    })
}

fn flatten<'a>(prefix: &str, v: &'a Node, out: &mut Vec<(String, &'a Node)>) {
    if let Value::Map(entries) = &v.value {
        for (k, val) in entries {
            let k = key_text(k).unwrap_or_default();
            let full = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            if matches!(val.value, Value::Map(_)) {
                flatten(&full, val, out);
            } else {
                out.push((full, val));
            }
        }
    }
}

/// Python's `repr` of a value (as `str()` of a list shows its items).
fn python_repr(v: &Node) -> String {
    match &v.value {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => python_float(*f),
        Value::Str(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\'', "\\'"))
            }
        }
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", python_repr(k), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// POSIX shell quoting as Python's `shlex.quote` does it.
fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    fn ctx(text: &str) -> Context {
        let doc = parse(text).unwrap().unwrap();
        let Value::Map(entries) = doc.value else {
            panic!("map")
        };
        Context {
            entries: entries
                .into_iter()
                .map(|(k, v)| (key_text(&k).unwrap(), v))
                .collect(),
        }
    }

    #[test]
    fn substitutes_like_dvc() {
        let c = ctx("lr: 0.001\nmodels: [a, b]\ntrain: {epochs: 10, on: true}\nname: x y\n");
        let s = |t: &str| c.resolve_str(t, "outs").unwrap();
        assert_eq!(s("m-${models[1]}.bin").value, Value::Str("m-b.bin".into()));
        assert_eq!(s("${ train.epochs }").value, Value::Int(10));
        assert_eq!(
            s("e${train.epochs}-${lr}").value,
            Value::Str("e10-0.001".into())
        );
        assert_eq!(s("${train.on}!").value, Value::Str("true!".into()));
        assert_eq!(s("\\${lr}").value, Value::Str("${lr}".into()));
        assert_eq!(
            c.resolve_str("run ${train}", "cmd").unwrap().value,
            Value::Str("run --epochs 10 --on".into())
        );
        assert_eq!(
            c.resolve_str("x${models}", "outs").unwrap_err(),
            InterpError::Type("Cannot interpolate data of type 'list'".into())
        );
        assert_eq!(
            c.resolve_str("${nope}", "outs").unwrap_err().to_string(),
            "Could not find 'nope'"
        );
        assert_eq!(
            c.resolve_str("${a.}", "outs").unwrap_err().to_string(),
            "${a.}\n   ^\nParseException: Expected end of text, found '.'  (at char 3), (line:1, col:4)"
        );
    }
}
