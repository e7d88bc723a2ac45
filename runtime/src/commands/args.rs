//! A small command-line parser for the runc-shaped subcommands: flags
//! (`-f`, `--flag`, `--flag=value`, `--flag value`), then positional
//! arguments. Like runc's (urfave/cli), flags come before the positional
//! ones; with `stop_at_positional` everything after the first positional
//! argument is positional too (`exec ID CMD -la`).

use std::collections::BTreeMap;

use anyhow::{bail, Context};

/// One flag: its names (the last is the key it is stored under) and
/// whether it takes a value.
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn flag(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        value: false,
    }
}

pub const fn opt(names: &'static [&'static str]) -> Flag {
    Flag { names, value: true }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: BTreeMap<&'static str, Vec<String>>,
    pub positional: Vec<String>,
}

impl Parsed {
    /// Whether the flag keyed `key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Its last value.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// All its values, in order.
    pub fn values(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    /// Its value parsed as a number.
    pub fn number<T: std::str::FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.value(key)
            .map(|v| v.parse::<T>().with_context(|| format!("{key} {v:?}")))
            .transpose()
    }

    /// The single id the command takes (and nothing else positional).
    pub fn id(&self, command: &str) -> anyhow::Result<&str> {
        match self.positional.as_slice() {
            [id] => Ok(id),
            _ => bail!("{command:?} requires exactly 1 argument(s)"),
        }
    }
}

pub fn parse(args: &[String], flags: &[Flag], stop_at_positional: bool) -> anyhow::Result<Parsed> {
    let mut parsed = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            parsed.positional.extend(it.by_ref().cloned());
            break;
        }
        let is_flag = arg.starts_with('-') && arg.len() > 1;
        if !is_flag || (stop_at_positional && !parsed.positional.is_empty()) {
            parsed.positional.push(arg.clone());
            if stop_at_positional {
                parsed.positional.extend(it.by_ref().cloned());
                break;
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let Some(spec) = flags.iter().find(|f| f.names.contains(&name)) else {
            bail!("unknown option {name}");
        };
        let key = spec.names[spec.names.len() - 1];
        let value = if spec.value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))?,
            }
        } else {
            match inline.as_deref() {
                None | Some("true") => "true".into(),
                Some("false") => continue,
                Some(v) => bail!("{name} takes no value (got {v:?})"),
            }
        };
        parsed.values.entry(key).or_default().push(value);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const FLAGS: &[Flag] = &[
        opt(&["-b", "--bundle"]),
        flag(&["-d", "--detach"]),
        opt(&["-e", "--env"]),
    ];

    #[test]
    fn flags_values_and_positionals() {
        let p = parse(
            &args("-b /b --detach=true -e A=1 --env=B=2 c1"),
            FLAGS,
            false,
        )
        .unwrap();
        assert_eq!(p.value("--bundle"), Some("/b"));
        assert!(p.has("--detach"));
        assert_eq!(p.values("--env"), ["A=1", "B=2"]);
        assert_eq!(p.id("x").unwrap(), "c1");
        let p = parse(&args("c1 sh -c -e"), FLAGS, true).unwrap();
        assert_eq!(p.positional, args("c1 sh -c -e"));
        assert!(!p.has("--env"));
        let p = parse(&args("-d c1 -- -x"), FLAGS, false).unwrap();
        assert_eq!(p.positional, args("c1 -x"));
        let p = parse(&args("--detach=false c1"), FLAGS, false).unwrap();
        assert!(!p.has("--detach"));
    }

    #[test]
    fn errors() {
        for (line, want) in [
            ("--nope c", "unknown option --nope"),
            ("c -b", "-b needs a value"),
            ("--detach=yes c", "--detach takes no value"),
        ] {
            let e = parse(&args(line), FLAGS, false).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        let p = parse(&args("a b"), FLAGS, false).unwrap();
        assert_eq!(
            p.id("kill").unwrap_err().to_string(),
            "\"kill\" requires exactly 1 argument(s)"
        );
    }
}
