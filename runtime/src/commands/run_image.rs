//! `hull run --image DIR[:TAG] [OPTIONS] [-- COMMAND ARG…]` and `hull run
//! --rootfs DIR …`: a container from an OCI image layout (what `skopeo copy
//! … oci:DIR:TAG` and `podman save --format oci-dir` write) or a plain
//! directory, with `podman run`'s options; no engine, no bundle. runc's
//! `run [--bundle DIR] ID` is [`super::run`], unchanged: `cli::parse`
//! sends a `run` naming `--image` or `--rootfs` here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::run::{self, Args};
use crate::Global;
use runtime::from_image::cleanup::Cleaner;
use runtime::from_image::network as net;
use runtime::from_image::options::{self, Network, Publish, RunOptions, Volume};
use runtime::from_image::{generate, rootfs};

/// Where unpacked layers and runs live (`HULL_IMAGE_STORE` overrides).
const DEFAULT_STORE: &str = "/var/lib/hull";

#[derive(clap::Args, Debug)]
#[command(name = "run")]
pub struct Cli {
    /// An OCI image layout, optionally with the tag to run (ref.name)
    #[arg(long, value_name = "DIR[:TAG]", required_unless_present = "rootfs")]
    pub image: Option<String>,
    /// A directory to run as the root (no image)
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub rootfs: Option<PathBuf>,
    /// The container's id (default: generated)
    #[arg(long)]
    pub name: Option<String>,
    /// KEY=VALUE, or KEY for this process's value
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// USER[:GROUP], names or numbers, looked up in the image
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// HOST:CONTAINER[:ro]
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// A terminal for the process
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep stdin open (else it is /dev/null)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Remove the container when it exits (always so in the foreground)
    #[arg(long)]
    pub rm: bool,
    /// Print the id and return; `hull delete ID` removes it later
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit: bytes or with k, m, g suffix (sizes the VM)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit, e.g. 1.5 (sizes the VM)
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// none (loopback only) or default (bridge with NAT)
    #[arg(long, default_value = "none")]
    pub network: String,
    /// [IP:]HOST:CONTAINER[/tcp|udp] (needs --network default)
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Print the run's phases as JSON on stderr
    #[arg(long)]
    pub timings: bool,
    /// The command, replacing the image's Cmd
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The options, checked.
fn run_options(cli: &Cli) -> anyhow::Result<RunOptions> {
    let env = cli
        .env
        .iter()
        .map(|e| options::env_entry(e, |k| std::env::var(k).ok()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunOptions {
        command: cli.command.clone(),
        env: env.into_iter().flatten().collect(),
        workdir: cli.workdir.clone(),
        user: cli.user.clone(),
        volumes: cli
            .volumes
            .iter()
            .map(|v| Volume::parse(v))
            .collect::<Result<_, _>>()?,
        tty: cli.tty,
        hostname: cli.hostname.clone(),
        memory: match &cli.memory {
            Some(m) => Some(runtime::host::resources::parse_memory_size(m)?).filter(|m| *m > 0),
            None => None,
        },
        cpu: cli.cpus.as_deref().map(options::cpu_quota).transpose()?,
    })
}

/// `DIR[:TAG]`: the whole text when it is a directory, else the shortest
/// prefix before a `:` that is one, and the rest as the tag (a tag may
/// hold `:` and `/`, as `docker.io/library/busybox:latest` does).
pub fn split_image(text: &str) -> (PathBuf, Option<String>) {
    if Path::new(text).is_dir() {
        return (text.into(), None);
    }
    for (i, _) in text.match_indices(':') {
        let (dir, tag) = (&text[..i], &text[i + 1..]);
        if !tag.is_empty() && Path::new(dir).is_dir() {
            return (dir.into(), Some(tag.into()));
        }
    }
    (text.into(), None)
}

/// A new id: 12 hex digits of a random UUID.
fn generated_id() -> anyhow::Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("cannot read a random id")?;
    Ok(uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect())
}

/// The image store: unpacked layers and runs.
pub fn store() -> PathBuf {
    std::env::var_os("HULL_IMAGE_STORE").map_or_else(|| PathBuf::from(DEFAULT_STORE), PathBuf::from)
}

pub fn main(global: &Global, cli: &Cli) -> anyhow::Result<i32> {
    let opts = run_options(cli)?;
    let network = Network::parse(&cli.network)?;
    let publish = cli
        .publish
        .iter()
        .map(|p| Publish::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    if network == Network::None && !publish.is_empty() {
        bail!("-p needs --network default: with none the container has loopback only");
    }
    if cli.detach && cli.tty {
        bail!("-t with -d: a detached run has no terminal to give");
    }
    let id = match &cli.name {
        Some(n) => n.clone(),
        None => generated_id()?,
    };
    if !agent_protocol::container::valid_id(&id) {
        bail!("invalid container name {id:?}");
    }
    let run_dir = runtime::from_image::run_dir(&store(), &id);
    if run_dir.exists() || global.root.join(&id).exists() {
        bail!("the name {id} is in use (hull delete {id} removes it)");
    }
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    // Forked now, in the runtime's namespaces (see cleanup.rs).
    let cleaner = Cleaner::start(&id, &run_dir).context("cannot start the run's cleaner")?;
    let prepared = prepare(cli, &id, &run_dir, &opts, network, &publish);
    let result = prepared.and_then(|()| launch(global, cli, &id, &run_dir));
    let keep = result.is_ok() && cli.detach;
    match cleaner {
        Some(c) => c.finish(keep),
        None if !keep => {
            if let Err(e) = runtime::from_image::remove_run(&id, &run_dir) {
                global.warn(&format!("cannot remove the run's directory: {e}"));
            }
        }
        None => {}
    }
    result
}

/// The root and `config.json` in `run_dir`.
fn prepare(
    cli: &Cli,
    id: &str,
    run_dir: &Path,
    opts: &RunOptions,
    network: Network,
    publish: &[Publish],
) -> anyhow::Result<()> {
    let (root, config) = match (&cli.image, &cli.rootfs) {
        (_, Some(dir)) => {
            let dir = std::fs::canonicalize(dir)
                .with_context(|| format!("--rootfs {}", dir.display()))?;
            if !dir.is_dir() {
                bail!("--rootfs {}: not a directory", dir.display());
            }
            (dir, None)
        }
        (Some(image), None) => {
            let (dir, tag) = split_image(image);
            let (layers, config) = runtime::from_image::unpack(&store(), &dir, tag.as_deref())?;
            (rootfs::mount(&layers, run_dir)?, config)
        }
        (None, None) => bail!("--image or --rootfs is needed"),
    };
    let mut spec = generate::generate(id, &root, config.as_ref(), opts)?;
    spec["annotations"][runtime::from_image::RUN_DIR_ANNOTATION] = serde_json::json!(run_dir);
    if network == Network::Default {
        let attached = net::attach(id, run_dir, publish)?;
        if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
            for ns in list.iter_mut().filter(|n| n["type"] == "network") {
                ns["path"] = serde_json::json!(attached.netns);
            }
        }
        let hostname = spec["hostname"].as_str().unwrap_or_default().to_string();
        let files = net::etc_files(run_dir, &hostname, attached.ipv4.as_deref())?;
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            for (source, destination) in files {
                mounts.push(serde_json::json!({
                    "destination": destination, "type": "bind", "source": source,
                    "options": ["rbind", "rprivate"],
                }));
            }
        }
    }
    let path = run_dir.join(runtime::bundle::CONFIG_FILE);
    std::fs::write(&path, spec.to_string())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the prepared bundle as `hull run` does; prints the id when detached.
fn launch(global: &Global, cli: &Cli, id: &str, run_dir: &Path) -> anyhow::Result<i32> {
    if !cli.interactive {
        runtime::from_image::stdin_from_dev_null()?;
    }
    let args = Args {
        id: id.to_string(),
        bundle: run_dir.to_path_buf(),
        timings: cli.timings,
        mem_mib: None,
        cpus: None,
        detach: cli.detach,
        pid_file: None,
        console_socket: None,
    };
    let code = run::run_args(global, &args)?;
    if cli.detach {
        println!("{id}");
    }
    Ok(code)
}
