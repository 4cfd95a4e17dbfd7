//! A YAML document as a tree of typed values with their positions, resolved the way DVC's
//! YAML 1.2 loader resolves plain scalars (so `yes` is a string and `1e3` a float), with anchors,
//! aliases and `<<` merge keys.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Where a node starts: 1-based line and column, as DVC prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A value and where it starts. For a block mapping that is its first key, for a block sequence
/// its first `-`, for flow collections the opening bracket: the places DVC reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl Node {
    pub fn new(value: Value) -> Node {
        Node {
            value,
            mark: Mark::default(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_collection(&self) -> bool {
        matches!(self.value, Value::Seq(_) | Value::Map(_))
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at `path` (mapping keys, or sequence indexes written as numbers).
    pub fn at(&self, path: &[String]) -> Option<&Node> {
        let mut cur = self;
        for p in path {
            cur = match &cur.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| key_text(k).as_deref() == Some(p.as_str()))
                    .map(|(_, v)| v)?,
                Value::Seq(items) => items.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Python's name for the value's type, used in DVC's messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Seq(_) => "list",
            Value::Map(_) => "dict",
        }
    }
}

/// A mapping key as text (keys that are numbers or booleans are compared by their spelling).
pub fn key_text(k: &Node) -> Option<String> {
    match &k.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        Value::Float(f) => Some(super::emit::python_float(*f)),
        Value::Null => Some("None".to_string()),
        _ => None,
    }
}

/// A YAML syntax error: the parser's message and where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub mark: Mark,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, in line {}, column {}",
            capitalize(&self.message),
            self.mark.line,
            self.mark.col
        )
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Parses the first document of `text`; `Ok(None)` when it holds no document or only `null`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    // Open collections: the node being built, its anchor, and a key waiting for its value.
    let mut stack: Vec<(Node, usize, Option<Node>)> = Vec::new();
    let mut root = None;
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            message: e.info().to_string(),
            mark: Mark {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
        })?;
        let mark = Mark {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        let (node, anchor) = match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Alias(id) => (
                anchors.get(&id).cloned().unwrap_or(Node {
                    value: Value::Null,
                    mark,
                }),
                0,
            ),
            Event::Scalar(text, style, anchor, tag) => {
                let value = if style == ScalarStyle::Plain {
                    match tag.as_deref() {
                        Some(t) if t.suffix == "str" => Value::Str(text.into_owned()),
                        _ => resolve_plain(&text),
                    }
                } else {
                    Value::Str(text.into_owned())
                };
                (Node { value, mark }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((
                    Node {
                        value: Value::Seq(Vec::new()),
                        mark: dash_of(&lines, mark),
                    },
                    anchor,
                    None,
                ));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push((
                    Node {
                        value: Value::Map(Vec::new()),
                        mark,
                    },
                    anchor,
                    None,
                ));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some((mut n, anchor, _)) => {
                    if let Value::Map(entries) = &mut n.value {
                        apply_merge_keys(entries);
                    }
                    (n, anchor)
                }
                None => {
                    return Err(SyntaxError {
                        message: "unbalanced structure".into(),
                        mark,
                    })
                }
            },
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                root = Some(node);
                break;
            }
            Some((parent, _, pending)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending.take() {
                    None => *pending = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                _ => {}
            },
        }
    }
    Ok(root.filter(|n| n.value != Value::Null))
}

/// Where a block sequence starts: the parser marks the first item of a sequence written flush
/// with its key, DVC the item's dash.
fn dash_of(lines: &[&str], mark: Mark) -> Mark {
    let Some(line) = lines.get(mark.line.wrapping_sub(1)) else {
        return mark;
    };
    let chars: Vec<char> = line.chars().collect();
    let mut col = mark.col.saturating_sub(1);
    if matches!(chars.get(col), Some('-' | '[')) {
        return mark;
    }
    while col > 0 && chars.get(col - 1) == Some(&' ') {
        col -= 1;
    }
    if col > 0 && chars.get(col - 1) == Some(&'-') {
        return Mark {
            line: mark.line,
            col,
        };
    }
    mark
}

/// `<<: *base` (or a list of them): the merged mappings' entries that the mapping does not set
/// itself, as YAML's merge key defines.
fn apply_merge_keys(entries: &mut Vec<(Node, Node)>) {
    if !entries.iter().any(|(k, _)| k.as_str() == Some("<<")) {
        return;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries.drain(..) {
        if k.as_str() == Some("<<") {
            match v.value {
                Value::Map(m) => merged.push(m),
                Value::Seq(items) => {
                    for it in items {
                        if let Value::Map(m) = it.value {
                            merged.push(m);
                        }
                    }
                }
                _ => {}
            }
        } else {
            own.push((k, v));
        }
    }
    for m in merged {
        for (k, v) in m {
            if !own.iter().any(|(ok, _)| ok.value == k.value) {
                own.push((k, v));
            }
        }
    }
    *entries = own;
}

/// A plain scalar resolved by YAML 1.2's core schema, as DVC's loader does.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(s) {
        return Value::Int(i);
    }
    if let Some(f) = parse_float(s) {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = body.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = body.strip_prefix("0b") {
        (2, b)
    } else {
        (10, body)
    };
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || !digits.starts_with(|c: char| c.is_digit(radix)) {
        return None;
    }
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if let Some(e) = exp {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && digits(frac))
                || (digits(int)
                    && int.as_bytes()[0].is_ascii_digit()
                    && (frac.is_empty() || digits(frac)))
        }
        None => exp.is_some() && digits(mantissa) && mantissa.as_bytes()[0].is_ascii_digit(),
    };
    if !ok {
        return None;
    }
    s.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_scalars_and_marks() {
        let doc = parse("a: 1\nb: [x, 2.5, yes, true, ~]\nc:\n- k: v\n  n: 0x10\n")
            .unwrap()
            .unwrap();
        assert_eq!(doc.mark, Mark { line: 1, col: 1 });
        assert_eq!(doc.get("a").unwrap().value, Value::Int(1));
        let b = doc.get("b").unwrap();
        assert_eq!(b.mark, Mark { line: 2, col: 4 });
        let Value::Seq(items) = &b.value else {
            panic!("seq")
        };
        assert_eq!(items[1].value, Value::Float(2.5));
        assert_eq!(items[2].value, Value::Str("yes".into()));
        assert_eq!(items[3].value, Value::Bool(true));
        assert_eq!(items[4].value, Value::Null);
        let c = doc.get("c").unwrap();
        assert_eq!(c.mark, Mark { line: 4, col: 1 });
        let first = doc.at(&["c".into(), "0".into()]).unwrap();
        assert_eq!(first.mark, Mark { line: 4, col: 3 });
        assert_eq!(first.get("n").unwrap().value, Value::Int(16));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let doc = parse("base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\n")
            .unwrap()
            .unwrap();
        let u = doc.get("use").unwrap();
        assert_eq!(u.get("x").unwrap().value, Value::Int(1));
        assert_eq!(u.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn reports_syntax_errors() {
        let e = parse("a: [1\n").unwrap_err();
        assert!(e.mark.line >= 1, "{e}");
        assert!(parse("").unwrap().is_none());
    }
}
