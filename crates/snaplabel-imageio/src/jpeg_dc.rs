//! Eighth-scale JPEG decoding from DC coefficients alone, with parallel entropy decoding.
//!
//! At 1/8 scale every output pixel is exactly the DC term of one 8×8 block (the 1×1 inverse
//! DCT), so a 12 MP photo needs no inverse DCT at all and its AC coefficients need only be
//! *skipped*: one Huffman lookup and a bit count each, never a value. What remains is entropy
//! decoding, which is serial by nature; it is spread over the cores two ways:
//!
//! - **Restart intervals**, where the encoder wrote them, are independent: each is decoded on its
//!   own, in parallel.
//! - **Otherwise the stream is split at arbitrary bit positions** and every piece but the first is
//!   decoded speculatively from a guessed state. Huffman codes resynchronise within a few symbols,
//!   so a speculative decoding soon coincides with the true one. The true decoding, arriving from
//!   the previous piece, recognises the coincidence (a block starting at the same bit with the
//!   same place in the MCU) and adopts the rest of the piece: DC values are stored as differences,
//!   so adopting them is replaying them onto the true predictors. A piece that never
//!   resynchronises is simply decoded again by the true decoding; the result is always exact.
//!
//! Progressive files need only their DC scans (first and refinement); AC scans are skipped by
//! looking for the next marker, without decoding them.
//!
//! Scope: baseline, extended sequential and progressive Huffman JPEGs, 8-bit, one (gray) or three
//! (YCbCr, or RGB per Adobe's marker) components, any sampling factors, components in one scan or
//! several. Anything else answers [`DcError::Unsupported`] and the caller uses a general decoder;
//! damaged data answers [`DcError::Corrupt`], and the general decoder then reports it properly.

use memchr::memchr;

/// Why the fast path declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcError {
    /// A valid JPEG this decoder does not handle (arithmetic coding, 12-bit, CMYK, lossless, …).
    Unsupported,
    /// Damaged or truncated data.
    Corrupt,
}

/// An eighth-scale image: `ceil(width / 8)` × `ceil(height / 8)` RGB pixels, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eighth {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Bits the Huffman lookup table resolves at once; longer codes take the canonical slow path.
const LUT_BITS: u32 = 10;
/// Bits the multi-symbol AC table looks at: every AC symbol whose code starts within them is
/// skipped in one step (typically two or three per lookup in a detailed photo).
const MULTI_BITS: u32 = 12;
/// Zero bytes after the entropy data. A block reads at most 27 + 63 × 26 bits (≈ 209 bytes) past
/// its start, and blocks only start before the end, so peeks never leave the buffer.
const PADDING: usize = 256;
/// Below this much entropy data, splitting is not worth a thread.
const MIN_PARALLEL_BYTES: usize = 256 << 10;

struct Huffman {
    /// `(code length << 8) | symbol`, indexed by the next `LUT_BITS` bits; 0 = a longer code.
    lut: Box<[u16; 1 << LUT_BITS]>,
    /// Only for AC tables (zero for DC ones): `(coefficients advanced << 8) | bits to skip` (code and value) for the
    /// symbol at the top of the next `LUT_BITS` bits; 0 advanced = end of block; 0 = a longer code.
    skip: Box<[u16; 1 << LUT_BITS]>,
    /// Only for AC tables (zero for DC ones): the run of symbols coded at the top of the next `MULTI_BITS` bits, as
    /// `eob << 16 | coefficients advanced << 8 | bits to skip`; 0 = use `skip`.
    multi: Box<[u32; 1 << MULTI_BITS]>,
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    /// Builds a table; `ac` tables also get the `skip` and `multi` tables (4096 entries: worth it
    /// only for the symbols that are skipped, not for DC ones).
    fn new(counts: &[u8; 16], values: &[u8], ac: bool) -> Result<Huffman, DcError> {
        let mut table = Huffman {
            lut: Box::new([0; 1 << LUT_BITS]),
            skip: Box::new([0; 1 << LUT_BITS]),
            multi: Box::new([0; 1 << MULTI_BITS]),
            maxcode: [-1; 17],
            mincode: [0; 17],
            valptr: [0; 17],
            values: values.to_vec(),
        };
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let count = counts[len as usize - 1] as usize;
            table.mincode[len as usize] = code;
            table.valptr[len as usize] = k as i32;
            for _ in 0..count {
                // Codes of this length must fit in `len` bits (as libjpeg checks).
                if code >= 1 << len {
                    return Err(DcError::Corrupt);
                }
                if len <= LUT_BITS {
                    let shift = LUT_BITS - len;
                    let first = (code as usize) << shift;
                    let entry = ((len as u16) << 8) | values[k] as u16;
                    table.lut[first..first + (1 << shift)].fill(entry);
                    if ac {
                        let skip = skip_entry(len, values[k]);
                        table.skip[first..first + (1 << shift)].fill(skip);
                    }
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                table.maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        if ac {
            for window in 0..1u32 << MULTI_BITS {
                table.multi[window as usize] = table.symbol_run(window);
            }
        }
        Ok(table)
    }

    /// The `multi` entry for a window of `MULTI_BITS` bits: symbols are taken while their code
    /// lies inside the window; only the last one's value may reach past it (a step then skips
    /// at most 12 + 10 bits). Stops after an end of block.
    fn symbol_run(&self, window: u32) -> u32 {
        let (mut used, mut advance) = (0u32, 0u32);
        while used < MULTI_BITS {
            let bits = ((window as u64) << (64 - MULTI_BITS)) << used;
            let Some((len, rs)) = self.decode(bits) else {
                break;
            };
            let entry = skip_entry(len, rs);
            if len > MULTI_BITS - used || entry == INVALID {
                break;
            }
            let (skip, step) = ((entry & 0xFF) as u32, (entry >> 8) as u32);
            if used + skip > MULTI_BITS {
                // The value runs past the window (so this is a coefficient, not an end of block
                // or a run of zeros, which have no value bits): this symbol ends the run.
                return ((advance + step) << 8) | (used + skip);
            }
            used += skip;
            if step == 0 {
                return (1 << 16) | (advance << 8) | used;
            }
            advance += step;
        }
        if used == 0 { 0 } else { (advance << 8) | used }
    }

    /// The AC symbol at the top of `bits`: (bits to skip, coefficients advanced; 0 = end).
    #[inline(always)]
    fn skip(&self, bits: u64) -> Option<(u32, u32)> {
        let mut entry = self.skip[(bits >> (64 - LUT_BITS)) as usize];
        if entry == 0 {
            let (len, rs) = self.decode(bits)?;
            entry = skip_entry(len, rs);
        }
        (entry != INVALID).then_some(((entry & 0xFF) as u32, (entry >> 8) as u32))
    }

    /// The code at the top of `bits`: (length, symbol).
    #[inline(always)]
    fn decode(&self, bits: u64) -> Option<(u32, u8)> {
        let entry = self.lut[(bits >> (64 - LUT_BITS)) as usize];
        if entry != 0 {
            return Some(((entry >> 8) as u32, entry as u8));
        }
        for len in LUT_BITS + 1..=16 {
            let code = (bits >> (64 - len)) as i32;
            if code <= self.maxcode[len as usize] {
                let index = self.valptr[len as usize] + code - self.mincode[len as usize];
                return self.values.get(index as usize).map(|&v| (len, v));
            }
        }
        None
    }
}

/// A `Huffman::skip` entry for a symbol no valid stream contains.
const INVALID: u16 = 0xFFFF;

/// What skipping the AC symbol `rs` (run, size) coded in `len` bits means: see `Huffman::skip`.
fn skip_entry(len: u32, rs: u8) -> u16 {
    let (run, size) = ((rs >> 4) as u16, (rs & 15) as u16);
    if size > 10 {
        return INVALID; // 8-bit samples have AC values of at most 10 bits
    }
    let advance = match (run, size) {
        (15, 0) => 16, // sixteen zeros
        (_, 0) => 0,   // end of block
        _ => run + 1,
    };
    (advance << 8) | (len as u16 + size)
}

/// A bit reader over unstuffed data that keeps the next 32–63 bits in a register, so that
/// decoding a symbol is a table lookup and a shift, not a memory read.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load.
    next: usize,
    /// Valid bits at the top of `buffer`; the bits below them are the data that follows.
    count: u32,
    buffer: u64,
}

impl<'a> Bits<'a> {
    fn at(data: &'a [u8], position: usize) -> Bits<'a> {
        let mut bits = Bits {
            data,
            next: position >> 3,
            count: 0,
            buffer: 0,
        };
        bits.refill();
        bits.consume(position as u32 & 7);
        bits
    }

    /// The position of the next unread bit.
    #[inline(always)]
    fn position(&self) -> usize {
        self.next * 8 - self.count as usize
    }

    /// Tops the buffer up to 56–63 valid bits with one unaligned load.
    #[inline(always)]
    fn refill(&mut self) {
        let word: [u8; 8] = self.data[self.next..self.next + 8]
            .try_into()
            .expect("8 bytes");
        self.buffer |= u64::from_be_bytes(word) >> self.count;
        self.next += (63 - self.count as usize) >> 3;
        self.count |= 56;
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buffer <<= n;
        self.count -= n;
    }
}

/// Decodes one block: returns its DC difference and skips its AC coefficients (if the scan has
/// any: a progressive DC scan has none).
#[inline(always)]
fn block(bits: &mut Bits, dc: &Huffman, ac: Option<&Huffman>) -> Option<i32> {
    bits.refill();
    let (len, size) = dc.decode(bits.buffer)?;
    if size > 11 {
        return None;
    }
    let size = size as u32;
    let diff = if size == 0 {
        0
    } else {
        let v = ((bits.buffer << len) >> (64 - size)) as i32;
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    };
    bits.consume(len + size);
    let Some(ac) = ac else {
        return Some(diff);
    };
    // A step skips at most 26 bits (one symbol: 16 of code, 10 of value; a run: 12 + 10): after
    // the DC (≤ 27 of the ≥ 56 bits a refill leaves) one step fits, after each refill two. No
    // per-symbol refill test.
    let mut k = 1u32;
    let mut budget = 1;
    loop {
        for _ in 0..budget {
            let run = ac.multi[(bits.buffer >> (64 - MULTI_BITS)) as usize];
            let (mut skip, mut advance, mut end) = (run & 0xFF, (run >> 8) & 0xFF, run >> 16 == 1);
            // A run must stay inside this block: with an end of block, that end must come
            // before the 64th coefficient (otherwise those bits are the next block's). Where
            // there is no run, or it does not fit, one symbol is skipped.
            if run == 0 || k + advance > 64 || (end && k + advance == 64) {
                (skip, advance) = ac.skip(bits.buffer)?;
                end = advance == 0;
            }
            bits.consume(skip);
            if end {
                return Some(diff); // end of block
            }
            k += advance;
            if k >= 64 {
                return (k == 64).then_some(diff);
            }
        }
        bits.refill();
        budget = 2;
    }
}

#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
}

/// The frame: its size, its components, and the geometry of their blocks.
struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    progressive: bool,
    hmax: usize,
    vmax: usize,
    mcus_x: usize,
    mcus_y: usize,
}

impl Frame {
    fn new(width: usize, height: usize, components: Vec<Component>, progressive: bool) -> Frame {
        let hmax = components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = components.iter().map(|c| c.v).max().unwrap_or(1);
        Frame {
            width,
            height,
            progressive,
            hmax,
            vmax,
            mcus_x: width.div_ceil(8 * hmax),
            mcus_y: height.div_ceil(8 * vmax),
            components,
        }
    }

    /// A component's plane of blocks, padded to whole MCUs: (blocks per row, rows).
    fn plane(&self, c: usize) -> (usize, usize) {
        let component = self.components[c];
        (self.mcus_x * component.h, self.mcus_y * component.v)
    }

    /// The component of each block in a scan's MCU.
    fn places(&self, scan: &[usize]) -> Vec<usize> {
        if let [c] = *scan {
            return vec![c]; // a scan of one component is not interleaved: one block per MCU
        }
        scan.iter()
            .flat_map(|&c| std::iter::repeat_n(c, self.components[c].h * self.components[c].v))
            .collect()
    }

    /// Blocks in a scan of one component (its own size, not padded to MCUs): (per row, rows).
    fn single_blocks(&self, c: usize) -> (usize, usize) {
        let component = self.components[c];
        (
            (self.width * component.h).div_ceil(self.hmax).div_ceil(8),
            (self.height * component.v).div_ceil(self.vmax).div_ceil(8),
        )
    }

    fn scan_mcus(&self, scan: &[usize]) -> usize {
        match *scan {
            [c] => {
                let (w, h) = self.single_blocks(c);
                w * h
            }
            _ => self.mcus_x * self.mcus_y,
        }
    }

    /// Calls `f(component, index in its plane)` for each block of a scan in coded order, while
    /// `f` answers true. Answers whether every block was visited.
    fn for_each_block(&self, scan: &[usize], mut f: impl FnMut(usize, usize) -> bool) -> bool {
        if let [c] = *scan {
            let (w, h) = self.single_blocks(c);
            let stride = self.plane(c).0;
            for by in 0..h {
                for bx in 0..w {
                    if !f(c, by * stride + bx) {
                        return false;
                    }
                }
            }
            return true;
        }
        for my in 0..self.mcus_y {
            for mx in 0..self.mcus_x {
                for &c in scan {
                    let Component { h, v, .. } = self.components[c];
                    let stride = self.plane(c).0;
                    for dy in 0..v {
                        for dx in 0..h {
                            if !f(c, (my * v + dy) * stride + mx * h + dx) {
                                return false;
                            }
                        }
                    }
                }
            }
        }
        true
    }
}

/// Everything one scan's entropy decoding needs.
struct Scan<'a> {
    /// Unstuffed entropy data followed by `PADDING` zero bytes.
    data: &'a [u8],
    /// Per place in the MCU: (DC table, AC table if the scan codes AC, frame component).
    tables: Vec<(&'a Huffman, Option<&'a Huffman>, usize)>,
}

impl Scan<'_> {
    /// Decodes blocks until `out` holds `end_block` of them or the next block would start at or
    /// after bit `stop`, pushing DC values. `out.len()` is the scan's block number of the first
    /// (its place in the MCU follows from it). `None` if the data is invalid or a block would
    /// start past bit `limit`.
    fn decode_run(
        &self,
        reader: &mut Bits,
        limit: usize,
        stop: usize,
        end_block: usize,
        pred: &mut [i32; 4],
        out: &mut Vec<i32>,
    ) -> Option<()> {
        // A local copy stays in registers; written back at the end.
        let mut bits = *reader;
        let places = self.tables.len();
        let mut place = out.len() % places;
        while out.len() < end_block {
            let position = bits.position();
            if position >= stop {
                break;
            }
            if position > limit {
                return None;
            }
            let (dc, ac, c) = self.tables[place];
            pred[c] += block(&mut bits, dc, ac)?;
            out.push(pred[c]);
            place += 1;
            if place == places {
                place = 0;
            }
        }
        *reader = bits;
        (bits.position() <= limit).then_some(())
    }
}

/// A speculative decoding of one piece: block start positions and DC differences, from a
/// guessed state (place 0 of the MCU) at some bit position.
#[derive(Default)]
struct Speculation {
    /// Bit position where each recorded block starts, then where the last one ended.
    starts: Vec<u32>,
    diffs: Vec<i16>,
}

impl Speculation {
    fn decode(scan: &Scan, from: usize, until: usize) -> Speculation {
        let places = scan.tables.len();
        let mut s = Speculation::default();
        let mut bits = Bits::at(scan.data, from);
        let mut place = 0;
        while bits.position() < until {
            let (dc, ac, _) = scan.tables[place];
            let start = bits.position();
            match block(&mut bits, dc, ac) {
                Some(diff) => {
                    s.starts.push(start as u32);
                    s.diffs.push(diff as i16);
                    place = if place + 1 == places { 0 } else { place + 1 };
                }
                None => {
                    // Not a valid code here: this was not a true block boundary. Start again
                    // where decoding failed (so the work stays linear in the piece's length);
                    // nothing recorded so far can be part of the true decoding.
                    s.starts.clear();
                    s.diffs.clear();
                    bits = Bits::at(scan.data, bits.position().max(start + 1));
                    place = 0;
                }
            }
        }
        s.starts.push(bits.position() as u32);
        s
    }
}

/// Decodes one scan without restart markers, splitting it into `pieces`: the first decoded
/// here while the others are decoded speculatively on their own threads.
fn decode_split(scan: &Scan, end_bits: usize, total: usize, pieces: usize) -> Option<Vec<i32>> {
    let places = scan.tables.len();
    let bounds: Vec<usize> = (0..=pieces).map(|i| end_bits * i / pieces).collect();
    std::thread::scope(|threads| {
        let mut pending: Vec<_> = (1..pieces)
            .map(|i| {
                let (from, until) = (bounds[i], bounds[i + 1]);
                Some(threads.spawn(move || Speculation::decode(scan, from, until)))
            })
            .collect();
        let mut speculation = |piece: usize| -> Speculation {
            pending[piece - 1]
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default()
        };

        let mut out = Vec::with_capacity(total);
        let mut pred = [0i32; 4];
        let mut bits = Bits::at(scan.data, 0);
        let mut piece = 1; // the next piece whose speculation may be adopted
        let mut current: Option<Speculation> = None;
        let mut cursor = 0; // into its starts
        while out.len() < total {
            let pos = bits.position();
            while piece < pieces && pos >= bounds[piece + 1] {
                // Passed a whole piece without resynchronising: it was decoded here instead.
                piece += 1;
                current = None;
                cursor = 0;
            }
            if piece < pieces && pos >= bounds[piece] {
                let s = current.get_or_insert_with(|| speculation(piece));
                while cursor < s.diffs.len() && (s.starts[cursor] as usize) < pos {
                    cursor += 1;
                }
                if cursor < s.diffs.len()
                    && s.starts[cursor] as usize == pos
                    && cursor % places == out.len() % places
                {
                    // Resynchronised: the rest of the piece is the true decoding.
                    let take = (s.diffs.len() - cursor).min(total - out.len());
                    let mut place = out.len() % places;
                    for &diff in &s.diffs[cursor..cursor + take] {
                        let c = scan.tables[place].2;
                        pred[c] += diff as i32;
                        out.push(pred[c]);
                        place = if place + 1 == places { 0 } else { place + 1 };
                    }
                    bits = Bits::at(scan.data, s.starts[cursor + take] as usize);
                    piece += 1;
                    current = None;
                    cursor = 0;
                    continue;
                }
            }
            // Decode up to the next piece, or one block at a time while looking for the
            // point where the current piece's speculation coincides.
            let (stop, end_block) = if piece < pieces && pos < bounds[piece] {
                (bounds[piece], total)
            } else {
                (usize::MAX, out.len() + 1)
            };
            scan.decode_run(&mut bits, end_bits, stop, end_block, &mut pred, &mut out)?;
        }
        (bits.position() <= end_bits).then_some(out)
    })
}

/// Decodes one scan with restart markers: each interval on its own, intervals spread over
/// threads.
fn decode_intervals(
    scan: &Scan,
    segments: &[(usize, usize)],
    interval_blocks: usize,
    total: usize,
    threads: usize,
) -> Option<Vec<i32>> {
    let decode = |range: std::ops::Range<usize>| -> Option<Vec<i32>> {
        // Intervals are whole MCUs, so each starts at place 0 like `out` does.
        let mut out = Vec::with_capacity(range.len() * interval_blocks);
        for i in range {
            let (start, end) = segments[i];
            let count = interval_blocks.min(total - i * interval_blocks);
            let mut pred = [0i32; 4];
            let mut bits = Bits::at(scan.data, start * 8);
            let end_block = out.len() + count;
            scan.decode_run(
                &mut bits,
                end * 8,
                usize::MAX,
                end_block,
                &mut pred,
                &mut out,
            )?;
        }
        Some(out)
    };
    let n = segments.len();
    let threads = threads.clamp(1, n.max(1));
    let parts: Vec<Option<Vec<i32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = n * t / threads..n * (t + 1) / threads;
                s.spawn(move || decode(range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut out = Vec::with_capacity(total);
    for part in parts {
        out.extend(part?);
    }
    (out.len() == total).then_some(out)
}

/// Removes byte stuffing (`FF 00` → `FF`) from the entropy data at the start of `bytes`, noting
/// where restart markers split it. Returns the data (padded), the segments as byte ranges in it,
/// and where in `bytes` the marker that ends the scan is.
fn unstuff(bytes: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>, usize) {
    let mut out = Vec::with_capacity(bytes.len() + PADDING);
    let mut segments = Vec::new();
    let mut segment_start = 0;
    let mut i = 0;
    let mut end = bytes.len();
    loop {
        let Some(offset) = memchr(0xFF, &bytes[i..]) else {
            out.extend_from_slice(&bytes[i..]);
            break;
        };
        let at = i + offset;
        out.extend_from_slice(&bytes[i..at]);
        match bytes.get(at + 1) {
            Some(0x00) => {
                out.push(0xFF);
                i = at + 2;
            }
            Some(0xD0..=0xD7) => {
                segments.push((segment_start, out.len()));
                segment_start = out.len();
                i = at + 2;
            }
            Some(0xFF) => i = at + 1, // fill byte
            Some(_) => {
                end = at; // any other marker ends the scan
                break;
            }
            None => break,
        }
    }
    segments.push((segment_start, out.len()));
    out.resize(out.len() + PADDING, 0);
    (out, segments, end)
}

/// Where the entropy data at the start of `bytes` ends, without decoding it.
fn scan_end(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(offset) = memchr(0xFF, &bytes[i..]) {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(0x00 | 0xD0..=0xD7 | 0xFF) => i = at + 1,
            Some(_) => return at,
            None => break,
        }
    }
    bytes.len()
}

fn be16(bytes: &[u8], at: usize) -> Result<usize, DcError> {
    match bytes.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]]) as usize),
        None => Err(DcError::Corrupt),
    }
}

/// Decodes `bytes` (a JPEG) at 1/8 scale, entropy decoding on up to `threads` threads.
pub fn decode_eighth(bytes: &[u8], threads: usize) -> Result<Eighth, DcError> {
    decode_eighth_split(bytes, threads, MIN_PARALLEL_BYTES)
}

/// The DC coefficients gathered so far, per frame component.
struct Coefficients {
    planes: Vec<Vec<i32>>,
    /// The DC quantisation step, once the component's first DC scan has been decoded.
    steps: Vec<Option<i32>>,
}

/// One scan's header, resolved against the frame.
struct ScanHeader {
    /// Frame component indices, in scan order.
    components: Vec<usize>,
    /// Per scan component: (DC table, AC table).
    tables: Vec<(usize, usize)>,
    spectral: (u8, u8),
    approximation: (u8, u8),
}

fn scan_header(body: &[u8], frame: &Frame) -> Result<ScanHeader, DcError> {
    let count = *body.first().ok_or(DcError::Corrupt)? as usize;
    if count == 0 || count > frame.components.len() {
        return Err(DcError::Corrupt);
    }
    let mut components = Vec::with_capacity(count);
    let mut tables = Vec::with_capacity(count);
    for i in 0..count {
        let s = body.get(1 + 2 * i..3 + 2 * i).ok_or(DcError::Corrupt)?;
        let index = frame
            .components
            .iter()
            .position(|c| c.id == s[0])
            .ok_or(DcError::Corrupt)?;
        if components.contains(&index) {
            return Err(DcError::Corrupt);
        }
        components.push(index);
        tables.push(((s[1] >> 4) as usize, (s[1] & 15) as usize));
    }
    let tail = body
        .get(1 + 2 * count..4 + 2 * count)
        .ok_or(DcError::Corrupt)?;
    let blocks_per_mcu: usize = components
        .iter()
        .map(|&c| frame.components[c].h * frame.components[c].v)
        .sum();
    if count > 1 && blocks_per_mcu > 10 {
        return Err(DcError::Corrupt); // the standard's limit
    }
    Ok(ScanHeader {
        components,
        tables,
        spectral: (tail[0], tail[1]),
        approximation: (tail[2] >> 4, tail[2] & 15),
    })
}

struct Tables {
    quant: [Option<u16>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    threads: usize,
    min_split_bytes: usize,
}

/// Decodes a scan that carries the first (or only) DC values of its components, each shifted
/// left by `shift` (a progressive scan's successive approximation).
fn first_dc_scan(
    entropy: &[u8],
    frame: &Frame,
    header: &ScanHeader,
    tables: &Tables,
    coefficients: &mut Coefficients,
) -> Result<usize, DcError> {
    let with_ac = !frame.progressive;
    let places = frame.places(&header.components);
    let mut place_tables = Vec::with_capacity(places.len());
    for &c in &places {
        let at = header.components.iter().position(|&x| x == c).unwrap_or(0);
        let (dc, ac) = header.tables[at];
        let dc = tables.dc.get(dc).and_then(Option::as_ref);
        let ac = tables.ac.get(ac).and_then(Option::as_ref);
        let ac = if with_ac {
            Some(ac.ok_or(DcError::Corrupt)?)
        } else {
            None
        };
        place_tables.push((dc.ok_or(DcError::Corrupt)?, ac, c));
    }
    for &c in &header.components {
        if coefficients.steps[c].is_some() {
            return Err(DcError::Corrupt); // a component's DC coded twice
        }
        let quant = tables.quant[frame.components[c].quant].ok_or(DcError::Corrupt)?;
        coefficients.steps[c] = Some(quant as i32);
    }
    let (data, segments, end) = unstuff(entropy);
    if data.len() >= 1 << 29 {
        return Err(DcError::Unsupported); // bit positions are kept as u32
    }
    let scan = Scan {
        data: &data,
        tables: place_tables,
    };
    let total = frame.scan_mcus(&header.components) * places.len();
    let dcs = if tables.restart_interval > 0 {
        let intervals = frame
            .scan_mcus(&header.components)
            .div_ceil(tables.restart_interval);
        if segments.len() < intervals {
            return Err(DcError::Corrupt);
        }
        let interval_blocks = tables.restart_interval * places.len();
        decode_intervals(
            &scan,
            &segments[..intervals],
            interval_blocks,
            total,
            tables.threads,
        )
    } else {
        let (_, bytes) = segments[0];
        let pieces = if bytes >= tables.min_split_bytes {
            tables.threads.clamp(1, 16)
        } else {
            1
        };
        decode_split(&scan, bytes * 8, total, pieces)
    }
    .ok_or(DcError::Corrupt)?;
    let shift = header.approximation.1;
    let mut dcs = dcs.into_iter();
    let planes = &mut coefficients.planes;
    frame.for_each_block(&header.components, |c, index| match dcs.next() {
        Some(dc) => {
            planes[c][index] = dc << shift;
            true
        }
        None => false,
    });
    Ok(end)
}

/// Decodes a progressive DC refinement scan: one more bit of every block's DC value.
fn refine_dc_scan(
    entropy: &[u8],
    frame: &Frame,
    header: &ScanHeader,
    restart_interval: usize,
    coefficients: &mut Coefficients,
) -> Result<usize, DcError> {
    if header
        .components
        .iter()
        .any(|&c| coefficients.steps[c].is_none())
    {
        return Err(DcError::Corrupt); // refining what was never coded
    }
    let (data, segments, end) = unstuff(entropy);
    let interval_blocks = restart_interval * frame.places(&header.components).len();
    let bit = 1i32 << header.approximation.1;
    let (mut segment, mut decoded) = (0, 0usize);
    let mut bits = Bits::at(&data, 0);
    let planes = &mut coefficients.planes;
    let complete = frame.for_each_block(&header.components, |c, index| {
        if interval_blocks > 0 && decoded > 0 && decoded % interval_blocks == 0 {
            segment += 1;
            match segments.get(segment) {
                Some(&(start, _)) => bits = Bits::at(&data, start * 8),
                None => return false,
            }
        }
        if bits.position() >= segments[segment.min(segments.len() - 1)].1 * 8 {
            return false;
        }
        bits.refill();
        if bits.buffer >> 63 == 1 {
            planes[c][index] |= bit;
        }
        bits.consume(1);
        decoded += 1;
        true
    });
    if complete {
        Ok(end)
    } else {
        Err(DcError::Corrupt)
    }
}

/// [`decode_eighth`], splitting scans without restart markers only when they hold at least
/// `min_split_bytes` of entropy data (tests use 0 to split even small images).
pub fn decode_eighth_split(
    bytes: &[u8],
    threads: usize,
    min_split_bytes: usize,
) -> Result<Eighth, DcError> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(DcError::Corrupt);
    }
    let mut tables = Tables {
        quant: [None; 4],
        dc: Default::default(),
        ac: Default::default(),
        restart_interval: 0,
        threads,
        min_split_bytes,
    };
    let mut frame: Option<Frame> = None;
    let mut coefficients = Coefficients {
        planes: Vec::new(),
        steps: Vec::new(),
    };
    let mut adobe_transform = None;
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return Err(DcError::Corrupt);
        }
        let marker = *bytes.get(at + 1).ok_or(DcError::Corrupt)?;
        at += 2;
        match marker {
            0xD9 => break,                  // end of image
            0xD0..=0xD7 | 0x01 => continue, // no length
            _ => {}
        }
        let length = be16(bytes, at)?;
        if length < 2 {
            return Err(DcError::Corrupt);
        }
        let body = bytes.get(at + 2..at + length).ok_or(DcError::Corrupt)?;
        match marker {
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(DcError::Corrupt);
                }
                let precision = *body.first().ok_or(DcError::Corrupt)?;
                let height = be16(body, 1)?;
                let width = be16(body, 3)?;
                let count = *body.get(5).ok_or(DcError::Corrupt)? as usize;
                if precision != 8 || height == 0 || width == 0 || !(count == 1 || count == 3) {
                    return Err(DcError::Unsupported);
                }
                let mut components = Vec::with_capacity(count);
                for i in 0..count {
                    let c = body.get(6 + 3 * i..9 + 3 * i).ok_or(DcError::Corrupt)?;
                    let (h, v) = ((c[1] >> 4) as usize, (c[1] & 15) as usize);
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                        return Err(DcError::Corrupt);
                    }
                    components.push(Component {
                        id: c[0],
                        h,
                        v,
                        quant: c[2] as usize,
                    });
                }
                let f = Frame::new(width, height, components, marker == 0xC2);
                coefficients = Coefficients {
                    planes: (0..count)
                        .map(|c| {
                            let (w, h) = f.plane(c);
                            vec![0; w * h]
                        })
                        .collect(),
                    steps: vec![None; count],
                };
                frame = Some(f);
            }
            // Lossless, hierarchical, arithmetic-coded frames.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(DcError::Unsupported);
            }
            0xC4 => {
                let mut rest = body;
                while !rest.is_empty() {
                    let class_id = rest[0];
                    let counts: [u8; 16] = rest
                        .get(1..17)
                        .ok_or(DcError::Corrupt)?
                        .try_into()
                        .map_err(|_| DcError::Corrupt)?;
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    let values = rest.get(17..17 + n).ok_or(DcError::Corrupt)?;
                    let (class, id) = ((class_id >> 4) as usize, (class_id & 15) as usize);
                    if class > 1 || id > 3 || n > 256 {
                        return Err(DcError::Corrupt);
                    }
                    let table = Some(Huffman::new(&counts, values, class == 1)?);
                    if class == 0 {
                        tables.dc[id] = table;
                    } else {
                        tables.ac[id] = table;
                    }
                    rest = &rest[17 + n..];
                }
            }
            0xDB => {
                let mut rest = body;
                while !rest.is_empty() {
                    let (wide, id) = ((rest[0] >> 4) as usize, (rest[0] & 15) as usize);
                    let size = if wide == 1 { 128 } else { 64 };
                    let table = rest.get(1..1 + size).ok_or(DcError::Corrupt)?;
                    if id > 3 || wide > 1 {
                        return Err(DcError::Corrupt);
                    }
                    // Only the DC step (the first, in zig-zag order) matters at 1/8 scale.
                    tables.quant[id] = Some(if wide == 1 {
                        u16::from_be_bytes([table[0], table[1]])
                    } else {
                        table[0] as u16
                    });
                    rest = &rest[1 + size..];
                }
            }
            0xDD => tables.restart_interval = be16(body, 0)?,
            0xEE if body.starts_with(b"Adobe") => adobe_transform = body.get(11).copied(),
            0xDA => {
                let f = frame.as_ref().ok_or(DcError::Corrupt)?;
                let header = scan_header(body, f)?;
                let entropy = &bytes[at + length..];
                let end = match (f.progressive, header.spectral, header.approximation) {
                    (false, (0, 63), (0, 0)) => {
                        first_dc_scan(entropy, f, &header, &tables, &mut coefficients)?
                    }
                    (false, _, _) => return Err(DcError::Corrupt),
                    (true, (0, 0), (0, _)) => {
                        first_dc_scan(entropy, f, &header, &tables, &mut coefficients)?
                    }
                    (true, (0, 0), (_, _)) => refine_dc_scan(
                        entropy,
                        f,
                        &header,
                        tables.restart_interval,
                        &mut coefficients,
                    )?,
                    (true, (0, _), _) => return Err(DcError::Corrupt),
                    // AC scans: nothing at 1/8 scale; only where they end matters.
                    (true, _, _) => scan_end(entropy),
                };
                at += length + end;
                continue;
            }
            _ => {}
        }
        at += length;
    }
    let frame = frame.ok_or(DcError::Corrupt)?;
    let rgb = adobe_transform == Some(0)
        || (adobe_transform.is_none()
            && frame.components.iter().map(|c| c.id).eq([b'R', b'G', b'B']));
    compose(&frame, &coefficients, rgb)
}

/// DC coefficients → samples per component → upsampled, colour-converted RGB at 1/8 size.
fn compose(frame: &Frame, coefficients: &Coefficients, rgb: bool) -> Result<Eighth, DcError> {
    let (width, height) = (frame.width.div_ceil(8), frame.height.div_ceil(8));
    let (hmax, vmax) = (frame.hmax, frame.vmax);
    let mut samples = Vec::with_capacity(frame.components.len());
    for (c, plane) in coefficients.planes.iter().enumerate() {
        // Every component needs its DC values; a file that ends before them is damaged.
        let step = coefficients.steps[c].ok_or(DcError::Corrupt)?;
        // The 1×1 inverse DCT: an 8×8 block's mean is its DC value / 8.
        let plane: Vec<u8> = plane
            .iter()
            .map(|&dc| (((dc * step + 4) >> 3) + 128).clamp(0, 255) as u8)
            .collect();
        samples.push(plane);
    }
    // Each component at output resolution; subsampled ones interpolated between sample
    // centres, as libjpeg's "fancy" upsampling does, so colour edges do not turn to steps.
    let upsampled = |c: usize| -> Vec<u8> {
        let component = frame.components[c];
        let (pw, ph) = frame.plane(c);
        let plane = &samples[c];
        if component.h == hmax && component.v == vmax {
            return (0..height)
                .flat_map(|y| plane[y * pw..y * pw + width].iter().copied())
                .collect();
        }
        // Source coordinate of an output pixel centre, as (index, weight of index + 1 in 1/256).
        let axis = |n: usize, factor: usize, max: usize, size: usize| -> Vec<(usize, u32)> {
            (0..n)
                .map(|i| {
                    let at = ((i as f32 + 0.5) * factor as f32 / max as f32 - 0.5).max(0.0);
                    let index = (at as usize).min(size - 1);
                    let weight = if index + 1 < size {
                        ((at - index as f32) * 256.0).round() as u32
                    } else {
                        0
                    };
                    (index, weight)
                })
                .collect()
        };
        let xs = axis(width, component.h, hmax, pw);
        let ys = axis(height, component.v, vmax, ph);
        let mut out = Vec::with_capacity(width * height);
        for &(y0, wy) in &ys {
            let row0 = &plane[y0 * pw..(y0 + 1) * pw];
            let row1 = &plane[(y0 + (wy > 0) as usize) * pw..][..pw];
            for &(x0, wx) in &xs {
                let x1 = x0 + (wx > 0) as usize;
                let top = row0[x0] as u32 * (256 - wx) + row0[x1] as u32 * wx;
                let bottom = row1[x0] as u32 * (256 - wx) + row1[x1] as u32 * wx;
                out.push(((top * (256 - wy) + bottom * wy + (1 << 15)) >> 16) as u8);
            }
        }
        out
    };
    let mut pixels = Vec::with_capacity(width * height * 3);
    if frame.components.len() == 1 {
        pixels.extend(upsampled(0).into_iter().flat_map(|g| [g, g, g]));
    } else {
        let (a, b, c) = (upsampled(0), upsampled(1), upsampled(2));
        for ((&y, &cb), &cr) in a.iter().zip(&b).zip(&c) {
            if rgb {
                pixels.extend_from_slice(&[y, cb, cr]);
            } else {
                pixels.extend_from_slice(&ycbcr_to_rgb(y as i32, cb as i32, cr as i32));
            }
        }
    }
    Ok(Eighth {
        width: width as u32,
        height: height as u32,
        rgb: pixels,
    })
}

/// JFIF's YCbCr → RGB in 16.16 fixed point.
#[inline]
fn ycbcr_to_rgb(y: i32, cb: i32, cr: i32) -> [u8; 3] {
    const HALF: i32 = 1 << 15;
    let (cb, cr) = (cb - 128, cr - 128);
    let y = (y << 16) + HALF;
    let r = (y + 91_881 * cr) >> 16;
    let g = (y - 22_554 * cb - 46_802 * cr) >> 16;
    let b = (y + 116_130 * cb) >> 16;
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuffing_removes_zero_bytes_and_splits_at_restart_markers() {
        let bytes = [1, 0xFF, 0, 2, 0xFF, 0xD0, 3, 0xFF, 0xFF, 0xD9, 9];
        let (data, segments, end) = unstuff(&bytes);
        assert_eq!(&data[..4], &[1, 0xFF, 2, 3]);
        assert_eq!(segments, vec![(0, 3), (3, 4)]);
        assert_eq!(data.len(), 4 + PADDING);
        assert_eq!((end, scan_end(&bytes)), (8, 8));
    }

    #[test]
    fn not_a_jpeg_and_cut_headers_are_corrupt_not_panics() {
        assert_eq!(decode_eighth(b"", 2), Err(DcError::Corrupt));
        assert_eq!(decode_eighth(&[0xFF, 0xD8, 0xFF], 2), Err(DcError::Corrupt));
        assert_eq!(
            decode_eighth(&[0xFF, 0xD8, 0xFF, 0xC4, 0, 40, 0], 2),
            Err(DcError::Corrupt)
        );
    }
}
