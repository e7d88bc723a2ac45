//! The 8250 UART at 0x3f8 (vm-superio's model), its interrupt delivered
//! through a KVM irqfd, its output written by a dedicated thread.
//!
//! vm-superio writes (and flushes) every byte the guest sends, on the vCPU
//! thread. A console that blocks (a full pipe, a paused terminal, a FIFO) must
//! not stall the guest or the VMM's teardown, so the UART writes into a
//! [`ConsoleWriter`] that batches lines into a bounded channel; a writer
//! thread drains it. When the channel is full, output is dropped and counted.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::BusDevice;

/// Chunks queued for the writer thread, and the size of one chunk.
const QUEUE_CHUNKS: usize = 256;
const CHUNK_BYTES: usize = 1024;

/// Raises the serial IRQ by writing to an eventfd registered as a KVM irqfd.
pub struct IrqFdTrigger(pub EventFd);

impl Trigger for IrqFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.write(1)
    }
}

/// The UART's output side: batches bytes into lines for the writer thread.
pub struct ConsoleWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
}

impl ConsoleWriter {
    fn send_pending(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let chunk = std::mem::take(&mut self.buf);
        let len = chunk.len() as u64;
        match self.tx.as_ref().map(|tx| tx.try_send(chunk)) {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                self.dropped.fetch_add(len, Ordering::Relaxed);
            }
        }
    }
}

impl Write for ConsoleWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES || data.contains(&b'\n') {
            self.send_pending();
        }
        Ok(data.len())
    }

    /// vm-superio flushes after every byte; batching happens in `write`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer thread's side: lets the VM wait (boundedly) for it to finish.
pub struct ConsoleOutput {
    done: Receiver<()>,
    dropped: Arc<AtomicU64>,
}

impl ConsoleOutput {
    /// Waits until everything queued is written, at most `limit`; false when
    /// the output is stuck (the thread is then left to the process's exit).
    pub fn wait(&self, limit: Duration) -> bool {
        !matches!(
            self.done.recv_timeout(limit),
            Err(RecvTimeoutError::Timeout)
        )
    }

    /// Bytes the guest wrote that were dropped because the output was stuck.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the writer thread for `out`.
pub fn console(mut out: Box<dyn Write + Send>) -> io::Result<(ConsoleWriter, ConsoleOutput)> {
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_CHUNKS);
    let (done_tx, done) = sync_channel(1);
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            for chunk in rx {
                if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            let _ = done_tx.send(());
        })?;
    let dropped = Arc::new(AtomicU64::new(0));
    let writer = ConsoleWriter {
        buf: Vec::new(),
        tx: Some(tx),
        dropped: dropped.clone(),
    };
    Ok((writer, ConsoleOutput { done, dropped }))
}

/// The console device on the port I/O bus.
pub struct SerialConsole {
    uart: Serial<IrqFdTrigger, vm_superio::serial::NoEvents, ConsoleWriter>,
}

impl SerialConsole {
    pub fn new(irq: EventFd, out: ConsoleWriter) -> Self {
        Self {
            uart: Serial::new(IrqFdTrigger(irq), out),
        }
    }

    /// Sends what is pending and closes the output: the writer thread ends
    /// once it has written everything queued.
    pub fn finish(&mut self) {
        let writer = self.uart.writer_mut();
        writer.send_pending();
        writer.tx = None;
    }
}

impl BusDevice for SerialConsole {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if let [byte] = data {
            *byte = self.uart.read(offset as u8);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let [byte] = data {
            // Output never fails (it is queued or counted as dropped); an
            // interrupt that cannot be raised leaves the guest to poll.
            let _ = self.uart.write(offset as u8, *byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_written_to_thr_reach_the_output_in_order() {
        let sink = Sink::default();
        let (writer, output) = console(Box::new(sink.clone())).unwrap();
        let mut s = SerialConsole::new(EventFd::new(0).unwrap(), writer);
        for b in b"hello\nno newline" {
            s.write(0, &[*b]);
        }
        // Multi-byte accesses are not UART accesses and are ignored.
        s.write(0, b"xy");
        let mut lsr = [0u8];
        s.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "transmitter empty");
        s.finish();
        assert!(output.wait(Duration::from_secs(5)));
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"hello\nno newline");
        assert_eq!(output.dropped_bytes(), 0);
    }

    /// An output that never accepts anything.
    struct Stuck(Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_drops_instead_of_blocking_the_guest() {
        let (release, stuck) = sync_channel(0);
        let (writer, output) = console(Box::new(Stuck(stuck))).unwrap();
        let mut s = SerialConsole::new(EventFd::new(0).unwrap(), writer);
        let lines = QUEUE_CHUNKS + 10;
        for _ in 0..lines {
            for b in b"line\n" {
                s.write(0, &[*b]);
            }
        }
        s.finish();
        // The writer thread holds one chunk; the queue the rest it can; the
        // remainder was dropped rather than blocking this (vCPU) thread.
        assert!(output.dropped_bytes() >= 5 * 9);
        assert!(!output.wait(Duration::from_millis(50)));
        drop(release);
        assert!(output.wait(Duration::from_secs(5)));
    }
}
