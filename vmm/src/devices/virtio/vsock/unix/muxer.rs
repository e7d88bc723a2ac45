//! The muxer: owns every host socket and connection, routes guest packets
//! to connections and picks the next packet for the guest (round robin).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::{connect_nonblocking, parse_connect};
use crate::devices::virtio::vsock::csm::{Connection, State};
use crate::devices::virtio::vsock::packet::{Header, Op, TxPacket};
use crate::devices::virtio::vsock::{
    VsockStats, CONN_BUF_SIZE, FIRST_LOCAL_PORT, HOST_CID, MAX_CONNECTIONS, MAX_CONNECT_LINE,
};

/// What an epoll event's data names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Kick,
    Stop,
    Listener,
    Fd(RawFd),
}

impl Token {
    pub fn to_u64(self) -> u64 {
        match self {
            Token::Kick => 0,
            Token::Stop => 1,
            Token::Listener => 2,
            Token::Fd(fd) => 3 + fd as u64,
        }
    }

    pub fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => Token::Kick,
            1 => Token::Stop,
            2 => Token::Listener,
            _ => Token::Fd(RawFd::try_from(v - 3).ok()?),
        })
    }
}

/// (host port, guest port).
type Key = (u32, u32);

/// A host client that has not yet sent its whole `CONNECT` line.
struct Client {
    stream: UnixStream,
    line: Vec<u8>,
}

pub struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    epoll: Epoll,
    listener: UnixListener,
    clients: HashMap<RawFd, Client>,
    conns: HashMap<Key, Connection>,
    by_fd: HashMap<RawFd, Key>,
    /// Interest each connection socket is registered with (absent: none).
    registered: HashMap<RawFd, EventSet>,
    /// Resets for packets that match no connection.
    control: VecDeque<Header>,
    rx_list: VecDeque<Key>,
    in_rx_list: HashSet<Key>,
    next_port: u32,
    stats: Arc<VsockStats>,
}

impl Muxer {
    /// Sets up a muxer; `listener` is the socket bound at `uds_path`.
    pub fn new(
        guest_cid: u64,
        uds_path: PathBuf,
        listener: UnixListener,
        stats: Arc<VsockStats>,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let epoll = Epoll::new()?;
        epoll.ctl(
            ControlOperation::Add,
            listener.as_raw_fd(),
            EpollEvent::new(EventSet::IN, Token::Listener.to_u64()),
        )?;
        Ok(Self {
            guest_cid,
            uds_path,
            epoll,
            listener,
            clients: HashMap::new(),
            conns: HashMap::new(),
            by_fd: HashMap::new(),
            registered: HashMap::new(),
            control: VecDeque::new(),
            rx_list: VecDeque::new(),
            in_rx_list: HashSet::new(),
            next_port: FIRST_LOCAL_PORT,
            stats,
        })
    }

    pub fn epoll(&self) -> &Epoll {
        &self.epoll
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn at_limit(&self) -> bool {
        self.conns.len() + self.clients.len() >= MAX_CONNECTIONS
    }

    /// Handles an epoll event for the listener or a socket.
    pub fn handle_event(&mut self, token: Token, events: EventSet) {
        match token {
            Token::Listener => self.accept_all(),
            Token::Fd(fd) if self.clients.contains_key(&fd) => self.read_client(fd),
            Token::Fd(fd) => {
                let Some(&key) = self.by_fd.get(&fd) else {
                    return;
                };
                let hup = events.intersects(EventSet::HANG_UP | EventSet::ERROR);
                if let Some(conn) = self.conns.get_mut(&key) {
                    if events.intersects(EventSet::IN) || hup {
                        conn.on_host_readable(hup);
                    }
                    if events.contains(EventSet::OUT) {
                        conn.flush();
                    }
                }
                self.refresh(key);
            }
            Token::Kick | Token::Stop => {}
        }
    }

    fn accept_all(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            if self.at_limit() || stream.set_nonblocking(true).is_err() {
                continue; // dropped: the client sees the socket close
            }
            let fd = stream.as_raw_fd();
            let ev = EpollEvent::new(EventSet::IN, Token::Fd(fd).to_u64());
            if self.epoll.ctl(ControlOperation::Add, fd, ev).is_ok() {
                let line = Vec::with_capacity(MAX_CONNECT_LINE);
                self.clients.insert(fd, Client { stream, line });
            }
        }
    }

    /// Reads the `CONNECT` line one byte at a time, so no byte meant for the
    /// guest is consumed before the connection exists.
    fn read_client(&mut self, fd: RawFd) {
        let Some(client) = self.clients.get_mut(&fd) else {
            return;
        };
        let mut byte = [0u8; 1];
        let port = loop {
            match client.stream.read(&mut byte) {
                Ok(1) => {
                    client.line.push(byte[0]);
                    if byte[0] == b'\n' {
                        break parse_connect(&client.line);
                    }
                    if client.line.len() >= MAX_CONNECT_LINE {
                        break None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => break None, // EOF or error
            }
        };
        let Some(client) = self.clients.remove(&fd) else {
            return;
        };
        let _ = self
            .epoll
            .ctl(ControlOperation::Delete, fd, EpollEvent::default());
        let Some(peer_port) = port else {
            return; // malformed: dropping the stream closes it
        };
        let Some(local_port) = self.alloc_port() else {
            return;
        };
        let conn = Connection::new_local(client.stream, self.guest_cid, local_port, peer_port);
        self.insert(conn, (local_port, peer_port));
    }

    /// A free host port from [`FIRST_LOCAL_PORT`] upward (wrapping).
    fn alloc_port(&mut self) -> Option<u32> {
        let used: HashSet<u32> = self.conns.keys().map(|k| k.0).collect();
        for _ in 0..=MAX_CONNECTIONS {
            let port = self.next_port;
            self.next_port = port.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
            if !used.contains(&port) {
                return Some(port);
            }
        }
        None
    }

    fn insert(&mut self, conn: Connection, key: Key) {
        self.by_fd.insert(conn.stream().as_raw_fd(), key);
        self.conns.insert(key, conn);
        self.refresh(key);
    }

    /// Re-evaluates a connection after anything happened to it: removes it
    /// when dead, queues it for RX, and fixes its epoll interest.
    fn refresh(&mut self, key: Key) {
        let Some(conn) = self.conns.get(&key) else {
            return;
        };
        let fd = conn.stream().as_raw_fd();
        if conn.state() == State::Dead {
            self.conns.remove(&key);
            self.by_fd.remove(&fd);
            if self.registered.remove(&fd).is_some() {
                let _ = self
                    .epoll
                    .ctl(ControlOperation::Delete, fd, EpollEvent::default());
            }
            return;
        }
        if conn.has_rx() && self.in_rx_list.insert(key) {
            self.rx_list.push_back(key);
        }
        let mut want = EventSet::empty();
        if conn.wants_read() {
            want |= EventSet::IN;
        }
        if conn.wants_write() {
            want |= EventSet::OUT;
        }
        let ev = EpollEvent::new(want, Token::Fd(fd).to_u64());
        // With no interest, deregister: hang-up would be reported anyway.
        let res = match (self.registered.get(&fd).copied(), want.is_empty()) {
            (None, true) => return,
            (Some(old), false) if old == want => return,
            (None, false) => self.epoll.ctl(ControlOperation::Add, fd, ev),
            (Some(_), false) => self.epoll.ctl(ControlOperation::Modify, fd, ev),
            (Some(_), true) => self.epoll.ctl(ControlOperation::Delete, fd, ev),
        };
        match res {
            Ok(()) if want.is_empty() => {
                self.registered.remove(&fd);
            }
            Ok(()) => {
                self.registered.insert(fd, want);
            }
            Err(_) => {}
        }
    }

    fn reset_for(&mut self, hdr: &Header) {
        if self.control.len() >= MAX_CONNECTIONS {
            // The guest is not taking packets: drop rather than grow.
            VsockStats::bump(&self.stats.dropped_packets);
            return;
        }
        VsockStats::bump(&self.stats.resets_sent);
        self.control.push_back(Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: hdr.dst_port,
            dst_port: hdr.src_port,
            op: Op::Rst,
            flags: 0,
            buf_alloc: CONN_BUF_SIZE,
            fwd_cnt: 0,
        });
    }

    /// Handles a packet from the guest.
    pub fn handle_tx(&mut self, pkt: TxPacket) {
        let hdr = pkt.hdr;
        if hdr.src_cid != self.guest_cid || hdr.dst_cid != HOST_CID {
            VsockStats::bump(&self.stats.dropped_packets);
            return;
        }
        let key = (hdr.dst_port, hdr.src_port);
        if let Some(conn) = self.conns.get_mut(&key) {
            let was_connecting = conn.state() == State::Connecting;
            conn.on_guest(&hdr, &pkt.payload);
            if was_connecting && conn.state() == State::Established {
                VsockStats::bump(&self.stats.connections);
            }
            self.refresh(key);
            return;
        }
        match hdr.op {
            Op::Rst => VsockStats::bump(&self.stats.dropped_packets),
            Op::Request if !self.at_limit() => {
                let path = format!("{}_{}", self.uds_path.display(), hdr.dst_port);
                match connect_nonblocking(path.as_ref()) {
                    Ok(stream) => {
                        VsockStats::bump(&self.stats.connections);
                        let conn = Connection::new_peer(stream, self.guest_cid, &hdr);
                        self.insert(conn, key);
                    }
                    Err(_) => self.reset_for(&hdr),
                }
            }
            _ => self.reset_for(&hdr),
        }
    }

    /// Whether a packet for the guest may be due.
    pub fn has_rx(&self) -> bool {
        !self.control.is_empty() || !self.rx_list.is_empty()
    }

    /// The next packet for the guest, with at most `max_payload` payload
    /// bytes in `payload`.
    pub fn next_rx(&mut self, max_payload: usize, payload: &mut Vec<u8>) -> Option<Header> {
        if let Some(hdr) = self.control.pop_front() {
            payload.clear();
            return Some(hdr);
        }
        while let Some(key) = self.rx_list.pop_front() {
            self.in_rx_list.remove(&key);
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            let hdr = conn.next_rx(max_payload, payload);
            if hdr.is_some_and(|h| h.op == Op::Rst) {
                VsockStats::bump(&self.stats.resets_sent);
            }
            self.refresh(key);
            if hdr.is_some() {
                return hdr;
            }
        }
        None
    }
}
