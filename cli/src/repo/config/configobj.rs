//! The INI dialect of Python's configobj, as DVC reads and writes it: one level of `[section]`s,
//! `key = value` lines, quoted and comma-list values, `#` comments, triple-quoted multi-line values.
//!
//! Parsing mirrors configobj's regular expressions (leftmost-first matching, lazy quantifiers) so
//! that a file means the same to Lode as to DVC; writing mirrors `ConfigObj.write` with the default
//! 4-space indent, which is what DVC produces when it rewrites a config file.

use std::sync::LazyLock;

use regex::Regex;

/// A value: configobj turns any unquoted comma into a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    List(Vec<String>),
}

impl Value {
    /// The value as DVC prints it (`dvc config`): a list shows as a Python list literal.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::List(items) => {
                let inner: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
                format!("[{}]", inner.join(", "))
            }
        }
    }
}

/// Python's `repr` of a str, enough for config values (quote choice and backslash escapes).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Ordered `key = value` pairs.
pub type Table = Vec<(String, Value)>;

/// A parsed file: keys before the first section, then sections in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub scalars: Table,
    pub sections: Vec<(String, Table)>,
}

/// Why a file could not be parsed; the message is configobj's, so it matches what DVC prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Why a value cannot be written (configobj refuses values it cannot quote safely).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Value \"{0}\" cannot be safely quoted.")]
pub struct QuoteError(pub String);

static SECTION_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(\s*)((?:\[\s*)+)((?:"\s*\S.*?\s*")|(?:'\s*\S.*?\s*')|(?:[^'"\s].*?))((?:\s*\])+)\s*(#.*)?$"#,
    )
    .expect("static regex")
});

static KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\s*)((?:".*?")|(?:'.*?')|(?:[^'"=].*?))\s*=\s*(.*)$"#).expect("static regex")
});

// configobj's value pattern uses a `(?<!,)` look-behind for the empty value; the `regex` crate has
// no look-around, so the empty alternative is captured (group `empty`) and checked afterwards.
static VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(?:(?:((?:(?:(?:".*?")|(?:'.*?')|(?:[^'",\#][^,\#]*?))\s*,\s*)*)((?:".*?")|(?:'.*?')|(?:[^'",\#\s][^,]*?)|(?P<empty>))?)|(,))\s*(\#.*)?$"#,
    )
    .expect("static regex")
});

static LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"((?:".*?")|(?:'.*?')|(?:[^'",\#]?.*?))\s*,\s*"#).expect("static regex")
});

static TRIPLE_SINGLE_LINE_SQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^'''(.*?)'''\s*(#.*)?$").expect("static regex"));
static TRIPLE_SINGLE_LINE_DQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^"""(.*?)"""\s*(#.*)?$"#).expect("static regex"));
static TRIPLE_END_SQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*?)'''\s*(#.*)?$").expect("static regex"));
static TRIPLE_END_DQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^(.*?)"""\s*(#.*)?$"#).expect("static regex"));

fn unquote(s: &str) -> Option<String> {
    let first = s.chars().next()?;
    let last = s.chars().next_back()?;
    if s.len() >= 2 && first == last && (first == '"' || first == '\'') {
        Some(s[1..s.len() - 1].to_string())
    } else if s.len() == 1 && (first == '"' || first == '\'') {
        // configobj slices `value[1:-1]` of a lone quote character: the empty string.
        Some(String::new())
    } else {
        Some(s.to_string())
    }
}

/// configobj's `_handle_value` with `list_values=True`.
fn handle_value(value: &str) -> Option<Value> {
    let caps = VALUE.captures(value)?;
    let list_part = caps.get(1).map(|m| m.as_str());
    let mut single = caps.get(2).map(|m| m.as_str().to_string());
    if let Some(empty) = caps.name("empty") {
        if value[..empty.start()].ends_with(',') {
            single = None;
        }
    }
    let empty_list = caps.get(4).is_some();
    if list_part.unwrap_or("").is_empty() && single.is_none() && !empty_list {
        return None;
    }
    if empty_list {
        return Some(Value::List(Vec::new()));
    }
    let list_part = list_part.unwrap_or("");
    if let Some(s) = single.take() {
        if !list_part.is_empty() && s.is_empty() {
            single = None;
        } else if s.is_empty() {
            single = Some(String::new());
        } else {
            single = Some(unquote(&s)?);
        }
    }
    if list_part.is_empty() {
        return single.map(Value::Str);
    }
    let mut items = Vec::new();
    for c in LIST_ITEM.captures_iter(list_part) {
        let item = c.get(1).map(|m| m.as_str()).unwrap_or("");
        if item.is_empty() {
            return None;
        }
        items.push(unquote(item)?);
    }
    if let Some(s) = single {
        items.push(s);
    }
    Some(Value::List(items))
}

/// Parses configobj text. Like configobj, it reads past errors and reports the first one, or a
/// summary when there were several.
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .collect();
    let mut doc = Document::default();
    // Index of the current section in `doc.sections`, `None` before the first one.
    let mut current: Option<usize> = None;
    let mut errors: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lineno = i + 1;
        i += 1;
        let sline = line.trim();
        if sline.is_empty() || sline.starts_with('#') {
            continue;
        }
        if let Some(caps) = SECTION_NAME.captures(line) {
            let open = caps.get(2).map_or("", |m| m.as_str()).matches('[').count();
            let close = caps.get(4).map_or("", |m| m.as_str()).matches(']').count();
            if open != close {
                errors.push(("Cannot compute the section depth".into(), lineno));
                continue;
            }
            if open > 1 {
                // DVC's schema has no nested sections; configobj would nest it.
                errors.push(("Section too nested".into(), lineno));
                continue;
            }
            let raw = caps.get(3).map_or("", |m| m.as_str());
            let Some(name) = unquote(raw) else {
                errors.push(("Invalid section name".into(), lineno));
                continue;
            };
            if doc.sections.iter().any(|(n, _)| *n == name) {
                errors.push(("Duplicate section name".into(), lineno));
                continue;
            }
            doc.sections.push((name, Vec::new()));
            current = Some(doc.sections.len() - 1);
            continue;
        }
        let Some(caps) = KEYWORD.captures(line) else {
            errors.push((
                format!(
                    "Invalid line ({}) (matched as neither section nor keyword)",
                    py_repr(line)
                ),
                lineno,
            ));
            continue;
        };
        let raw_key = caps.get(2).map_or("", |m| m.as_str());
        let raw_value = caps.get(3).map_or("", |m| m.as_str());
        let value = if raw_value.starts_with("'''") || raw_value.starts_with("\"\"\"") {
            let resume = i;
            match multiline(raw_value, &lines, &mut i) {
                Some(v) => Value::Str(v),
                None => {
                    // configobj goes on with the next line, not after the broken value.
                    i = resume;
                    errors.push(("Parse error in multiline value".into(), lineno));
                    continue;
                }
            }
        } else {
            match handle_value(raw_value) {
                Some(v) => v,
                None => {
                    errors.push(("Parse error in value".into(), lineno));
                    continue;
                }
            }
        };
        let Some(key) = unquote(raw_key) else {
            errors.push(("Parse error in value".into(), lineno));
            continue;
        };
        let table = match current {
            Some(idx) => &mut doc.sections[idx].1,
            None => &mut doc.scalars,
        };
        if table.iter().any(|(k, _)| *k == key) {
            errors.push(("Duplicate keyword name".into(), lineno));
            continue;
        }
        table.push((key, value));
    }
    match errors.len() {
        0 => Ok(doc),
        1 => Err(ParseError(format!(
            "{} at line {}.",
            errors[0].0, errors[0].1
        ))),
        _ => Err(ParseError(format!(
            "Parsing failed with several errors.\nFirst error at line {}.",
            errors[0].1
        ))),
    }
}

/// A triple-quoted value starting on `first`; `next` indexes the line after it and is advanced
/// past the closing line.
fn multiline(first: &str, lines: &[&str], next: &mut usize) -> Option<String> {
    let quote = &first[..3];
    let (one_line, end) = if quote == "'''" {
        (&*TRIPLE_SINGLE_LINE_SQ, &*TRIPLE_END_SQ)
    } else {
        (&*TRIPLE_SINGLE_LINE_DQ, &*TRIPLE_END_DQ)
    };
    if let Some(c) = one_line.captures(first) {
        return Some(c.get(1).map_or("", |m| m.as_str()).to_string());
    }
    let mut value = first[3..].to_string();
    if value.contains(quote) {
        return None;
    }
    while *next < lines.len() {
        let line = lines[*next];
        *next += 1;
        value.push('\n');
        if line.contains(quote) {
            let c = end.captures(line)?;
            value.push_str(c.get(1).map_or("", |m| m.as_str()));
            return Some(value);
        }
        value.push_str(line);
    }
    None
}

const WSPACE_PLUS: &[char] = &[' ', '\r', '\n', '\u{b}', '\t', '\'', '"'];

fn single_quote(value: &str) -> Result<String, QuoteError> {
    if value.contains('\'') && value.contains('"') {
        Err(QuoteError(value.to_string()))
    } else if value.contains('"') {
        Ok(format!("'{value}'"))
    } else {
        Ok(format!("\"{value}\""))
    }
}

/// configobj's `_quote` for a string, with `list_values=True`.
pub fn quote_str(value: &str, multiline: bool) -> Result<String, QuoteError> {
    if value.is_empty() {
        return Ok("\"\"".into());
    }
    let need_triple =
        multiline && ((value.contains('\'') && value.contains('"')) || value.contains('\n'));
    if need_triple {
        if value.contains("\"\"\"") && value.contains("'''") {
            return Err(QuoteError(value.to_string()));
        }
        return Ok(if value.contains("\"\"\"") {
            format!("\"\"\"{value}\"\"\"")
        } else {
            format!("'''{value}'''")
        });
    }
    if value.contains('\n') {
        return Err(QuoteError(value.to_string()));
    }
    let starts_plain = !value.starts_with(WSPACE_PLUS);
    let ends_plain = !value.ends_with(WSPACE_PLUS);
    if starts_plain && ends_plain && !value.contains(',') && !value.contains('#') {
        Ok(value.to_string())
    } else {
        single_quote(value)
    }
}

fn quote_value(value: &Value) -> Result<String, QuoteError> {
    match value {
        Value::Str(s) => quote_str(s, true),
        Value::List(items) => match items.len() {
            0 => Ok(",".into()),
            1 => Ok(format!("{},", quote_str(&items[0], false)?)),
            _ => Ok(items
                .iter()
                .map(|s| quote_str(s, false))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")),
        },
    }
}

/// Serialises as `ConfigObj.write` does for a config built from a dict: no comments, 4-space
/// indentation inside sections, `\n` line ends and a final newline (so an empty file is `"\n"`).
pub fn write(doc: &Document) -> Result<String, QuoteError> {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in &doc.scalars {
        out.push(format!("{} = {}", quote_str(k, false)?, quote_value(v)?));
    }
    for (name, table) in &doc.sections {
        out.push(format!("[{}]", quote_str(name, false)?));
        for (k, v) in table {
            out.push(format!(
                "    {} = {}",
                quote_str(k, false)?,
                quote_value(v)?
            ));
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }
    fn l(v: &[&str]) -> Value {
        Value::List(v.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn values_follow_configobj() {
        assert_eq!(handle_value("abc"), Some(s("abc")));
        assert_eq!(handle_value("a b  # note"), Some(s("a b")));
        assert_eq!(handle_value("a#b"), Some(s("a")));
        assert_eq!(handle_value("\"a#b\""), Some(s("a#b")));
        assert_eq!(handle_value("\"a,b\"  # c"), Some(s("a,b")));
        assert_eq!(handle_value("reflink, copy"), Some(l(&["reflink", "copy"])));
        assert_eq!(handle_value("reflink,copy"), Some(l(&["reflink", "copy"])));
        assert_eq!(handle_value("a,"), Some(l(&["a"])));
        assert_eq!(handle_value("a, b,"), Some(l(&["a", "b"])));
        assert_eq!(handle_value(","), Some(l(&[])));
        assert_eq!(handle_value(""), Some(s("")));
        assert_eq!(handle_value("# only a comment"), Some(s("")));
        assert_eq!(handle_value("'x' y"), None);
        assert_eq!(handle_value("\"unterminated"), None);
        assert_eq!(handle_value("a, b ,"), Some(l(&["a", "b"])));
        assert_eq!(handle_value("\"a\"b\", c"), Some(l(&["a\"b", "c"])));
    }

    #[test]
    fn parses_sections_quoted_and_bare() {
        let doc = parse(
            "# c\n[core]\n    remote = storage  # why\n['remote \"storage\"']\n    url = http://h/x\n[remote \"b\"]\nurl=/p\n",
        )
        .expect("parse");
        assert_eq!(doc.sections.len(), 3);
        assert_eq!(
            doc.sections[0],
            ("core".into(), vec![("remote".into(), s("storage"))])
        );
        assert_eq!(doc.sections[1].0, "remote \"storage\"");
        assert_eq!(doc.sections[2].0, "remote \"b\"");
        assert_eq!(doc.sections[2].1, vec![("url".into(), s("/p"))]);
    }

    #[test]
    fn errors_match_configobj() {
        assert_eq!(
            parse("garbage\n").unwrap_err().0,
            "Invalid line ('garbage') (matched as neither section nor keyword) at line 1."
        );
        assert_eq!(
            parse("garbage\n[core]\nfoo\n").unwrap_err().0,
            "Parsing failed with several errors.\nFirst error at line 1."
        );
        assert_eq!(
            parse("[a]\nx = 1\nx = 2\n").unwrap_err().0,
            "Duplicate keyword name at line 3."
        );
        assert_eq!(
            parse("[a]\nx = '''abc\ndef\n").unwrap_err().0,
            "Parsing failed with several errors.\nFirst error at line 2."
        );
        assert_eq!(
            parse("[a]\nx = '''abc\n").unwrap_err().0,
            "Parse error in multiline value at line 2."
        );
        assert_eq!(
            parse("[a]]\n").unwrap_err().0,
            "Cannot compute the section depth at line 1."
        );
    }

    #[test]
    fn multiline_values() {
        let doc = parse("[a]\nx = '''one\ntwo'''\ny = \"\"\"z\"\"\"\n").expect("parse");
        assert_eq!(doc.sections[0].1[0].1, s("one\ntwo"));
        assert_eq!(doc.sections[0].1[1].1, s("z"));
    }

    #[test]
    fn writes_like_configobj() {
        let doc = Document {
            scalars: vec![],
            sections: vec![
                ("core".into(), vec![("remote".into(), s("storage"))]),
                (
                    "remote \"storage\"".into(),
                    vec![
                        ("url".into(), s("http://h/x")),
                        ("password".into(), s("a#b")),
                        ("type".into(), s("hardlink,symlink")),
                        ("list".into(), l(&["reflink", "copy"])),
                        ("one".into(), l(&["x"])),
                        ("empty".into(), s("")),
                        ("spaced".into(), s(" x")),
                        ("dq".into(), s("say \"hi\", ok")),
                    ],
                ),
            ],
        };
        assert_eq!(
            write(&doc).expect("write"),
            "[core]\n    remote = storage\n['remote \"storage\"']\n    url = http://h/x\n    password = \"a#b\"\n    type = \"hardlink,symlink\"\n    list = reflink, copy\n    one = x,\n    empty = \"\"\n    spaced = \" x\"\n    dq = 'say \"hi\", ok'\n"
        );
        assert_eq!(write(&Document::default()).expect("write"), "\n");
    }

    #[test]
    fn round_trips() {
        let text = "[core]\n    remote = s\n    no_scm = True\n['remote \"s\"']\n    url = \"a,b\"\n    x = it\"s\n    q = '\"q\"'\n    m = '''a\nb'''\n    e = ,\n";
        let doc = parse(text).expect("parse");
        assert_eq!(write(&doc).expect("write"), text);
    }

    /// Expected values come from configobj 5.0.9 parsing `k = <value>` in a section.
    #[test]
    fn values_match_configobj_table() {
        let cases: &[(&str, Option<Value>)] = &[
            ("a", Some(s("a"))),
            ("a b", Some(s("a b"))),
            (" a", Some(s("a"))),
            ("a  ", Some(s("a"))),
            ("\"a\"", Some(s("a"))),
            ("'a'", Some(s("a"))),
            ("\"a\" # c", Some(s("a"))),
            ("a # c", Some(s("a"))),
            ("a#c", Some(s("a"))),
            ("\"a#c\"", Some(s("a#c"))),
            ("'a,b'", Some(s("a,b"))),
            ("a, b", Some(l(&["a", "b"]))),
            ("a,b,c", Some(l(&["a", "b", "c"]))),
            ("a,", Some(l(&["a"]))),
            (",", Some(l(&[]))),
            ("\"a\", 'b', c", Some(l(&["a", "b", "c"]))),
            ("\"a\" , \"b\" ,", Some(l(&["a", "b"]))),
            ("a b, c d", Some(l(&["a b", "c d"]))),
            ("\"\"", Some(s(""))),
            ("''", Some(s(""))),
            ("\"", None),
            ("'", None),
            ("a\"b", Some(s("a\"b"))),
            ("\"a\"b\"", Some(s("a\"b"))),
            ("a, \"b", None),
            ("= x", Some(s("= x"))),
            ("a = b", Some(s("a = b"))),
            ("x, # c", Some(l(&["x"]))),
            ("\"a\"#c", Some(s("a"))),
            ("a,\"b\"", Some(l(&["a", "b"]))),
            (" , a", None),
            ("a,,b", None),
            ("\"a,b\",c", Some(l(&["a,b", "c"]))),
        ];
        for (raw, want) in cases {
            let got = parse(&format!("[s]\nk = {raw}\n"))
                .ok()
                .map(|d| d.sections[0].1[0].1.clone());
            assert_eq!(&got, want, "value {raw:?}");
        }
    }

    /// Expected text comes from configobj 5.0.9 writing `{"s": {"k": value}}`.
    #[test]
    fn quoting_matches_configobj_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("a", Some("a")),
            ("a b", Some("a b")),
            (" a", Some("\" a\"")),
            ("a ", Some("\"a \"")),
            ("a,b", Some("\"a,b\"")),
            ("a#b", Some("\"a#b\"")),
            ("it's", Some("it's")),
            ("say \"hi\"", Some("'say \"hi\"'")),
            ("a\"b'c", Some("'''a\"b'c'''")),
            ("a\nb", Some("'''a\nb'''")),
            ("'x'", Some("\"'x'\"")),
            ("\"x\"", Some("'\"x\"'")),
            ("x\ty", Some("x\ty")),
            ("#", Some("\"#\"")),
            ("a'#\"", Some("'''a'#\"'''")),
            ("\tx", Some("\"\tx\"")),
            ("\u{e9}", Some("\u{e9}")),
            ("", Some("\"\"")),
            ("a, b", Some("\"a, b\"")),
            ("x'''y\"\"\"z", None),
        ];
        for (value, want) in cases {
            let got = quote_str(value, true).ok();
            assert_eq!(got.as_deref(), *want, "value {value:?}");
        }
    }
}
