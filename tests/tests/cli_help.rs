//! The help of both binaries: every subcommand, flag and positional argument has a description,
//! and the commands people run most show examples.

use std::path::Path;
use std::process::Command;

use lode_e2e::bins;

/// One entry of a help section: what it names and whether it says anything about it.
struct Entry {
    name: String,
    described: bool,
}

/// The parts of one `help` page the checks need.
#[derive(Default)]
struct Page {
    commands: Vec<Entry>,
    arguments: Vec<Entry>,
    options: Vec<Entry>,
    examples: Vec<String>,
}

/// The stdout of a successful `bin args...`.
fn stdout(bin: &Path, args: &[String]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{} {}: exit {:?}\n{}",
        bin.display(),
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The help page of `bin path...`, through clap's `help` subcommand, which prints what `--help`
/// does and also reaches the commands lode hands to DVC (their `--help` goes to DVC).
fn help(bin: &Path, path: &[String]) -> String {
    let args: Vec<String> = std::iter::once("help".to_string())
        .chain(path.iter().cloned())
        .collect();
    stdout(bin, &args)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A description without the notes clap adds by itself (`[default: ..]`, `[env: ..]`, ...).
fn says_something(text: &str) -> bool {
    let mut rest = text.trim().to_string();
    for note in [
        "[default:",
        "[env:",
        "[possible values:",
        "[aliases:",
        "[alias:",
    ] {
        while let Some(start) = rest.find(note) {
            let end = rest[start..]
                .find(']')
                .map_or(rest.len(), |i| start + i + 1);
            rest.replace_range(start..end, "");
        }
    }
    !rest.trim().is_empty()
}

/// The entry's name: a subcommand, `<ARG>`, or the long (else short) form of a flag.
fn entry_name(spec: &str) -> String {
    let words: Vec<&str> = spec.split([',', ' ']).filter(|w| !w.is_empty()).collect();
    words
        .iter()
        .find(|w| w.starts_with("--"))
        .or_else(|| words.first())
        .map(|w| w.trim_end_matches("...").to_string())
        .unwrap_or_default()
}

/// Reads clap's sections. An entry starts a line indented at most six spaces (`  -q, --quiet`,
/// `      --long`, `  <NAME>`, `  add`); its description follows two spaces on the same line,
/// or sits on the more indented lines below it when clap puts help on the next line.
fn parse(text: &str) -> Page {
    let mut page = Page::default();
    let mut section = "";
    for line in text.lines() {
        if !line.is_empty() && indent(line) == 0 {
            section = line.strip_suffix(':').unwrap_or("");
            continue;
        }
        let list = match section {
            "Commands" => &mut page.commands,
            "Arguments" => &mut page.arguments,
            "Options" => &mut page.options,
            "Examples" => {
                if !line.trim().is_empty() {
                    page.examples.push(line.trim().to_string());
                }
                continue;
            }
            _ => continue,
        };
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= 6 {
            let body = line.trim();
            let (spec, inline) = body.split_once("  ").unwrap_or((body, ""));
            list.push(Entry {
                name: entry_name(spec),
                described: says_something(inline),
            });
        } else if let Some(last) = list.last_mut() {
            last.described |= says_something(line);
        }
    }
    page
}

/// Walks every subcommand of `bin` and returns each undescribed entry as `bin path: name`.
fn undescribed(bin: &Path, name: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = queue.pop() {
        let page = parse(&help(bin, &path));
        let at = std::iter::once(name.to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        for entry in page.commands.iter().filter(|e| e.name != "help") {
            let mut sub = path.clone();
            sub.push(entry.name.clone());
            queue.push(sub);
        }
        for entry in page
            .commands
            .iter()
            .chain(&page.arguments)
            .chain(&page.options)
        {
            if !entry.described {
                missing.push(format!("{at}: {}", entry.name));
            }
        }
    }
    missing
}

#[test]
fn every_subcommand_flag_and_argument_is_described() {
    let mut missing = undescribed(&bins::lode(), "lode");
    missing.extend(undescribed(&bins::lode_server(), "lode-server"));
    assert!(
        missing.is_empty(),
        "{} entries have no description:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn walk_reaches_nested_subcommands_and_both_layouts() {
    // Guards the walk itself: a parser that saw nothing would pass the test above.
    let page = parse(&help(&bins::lode(), &["remote".into(), "add".into()]));
    let names: Vec<&str> = page.options.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"--default"), "{names:?}");
    assert!(page.arguments.iter().any(|e| e.name == "<URL>"));
    let page = parse(&help(
        &bins::lode_server(),
        &["admin".into(), "token".into(), "create".into()],
    ));
    let described: Vec<&str> = page
        .options
        .iter()
        .filter(|e| e.described)
        .map(|e| e.name.as_str())
        .collect();
    assert!(described.contains(&"--expires-in"), "{described:?}");
}

#[test]
fn most_used_commands_show_examples() {
    let cases: [(&Path, &str, &[&str]); 6] = [
        (&bins::lode(), "lode", &["add"]),
        (&bins::lode(), "lode", &["push"]),
        (&bins::lode(), "lode", &["pull"]),
        (&bins::lode(), "lode", &["remote", "add"]),
        (
            &bins::lode_server(),
            "lode-server",
            &["admin", "token", "create"],
        ),
        (
            &bins::lode_server(),
            "lode-server",
            &["admin", "grant", "set"],
        ),
    ];
    for (bin, name, path) in cases {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let mut args = path.clone();
        args.push("--help".into());
        let page = parse(&stdout(bin, &args));
        let command = format!("{name} {}", path.join(" "));
        assert!(
            page.examples.iter().any(|l| l.starts_with(&command)),
            "`{command} --help` has no Examples section running `{command}`: {:?}",
            page.examples
        );
    }
}
