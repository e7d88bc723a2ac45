//! The sandbox's pod socket: how a later `hull create` of the same pod puts
//! its container on the VM.
//!
//! The share's binds live in the sandbox process's private mount namespace,
//! so only that process can add to them. It listens on a `SOCK_SEQPACKET`
//! socket (`pod.sock` beside the VM's vsock socket, see
//! [`super::socket_path`]); each packet is one JSON message, encoded and
//! bounded by the control channel's codec (`vmm-control`), as on hull-vmm's
//! channel. A member asks [`PodRequest::Join`] with its id and bundle, and
//! passes its rootfs and mount sources as detached mount trees with the
//! packet (`SCM_RIGHTS`, see [`super::share::tree`]); the sandbox process
//! loads the bundle itself and attaches the trees under `<share>/<id>/`,
//! where the guest finds them. `Leave` takes them off again. Each request
//! gets one [`PodReply`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use serde::{Deserialize, Serialize};
use vmm_control::{decode, encode, SeqPacket};

mod fds;

use super::pump::{self, Canceller};
use super::share::{Share, Trees};
use crate::bundle::Bundle;
use crate::state::StateStore;

/// How long a request may take (binding a rootfs is quick).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server waits for the one request of a connection.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PodRequest {
    /// Put container `id` of `bundle` on the share, from the mount trees
    /// the packet carries (its rootfs, then each host bind's source).
    Join { id: String, bundle: PathBuf },
    /// Take container `id` off the share.
    Leave { id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PodReply {
    Done,
    Refused { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PodSocketError {
    #[error("cannot listen on {path}: {source}")]
    Listen { path: PathBuf, source: io::Error },
    #[error("cannot reach the pod's sandbox at {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("the pod's sandbox did not answer: {0}")]
    NoAnswer(io::Error),
    #[error("the pod's sandbox sent an unreadable answer: {0}")]
    BadAnswer(String),
    #[error("the pod's sandbox refused: {0}")]
    Refused(String),
}

/// The listening side, in the sandbox process; dropping it stops the
/// thread and removes the socket file.
#[derive(Debug)]
pub struct PodServer {
    path: PathBuf,
    canceller: Canceller,
    thread: Option<JoinHandle<()>>,
}

fn listen(path: &Path) -> io::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let _ = std::fs::remove_file(path);
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    socket::listen(&fd, Backlog::new(16)?)?;
    Ok(fd)
}

impl PodServer {
    /// Serves the share's pod requests for sandbox `own` on `path`; a
    /// request names a container that `store` records as a member of `own`.
    pub fn start(
        path: PathBuf,
        own: String,
        store: StateStore,
        share: Arc<Mutex<Share>>,
    ) -> Result<Self, PodSocketError> {
        let fail = |source| PodSocketError::Listen {
            path: path.clone(),
            source,
        };
        let listener = listen(&path).map_err(fail)?;
        let (canceller, token) = pump::cancel_pair().map_err(fail)?;
        let thread = std::thread::Builder::new()
            .name("hull-pod".into())
            .spawn(move || {
                while let Ok(true) = pump::wait_readable(&listener, &token) {
                    let Ok(fd) = socket::accept(&listener) else {
                        continue;
                    };
                    if let Ok(conn) = SeqPacket::from_fd(fd) {
                        serve(&conn, &own, &store, &share);
                    }
                }
            })
            .map_err(fail)?;
        Ok(Self {
            path,
            canceller,
            thread: Some(thread),
        })
    }
}

impl Drop for PodServer {
    fn drop(&mut self) {
        self.canceller.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers the one request of a connection from root (or this process's
/// user), which has [`RECV_TIMEOUT`] to send it.
fn serve(conn: &SeqPacket, own: &str, store: &StateStore, share: &Mutex<Share>) {
    let me = nix::unistd::geteuid().as_raw();
    match socket::getsockopt(conn, socket::sockopt::PeerCredentials) {
        Ok(peer) if peer.uid() == 0 || peer.uid() == me => {}
        _ => return,
    }
    let Ok(Some((bytes, fds))) = fds::recv(conn, Instant::now() + RECV_TIMEOUT) else {
        return;
    };
    let reply = match decode::<PodRequest>(&bytes) {
        Ok(request) => handle(request, fds, own, store, share),
        Err(e) => PodReply::Refused {
            error: format!("malformed request: {e}"),
        },
    };
    let reply = match reply {
        PodReply::Refused { error } => PodReply::Refused {
            error: vmm_control::truncate_text(error),
        },
        done => done,
    };
    if let Ok(bytes) = encode(&reply) {
        let _ = conn.send(&bytes);
    }
}

fn handle(
    request: PodRequest,
    fds: Vec<OwnedFd>,
    own: &str,
    store: &StateStore,
    share: &Mutex<Share>,
) -> PodReply {
    let refused = |error: String| PodReply::Refused { error };
    let id = match &request {
        PodRequest::Join { id, .. } | PodRequest::Leave { id } => id.clone(),
    };
    if !agent_protocol::container::valid_id(&id) || id == own {
        return refused(format!("invalid container id {id:?}"));
    }
    // Only a container that records itself as this pod's member.
    let member = match store.load(&id) {
        Ok(s) if s.hull.pod_sandbox.as_deref() == Some(own) => s,
        _ => return refused(format!("container {id} is no member of pod {own}")),
    };
    if matches!(&request, PodRequest::Join { bundle, .. } if *bundle != member.bundle) {
        return refused(format!("container {id} has another bundle"));
    }
    let mut share = share.lock().unwrap_or_else(|p| p.into_inner());
    match request {
        PodRequest::Join { id, .. } if share.contains(&id) => {
            refused(format!("container {id} is on the share already"))
        }
        PodRequest::Join { id, bundle } => {
            let bundle = match Bundle::load(&bundle) {
                Ok(b) => b,
                Err(e) => return refused(e.to_string()),
            };
            let (got, binds) = (fds.len(), bundle.host_binds.len());
            let Some(trees) = Trees::received(fds, binds) else {
                return refused(format!(
                    "container {id} sent {got} mount trees, expected {} (its rootfs and {binds} binds)",
                    binds + 1
                ));
            };
            match share.add_container(&id, &bundle, Some(trees)) {
                Ok(()) => PodReply::Done,
                Err(e) => {
                    let _ = share.remove_container(&id);
                    refused(e.to_string())
                }
            }
        }
        PodRequest::Leave { id } => match share.remove_container(&id) {
            Ok(()) => PodReply::Done,
            Err(e) => refused(e.to_string()),
        },
    }
}

/// Sends `request` (with the mount trees of a `Join`) to the pod socket at
/// `path` and waits for the answer.
pub fn request(
    path: &Path,
    request: &PodRequest,
    trees: Option<&Trees>,
) -> Result<(), PodSocketError> {
    let connect = |source| PodSocketError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| connect(e.into()))?;
    let addr = UnixAddr::new(path).map_err(|e| connect(e.into()))?;
    socket::connect(fd.as_raw_fd(), &addr).map_err(|e| connect(e.into()))?;
    let conn = SeqPacket::from_fd(fd).map_err(connect)?;
    let bytes = encode(request).map_err(|e| PodSocketError::BadAnswer(e.to_string()))?;
    let fds = trees.map(Trees::fds).unwrap_or_default();
    fds::send(&conn, &bytes, fds).map_err(PodSocketError::NoAnswer)?;
    let answer = conn
        .recv(Some(Instant::now() + REQUEST_TIMEOUT))
        .map_err(PodSocketError::NoAnswer)?
        .ok_or_else(|| PodSocketError::NoAnswer(io::ErrorKind::UnexpectedEof.into()))?;
    match decode::<PodReply>(&answer) {
        Ok(PodReply::Done) => Ok(()),
        Ok(PodReply::Refused { error }) => Err(PodSocketError::Refused(error)),
        Err(e) => Err(PodSocketError::BadAnswer(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn bad_requests_are_refused_and_the_server_stops() {
        let dir = TempDir::new("pod-socket");
        let share = Share::create(dir.path().join("share")).unwrap();
        let path = dir.path().join("pod.sock");
        let store = StateStore::new(dir.path().join("state"));
        let server = PodServer::start(
            path.clone(),
            "pod".into(),
            store,
            Arc::new(Mutex::new(share)),
        )
        .unwrap();
        let join = |id: &str, bundle: &str| PodRequest::Join {
            id: id.into(),
            bundle: dir.path().join(bundle),
        };
        let e = request(&path, &join("../x", "b"), None).unwrap_err();
        assert!(e.to_string().contains("invalid container id"), "{e}");
        let e = request(&path, &join("pod", "b"), None).unwrap_err();
        assert!(e.to_string().contains("invalid container id"), "{e}");
        // Not recorded as a member of this pod.
        let e = request(&path, &join("app", "missing"), None).unwrap_err();
        assert!(e.to_string().contains("no member of pod pod"), "{e}");
        assert!(!dir.path().join("share/app").exists());
        drop(server);
        assert!(!path.exists());
        assert!(matches!(
            request(&path, &join("app", "b"), None),
            Err(PodSocketError::Connect { .. })
        ));
    }
}
