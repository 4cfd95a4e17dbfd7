//! Writing YAML the way DVC's emitter lays it out: block mappings indented by two, sequences
//! flush with their key, scalars quoted only when needed and long ones folded at 80 columns
//! (see `docs/pipelines.md`). Also Python's spelling of numbers, which DVC uses both when it
//! writes values and when it puts them into strings.

use crate::repo::dvcfile::yaml_scalar;

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// A string, quoted and folded as needed.
    Str(String),
    /// A scalar written as it is (numbers, booleans).
    Raw(String),
    /// `null`: nothing after the key.
    Null,
    Seq(Vec<Emit>),
    Map(Vec<(String, Emit)>),
}

/// Lines wider than this are folded, as in DVC's writer.
const BEST_WIDTH: usize = 80;

/// The writer's position, as the emitter DVC uses tracks it.
struct Writer {
    out: String,
    column: usize,
    /// Indent of continuation lines of the scalar being written.
    indent: usize,
    whitespace: bool,
    indention: bool,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            out: String::new(),
            column: 0,
            indent: 0,
            whitespace: true,
            indention: true,
        }
    }

    fn write(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    /// A run of line breaks inside a scalar: a first `\n` is doubled (a single one would read
    /// back as a space), then the text continues at the indent.
    fn breaks(&mut self, run: &[char]) {
        if run.first() == Some(&'\n') {
            self.line_break();
        }
        for br in run {
            if *br == '\n' {
                self.line_break();
            } else {
                self.out.push(*br);
                self.whitespace = true;
                self.indention = true;
                self.column = 0;
            }
        }
        self.write_indent();
    }

    fn indicator(&mut self, ind: &str, need_whitespace: bool, whitespace: bool, indention: bool) {
        if self.whitespace || !need_whitespace {
            self.write(ind);
        } else {
            self.write(&format!(" {ind}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    /// Starts a new line at `indent` (a block entry).
    fn start_line(&mut self, indent: usize) {
        self.indent = indent;
        self.write_indent();
    }

    fn scalar(&mut self, text: &str, split: bool) {
        match style_of(text) {
            Style::Plain => self.plain(text, split),
            Style::Single => self.single_quoted(text, split),
            Style::Double => self.double_quoted(text, split),
        }
    }

    fn plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column >= BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.breaks(&chars[start..end]);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let data: String = chars[start..end].iter().collect();
                if data.chars().count() + self.column > BEST_WIDTH && self.column > self.indent {
                    // A word that does not fit starts a line of its own.
                    self.write_indent();
                }
                self.write(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn single_quoted(&mut self, text: &str, split: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent();
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.breaks(&chars[start..end]);
                    start = end;
                }
            } else if (ch.is_none_or(|c| c == ' ' || is_break(c) || c == '\'')) && start < end {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.indicator("'", false, false, false);
    }

    fn double_quoted(&mut self, text: &str, split: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let (mut start, mut end) = (0usize, 0usize);
        while end <= n {
            let ch = chars.get(end).copied();
            if ch.is_none_or(needs_escape) {
                if start < end {
                    let data: String = chars[start..end].iter().collect();
                    self.write(&data);
                    start = end;
                }
                if let Some(c) = ch {
                    self.write(&escape(c));
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < n
                && (ch == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
                && split
            {
                let need_backslash = needs_backslash(&chars, start, end);
                let mut data: String = if start < end {
                    chars[start..end].iter().collect()
                } else {
                    String::new()
                };
                if need_backslash {
                    data.push('\\');
                }
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if chars.get(start) == Some(&' ') {
                    if !need_backslash {
                        start += 1;
                    } else {
                        self.write("\\");
                    }
                }
            }
            end += 1;
        }
        self.indicator("\"", false, false, false);
    }
}

/// Whether a fold of a double-quoted scalar at `end` must be marked with a backslash.
fn needs_backslash(chars: &[char], start: usize, end: usize) -> bool {
    if chars.len() <= end {
        return true;
    }
    let Some(mut space_pos) = chars[end..].iter().position(|c| *c == ' ').map(|p| p + end) else {
        return true;
    };
    if let Some(nl) = chars[end..space_pos].iter().position(|c| *c == '\n') {
        space_pos = nl + end;
    }
    let Some(&after) = chars.get(space_pos + 1) else {
        return true;
    };
    if chars[space_pos] == '\n' && after != ' ' {
        return true;
    }
    let segment = &chars[end..space_pos];
    let two: String = chars[end.saturating_sub(1)..(end + 1).min(chars.len())]
        .iter()
        .collect();
    !(!segment.contains(&'"')
        && !segment.contains(&'\'')
        && after != ' '
        && after != '\n'
        && two != "  "
        && start != end)
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
    ) || !printable(c)
}

fn escape(c: char) -> String {
    let short = match c {
        '\0' => Some('0'),
        '\u{07}' => Some('a'),
        '\u{08}' => Some('b'),
        '\t' => Some('t'),
        '\n' => Some('n'),
        '\u{0b}' => Some('v'),
        '\u{0c}' => Some('f'),
        '\r' => Some('r'),
        '\u{1b}' => Some('e'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        '\u{85}' => Some('N'),
        '\u{a0}' => Some('_'),
        '\u{2028}' => Some('L'),
        '\u{2029}' => Some('P'),
        _ => None,
    };
    match short {
        Some(s) => format!("\\{s}"),
        None if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
        None if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
        None => format!("\\U{:08X}", c as u32),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

fn style_of(text: &str) -> Style {
    if text.chars().any(|c| !printable(c) && c != '\n') {
        return Style::Double;
    }
    if !text.is_empty() && !text.contains('\n') && yaml_scalar(text) == text {
        return Style::Plain;
    }
    if text.contains('\'') || text.contains('\n') {
        Style::Double
    } else {
        Style::Single
    }
}

/// The block-style text of a mapping's entries at `indent`, as DVC writes it.
pub fn mapping(entries: &[(String, Emit)], indent: usize) -> String {
    let mut w = Writer::new();
    map_entries(&mut w, entries, indent, false);
    if w.column != 0 {
        w.line_break();
    }
    w.out
}

fn map_entries(w: &mut Writer, entries: &[(String, Emit)], indent: usize, inline_first: bool) {
    for (n, (k, v)) in entries.iter().enumerate() {
        if !(inline_first && n == 0) {
            w.start_line(indent);
        }
        w.indent = indent;
        w.scalar(k, false);
        w.indicator(":", false, false, false);
        value(w, v, indent, true);
    }
}

/// Writes `v` after a mapping key (`in_map`) or a sequence dash, at block indent `indent`.
fn value(w: &mut Writer, v: &Emit, indent: usize, in_map: bool) {
    match v {
        // A null item is a dash and a space; a null value nothing after its colon.
        Emit::Null if !in_map => w.write(" "),
        Emit::Null => {}
        Emit::Raw(s) => {
            w.indent = indent + 2;
            w.plain(s, true);
        }
        Emit::Str(s) => {
            w.indent = indent + 2;
            w.scalar(s, true);
        }
        Emit::Seq(items) if items.is_empty() => {
            w.indicator("[]", true, false, false);
        }
        Emit::Map(entries) if entries.is_empty() => {
            w.indicator("{}", true, false, false);
        }
        Emit::Seq(items) => {
            // In a mapping a sequence starts on the next line, flush with its key; inside a
            // sequence it starts after the dash.
            let seq_indent = if in_map { indent } else { indent + 2 };
            for (n, item) in items.iter().enumerate() {
                if in_map || n > 0 {
                    w.start_line(seq_indent);
                }
                w.indicator("-", true, false, true);
                value(w, item, seq_indent, false);
            }
        }
        Emit::Map(entries) => {
            if in_map {
                map_entries(w, entries, indent + 2, false);
            } else {
                map_entries(w, entries, indent + 2, true);
            }
        }
    }
}

/// Python's `repr` of a float (the shortest text that reads back as the same number), which
/// DVC uses both in the files it writes and when it puts a number into a string.
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// A float as DVC's writer spells it in YAML.
pub fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        python_float(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Emit {
        Emit::Str(x.into())
    }

    #[test]
    fn floats_like_python() {
        let cases = [
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (1.5e-7, "1.5e-07"),
            (123456789.123, "123456789.123"),
            (0.0001, "0.0001"),
            (1e22, "1e+22"),
            (2.5e300, "2.5e+300"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float(f), want, "{f}");
        }
    }

    // Expected texts below were written by DVC 3.67.1's YAML writer for the same data.
    #[test]
    fn folds_long_scalars_like_dvc() {
        let entries = vec![(
            "s".to_string(),
            Emit::Map(vec![
                (
                    "cmd".into(),
                    Emit::Seq(vec![
                        s("python train.py --input data/features.csv --output models/model.pkl --epochs 10 --lr 0.001"),
                        s("short"),
                    ]),
                ),
                ("c2".into(), s(&"x".repeat(100))),
                (
                    "c3".into(),
                    s(&format!("{}{} cc", "aaaa ".repeat(10), "b".repeat(90))),
                ),
                (
                    "c4".into(),
                    s(&"it's a long string with quote ' ".repeat(4)),
                ),
                (
                    "c5".into(),
                    s(&format!("line1\nline2 {}", "w ".repeat(50))),
                ),
                ("c6".into(), s(&"tab\there ".repeat(12))),
                ("c7".into(), s(&"a  b  ".repeat(20))),
                (
                    "deep".into(),
                    Emit::Map(vec![(
                        "x".into(),
                        Emit::Map(vec![(
                            "y".into(),
                            Emit::Seq(vec![
                                Emit::Seq(vec![Emit::Raw("1".into()), Emit::Raw("2".into())]),
                                Emit::Seq(vec![Emit::Map(vec![
                                    ("a".into(), Emit::Raw("1".into())),
                                    ("b".into(), Emit::Seq(vec![Emit::Raw("3".into())])),
                                ])]),
                            ]),
                        )]),
                    )]),
                ),
                ("n".into(), Emit::Null),
                ("nl".into(), Emit::Seq(vec![Emit::Null])),
                ("e".into(), Emit::Seq(vec![])),
                ("em".into(), Emit::Map(vec![])),
                ("yes".into(), s("yes")),
            ]),
        )];
        let want = "  s:
    cmd:
    - python train.py --input data/features.csv --output models/model.pkl 
      --epochs 10 --lr 0.001
    - short
    c2: 
      xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
    c3: aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa 
      bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
      cc
    c4: \"it's a long string with quote ' it's a long string with quote ' it's a long
      string with quote ' it's a long string with quote ' \"
    c5: \"line1\\nline2 w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w
      w w w w w w w w w w w w w w w w w w w w \"
    c6: \"tab\\there tab\\there tab\\there tab\\there tab\\there tab\\there tab\\there tab\\t
      here tab\\there tab\\there tab\\there tab\\there \"
    c7: 'a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  a  b  '
    deep:
      x:
        y:
        - - 1
          - 2
        - - a: 1
            b:
            - 3
    n:
    nl:
    - 
    e: []
    em: {}
    yes: yes
";
        assert_eq!(mapping(&entries, 2), want);
    }
}
