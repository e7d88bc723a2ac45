//! Every call engines made (tests/fixtures/engines/calls.txt) and every
//! runc spelling hull takes parse to what they mean.

use std::path::{Path, PathBuf};

use super::*;

const CALLS: &str = include_str!("../../../tests/fixtures/engines/calls.txt");
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn parsed(line: &str) -> Cli {
    match parse(&argv(line)) {
        Parsed::Run(cli) => *cli,
        Parsed::Usage(e) => panic!("{line}: {e:?}"),
        Parsed::Print(p) => panic!("{line}: printed {p}"),
    }
}

fn command(line: &str) -> Command {
    parsed(line)
        .command
        .unwrap_or_else(|| panic!("{line}: no command"))
}

fn usage(line: &str) -> UsageError {
    match parse(&argv(line)) {
        Parsed::Usage(e) => e,
        other => panic!("{line}: parsed: {other:?}"),
    }
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn path(s: Option<&str>) -> Option<PathBuf> {
    s.map(PathBuf::from)
}

#[test]
fn every_engine_call_parses() {
    let mut seen = std::collections::BTreeSet::new();
    for line in CALLS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let call = line.split(" | ").nth(1).expect("caller | argv | ...");
        let call = call
            .replace(
                "$U",
                "/var/lib/containers/storage/overlay-containers/x/userdata",
            )
            .replace("$S", "/run/containerd/io.containerd.runtime.v2.task")
            .replace("$T", "/tmp/engines.X")
            .replace("<ID>", ID);
        let args = argv(&call);
        let cli = parsed(&call);
        let g = &cli.global;
        assert_eq!(g.root, path(after(&args, "--root")), "{call}");
        assert_eq!(g.log, path(after(&args, "--log")), "{call}");
        assert_eq!(
            g.log_format.as_deref(),
            after(&args, "--log-format"),
            "{call}"
        );
        let id = args.last().map(String::as_str);
        match cli.command.expect("a command") {
            Command::Create(c) => {
                assert_eq!(Some(c.container_id.as_str()), id, "{call}");
                assert_eq!(Some(c.bundle), path(after(&args, "--bundle")), "{call}");
                assert_eq!(c.pid_file, path(after(&args, "--pid-file")), "{call}");
                assert_eq!(
                    c.console_socket,
                    path(after(&args, "--console-socket")),
                    "{call}"
                );
                seen.insert("create");
            }
            Command::Start(s) => {
                assert_eq!(Some(s.container_id.as_str()), id, "{call}");
                seen.insert("start");
            }
            Command::Delete(d) => {
                assert_eq!(Some(d.container_id.as_str()), id, "{call}");
                assert_eq!(d.force, args.contains(&"--force".into()), "{call}");
                seen.insert("delete");
            }
            Command::Kill(k) => {
                // kill ID SIGNAL
                let n = args.len();
                assert_eq!(k.container_id, args[n - 2], "{call}");
                assert_eq!(k.signal.as_deref(), Some(args[n - 1].as_str()), "{call}");
                assert!(!k.all);
                seen.insert("kill");
            }
            Command::Exec(e) => {
                assert_eq!(Some(e.container_id.as_str()), id, "{call}");
                assert_eq!(e.process, path(after(&args, "--process")), "{call}");
                assert_eq!(e.pid_file, path(after(&args, "--pid-file")), "{call}");
                assert_eq!(
                    e.console_socket,
                    path(after(&args, "--console-socket")),
                    "{call}"
                );
                assert!(e.detach, "{call}");
                assert_eq!(e.tty, args.contains(&"--tty".into()), "{call}");
                assert!(e.command.is_empty(), "{call}");
                seen.insert("exec");
            }
            Command::Ps(p) => {
                assert_eq!(Some(p.container_id.as_str()), id, "{call}");
                assert_eq!(p.format, "json", "{call}");
                assert!(p.ps_options.is_empty(), "{call}");
                seen.insert("ps");
            }
            other => panic!("{call}: unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["create", "delete", "exec", "kill", "ps", "start"]
    );
}

#[test]
fn global_spellings() {
    let cli = parsed("--root=/r --log /l --log-format=json --systemd-cgroup --debug state c");
    assert_eq!(cli.global.root.as_deref(), Some(Path::new("/r")));
    assert_eq!(cli.global.log.as_deref(), Some(Path::new("/l")));
    assert!(cli.global.systemd_cgroup && cli.global.debug);
    let cli = parsed("--config /etc/other.toml list");
    assert_eq!(cli.config.as_deref(), Some(Path::new("/etc/other.toml")));
    for line in ["--version", "-v"] {
        let cli = parsed(line);
        assert!(cli.version && cli.command.is_none(), "{line}");
    }
    assert!(matches!(command("version"), Command::Version));
    assert!(matches!(command("features"), Command::Features(_)));
    assert!(matches!(parse(&argv("--help")), Parsed::Print(t) if t.contains("Usage: hull")));
}

#[test]
fn create_and_run_spellings() {
    let Command::Create(c) = command(
        "create -b /b --pid-file=/p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 0 c1",
    ) else {
        panic!()
    };
    assert_eq!(
        (c.bundle, c.pid_file, c.console_socket, c.container_id),
        (
            "/b".into(),
            Some("/p".into()),
            Some("/s".into()),
            "c1".into()
        )
    );
    assert!(c.no_pivot && c.no_new_keyring);
    let Command::Create(c) = command("create c2") else {
        panic!()
    };
    assert_eq!(c.bundle, PathBuf::from("."));
    let Command::Run(r) = command("run -b /b -d --pid-file /p --timings --mem 512 --cpus 2 c3")
    else {
        panic!()
    };
    assert!(r.base.detach && r.timings);
    assert_eq!((r.mem, r.cpus), (Some(512), Some(2)));
    let Command::Run(r) = command("run --bundle=/b --detach --console-socket=/s c4") else {
        panic!()
    };
    assert_eq!(r.base.console_socket, Some("/s".into()));
}

#[test]
fn exec_spellings() {
    let Command::Exec(e) = command(
        "exec -p /proc.json -t -d -e A=1 --env=B=2 --cwd /w -u 1:2 -g 5 --additional-gids 6 \
         --cap CAP_A -c CAP_B --no-new-privs --preserve-fds 0 --pid-file /p --console-socket /s c1",
    ) else {
        panic!()
    };
    assert_eq!(e.process, Some("/proc.json".into()));
    assert!(e.tty && e.detach && e.no_new_privs);
    assert_eq!(e.env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    assert_eq!(e.cwd, Some("/w".into()));
    assert_eq!(e.user, Some((1, Some(2))));
    assert_eq!(e.additional_gids, [5, 6]);
    assert_eq!(e.cap, ["CAP_A", "CAP_B"]);
    // The command's own flags are the command's.
    let Command::Exec(e) = command("exec --tty c1 sh -c -e --tty") else {
        panic!()
    };
    assert_eq!(e.container_id, "c1");
    assert_eq!(e.command, ["sh", "-c", "-e", "--tty"]);
    let Command::Exec(e) = command("exec c1 -- ls -la") else {
        panic!()
    };
    assert_eq!(e.command, ["ls", "-la"]);
}

#[test]
fn the_other_commands_spellings() {
    let Command::Kill(k) = command("kill -a c1 KILL") else {
        panic!()
    };
    assert!(k.all && k.signal.as_deref() == Some("KILL"));
    let Command::Kill(k) = command("kill --all c1") else {
        panic!()
    };
    assert!(k.all && k.signal.is_none());
    let Command::Delete(d) = command("delete -f c1") else {
        panic!()
    };
    assert!(d.force);
    let Command::Ps(p) = command("ps -f table c1 -ef") else {
        panic!()
    };
    assert_eq!(
        (p.format.as_str(), p.ps_options),
        ("table", vec!["-ef".into()])
    );
    let Command::List(l) = command("list -f json -q") else {
        panic!()
    };
    assert_eq!((l.format, l.quiet), (list::Format::Json, true));
    let Command::List(l) = command("list --format=table --quiet") else {
        panic!()
    };
    assert_eq!((l.format, l.quiet), (list::Format::Table, true));
    let Command::Events(e) = command("events --stats --interval 250ms c1") else {
        panic!()
    };
    assert!(e.stats);
    assert_eq!(e.interval, std::time::Duration::from_millis(250));
    let Command::Events(e) = command("events c1") else {
        panic!()
    };
    assert_eq!(e.interval, std::time::Duration::from_secs(5));
    let Command::Update(u) = command(
        "update --resources - --memory 64m --cpu-quota 50000 --cpu-period 100000 --cpu-share 512 --pids-limit 10 c1",
    ) else {
        panic!()
    };
    assert_eq!(u.resources.as_deref(), Some("-"));
    assert_eq!(u.memory.as_deref(), Some("64m"));
    assert_eq!(
        (u.cpu_quota, u.cpu_period, u.cpu_share, u.pids_limit),
        (Some(50000), Some(100000), Some(512), Some(10))
    );
    let Command::Spec(s) = command("spec -b /b") else {
        panic!()
    };
    assert_eq!(s.bundle, Some("/b".into()));
    for (line, id) in [("pause c1", "c1"), ("resume c2", "c2"), ("state c3", "c3")] {
        let got = match command(line) {
            Command::Pause(p) => p.container_id,
            Command::Resume(r) => r.container_id,
            Command::State(s) => s.container_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, id);
    }
}

#[test]
fn usage_errors_are_one_line_with_the_usage() {
    for (line, message, want_usage, code) in [
        (
            "start",
            "the following required arguments were not provided: <CONTAINER_ID>",
            "usage: hull start <CONTAINER_ID>",
            1,
        ),
        (
            "create --frobnicate c1",
            "unexpected argument '--frobnicate' found",
            "usage: hull create [OPTIONS] <CONTAINER_ID>",
            1,
        ),
        (
            "state a b",
            "unexpected argument 'b' found",
            "usage: hull state <CONTAINER_ID>",
            1,
        ),
        (
            "create --bundle",
            "a value is required for '--bundle <BUNDLE>' but none was supplied",
            "usage: hull create [OPTIONS] <CONTAINER_ID>",
            1,
        ),
        (
            "events --interval 5y c1",
            "invalid value '5y' for '--interval <INTERVAL>': invalid duration \"5y\"",
            "usage: hull events [OPTIONS] <CONTAINER_ID>",
            1,
        ),
        (
            "frobnicate",
            "unrecognized subcommand 'frobnicate'",
            "usage: hull [OPTIONS] [COMMAND]",
            2,
        ),
    ] {
        let e = usage(line);
        assert_eq!(e.message, message, "{line}");
        assert_eq!(e.usage.as_deref(), Some(want_usage), "{line}");
        assert_eq!(e.code, code, "{line}");
    }
    let Parsed::Usage(e) = parse(&["start".into(), String::new()]) else {
        panic!("an empty id parsed")
    };
    assert_eq!(
        e.message,
        "a value is required for '<CONTAINER_ID>' but none was supplied"
    );
}
