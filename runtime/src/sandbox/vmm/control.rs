//! The runtime's end of hull-vmm's control channel (crate `vmm-control`).
//!
//! A reader thread decodes every packet with [`Inbound`] (size-bounded,
//! strict JSON, growing sequence, nothing after the end): hull-vmm is a
//! separate process fed by a guest, so what it sends is untrusted. Events
//! go to the [`Vmm`](super::Vmm)'s event channel; a reply is taken only
//! for the request outstanding (a late reply to one that timed out is
//! dropped). Anything else breaks the channel: the reader kills hull-vmm,
//! reports [`VmEvent::ControlBroken`] and stops reading.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vmm_control::{
    encode, Body, Event, Inbound, Reply, Request, RequestMessage, SeqPacket, VmState,
    PROTOCOL_VERSION,
};

use super::{VmEvent, VmmKiller};

/// Most events one run sends (hello, first run, ready, end); more is a
/// misbehaving VMM, not something to buffer.
const MAX_EVENTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("hull-vmm did not answer {request:?} within {after:?}")]
    Timeout { request: Request, after: Duration },
    #[error("hull-vmm refused {request:?}: {error}")]
    Refused { request: Request, error: String },
    #[error("hull-vmm answered {request:?} with state {state:?}")]
    UnexpectedState { request: Request, state: VmState },
    #[error("the control channel to hull-vmm is closed")]
    Closed,
    #[error("cannot send {request:?} to hull-vmm: {source}")]
    Send { request: Request, source: io::Error },
}

#[derive(Debug, Default)]
struct Slot {
    /// The id of the request waiting for its reply.
    pending: Option<u64>,
    reply: Option<Reply>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    socket: SeqPacket,
    next_id: AtomicU64,
    /// One request at a time.
    turn: Mutex<()>,
    slot: Mutex<Slot>,
    answered: Condvar,
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Requests to a running hull-vmm, each with a deadline. Cloneable; usable
/// from any thread (requests are sent one at a time).
#[derive(Debug, Clone)]
pub struct VmmControl(Arc<Shared>);

impl VmmControl {
    /// Parks every vCPU (the guest stops; its devices do not).
    pub fn pause(&self, deadline: Duration) -> Result<(), ControlError> {
        self.expect(Request::Pause, VmState::Paused, deadline)
    }

    /// Lets paused vCPUs run again.
    pub fn resume(&self, deadline: Duration) -> Result<(), ControlError> {
        self.expect(Request::Resume, VmState::Running, deadline)
    }

    /// Stops the VM now; hull-vmm then sends [`Event::Stopped`] and exits 0.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), ControlError> {
        self.expect(Request::Shutdown, VmState::Stopping, deadline)
    }

    fn expect(
        &self,
        request: Request,
        want: VmState,
        deadline: Duration,
    ) -> Result<(), ControlError> {
        match self.request(request, deadline)? {
            Reply::Done { state } if state == want => Ok(()),
            Reply::Done { state } => Err(ControlError::UnexpectedState { request, state }),
            Reply::Refused { error } => Err(ControlError::Refused { request, error }),
        }
    }

    /// Sends one request and waits up to `deadline` for its reply.
    pub fn request(&self, request: Request, deadline: Duration) -> Result<Reply, ControlError> {
        let shared = &self.0;
        let _turn = shared.turn.lock().unwrap_or_else(|p| p.into_inner());
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut slot = shared.slot();
            if slot.closed {
                return Err(ControlError::Closed);
            }
            slot.pending = Some(id);
            slot.reply = None;
        }
        let send = encode(&RequestMessage { id, request })
            .map_err(io::Error::other)
            .and_then(|bytes| shared.socket.send(&bytes));
        if let Err(source) = send {
            shared.slot().pending = None;
            return Err(ControlError::Send { request, source });
        }
        let until = Instant::now() + deadline;
        let mut slot = shared.slot();
        loop {
            if let Some(reply) = slot.reply.take() {
                return Ok(reply);
            }
            if slot.closed {
                slot.pending = None;
                return Err(ControlError::Closed);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                slot.pending = None;
                return Err(ControlError::Timeout {
                    request,
                    after: deadline,
                });
            }
            slot = shared
                .answered
                .wait_timeout(slot, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Starts reading `socket` on a thread: events to `events`, replies to the
/// returned client; a breach of the protocol kills the VMM through `killer`.
pub(super) fn start(
    socket: SeqPacket,
    events: Sender<VmEvent>,
    killer: Option<VmmKiller>,
) -> io::Result<(VmmControl, std::thread::JoinHandle<()>)> {
    let shared = Arc::new(Shared {
        socket: socket.try_clone()?,
        next_id: AtomicU64::new(1),
        turn: Mutex::new(()),
        slot: Mutex::new(Slot::default()),
        answered: Condvar::new(),
    });
    let reader = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("hull-vmm-control".into())
        .spawn(move || {
            if let Err(reason) = read(&socket, &reader, &events) {
                if let Some(killer) = &killer {
                    killer.kill();
                }
                let _ = events.send(VmEvent::ControlBroken(reason));
            }
            let mut slot = reader.slot();
            slot.closed = true;
            reader.answered.notify_all();
        })?;
    Ok((VmmControl(shared), thread))
}

/// Reads until the channel closes (`Ok`) or breaks the protocol (`Err`).
fn read(socket: &SeqPacket, shared: &Shared, events: &Sender<VmEvent>) -> Result<(), String> {
    let mut inbound = Inbound::new();
    let mut count = 0;
    loop {
        let bytes = match socket.recv(None) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(e.to_string()),
            Err(_) => return Ok(()),
        };
        let message = inbound.accept(&bytes).map_err(|e| e.to_string())?;
        match message.body {
            Body::Event(event) => {
                count += 1;
                if count > MAX_EVENTS {
                    return Err(format!("more than {MAX_EVENTS} events"));
                }
                match (&event, count) {
                    (Event::Hello { version }, 1) if *version == PROTOCOL_VERSION => {}
                    (Event::Hello { version }, 1) => {
                        return Err(format!(
                            "hull-vmm speaks control protocol {version}, hull {PROTOCOL_VERSION}"
                        ))
                    }
                    (_, 1) => return Err("the first message is not a hello".into()),
                    (Event::Hello { .. }, _) => return Err("a second hello".into()),
                    _ => {}
                }
                let _ = events.send(VmEvent::Vm {
                    ns: message.ns,
                    event,
                });
            }
            Body::Reply { id, reply } => {
                let mut slot = shared.slot();
                if id >= shared.next_id.load(Ordering::Relaxed) {
                    return Err(format!("a reply to request {id}, which was never sent"));
                }
                if slot.pending != Some(id) {
                    // Late: its request already timed out.
                    continue;
                }
                slot.pending = None;
                slot.reply = Some(reply);
                shared.answered.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use vmm_control::{decode, VmmMessage};

    use super::*;

    /// A stand-in hull-vmm end that numbers what it sends.
    struct FakeVmm {
        socket: SeqPacket,
        seq: u64,
    }

    impl FakeVmm {
        fn send(&mut self, body: Body) {
            self.seq += 1;
            let m = VmmMessage {
                seq: self.seq,
                ns: 1000 + self.seq,
                body,
            };
            self.socket.send(&encode(&m).unwrap()).unwrap();
        }

        fn request(&self) -> RequestMessage {
            let deadline = Instant::now() + Duration::from_secs(30);
            decode(&self.socket.recv(Some(deadline)).unwrap().unwrap()).unwrap()
        }
    }

    fn setup() -> (VmmControl, FakeVmm, mpsc::Receiver<VmEvent>) {
        let (runtime, vmm) = SeqPacket::pair().unwrap();
        let (tx, rx) = mpsc::channel();
        let (control, _reader) = start(runtime, tx, None).unwrap();
        let mut fake = FakeVmm {
            socket: vmm,
            seq: 0,
        };
        fake.send(Body::Event(Event::Hello {
            version: PROTOCOL_VERSION,
        }));
        (control, fake, rx)
    }

    fn next(rx: &mpsc::Receiver<VmEvent>) -> VmEvent {
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    #[test]
    fn requests_get_their_replies_and_events_flow() {
        let (control, mut fake, rx) = setup();
        assert!(matches!(
            next(&rx),
            VmEvent::Vm {
                event: Event::Hello { .. },
                ..
            }
        ));
        let vmm = std::thread::spawn(move || {
            for (want, state) in [
                (Request::Pause, VmState::Paused),
                (Request::Resume, VmState::Running),
            ] {
                let r = fake.request();
                assert_eq!(r.request, want);
                fake.send(Body::Reply {
                    id: r.id,
                    reply: Reply::Done { state },
                });
            }
            let r = fake.request();
            fake.send(Body::Reply {
                id: r.id,
                reply: Reply::Refused {
                    error: "busy".into(),
                },
            });
            fake.send(Body::Event(Event::AgentReady {
                vmm_rss_kib: 1,
                guest_rss_kib: 2,
            }));
            fake
        });
        let deadline = Duration::from_secs(30);
        control.pause(deadline).unwrap();
        control.resume(deadline).unwrap();
        let e = control.shutdown(deadline).unwrap_err();
        assert!(
            matches!(e, ControlError::Refused { ref error, .. } if error == "busy"),
            "{e}"
        );
        let fake = vmm.join().unwrap();
        match next(&rx) {
            VmEvent::Vm { ns, event } => {
                assert_eq!(ns, 1005);
                assert!(matches!(event, Event::AgentReady { .. }));
            }
            other => panic!("{other:?}"),
        }
        drop(fake);
        assert!(matches!(
            control.pause(deadline),
            Err(ControlError::Closed) | Err(ControlError::Send { .. })
        ));
    }

    #[test]
    fn a_request_without_a_reply_times_out_and_its_late_reply_is_dropped() {
        let (control, mut fake, rx) = setup();
        let e = control.pause(Duration::from_millis(20)).unwrap_err();
        assert!(matches!(e, ControlError::Timeout { .. }), "{e}");
        let late = fake.request();
        assert_eq!(late.request, Request::Pause);
        fake.send(Body::Reply {
            id: late.id,
            reply: Reply::Done {
                state: VmState::Paused,
            },
        });
        let vmm = std::thread::spawn(move || {
            let r = fake.request();
            assert_eq!(r.request, Request::Resume);
            fake.send(Body::Reply {
                id: r.id,
                reply: Reply::Done {
                    state: VmState::Running,
                },
            });
            fake
        });
        control.resume(Duration::from_secs(30)).unwrap();
        let _fake = vmm.join().unwrap();
        assert!(matches!(next(&rx), VmEvent::Vm { .. }), "the hello");
        assert!(rx.try_recv().is_err(), "no breach");
    }

    fn broken(rx: &mpsc::Receiver<VmEvent>) -> String {
        loop {
            match next(rx) {
                VmEvent::ControlBroken(reason) => return reason,
                VmEvent::Vm { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_unsolicited_reply_breaks_the_channel() {
        let (control, mut fake, rx) = setup();
        fake.send(Body::Reply {
            id: 42,
            reply: Reply::Done {
                state: VmState::Running,
            },
        });
        assert!(broken(&rx).contains("request 42, which was never sent"));
        let e = control.resume(Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, ControlError::Closed), "{e}");
    }

    #[test]
    fn a_flood_of_events_or_junk_breaks_the_channel() {
        let (_control, mut fake, rx) = setup();
        for _ in 0..MAX_EVENTS {
            fake.send(Body::Event(Event::FirstKvmRun));
        }
        assert!(broken(&rx).contains("more than"));

        let (_control, fake, rx) = setup();
        fake.socket
            .send(b"{\"seq\":2,\"ns\":1,\"body\":{}}")
            .unwrap();
        assert!(broken(&rx).starts_with("malformed"));

        let (_control, fake, rx) = setup();
        fake.socket.send(&vec![b'{'; 10_000]).unwrap();
        assert!(broken(&rx).contains("over the limit"));
    }

    #[test]
    fn the_first_message_must_be_a_matching_hello() {
        let (runtime, vmm) = SeqPacket::pair().unwrap();
        let (tx, rx) = mpsc::channel();
        let _c = start(runtime, tx, None).unwrap();
        let mut fake = FakeVmm {
            socket: vmm,
            seq: 0,
        };
        fake.send(Body::Event(Event::Hello { version: 99 }));
        assert!(broken(&rx).contains("protocol 99"));
    }
}
