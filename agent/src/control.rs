//! The control service: the agent's end of the vsock channels to the host
//! (see `agent_protocol::wire`). Each control connection and each stream
//! connection is served on its own thread, so a blocking `wait` does not
//! hold up other requests.

use std::fs::File;
use std::sync::mpsc;
use std::sync::Arc;

use agent_protocol::wire::{
    self, ErrorCode, Request, Response, StreamHello, AGENT_PORT, STREAM_PORT,
};
use agent_protocol::{Ready, PROTOCOL_VERSION};

use crate::container::Registry;
use crate::vsock::Listener;

/// The two listening sockets, bound before the agent announces it is ready.
pub struct Listeners {
    control: Listener,
    streams: Listener,
}

impl Listeners {
    pub fn bind() -> std::io::Result<Self> {
        Ok(Self {
            control: Listener::bind(AGENT_PORT)?,
            streams: Listener::bind(STREAM_PORT)?,
        })
    }

    /// Serves until a host asks for power-off (after destroying every
    /// container). Returns an error only if accepting fails for good.
    pub fn serve(self, ready: Ready, registry: Arc<Registry>) -> std::io::Result<()> {
        let (power_off, requested) = mpsc::channel::<()>();
        let streams = self.streams;
        let stream_registry = registry.clone();
        std::thread::Builder::new()
            .name("streams".into())
            .spawn(move || loop {
                match streams.accept() {
                    Ok(conn) => {
                        let registry = stream_registry.clone();
                        let _ = std::thread::Builder::new()
                            .name("stream".into())
                            .spawn(move || stream_session(conn, &registry));
                    }
                    Err(e) => {
                        crate::console::log(&format!("hull-agent: stream accept failed: {e}"));
                        return;
                    }
                }
            })?;
        let control = self.control;
        let ready = Arc::new(ready);
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || loop {
                match control.accept() {
                    Ok(conn) => {
                        let (registry, ready, power_off) =
                            (registry.clone(), ready.clone(), power_off.clone());
                        let _ = std::thread::Builder::new()
                            .name("session".into())
                            .spawn(move || session(conn, &ready, &registry, &power_off));
                    }
                    Err(e) => {
                        crate::console::log(&format!("hull-agent: control accept failed: {e}"));
                        return;
                    }
                }
            })?;
        // Returns once a session asked for power-off (or every sender is gone).
        let _ = requested.recv();
        Ok(())
    }
}

/// One stream connection: its hello, then the relay owns it.
fn stream_session(mut conn: File, registry: &Registry) {
    let reply = match wire::recv::<StreamHello>(&mut conn) {
        Ok(Some(h)) if h.version != PROTOCOL_VERSION => Response::error(
            ErrorCode::VersionMismatch,
            format!(
                "host speaks protocol {}, agent speaks {PROTOCOL_VERSION}",
                h.version
            ),
        ),
        Ok(Some(hello)) => match conn.try_clone() {
            Ok(relay) => {
                let reply = registry.attach(&hello, relay);
                let _ = wire::send(&mut conn, &reply);
                return;
            }
            Err(e) => Response::error(ErrorCode::Internal, e.to_string()),
        },
        Ok(None) => return,
        Err(e) => Response::error(ErrorCode::BadRequest, e.to_string()),
    };
    let _ = wire::send(&mut conn, &reply);
}

/// One host control connection: hello first, then requests. A broken or
/// malformed session just ends.
fn session(mut conn: File, ready: &Ready, registry: &Registry, power_off: &mpsc::Sender<()>) {
    let mut greeted = false;
    loop {
        let request = match wire::recv::<Request>(&mut conn) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = wire::send(
                    &mut conn,
                    &Response::error(ErrorCode::BadRequest, e.to_string()),
                );
                return;
            }
        };
        let mut powering_off = false;
        let reply = match request {
            Request::Hello { version } => {
                let reply = wire::answer_hello(version, ready);
                greeted = matches!(reply, Response::Hello { .. });
                reply
            }
            _ if !greeted => {
                Response::error(ErrorCode::HelloRequired, "the first request must be hello")
            }
            Request::PowerOff => {
                powering_off = true;
                Response::Ok
            }
            other => handle(registry, other),
        };
        if wire::send(&mut conn, &reply).is_err() && !powering_off {
            return;
        }
        if powering_off {
            let _ = power_off.send(());
            return;
        }
    }
}

fn handle(registry: &Registry, request: Request) -> Response {
    match request {
        Request::Create {
            container_id,
            config,
            stdin,
        } => registry.create(&container_id, *config, stdin),
        Request::Exec {
            container_id,
            exec_id,
            process,
            stdin,
        } => registry.exec(&container_id, &exec_id, *process, stdin),
        Request::Start {
            container_id,
            exec_id,
        } => registry.start(&container_id, exec_id.as_deref()),
        Request::Signal {
            container_id,
            exec_id,
            signal,
            all,
        } => registry.signal(&container_id, exec_id.as_deref(), signal, all),
        Request::Wait {
            container_id,
            exec_id,
        } => registry.wait(&container_id, exec_id.as_deref()),
        Request::ResizeTty {
            container_id,
            exec_id,
            size,
        } => registry.with_proc(&container_id, exec_id.as_deref(), |p| p.resize(size)),
        Request::CloseStdin {
            container_id,
            exec_id,
        } => registry.with_proc(&container_id, exec_id.as_deref(), |p| {
            p.close_stdin();
            Ok(())
        }),
        Request::Stats { container_id } => registry.stats(&container_id),
        Request::Update {
            container_id,
            resources,
        } => registry.update(&container_id, &resources),
        Request::Freeze {
            container_id,
            frozen,
        } => registry.freeze(&container_id, frozen),
        Request::Destroy { container_id } => registry.destroy(&container_id),
        Request::ConfigureNetwork { network } => crate::network::configure(&network),
        Request::Hello { .. } | Request::PowerOff => {
            Response::error(ErrorCode::BadRequest, "unexpected request")
        }
    }
}
