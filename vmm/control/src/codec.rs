//! Encoding and validated decoding of control messages.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{Body, VmmMessage, MAX_TEXT_BYTES};
use crate::MAX_MESSAGE_BYTES;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("control message of {len} bytes is over the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge { len: usize },
    #[error("malformed control message: {reason}")]
    Malformed { reason: String },
    #[error("control message text of {len} bytes is over the limit of {MAX_TEXT_BYTES}")]
    TextTooLong { len: usize },
    #[error("control message sequence {got} after {last}: must grow by one")]
    Sequence { last: u64, got: u64 },
    #[error("control message without a timestamp")]
    NoTimestamp,
    #[error("control message {seq} after the VM's end event")]
    AfterEnd { seq: u64 },
}

/// Serializes one message; refuses one over [`MAX_MESSAGE_BYTES`].
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = serde_json::to_vec(message).map_err(|e| CodecError::Malformed {
        reason: e.to_string(),
    })?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

/// Parses one message: size first, then strict JSON (unknown fields and
/// variants are errors).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { len: bytes.len() });
    }
    serde_json::from_slice(bytes).map_err(|e| CodecError::Malformed {
        reason: e.to_string(),
    })
}

/// The runtime's view of the stream from hull-vmm: each packet is decoded
/// and checked against what came before.
#[derive(Debug, Default)]
pub struct Inbound {
    last_seq: u64,
    ended: bool,
}

impl Inbound {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and validates the next packet.
    pub fn accept(&mut self, bytes: &[u8]) -> Result<VmmMessage, CodecError> {
        let message: VmmMessage = decode(bytes)?;
        if let Some(len) = message
            .texts()
            .iter()
            .map(|t| t.len())
            .find(|&l| l > MAX_TEXT_BYTES)
        {
            return Err(CodecError::TextTooLong { len });
        }
        if message.ns == 0 {
            return Err(CodecError::NoTimestamp);
        }
        if self.ended {
            return Err(CodecError::AfterEnd { seq: message.seq });
        }
        if Some(message.seq) != self.last_seq.checked_add(1) {
            return Err(CodecError::Sequence {
                last: self.last_seq,
                got: message.seq,
            });
        }
        self.last_seq = message.seq;
        if let Body::Event(e) = &message.body {
            self.ended = e.is_end();
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{truncate_text, Event, Reply, Request, RequestMessage, VmState};

    fn event(seq: u64, event: Event) -> Vec<u8> {
        encode(&VmmMessage {
            seq,
            ns: 1000 + seq,
            body: Body::Event(event),
        })
        .unwrap()
    }

    #[test]
    fn messages_round_trip() {
        let messages = [
            Body::Event(Event::Hello { version: 1 }),
            Body::Event(Event::AgentReady {
                vmm_rss_kib: 5,
                guest_rss_kib: 6,
            }),
            Body::Reply {
                id: 7,
                reply: Reply::Done {
                    state: VmState::Paused,
                },
            },
            Body::Event(Event::DeviceFailed {
                device: "virtio-fs:hullshare".into(),
                error: "epoll: bad fd".into(),
            }),
        ];
        let mut inbound = Inbound::new();
        for (i, body) in messages.into_iter().enumerate() {
            let m = VmmMessage {
                seq: i as u64 + 1,
                ns: 99,
                body,
            };
            assert_eq!(inbound.accept(&encode(&m).unwrap()).unwrap(), m);
        }
        let r = RequestMessage {
            id: 3,
            request: Request::Shutdown,
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"id":3,"request":"shutdown"}"#
        );
        assert_eq!(decode::<RequestMessage>(&bytes).unwrap(), r);
    }

    #[test]
    fn oversized_and_malformed_messages_are_refused() {
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode::<RequestMessage>(&huge).unwrap_err(),
            CodecError::TooLarge {
                len: MAX_MESSAGE_BYTES + 1
            }
        );
        let big = Event::Failed {
            error: "x".repeat(MAX_MESSAGE_BYTES),
        };
        assert!(matches!(encode(&big), Err(CodecError::TooLarge { .. })));
        for bad in [
            &br#"{"id":1,"request":"reboot"}"#[..],
            br#"{"id":1,"request":"pause","extra":1}"#,
            br#"{"id":-1,"request":"pause"}"#,
            br#"{"id":1}"#,
            b"\xff\xfe",
            b"",
        ] {
            assert!(
                matches!(
                    decode::<RequestMessage>(bad),
                    Err(CodecError::Malformed { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut inbound = Inbound::new();
        let unknown = br#"{"seq":1,"ns":5,"body":{"event":{"agent_ready":{"vmm_rss_kib":1,"guest_rss_kib":2,"x":3}}}}"#;
        assert!(matches!(
            inbound.accept(unknown),
            Err(CodecError::Malformed { .. })
        ));
        let unknown_event = br#"{"seq":1,"ns":5,"body":{"event":"explode"}}"#;
        assert!(matches!(
            inbound.accept(unknown_event),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn text_over_the_limit_is_refused_and_senders_cut_it() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let mut inbound = Inbound::new();
        let e = inbound
            .accept(&event(
                1,
                Event::VcpuFailed {
                    error: long.clone(),
                },
            ))
            .unwrap_err();
        assert_eq!(
            e,
            CodecError::TextTooLong {
                len: 2 * MAX_TEXT_BYTES
            }
        );
        let cut = truncate_text(long);
        assert_eq!(cut.len(), MAX_TEXT_BYTES);
        assert!(inbound
            .accept(&event(1, Event::VcpuFailed { error: cut }))
            .is_ok());
    }

    #[test]
    fn sequence_must_grow_by_one_and_nothing_follows_the_end() {
        let mut inbound = Inbound::new();
        assert_eq!(
            inbound.accept(&event(2, Event::FirstKvmRun)).unwrap_err(),
            CodecError::Sequence { last: 0, got: 2 }
        );
        inbound.accept(&event(1, Event::FirstKvmRun)).unwrap();
        assert_eq!(
            inbound.accept(&event(1, Event::FirstKvmRun)).unwrap_err(),
            CodecError::Sequence { last: 1, got: 1 }
        );
        let no_ns = encode(&VmmMessage {
            seq: 2,
            ns: 0,
            body: Body::Event(Event::Reset),
        })
        .unwrap();
        assert_eq!(inbound.accept(&no_ns).unwrap_err(), CodecError::NoTimestamp);
        inbound.accept(&event(2, Event::Reset)).unwrap();
        assert_eq!(
            inbound.accept(&event(3, Event::PowerOff)).unwrap_err(),
            CodecError::AfterEnd { seq: 3 }
        );
    }

    #[test]
    fn end_events_are_classified() {
        assert!(!Event::FirstKvmRun.is_end());
        assert!(Event::Reset.is_end() && !Event::Reset.is_clean_end());
        assert!(Event::Stopped.is_clean_end() && Event::PowerOff.is_clean_end());
        assert!(Event::DeviceFailed {
            device: "d".into(),
            error: "e".into()
        }
        .is_end());
    }
}
