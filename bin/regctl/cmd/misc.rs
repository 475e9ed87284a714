//! `ref`, `digest`, `version`, `help` and `completion`.

use std::io::Read;
use std::sync::Arc;

use regclient::format::{self, Data};
use regclient::template::{Object, Value};
use regclient::{Algorithm, Digest, Error, ErrorKind, Platform, Reference, Result};

use super::{invalid, Ctx};
use crate::commands::{GLOBAL_FLAGS, ROOT};
use crate::flags::{self, Command};

pub fn reference(ctx: &Ctx) -> Result<()> {
    // Parsing only: nothing is opened, so nothing needs closing.
    let r = Reference::parse(ctx.m.arg(0))?;
    match ctx.m.value("format") {
        "{{.CommonName}}" => ctx.out(format!("{}\n", r.common_name()).as_bytes()),
        fmt => ctx.render(fmt, &format::reference(&r)),
    }
}

/// A digest as template data (Go's `digest.Digest` methods).
struct DigestData(Digest);

impl Object for DigestData {
    fn field(&self, name: &str) -> Option<Value> {
        Some(Value::String(match name {
            "String" => self.0.to_string(),
            "Algorithm" => self.0.algorithm().as_str().to_string(),
            "Encoded" | "Hex" => self.0.hex().to_string(),
            _ => return None,
        }))
    }
    fn to_json(&self) -> serde_json::Value {
        self.0.to_string().into()
    }
    fn display(&self) -> String {
        self.0.to_string()
    }
}

pub fn digest(ctx: &Ctx) -> Result<()> {
    let algo: Algorithm = ctx
        .m
        .value("algorithm")
        .parse()
        .map_err(|e: Error| invalid(e.message().to_string()))?;
    let mut d = algo.digester();
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(e, "reading stdin")),
        };
        d.update(&buf[..n]);
    }
    let d = d.finish();
    match ctx.m.value("format") {
        "{{.String}}" => ctx.out(format!("{d}\n").as_bytes()),
        fmt => ctx.render(fmt, &Data::new(Value::Object(Arc::new(DigestData(d))))),
    }
}

/// Build facts for `version`. Values come from the build environment when the release
/// process sets them, else from the crate.
struct VersionInfo {
    fields: Vec<(&'static str, String)>,
}

impl VersionInfo {
    fn new() -> VersionInfo {
        let v = env!("CARGO_PKG_VERSION");
        VersionInfo {
            fields: vec![
                (
                    "VCSTag",
                    option_env!("REGCTL_VCS_TAG").unwrap_or(v).to_string(),
                ),
                (
                    "VCSRef",
                    option_env!("REGCTL_VCS_REF").unwrap_or("").to_string(),
                ),
                (
                    "VCSCommit",
                    option_env!("REGCTL_VCS_COMMIT")
                        .unwrap_or("unknown")
                        .to_string(),
                ),
                (
                    "VCSState",
                    option_env!("REGCTL_VCS_STATE")
                        .unwrap_or("unknown")
                        .to_string(),
                ),
                (
                    "VCSDate",
                    option_env!("REGCTL_VCS_DATE").unwrap_or("").to_string(),
                ),
                ("Platform", Platform::host().to_string()),
                (
                    "GoVer",
                    option_env!("REGCTL_RUSTC_VERSION")
                        .or(option_env!("RUSTC_VERSION"))
                        .unwrap_or("unknown")
                        .to_string(),
                ),
                ("GoCompiler", "rustc".to_string()),
            ],
        }
    }
}

impl Object for VersionInfo {
    fn field(&self, name: &str) -> Option<Value> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| Value::String(v.clone()))
    }
    fn to_json(&self) -> serde_json::Value {
        // Go's json tags for these fields are lower camel case.
        let mut o = serde_json::Map::new();
        for (k, v) in &self.fields {
            let key = match *k {
                "GoVer" => "goVersion".to_string(),
                "GoCompiler" => "goCompiler".to_string(),
                k => {
                    let mut c = k.chars();
                    c.next()
                        .map(|f| f.to_ascii_lowercase().to_string() + &k[1..])
                        .unwrap_or_default()
                }
            };
            let key = match key.as_str() {
                "vCSTag" => "vcsTag".to_string(),
                "vCSRef" => "vcsRef".to_string(),
                "vCSCommit" => "vcsCommit".to_string(),
                "vCSState" => "vcsState".to_string(),
                "vCSDate" => "vcsDate".to_string(),
                _ => key,
            };
            o.insert(key, v.clone().into());
        }
        serde_json::Value::Object(o)
    }
    fn pretty(&self) -> Option<String> {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        Some(
            self.fields
                .iter()
                .map(|(k, v)| format!("{:width$} {v}\n", format!("{k}:")))
                .collect(),
        )
    }
}

pub fn version(ctx: &Ctx) -> Result<()> {
    let data = Data::new(Value::Object(Arc::new(VersionInfo::new())));
    ctx.render(ctx.m.value("format"), &data)
}

/// Finds the command at `words` under the root.
pub fn lookup(words: &[String]) -> Result<(Vec<&'static str>, &'static Command)> {
    let mut cmd: &'static Command = &ROOT;
    let mut path = vec![ROOT.name];
    for w in words {
        cmd = cmd.find_sub(w).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("unknown command {w:?} for {:?}", path.join(" ")),
            )
        })?;
        path.push(cmd.name);
    }
    Ok((path, cmd))
}

pub fn help(ctx: &Ctx) -> Result<()> {
    let (path, cmd) = lookup(&ctx.m.args)?;
    ctx.out(flags::help(&path, cmd, GLOBAL_FLAGS).as_bytes())
}

pub fn completion(ctx: &Ctx) -> Result<()> {
    let script = match ctx.m.arg(0) {
        "bash" => bash(),
        "zsh" => zsh(),
        "fish" => fish(),
        s => {
            return Err(invalid(format!(
                "unsupported shell {s:?}: use bash, zsh or fish"
            )))
        }
    };
    ctx.out(script.as_bytes())
}

/// Every visible command path with its subcommand words and flags.
fn walk(
    out: &mut Vec<(Vec<&'static str>, &'static Command)>,
    path: &mut Vec<&'static str>,
    c: &'static Command,
) {
    path.push(c.name);
    out.push((path.clone(), c));
    for s in c.subs.iter().filter(|s| !s.hidden) {
        walk(out, path, s);
    }
    path.pop();
}

fn all_commands() -> Vec<(Vec<&'static str>, &'static Command)> {
    let mut out = Vec::new();
    walk(&mut out, &mut Vec::new(), &ROOT);
    out
}

fn flag_words(c: &Command) -> Vec<String> {
    c.flags
        .iter()
        .chain(GLOBAL_FLAGS)
        .filter(|f| !f.hidden)
        .flat_map(|f| {
            let mut v = vec![format!("--{}", f.long)];
            if let Some(s) = f.short {
                v.push(format!("-{s}"));
            }
            v
        })
        .chain(["--help".to_string()])
        .collect()
}

fn bash() -> String {
    let mut cases = String::new();
    for (path, c) in all_commands() {
        let mut words: Vec<String> = c
            .subs
            .iter()
            .filter(|s| !s.hidden)
            .map(|s| s.name.to_string())
            .collect();
        words.extend(flag_words(c));
        cases.push_str(&format!(
            "        \"{}\") words=\"{}\" ;;\n",
            path[1..].join(" "),
            words.join(" ")
        ));
    }
    format!(
        "# bash completion for regctl\n\
         _regctl() {{\n\
         \x20   local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" path=\"\" w i words\n\
         \x20   for ((i = 1; i < COMP_CWORD; i++)); do\n\
         \x20       w=\"${{COMP_WORDS[i]}}\"\n\
         \x20       case \"$w\" in -*) continue ;; esac\n\
         \x20       if _regctl_known \"${{path:+$path }}$w\"; then path=\"${{path:+$path }}$w\"; fi\n\
         \x20   done\n\
         \x20   case \"$path\" in\n{cases}\
         \x20       *) words=\"\" ;;\n\
         \x20   esac\n\
         \x20   COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n\
         }}\n\
         _regctl_known() {{\n\
         \x20   case \"$1\" in\n{known}\
         \x20       *) return 1 ;;\n\
         \x20   esac\n\
         }}\n\
         complete -o default -F _regctl regctl\n",
        known = all_commands()
            .iter()
            .filter(|(p, _)| p.len() > 1)
            .map(|(p, _)| format!("        \"{}\") return 0 ;;\n", p[1..].join(" ")))
            .collect::<String>()
    )
}

fn zsh() -> String {
    // zsh runs bash completion functions through bashcompinit.
    format!(
        "#compdef regctl\nautoload -U +X bashcompinit && bashcompinit\n{}",
        bash()
    )
}

fn fish() -> String {
    let mut s = String::from("# fish completion for regctl\ncomplete -c regctl -f\n");
    for (path, c) in all_commands() {
        let subs: Vec<&Command> = c.subs.iter().filter(|s| !s.hidden).collect();
        let cond = if path.len() == 1 {
            "__fish_use_subcommand".to_string()
        } else {
            format!("__fish_seen_subcommand_from {}", path[path.len() - 1])
        };
        for sub in subs {
            s.push_str(&format!(
                "complete -c regctl -n '{cond}' -a {} -d '{}'\n",
                sub.name,
                sub.about.replace('\'', "")
            ));
        }
        if path.len() > 1 {
            for f in c.flags.iter().filter(|f| !f.hidden) {
                let short = f.short.map(|c| format!(" -s {c}")).unwrap_or_default();
                let value = if f.value.is_some() { " -r" } else { "" };
                s.push_str(&format!(
                    "complete -c regctl -n '{cond}' -l {}{short}{value} -d '{}'\n",
                    f.long,
                    f.help.replace('\'', "")
                ));
            }
        }
    }
    for f in GLOBAL_FLAGS.iter().filter(|f| !f.hidden) {
        let short = f.short.map(|c| format!(" -s {c}")).unwrap_or_default();
        s.push_str(&format!(
            "complete -c regctl -l {}{short} -r -d '{}'\n",
            f.long,
            f.help.replace('\'', "")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_cover_commands() {
        let b = bash();
        assert!(b.contains("\"tag ls\") words="), "{b}");
        assert!(b.contains("--include"));
        assert!(b.contains("complete -o default -F _regctl regctl"));
        assert!(zsh().starts_with("#compdef regctl"));
        let f = fish();
        assert!(f.contains("-a artifact"), "{f}");
        assert!(f.contains("-l format"));
    }

    #[test]
    fn lookup_paths() {
        let (p, c) = lookup(&["tag".into(), "list".into()]).unwrap();
        assert_eq!(p, ["regctl", "tag", "ls"]);
        assert_eq!(c.name, "ls");
        assert!(lookup(&["nope".into()]).is_err());
    }

    #[test]
    fn version_fields() {
        let v = VersionInfo::new();
        assert!(matches!(v.field("VCSTag"), Some(Value::String(s)) if !s.is_empty()));
        assert!(matches!(v.field("Platform"), Some(Value::String(s)) if s.contains('/')));
        let j = v.to_json();
        assert!(
            j.get("vcsTag").is_some() && j.get("goVersion").is_some(),
            "{j}"
        );
        assert!(v.pretty().unwrap().contains("GoCompiler: rustc"));
    }
}
