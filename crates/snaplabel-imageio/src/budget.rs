//! Decode memory: what each decoding path needs, estimated from the header before a single pixel
//! buffer exists, and one process-wide pool those estimates are reserved from.
//!
//! A hostile image is small on the wire and huge in memory: a 486 kB PNG can declare 8000×8000
//! 16-bit RGBA pixels, half a gigabyte as one buffer. The pixel limit alone cannot stop that (a
//! legitimate 64 MP photo has as many pixels), so every path first estimates its peak in bytes,
//! bit depth, alpha and every intermediate copy included, and is taken only if that fits the
//! budget ([`crate::Limits::max_decode_bytes`]). The pool then makes the budget hold for the whole
//! process: decodes running at once (the label workers of `snaplabel dev`, the decode threads
//! of `snaplabel label`) wait for each other rather than add up.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes reserved from the pool, given back when dropped.
#[derive(Debug)]
#[must_use = "the memory is given back as soon as the reservation is dropped"]
pub struct Reservation {
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Gives back all but `bytes` (a decode that finished keeps only its output).
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            POOL.release(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        POOL.release(self.bytes);
    }
}

struct Pool {
    in_use: Mutex<u64>,
    released: Condvar,
}

static POOL: Pool = Pool {
    in_use: Mutex::new(0),
    released: Condvar::new(),
};

/// How long a decode waits for others to give memory back before it gives up: long enough for
/// any decode to finish, short enough that a leak shows up as an error rather than a hang.
const MAX_WAIT: Duration = Duration::from_secs(120);

impl Pool {
    fn release(&self, bytes: u64) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *in_use = in_use.saturating_sub(bytes);
        self.released.notify_all();
    }
}

/// Reserves `bytes` (at most `capacity`) from the process-wide pool of `capacity` bytes, waiting
/// while other decodes hold too much of it. `None` if they held it for longer than any decode
/// takes.
pub fn reserve(bytes: u64, capacity: u64) -> Option<Reservation> {
    let bytes = bytes.min(capacity);
    let deadline = Instant::now() + MAX_WAIT;
    let mut in_use = POOL.in_use.lock().unwrap_or_else(|e| e.into_inner());
    // Alone, a decode always proceeds: nothing else can give memory back.
    while *in_use > 0 && *in_use + bytes > capacity {
        let left = deadline.checked_duration_since(Instant::now())?;
        in_use = POOL
            .released
            .wait_timeout(in_use, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    *in_use += bytes;
    Some(Reservation { bytes })
}

/// Bytes currently reserved by decodes in this process.
pub fn in_use() -> u64 {
    *POOL.in_use.lock().unwrap_or_else(|e| e.into_inner())
}

/// Mebibytes, for messages.
pub(crate) fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn reservations_wait_for_each_other_and_never_exceed_the_capacity() {
        const CAPACITY: u64 = 1_000_000_000_000; // far above anything the other tests reserve
        let peak = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (peak, held) = (peak.clone(), held.clone());
                std::thread::spawn(move || {
                    let bytes = CAPACITY / 3 + i;
                    let r = reserve(bytes, CAPACITY).expect("reserved");
                    let now = held.fetch_add(r.bytes(), Ordering::SeqCst) + r.bytes();
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    held.fetch_sub(r.bytes(), Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= CAPACITY);
        assert!(
            peak.load(Ordering::SeqCst) >= CAPACITY / 3 * 2,
            "two fit at once"
        );
    }

    #[test]
    fn shrinking_gives_memory_back() {
        let mut r = reserve(10_000, u64::MAX / 4).unwrap();
        r.shrink_to(100);
        assert_eq!(r.bytes(), 100);
        r.shrink_to(1_000); // never grows
        assert_eq!(r.bytes(), 100);
    }
}
