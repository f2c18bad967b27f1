//! A gzip writer that compresses on every core, like pigz: the stream is cut into fixed 1 MiB
//! blocks, each deflated on its own (ending in a sync flush, the last one finished), and the
//! pieces are written in order. Blocks never depend on the thread count, so the output is the
//! same on any machine. Memory stays at a few blocks per thread whatever the input size.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per independently deflated block.
pub const BLOCK: usize = 1 << 20;

/// A block to compress: its index, its bytes, whether it ends the stream.
type Job = (u64, Vec<u8>, bool);
/// A compressed block: its index, the deflate bytes, the CRC state and length of its input.
type Done = (u64, io::Result<Vec<u8>>, crc32fast::Hasher);

/// Writes a reproducible gzip stream (header mtime 0, no file name) to `out`.
pub struct ParallelGzWriter<W: Write> {
    out: Option<W>,
    level: u32,
    pending: Vec<u8>,
    next_index: u64,
    next_to_write: u64,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    finished: BTreeMap<u64, (io::Result<Vec<u8>>, crc32fast::Hasher)>,
    in_flight: usize,
    max_in_flight: usize,
    crc: crc32fast::Hasher,
    total_in: u64,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzWriter<W> {
    /// A writer compressing at `level` (0-9) on `threads` threads.
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (unix): no name, no time, same bytes anywhere.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(threads);
        let jobs_rx = std::sync::Arc::new(std::sync::Mutex::new(jobs_rx));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
        let workers = (0..threads)
            .map(|_| {
                let jobs = jobs_rx.clone();
                let done: Sender<Done> = done_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((index, data, last)) = job else { return };
                        let mut crc = crc32fast::Hasher::new();
                        crc.update(&data);
                        let compressed = deflate_block(&data, level, last);
                        if done.send((index, compressed, crc)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Ok(ParallelGzWriter {
            out: Some(out),
            level,
            pending: Vec::with_capacity(BLOCK),
            next_index: 0,
            next_to_write: 0,
            jobs: Some(jobs_tx),
            done: done_rx,
            finished: BTreeMap::new(),
            in_flight: 0,
            max_in_flight: threads * 2,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            workers,
        })
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.write_one()?;
        }
        let data = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
        self.total_in += data.len() as u64;
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        jobs.send((self.next_index, data, last))
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.next_index += 1;
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for the next block in order and writes it.
    fn write_one(&mut self) -> io::Result<()> {
        while !self.finished.contains_key(&self.next_to_write) {
            let (index, bytes, crc) = self
                .done
                .recv()
                .map_err(|_| io::Error::other("gzip worker stopped"))?;
            self.finished.insert(index, (bytes, crc));
        }
        let (bytes, crc) = self
            .finished
            .remove(&self.next_to_write)
            .expect("just checked");
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?
            .write_all(&bytes?)?;
        self.crc.combine(&crc);
        self.next_to_write += 1;
        self.in_flight -= 1;
        Ok(())
    }

    /// Compresses what is left, writes the trailer, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.in_flight > 0 {
            self.write_one()?;
        }
        let mut out = self.out.take().expect("finish runs once");
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
        out.write_all(&crc.finalize().to_le_bytes())?;
        // ISIZE is the input length modulo 2^32.
        out.write_all(&(self.total_in as u32).to_le_bytes())?;
        out.flush()?;
        Ok(out)
    }

    /// The compression level.
    pub fn level(&self) -> u32 {
        self.level
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let written = buf.len();
        while !buf.is_empty() {
            let room = BLOCK - self.pending.len();
            let take = room.min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.pending.len() == BLOCK {
                self.submit(false)?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzWriter<W> {
    fn drop(&mut self) {
        // Closing the job channel stops the workers.
        self.jobs.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Raw deflate of one block: sync-flushed (byte-aligned, not final) or finished.
fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(Compression::new(level), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(64 * 1024);
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        let room_left = out.capacity() > out.len();
        match status {
            Status::StreamEnd => break,
            _ if !last && all_in && room_left => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = ParallelGzWriter::new(Vec::new(), 6, threads).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_and_does_not_depend_on_threads() {
        let mut data = Vec::new();
        for i in 0..(3 * BLOCK + 12345) {
            data.push(((i * 7919) % 251) as u8 ^ (i >> 13) as u8);
        }
        let one = gz(&data, 1);
        let four = gz(&data, 4);
        assert_eq!(one, four);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(&one[4..8], &[0, 0, 0, 0], "header mtime is 0");
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let out = gz(b"", 2);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
