//! The virtio_vsock_hdr (virtio 1.2 §5.10.6) and the descriptor chains that
//! carry packets. Every guest-provided value is validated here, once, into
//! typed values; anything malformed is an error the caller counts and drops.

use virtio_queue::DescriptorChain;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

use super::{
    MAX_PKT_PAYLOAD, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_RST, OP_RW,
    OP_SHUTDOWN, SHUTDOWN_BOTH, TYPE_STREAM,
};

/// Size of the header, in bytes.
pub const HDR_SIZE: usize = 44;

/// Why a packet or buffer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("chain ends before the {HDR_SIZE}-byte header")]
    ShortHeader,
    #[error("unsupported socket type {0}")]
    BadType(u16),
    #[error("unknown operation {0}")]
    BadOp(u16),
    #[error("payload length {0} is too large for the operation")]
    BadLength(u32),
    #[error("chain ends before the payload the header announces")]
    ShortPayload,
    #[error("device-writable descriptor in a tx chain")]
    WritableTx,
    #[error("device-readable descriptor in an rx chain")]
    ReadOnlyRx,
    #[error("descriptor outside guest memory")]
    Memory,
}

/// A vsock operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Request,
    Response,
    Rst,
    Shutdown,
    Rw,
    CreditUpdate,
    CreditRequest,
}

impl Op {
    fn from_raw(op: u16) -> Option<Self> {
        Some(match op {
            OP_REQUEST => Op::Request,
            OP_RESPONSE => Op::Response,
            OP_RST => Op::Rst,
            OP_SHUTDOWN => Op::Shutdown,
            OP_RW => Op::Rw,
            OP_CREDIT_UPDATE => Op::CreditUpdate,
            OP_CREDIT_REQUEST => Op::CreditRequest,
            _ => return None,
        })
    }

    fn raw(self) -> u16 {
        match self {
            Op::Request => OP_REQUEST,
            Op::Response => OP_RESPONSE,
            Op::Rst => OP_RST,
            Op::Shutdown => OP_SHUTDOWN,
            Op::Rw => OP_RW,
            Op::CreditUpdate => OP_CREDIT_UPDATE,
            Op::CreditRequest => OP_CREDIT_REQUEST,
        }
    }
}

/// The header exactly as laid out in memory (little endian, packed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHeader {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub type_: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl RawHeader {
    pub fn to_bytes(&self) -> [u8; HDR_SIZE] {
        let mut b = [0u8; HDR_SIZE];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; HDR_SIZE]) -> Self {
        let u64_at = |i: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(v)
        };
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Self {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }
}

/// A validated header (the payload length lives with the payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub op: Op,
    /// Shutdown flags, masked to the defined bits; zero for other ops.
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl Header {
    /// Validates a raw header: stream type, known op, and a payload length
    /// only on `OP_RW`, no larger than [`MAX_PKT_PAYLOAD`].
    pub fn validate(raw: &RawHeader) -> Result<Self, PacketError> {
        if raw.type_ != TYPE_STREAM {
            return Err(PacketError::BadType(raw.type_));
        }
        let op = Op::from_raw(raw.op).ok_or(PacketError::BadOp(raw.op))?;
        let len_ok = match op {
            Op::Rw => raw.len <= MAX_PKT_PAYLOAD,
            _ => raw.len == 0,
        };
        if !len_ok {
            return Err(PacketError::BadLength(raw.len));
        }
        Ok(Self {
            src_cid: raw.src_cid,
            dst_cid: raw.dst_cid,
            src_port: raw.src_port,
            dst_port: raw.dst_port,
            op,
            flags: if op == Op::Shutdown {
                raw.flags & SHUTDOWN_BOTH
            } else {
                0
            },
            buf_alloc: raw.buf_alloc,
            fwd_cnt: raw.fwd_cnt,
        })
    }

    /// The raw form, with a payload of `len` bytes.
    pub fn to_raw(&self, len: u32) -> RawHeader {
        RawHeader {
            src_cid: self.src_cid,
            dst_cid: self.dst_cid,
            src_port: self.src_port,
            dst_port: self.dst_port,
            len,
            type_: TYPE_STREAM,
            op: self.op.raw(),
            flags: self.flags,
            buf_alloc: self.buf_alloc,
            fwd_cnt: self.fwd_cnt,
        }
    }
}

/// A packet the guest sent (TX queue).
#[derive(Debug, PartialEq, Eq)]
pub struct TxPacket {
    pub hdr: Header,
    pub payload: Vec<u8>,
}

impl TxPacket {
    /// Reads and validates the packet in `chain`: header then payload, both
    /// from device-readable descriptors (bytes past the payload are ignored).
    pub fn parse(
        mem: &GuestMemoryMmap,
        chain: DescriptorChain<&GuestMemoryMmap>,
    ) -> Result<Self, PacketError> {
        let mut hdr_buf = [0u8; HDR_SIZE];
        let mut hdr: Option<Header> = None;
        let mut payload = Vec::new();
        let mut payload_len = 0usize;
        let mut got = 0usize;
        for desc in chain {
            if desc.is_write_only() {
                return Err(PacketError::WritableTx);
            }
            let mut addr = desc.addr();
            let mut left = desc.len() as usize;
            if hdr.is_none() {
                let n = left.min(HDR_SIZE - got);
                mem.read_slice(&mut hdr_buf[got..got + n], addr)
                    .map_err(|_| PacketError::Memory)?;
                got += n;
                left -= n;
                addr = addr.checked_add(n as u64).ok_or(PacketError::Memory)?;
                if got < HDR_SIZE {
                    continue;
                }
                let raw = RawHeader::from_bytes(&hdr_buf);
                let h = Header::validate(&raw)?;
                payload_len = raw.len as usize;
                payload = Vec::with_capacity(payload_len);
                hdr = Some(h);
            }
            let n = left.min(payload_len - payload.len());
            if n > 0 {
                let start = payload.len();
                payload.resize(start + n, 0);
                mem.read_slice(&mut payload[start..], addr)
                    .map_err(|_| PacketError::Memory)?;
            }
        }
        let hdr = hdr.ok_or(PacketError::ShortHeader)?;
        if payload.len() < payload_len {
            return Err(PacketError::ShortPayload);
        }
        Ok(Self { hdr, payload })
    }
}

/// A receive buffer the guest posted (RX queue): device-writable memory,
/// checked to be inside guest memory.
#[derive(Debug)]
pub struct RxBuffer {
    regions: Vec<(GuestAddress, usize)>,
    capacity: usize,
}

impl RxBuffer {
    /// Validates `chain`: every descriptor writable and inside guest memory,
    /// room for at least the header. Capacity past a maximal packet is
    /// ignored.
    pub fn parse(
        mem: &GuestMemoryMmap,
        chain: DescriptorChain<&GuestMemoryMmap>,
    ) -> Result<Self, PacketError> {
        let max = HDR_SIZE + MAX_PKT_PAYLOAD as usize;
        let mut regions = Vec::new();
        let mut capacity = 0usize;
        for desc in chain {
            if !desc.is_write_only() {
                return Err(PacketError::ReadOnlyRx);
            }
            let len = (desc.len() as usize).min(max - capacity);
            if !mem.check_range(desc.addr(), len) {
                return Err(PacketError::Memory);
            }
            if len > 0 {
                regions.push((desc.addr(), len));
                capacity += len;
            }
        }
        if capacity < HDR_SIZE {
            return Err(PacketError::ShortHeader);
        }
        Ok(Self { regions, capacity })
    }

    /// The largest payload that fits.
    pub fn max_payload(&self) -> usize {
        self.capacity - HDR_SIZE
    }

    /// Writes `hdr` and `payload` (at most [`max_payload`](Self::max_payload)
    /// bytes); returns the bytes written.
    pub fn write(
        &self,
        mem: &GuestMemoryMmap,
        hdr: &Header,
        payload: &[u8],
    ) -> Result<u32, PacketError> {
        let len = u32::try_from(payload.len()).map_err(|_| PacketError::BadLength(u32::MAX))?;
        if payload.len() > self.max_payload() {
            return Err(PacketError::BadLength(len));
        }
        let hdr_bytes = hdr.to_raw(len).to_bytes();
        let mut offset = 0usize;
        for part in [&hdr_bytes[..], payload] {
            self.write_at(mem, offset, part)?;
            offset += part.len();
        }
        let total = HDR_SIZE + payload.len();
        u32::try_from(total).map_err(|_| PacketError::BadLength(len))
    }

    /// Writes `data` at byte `offset` of the buffer (which must fit).
    fn write_at(
        &self,
        mem: &GuestMemoryMmap,
        mut offset: usize,
        mut data: &[u8],
    ) -> Result<(), PacketError> {
        for &(addr, region_len) in &self.regions {
            if data.is_empty() {
                break;
            }
            if offset >= region_len {
                offset -= region_len;
                continue;
            }
            let n = (region_len - offset).min(data.len());
            let at = addr.checked_add(offset as u64).ok_or(PacketError::Memory)?;
            mem.write_slice(&data[..n], at)
                .map_err(|_| PacketError::Memory)?;
            data = &data[n..];
            offset = 0;
        }
        if data.is_empty() {
            Ok(())
        } else {
            Err(PacketError::Memory)
        }
    }
}
