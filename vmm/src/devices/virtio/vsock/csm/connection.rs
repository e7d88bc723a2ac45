//! One connection: a host Unix stream paired with a guest stream socket.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use super::{Credit, State};
use crate::devices::virtio::vsock::packet::{Header, Op};
use crate::devices::virtio::vsock::{
    CONN_BUF_SIZE, HOST_CID, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND,
};

/// Control packets waiting for an RX buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    request: bool,
    response: bool,
    shutdown: bool,
    credit_update: bool,
}

/// A connection. It does host-socket I/O (non-blocking) and produces the
/// packets for the guest on demand; the muxer decides when.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    guest_cid: u64,
    local_port: u32,
    peer_port: u32,
    state: State,
    credit: Credit,
    pending: Pending,
    /// Bytes for the host socket: a `prefix` of device bytes (the `OK`
    /// line) then guest bytes.
    to_host: Vec<u8>,
    prefix: usize,
    /// The host socket may have bytes (or EOF) for the guest.
    host_readable: bool,
    /// The host socket reported hang-up: it stays readable until EOF.
    host_hup: bool,
    host_eof: bool,
    host_write_shut: bool,
    /// Shutdown flags the guest sent.
    peer_shutdown: u32,
}

impl Connection {
    fn new(stream: UnixStream, guest_cid: u64, local_port: u32, peer_port: u32) -> Self {
        Self {
            stream,
            guest_cid,
            local_port,
            peer_port,
            state: State::Connecting,
            credit: Credit::new(CONN_BUF_SIZE),
            pending: Pending::default(),
            to_host: Vec::new(),
            prefix: 0,
            host_readable: false,
            host_hup: false,
            host_eof: false,
            host_write_shut: false,
            peer_shutdown: 0,
        }
    }

    /// A host-initiated connection: an OP_REQUEST to the guest is queued.
    pub fn new_local(stream: UnixStream, guest_cid: u64, local_port: u32, peer_port: u32) -> Self {
        let mut c = Self::new(stream, guest_cid, local_port, peer_port);
        c.pending.request = true;
        c
    }

    /// A guest-initiated connection to a host socket that accepted: an
    /// OP_RESPONSE is queued. `req` is the guest's OP_REQUEST.
    pub fn new_peer(stream: UnixStream, guest_cid: u64, req: &Header) -> Self {
        let mut c = Self::new(stream, guest_cid, req.dst_port, req.src_port);
        c.credit.update_peer(req.buf_alloc, req.fwd_cnt);
        c.state = State::Established;
        c.pending.response = true;
        c
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn credit(&self) -> &Credit {
        &self.credit
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    pub fn local_port(&self) -> u32 {
        self.local_port
    }

    /// Bytes held for the host socket.
    pub fn to_host_len(&self) -> usize {
        self.to_host.len()
    }

    /// Handles a packet the guest sent on this connection.
    pub fn on_guest(&mut self, hdr: &Header, payload: &[u8]) {
        self.credit.update_peer(hdr.buf_alloc, hdr.fwd_cnt);
        match (self.state, hdr.op) {
            (_, Op::Rst) => self.state = State::Dead,
            (State::Closing | State::Dead, _) => {}
            (State::Connecting, Op::Response) => {
                self.state = State::Established;
                let line = format!("OK {}\n", self.local_port);
                self.prefix = line.len();
                self.to_host.extend_from_slice(line.as_bytes());
                self.flush();
            }
            (State::Connecting, _) => self.state = State::Closing,
            (State::Established, Op::Rw) => {
                let len = payload.len() as u32;
                if self.peer_shutdown & SHUTDOWN_SEND != 0 || !self.credit.guest_may_send(len) {
                    self.state = State::Closing;
                    return;
                }
                self.credit.on_guest_bytes(len);
                self.to_host.extend_from_slice(payload);
                self.flush();
            }
            (State::Established, Op::CreditRequest) => self.pending.credit_update = true,
            (State::Established, Op::CreditUpdate) => {}
            (State::Established, Op::Shutdown) => {
                self.peer_shutdown |= hdr.flags;
                self.flush();
            }
            (State::Established, Op::Request | Op::Response) => self.state = State::Closing,
        }
    }

    /// The host socket is readable (or hung up).
    pub fn on_host_readable(&mut self, hup: bool) {
        self.host_readable = true;
        if hup && !self.host_hup {
            self.host_hup = true;
            // Nothing more can be written: fail pending bytes now.
            self.flush();
        }
    }

    /// Writes what it can of the bytes held for the host socket, then
    /// applies half-close and close rules.
    pub fn flush(&mut self) {
        if self.state != State::Established {
            return;
        }
        while !self.to_host.is_empty() {
            match self.stream.write(&self.to_host) {
                Ok(0) => {
                    self.state = State::Closing;
                    return;
                }
                Ok(n) => {
                    self.to_host.drain(..n);
                    let own = n.min(self.prefix);
                    self.prefix -= own;
                    self.credit.on_forwarded((n - own) as u32);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.state = State::Closing;
                    return;
                }
            }
        }
        if self.credit.needs_update() {
            self.pending.credit_update = true;
        }
        if !self.to_host.is_empty() {
            return;
        }
        if self.peer_shutdown & SHUTDOWN_SEND != 0 && !self.host_write_shut {
            self.host_write_shut = true;
            // The host reader sees EOF; an error only means it is gone.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        let peer_done = self.peer_shutdown == SHUTDOWN_BOTH;
        let both_done = self.peer_shutdown & SHUTDOWN_SEND != 0 && self.host_eof;
        if peer_done || both_done {
            self.state = State::Closing;
        }
    }

    fn may_read_host(&self) -> bool {
        self.state == State::Established
            && !self.host_eof
            && self.peer_shutdown & SHUTDOWN_RCV == 0
            && self.credit.peer_free() > 0
    }

    /// Whether the connection has a packet for the guest.
    pub fn has_rx(&self) -> bool {
        self.state == State::Closing
            || self.pending != Pending::default()
            || (self.host_readable && self.may_read_host())
    }

    /// Whether epoll should report readability (we can use it now).
    pub fn wants_read(&self) -> bool {
        !self.host_readable && !self.host_hup && self.may_read_host()
    }

    /// Whether epoll should report writability.
    pub fn wants_write(&self) -> bool {
        self.state == State::Established && !self.to_host.is_empty() && !self.host_hup
    }

    fn header(&mut self, op: Op, flags: u32) -> Header {
        self.credit.on_header_sent();
        self.pending.credit_update = false;
        Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: self.local_port,
            dst_port: self.peer_port,
            op,
            flags,
            buf_alloc: self.credit.buf_alloc,
            fwd_cnt: self.credit.fwd_cnt,
        }
    }

    /// The next packet for the guest, with up to `max_payload` payload
    /// bytes placed in `payload` (cleared first). `None` if nothing is due.
    pub fn next_rx(&mut self, max_payload: usize, payload: &mut Vec<u8>) -> Option<Header> {
        payload.clear();
        if self.state == State::Closing {
            self.state = State::Dead;
            return Some(self.header(Op::Rst, 0));
        }
        if self.state == State::Dead {
            return None;
        }
        if self.pending.request {
            self.pending.request = false;
            return Some(self.header(Op::Request, 0));
        }
        if self.pending.response {
            self.pending.response = false;
            return Some(self.header(Op::Response, 0));
        }
        if self.host_readable && self.may_read_host() {
            if let Some(hdr) = self.read_host(max_payload, payload) {
                return Some(hdr);
            }
        }
        if self.pending.shutdown {
            self.pending.shutdown = false;
            return Some(self.header(Op::Shutdown, SHUTDOWN_SEND));
        }
        if self.pending.credit_update {
            return Some(self.header(Op::CreditUpdate, 0));
        }
        None
    }

    fn read_host(&mut self, max_payload: usize, payload: &mut Vec<u8>) -> Option<Header> {
        let n = max_payload.min(self.credit.peer_free() as usize);
        if n == 0 {
            return None;
        }
        payload.resize(n, 0);
        loop {
            match self.stream.read(payload) {
                Ok(0) => {
                    payload.clear();
                    self.host_readable = false;
                    self.host_eof = true;
                    self.pending.shutdown = true;
                    self.flush();
                    if self.state == State::Closing {
                        self.state = State::Dead;
                        return Some(self.header(Op::Rst, 0));
                    }
                    return None;
                }
                Ok(got) => {
                    payload.truncate(got);
                    self.credit.on_sent_to_guest(got as u32);
                    return Some(self.header(Op::Rw, 0));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    payload.clear();
                    self.host_readable = false;
                    return None;
                }
                Err(_) => {
                    payload.clear();
                    self.state = State::Dead;
                    return Some(self.header(Op::Rst, 0));
                }
            }
        }
    }
}
