//! The per-connection state machine ([`Connection`]) and its credit
//! accounting ([`Credit`], virtio 1.2 §5.10.6.3). All counters are `u32`
//! and wrap, as the spec's `fwd_cnt` does.

mod connection;

pub use connection::Connection;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Host-initiated: OP_REQUEST queued or sent, waiting for the guest.
    Connecting,
    /// Relaying bytes; either side may have half-closed (see the flags).
    Established,
    /// The connection is over; an OP_RST to the guest is queued.
    Closing,
    /// Gone: remove it (the guest reset it, or our RST went out).
    Dead,
}

/// Credit accounting of one connection, both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credit {
    /// Our receive buffer, advertised to the guest as `buf_alloc`.
    pub buf_alloc: u32,
    /// Guest bytes written to the host socket (our `fwd_cnt`).
    pub fwd_cnt: u32,
    /// The `fwd_cnt` in the last header we sent.
    pub fwd_cnt_sent: u32,
    /// Guest bytes received.
    pub rx_cnt: u32,
    /// The guest's `buf_alloc` and `fwd_cnt`, from its latest header.
    pub peer_buf_alloc: u32,
    pub peer_fwd_cnt: u32,
    /// Bytes sent to the guest.
    pub tx_cnt: u32,
}

impl Credit {
    pub fn new(buf_alloc: u32) -> Self {
        Self {
            buf_alloc,
            fwd_cnt: 0,
            fwd_cnt_sent: 0,
            rx_cnt: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
        }
    }

    /// Records the credit fields of a guest header.
    pub fn update_peer(&mut self, buf_alloc: u32, fwd_cnt: u32) {
        self.peer_buf_alloc = buf_alloc;
        self.peer_fwd_cnt = fwd_cnt;
    }

    /// Bytes the guest can still take: its buffer minus what is in flight.
    /// Zero if the guest shrank its buffer below what is in flight.
    pub fn peer_free(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Bytes received from the guest and not yet forwarded to the host.
    pub fn buffered(&self) -> u32 {
        self.rx_cnt.wrapping_sub(self.fwd_cnt)
    }

    /// Whether the guest may send `len` more bytes within our buffer.
    pub fn guest_may_send(&self, len: u32) -> bool {
        u64::from(self.buffered()) + u64::from(len) <= u64::from(self.buf_alloc)
    }

    /// Records `len` bytes received from the guest.
    pub fn on_guest_bytes(&mut self, len: u32) {
        self.rx_cnt = self.rx_cnt.wrapping_add(len);
    }

    /// Records `len` guest bytes written to the host socket.
    pub fn on_forwarded(&mut self, len: u32) {
        self.fwd_cnt = self.fwd_cnt.wrapping_add(len);
    }

    /// Records `len` bytes sent to the guest.
    pub fn on_sent_to_guest(&mut self, len: u32) {
        self.tx_cnt = self.tx_cnt.wrapping_add(len);
    }

    /// Records that a header carrying our current `fwd_cnt` went out.
    pub fn on_header_sent(&mut self) {
        self.fwd_cnt_sent = self.fwd_cnt;
    }

    /// Whether the guest should be told our `fwd_cnt`: we freed space since
    /// the last header and, as far as the guest knows, less than half of our
    /// buffer is free (so it may be about to stall).
    pub fn needs_update(&self) -> bool {
        let guest_view_used = self.rx_cnt.wrapping_sub(self.fwd_cnt_sent);
        let guest_view_free = self.buf_alloc.saturating_sub(guest_view_used);
        self.fwd_cnt != self.fwd_cnt_sent && guest_view_free < self.buf_alloc / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_free_tracks_in_flight_bytes_across_wrap() {
        let mut c = Credit::new(1000);
        c.tx_cnt = u32::MAX - 10;
        c.update_peer(100, u32::MAX - 10);
        assert_eq!(c.peer_free(), 100);
        c.on_sent_to_guest(60); // wraps
        assert_eq!(c.tx_cnt, 49);
        assert_eq!(c.peer_free(), 40);
        c.update_peer(100, 19); // guest consumed 30 (wrapped)
        assert_eq!(c.peer_free(), 70);
        c.update_peer(10, 19); // guest shrank its buffer below in-flight
        assert_eq!(c.peer_free(), 0);
    }

    #[test]
    fn guest_may_not_exceed_our_buffer_across_wrap() {
        let mut c = Credit::new(100);
        c.rx_cnt = u32::MAX - 5;
        c.fwd_cnt = u32::MAX - 5;
        assert!(c.guest_may_send(100));
        assert!(!c.guest_may_send(101));
        c.on_guest_bytes(80);
        assert_eq!(c.buffered(), 80);
        assert!(c.guest_may_send(20));
        assert!(!c.guest_may_send(21));
        c.on_forwarded(50);
        assert_eq!(c.buffered(), 30);
        assert!(c.guest_may_send(70));
    }

    #[test]
    fn credit_update_only_when_the_guest_may_stall() {
        let mut c = Credit::new(100);
        c.on_guest_bytes(30);
        c.on_forwarded(30);
        // Guest believes 30 of 100 used: no update needed yet.
        assert!(!c.needs_update());
        c.on_guest_bytes(40);
        c.on_forwarded(10);
        // Guest believes 70 used: tell it about the 40 forwarded.
        assert!(c.needs_update());
        c.on_header_sent();
        assert!(!c.needs_update());
        assert_eq!(c.fwd_cnt_sent, 40);
    }
}
