//! Command-line parsing. Commands and flags are data ([`Command`], [`Flag`], defined in
//! `commands.rs`); the same definitions drive parsing, `--help`, and shell completions.
//!
//! Parsing is one pass with lexopt: words walk down the command tree while the current command
//! has subcommands, then become positional arguments; flags are looked up in the current
//! command and the global flags, so global flags may appear anywhere.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;

use regclient::{Error, ErrorKind, Result};

use crate::cmd::Ctx;

/// A command's entry point.
pub type RunFn = fn(&Ctx) -> Result<()>;

/// One flag.
#[derive(Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// Name of the value in help (`RE`, `N`); `None` for a switch.
    pub value: Option<&'static str>,
    /// Default shown in help and returned by [`Matches::value`].
    pub default: &'static str,
    pub help: &'static str,
    pub repeat: bool,
    pub hidden: bool,
}

impl Flag {
    /// A flag taking a value.
    pub const fn opt(
        long: &'static str,
        short: Option<char>,
        value: &'static str,
        help: &'static str,
    ) -> Flag {
        Flag {
            long,
            short,
            value: Some(value),
            default: "",
            help,
            repeat: false,
            hidden: false,
        }
    }

    /// A boolean switch (`--x`, `--x=false`).
    pub const fn switch(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
        Flag {
            long,
            short,
            value: None,
            default: "",
            help,
            repeat: false,
            hidden: false,
        }
    }

    pub const fn default(mut self, d: &'static str) -> Flag {
        self.default = d;
        self
    }

    pub const fn repeat(mut self) -> Flag {
        self.repeat = true;
        self
    }

    pub const fn hidden(mut self) -> Flag {
        self.hidden = true;
        self
    }
}

/// A command or a group of subcommands.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Positional arguments for usage, e.g. `<repository> <digest>`.
    pub args: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    pub about: &'static str,
    pub long: &'static str,
    pub flags: &'static [Flag],
    pub subs: &'static [Command],
    pub run: Option<RunFn>,
    pub hidden: bool,
}

impl Command {
    pub const fn group(
        name: &'static str,
        aliases: &'static [&'static str],
        about: &'static str,
        subs: &'static [Command],
    ) -> Command {
        Command {
            name,
            aliases,
            args: "",
            min_args: 0,
            max_args: 0,
            about,
            long: "",
            flags: &[],
            subs,
            run: None,
            hidden: false,
        }
    }

    pub fn find_sub(&self, word: &str) -> Option<&Command> {
        self.subs
            .iter()
            .find(|c| c.name == word || c.aliases.contains(&word))
    }

    fn find_flag_long<'a>(&'a self, global: &'a [Flag], name: &str) -> Option<&'a Flag> {
        self.flags.iter().chain(global).find(|f| f.long == name)
    }

    fn find_flag_short<'a>(&'a self, global: &'a [Flag], c: char) -> Option<&'a Flag> {
        self.flags.iter().chain(global).find(|f| f.short == Some(c))
    }
}

/// What the user asked for.
#[derive(Debug)]
pub struct Matches {
    /// Names from the root down to the selected command (`["regctl", "tag", "ls"]`).
    pub path: Vec<&'static str>,
    pub cmd: &'static Command,
    pub args: Vec<String>,
    values: BTreeMap<&'static str, Vec<String>>,
    /// `-h`/`--help` was given.
    pub help: bool,
}

impl Matches {
    /// The last value given for `long`, else its default (empty when none).
    pub fn value(&self, long: &str) -> &str {
        if let Some(v) = self.values.get(long).and_then(|v| v.last()) {
            return v;
        }
        self.cmd
            .flags
            .iter()
            .chain(crate::commands::GLOBAL_FLAGS)
            .find(|f| f.long == long)
            .map_or("", |f| f.default)
    }

    /// The value given for `long`, `None` when the flag was not on the command line.
    pub fn given(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a repeatable flag, in order.
    pub fn values(&self, long: &str) -> &[String] {
        self.values.get(long).map_or(&[], Vec::as_slice)
    }

    /// Is a switch on?
    pub fn on(&self, long: &str) -> bool {
        self.given(long) == Some("true")
    }

    /// The command line as typed after `regctl`, for messages.
    pub fn command_name(&self) -> String {
        self.path.join(" ")
    }

    /// Positional argument `i` (the parser checked the count).
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }
}

fn usage_err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// Parses `args` (without the program name) against the tree under `root`.
pub fn parse(
    root: &'static Command,
    global: &'static [Flag],
    args: impl IntoIterator<Item = OsString>,
) -> Result<Matches> {
    let mut p = lexopt::Parser::from_args(args);
    let mut m = Matches {
        path: vec![root.name],
        cmd: root,
        args: Vec::new(),
        values: BTreeMap::new(),
        help: false,
    };
    let lexerr = |e: lexopt::Error| usage_err(e.to_string());
    while let Some(arg) = p.next().map_err(lexerr)? {
        let (flag, shown) = match arg {
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => {
                m.help = true;
                continue;
            }
            lexopt::Arg::Short(c) => (m.cmd.find_flag_short(global, c), format!("-{c}")),
            lexopt::Arg::Long(name) => (m.cmd.find_flag_long(global, name), format!("--{name}")),
            lexopt::Arg::Value(v) => {
                let v = v
                    .into_string()
                    .map_err(|v| usage_err(format!("argument is not valid UTF-8: {v:?}")))?;
                if m.args.is_empty() && !m.cmd.subs.is_empty() {
                    match m.cmd.find_sub(&v) {
                        Some(sub) => {
                            m.cmd = sub;
                            m.path.push(sub.name);
                            continue;
                        }
                        None if m.cmd.run.is_none() => {
                            return Err(usage_err(format!(
                                "unknown command {v:?} for {:?}",
                                m.command_name()
                            )))
                        }
                        None => {}
                    }
                }
                m.args.push(v);
                continue;
            }
        };
        let Some(flag) = flag else {
            return Err(usage_err(format!(
                "unknown flag: {shown} (for {:?})",
                m.command_name()
            )));
        };
        let value = match flag.value {
            Some(_) => p
                .value()
                .map_err(|_| usage_err(format!("flag needs an argument: {shown}")))?
                .into_string()
                .map_err(|v| usage_err(format!("value of {shown} is not valid UTF-8: {v:?}")))?,
            None => match p.optional_value() {
                None => "true".to_string(),
                Some(v) => match v.to_str() {
                    Some("true" | "1") => "true".to_string(),
                    Some("false" | "0") => "false".to_string(),
                    _ => {
                        return Err(usage_err(format!(
                            "invalid boolean value {v:?} for {shown}"
                        )))
                    }
                },
            },
        };
        let slot = m.values.entry(flag.long).or_default();
        if !flag.repeat {
            slot.clear();
        }
        slot.push(value);
    }
    if m.help || m.cmd.run.is_none() {
        return Ok(m);
    }
    let cmd = m.cmd;
    if m.args.len() < cmd.min_args {
        let names: Vec<&str> = cmd.args.split_whitespace().collect();
        let missing = names.get(m.args.len()).copied().unwrap_or("argument");
        return Err(usage_err(format!(
            "missing argument {missing} for {:?} (usage: {})",
            m.command_name(),
            usage_line(&m.path, cmd)
        )));
    }
    if m.args.len() > cmd.max_args {
        return Err(usage_err(format!(
            "too many arguments for {:?}: unexpected {:?} (usage: {})",
            m.command_name(),
            m.args[cmd.max_args],
            usage_line(&m.path, cmd)
        )));
    }
    Ok(m)
}

fn usage_line(path: &[&str], cmd: &Command) -> String {
    let mut s = path.join(" ");
    if !cmd.subs.is_empty() && cmd.run.is_none() {
        s.push_str(" <command>");
    }
    if !cmd.args.is_empty() {
        s.push(' ');
        s.push_str(cmd.args);
    }
    s.push_str(" [flags]");
    s
}

/// Help text for the command at `path`.
pub fn help(path: &[&str], cmd: &Command, global: &[Flag]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", cmd.about);
    if !cmd.long.is_empty() {
        let _ = writeln!(s, "{}\n", cmd.long.trim_end());
    }
    let _ = writeln!(s, "Usage:\n  {}", usage_line(path, cmd));
    if !cmd.aliases.is_empty() {
        let mut names = vec![cmd.name];
        names.extend(cmd.aliases);
        let _ = writeln!(s, "\nAliases:\n  {}", names.join(", "));
    }
    let subs: Vec<&Command> = cmd.subs.iter().filter(|c| !c.hidden).collect();
    if !subs.is_empty() {
        let width = subs.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let _ = writeln!(s, "\nCommands:");
        for c in subs {
            let _ = writeln!(s, "  {:width$}  {}", c.name, c.about);
        }
    }
    let own: Vec<&Flag> = cmd.flags.iter().filter(|f| !f.hidden).collect();
    let help_flag = Flag::switch("help", Some('h'), "Show help for this command");
    let mut local = own;
    local.push(&help_flag);
    local.sort_by_key(|f| f.long);
    let _ = writeln!(s, "\nFlags:");
    flag_table(&mut s, &local);
    let globals: Vec<&Flag> = global.iter().filter(|f| !f.hidden).collect();
    let _ = writeln!(s, "\nGlobal flags:");
    flag_table(&mut s, &globals);
    if !cmd.subs.is_empty() {
        let _ = writeln!(
            s,
            "\nUse \"{} <command> --help\" for more about a command.",
            path.join(" ")
        );
    }
    s
}

fn flag_table(s: &mut String, flags: &[&Flag]) {
    let left: Vec<String> = flags
        .iter()
        .map(|f| {
            let short = f.short.map_or("    ".to_string(), |c| format!("-{c}, "));
            match f.value {
                Some(v) => format!("{short}--{} {v}", f.long),
                None => format!("{short}--{}", f.long),
            }
        })
        .collect();
    let width = left.iter().map(String::len).max().unwrap_or(0);
    for (f, l) in flags.iter().zip(&left) {
        let mut text = f.help.to_string();
        if !f.default.is_empty() {
            let _ = write!(text, " (default {:?})", f.default);
        }
        if f.repeat {
            text.push_str(" (repeatable)");
        }
        let _ = writeln!(s, "  {l:width$}  {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{GLOBAL_FLAGS, ROOT};

    fn p(args: &[&str]) -> Result<Matches> {
        parse(&ROOT, GLOBAL_FLAGS, args.iter().map(OsString::from))
    }

    #[test]
    fn walks_tree_and_aliases() {
        let m = p(&["tag", "ls", "ocidir://x"]).unwrap();
        assert_eq!(m.path, ["regctl", "tag", "ls"]);
        assert_eq!(m.args, ["ocidir://x"]);
        let m = p(&["tag", "list", "ocidir://x"]).unwrap();
        assert_eq!(m.cmd.name, "ls");
        let m = p(&["layer", "digest", "r", "sha256:x"]).unwrap();
        assert_eq!(m.path, ["regctl", "blob", "head"]);
    }

    #[test]
    fn global_flags_anywhere() {
        let m = p(&["-v", "debug", "tag", "ls", "r", "--logopt", "json"]).unwrap();
        assert_eq!(m.value("verbosity"), "debug");
        assert_eq!(m.values("logopt"), ["json"]);
        let m = p(&["tag", "--verbosity=info", "ls", "r"]).unwrap();
        assert_eq!(m.value("verbosity"), "info");
        let m = p(&["tag", "ls", "r"]).unwrap();
        assert_eq!(m.value("verbosity"), "warn");
    }

    #[test]
    fn values_and_repeats() {
        let m = p(&[
            "tag",
            "ls",
            "--include",
            "v.*",
            "--include=a.*",
            "--limit=5",
            "--limit",
            "7",
            "r",
        ])
        .unwrap();
        assert_eq!(m.values("include"), ["v.*", "a.*"]);
        assert_eq!(m.value("limit"), "7");
        assert_eq!(m.value("format"), "{{printPretty .}}");
        assert_eq!(m.given("format"), None);
    }

    #[test]
    fn switches() {
        let m = p(&["tag", "rm", "--ignore-missing", "r:t"]).unwrap();
        assert!(m.on("ignore-missing"));
        let m = p(&["tag", "rm", "--ignore-missing=false", "r:t"]).unwrap();
        assert!(!m.on("ignore-missing"));
        assert!(p(&["tag", "rm", "--ignore-missing=maybe", "r:t"]).is_err());
    }

    #[test]
    fn short_flags_with_values() {
        let m = p(&["manifest", "get", "-p", "linux/amd64", "r"]).unwrap();
        assert_eq!(m.value("platform"), "linux/amd64");
        let m = p(&["manifest", "get", "-plinux/arm64", "r"]).unwrap();
        assert_eq!(m.value("platform"), "linux/arm64");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = p(&["tag", "ls", "--bogus", "r"]).unwrap_err().to_string();
        assert!(e.contains("--bogus"), "{e}");
        let e = p(&["tag", "ls"]).unwrap_err().to_string();
        assert!(e.contains("missing argument <repository>"), "{e}");
        let e = p(&["tag", "ls", "a", "b"]).unwrap_err().to_string();
        assert!(
            e.contains("too many arguments") && e.contains("\"b\""),
            "{e}"
        );
        let e = p(&["tag", "ls", "--limit"]).unwrap_err().to_string();
        assert!(e.contains("--limit"), "{e}");
        let e = p(&["nope"]).unwrap_err().to_string();
        assert!(e.contains("unknown command \"nope\""), "{e}");
        let e = p(&["tag", "ls", "-z", "r"]).unwrap_err().to_string();
        assert!(e.contains("-z"), "{e}");
    }

    #[test]
    fn help_requested() {
        let m = p(&["tag", "ls", "--help"]).unwrap();
        assert!(m.help);
        assert_eq!(m.cmd.name, "ls");
        let m = p(&["-h"]).unwrap();
        assert!(m.help);
        // Missing arguments do not matter when asking for help.
        let m = p(&["blob", "get", "-h"]).unwrap();
        assert!(m.help);
    }

    #[test]
    fn help_text_lists_flags_defaults_aliases() {
        let m = p(&["tag", "ls", "-h"]).unwrap();
        let h = help(&m.path, m.cmd, GLOBAL_FLAGS);
        assert!(
            h.contains("Usage:\n  regctl tag ls <repository> [flags]"),
            "{h}"
        );
        assert!(h.contains("Aliases:\n  ls, list"), "{h}");
        assert!(h.contains("--exclude RE"), "{h}");
        assert!(h.contains("(default \"{{printPretty .}}\")"), "{h}");
        assert!(h.contains("-v, --verbosity LEVEL"), "{h}");
        assert!(h.contains("(repeatable)"), "{h}");
        let m = p(&["manifest", "get", "-h"]).unwrap();
        let h = help(&m.path, m.cmd, GLOBAL_FLAGS);
        assert!(!h.contains("--list"), "hidden flags stay hidden: {h}");
        let h = help(&["regctl"], &ROOT, GLOBAL_FLAGS);
        assert!(h.contains("Commands:") && h.contains("artifact"), "{h}");
    }

    #[test]
    fn every_command_has_help_and_a_runner() {
        fn walk(path: &mut Vec<&'static str>, c: &'static Command) {
            path.push(c.name);
            let h = help(path, c, GLOBAL_FLAGS);
            assert!(h.contains("Usage:"), "{path:?}");
            assert!(!c.about.is_empty(), "{path:?}");
            assert!(c.run.is_some() || !c.subs.is_empty(), "{path:?}");
            assert!(c.min_args <= c.max_args, "{path:?}");
            let mut seen = std::collections::HashSet::new();
            for f in c.flags.iter().chain(GLOBAL_FLAGS) {
                assert!(seen.insert(f.long), "duplicate --{} in {path:?}", f.long);
            }
            for s in c.subs {
                walk(path, s);
            }
            path.pop();
        }
        walk(&mut Vec::new(), &ROOT);
    }
}
