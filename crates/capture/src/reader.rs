//! Capture files: pcap and pcapng, plain or gzip-compressed, read one block at a time.
//!
//! Captures can be gigabytes, so the reader streams: it holds a window of the file (1 MiB,
//! more only for a larger block), never the file. Packets are lent out of that window
//! ([`Block`] borrows the reader until the next call), so a packet costs one copy, the
//! kernel's, and no allocation: `mtls trace` reads a capture at hundreds of MB/s. The I/O is
//! a thin loop ([`CaptureReader::next`]) around pure functions that decode a block's bytes,
//! so the format knowledge is testable without files. Lengths come from the file and are
//! checked against [`MAX_BLOCK`] before any buffer is sized by them; the window grows only
//! with the bytes actually present, so a lying length on a short file costs nothing.
//!
//! Offsets in errors count bytes of the capture itself, after gzip decompression.

use std::borrow::Cow;
use std::io::{self, Chain, Cursor, Read};

use flate2::read::MultiGzDecoder;

/// The largest block (pcapng) or packet record (pcap) accepted: 256 MiB. Real link layers
/// stay far below (a 64 KiB TSO frame is large); anything above is a corrupt length.
pub const MAX_BLOCK: u64 = 256 * 1024 * 1024;

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// Reading (or decompressing) the input failed.
    #[error("reading the capture at byte {offset}: {source}")]
    Io {
        /// Where in the capture the read started.
        offset: u64,
        /// What the reader said.
        source: io::Error,
    },
    /// The input starts with neither a pcap nor a pcapng nor a gzip magic number.
    #[error("not a pcap or pcapng capture (starts with {magic:02x?})")]
    NotACapture {
        /// The first bytes of the input (fewer when the input is shorter).
        magic: Vec<u8>,
    },
    /// The capture ends in the middle of a header or a block.
    #[error("capture truncated at byte {offset}: {what} needs {needed} bytes, {present} present")]
    Truncated {
        /// The offset where the data stops.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// How many bytes it needs.
        needed: u64,
        /// How many were there.
        present: u64,
    },
    /// A length field above [`MAX_BLOCK`].
    #[error("{what} at byte {offset} claims {length} bytes, more than the 256 MiB limit")]
    TooLarge {
        /// Where the block or record starts.
        offset: u64,
        /// What it is.
        what: &'static str,
        /// The length it claims.
        length: u64,
    },
    /// A block whose contents contradict the format.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        /// Where the block or record starts.
        offset: u64,
        /// What it is.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A link-layer header type (the LINKTYPE_* registry of tcpdump.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkType {
    /// 0: BSD loopback, a 4-byte address family in the capturing host's byte order.
    Null,
    /// 1: Ethernet II, possibly with 802.1Q/802.1ad tags.
    Ethernet,
    /// 101 (and 12/14 on some BSDs): a bare IPv4 or IPv6 packet.
    Raw,
    /// 108: OpenBSD loopback, a 4-byte address family in network byte order.
    Loop,
    /// 113: Linux "cooked" capture, version 1 (`tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// 228: a bare IPv4 packet.
    Ipv4,
    /// 229: a bare IPv6 packet.
    Ipv6,
    /// 276: Linux "cooked" capture, version 2 (`tcpdump -i any` since libpcap 1.10).
    LinuxSll2,
    /// Anything else, with its number.
    Other(u32),
}

impl LinkType {
    /// The link type for a LINKTYPE_* number.
    pub fn from_raw(raw: u32) -> LinkType {
        match raw {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The LINKTYPE_* number (101 for every raw-IP alias).
    pub fn raw(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(raw) => raw,
        }
    }
}

/// One captured frame, borrowed from the reader's window until its next call (or owned,
/// after [`Block::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch. A pcapng Simple Packet Block has
    /// none and carries the previous packet's time.
    pub ts_nanos: u64,
    /// The link layer `data` starts with.
    pub link: LinkType,
    /// The captured bytes (possibly cut short by the capture's snapshot length).
    pub data: Cow<'a, [u8]>,
}

/// What the reader yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Block<'a> {
    /// A captured frame.
    Packet(Packet<'a>),
    /// NSS key log text embedded in a pcapng Decryption Secrets Block
    /// (`editcap --inject-secrets tls,keys.txt`).
    KeyLog(String),
}

impl Block<'_> {
    /// The same block, owning its bytes (to keep it past the reader's next call).
    pub fn into_owned(self) -> Block<'static> {
        match self {
            Block::Packet(p) => Block::Packet(Packet {
                ts_nanos: p.ts_nanos,
                link: p.link,
                data: Cow::Owned(p.data.into_owned()),
            }),
            Block::KeyLog(text) => Block::KeyLog(text),
        }
    }
}

/// A streaming reader of pcap and pcapng captures, plain or gzip-compressed.
pub struct CaptureReader<R: Read> {
    input: Window<R>,
    offset: u64,
    format: Format,
    last_ts: u64,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("offset", &self.offset)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl<R: Read> CaptureReader<R> {
    /// Open a capture: read its first header and detect pcap, pcapng or gzip.
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        let got = read_full(&mut input, &mut magic, 0)?;
        let head = Cursor::new(magic[..got].to_vec());
        let mut input = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
            Input::Gzip(Box::new(MultiGzDecoder::new(head.chain(input))))
        } else {
            Input::Plain(head.chain(input))
        };
        let mut reader_offset = 0;
        let mut first = [0u8; 4];
        let got = read_full(&mut input, &mut first, 0)?;
        if got < 4 {
            return Err(CaptureError::NotACapture {
                magic: first[..got].to_vec(),
            });
        }
        reader_offset += 4;
        let format = match u32::from_be_bytes(first) {
            0xa1b2_c3d4 => Format::Pcap(PcapHeader::start(Endian::Big, 1_000)),
            0xd4c3_b2a1 => Format::Pcap(PcapHeader::start(Endian::Little, 1_000)),
            0xa1b2_3c4d => Format::Pcap(PcapHeader::start(Endian::Big, 1)),
            0x4d3c_b2a1 => Format::Pcap(PcapHeader::start(Endian::Little, 1)),
            SHB_TYPE => Format::Pcapng(Section::default()),
            _ => {
                return Err(CaptureError::NotACapture {
                    magic: first.to_vec(),
                });
            }
        };
        let mut reader = CaptureReader {
            input: Window::new(input),
            offset: reader_offset,
            format,
            last_ts: 0,
        };
        match &mut reader.format {
            Format::Pcap(_) => {
                let rest = reader.read_array::<20>("pcap file header")?;
                if let Format::Pcap(header) = &mut reader.format {
                    header.link = LinkType::from_raw(header.endian.u32(&rest[16..20]) & 0xffff);
                }
            }
            Format::Pcapng(_) => reader.read_shb(0)?,
        }
        Ok(reader)
    }

    /// The next packet or key log, `None` at the end of the capture. A packet borrows the
    /// reader's window: use it (or [`Block::into_owned`]) before calling again.
    // Not an Iterator: an error ends the capture, and `?` reads better than Option<Result>.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Block<'_>>, CaptureError> {
        match self.format {
            Format::Pcap(header) => self.next_pcap(header),
            Format::Pcapng(_) => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, header: PcapHeader) -> Result<Option<Block<'_>>, CaptureError> {
        let start = self.offset;
        let Some(record) = self.read_or_eof::<16>("pcap record header")? else {
            return Ok(None);
        };
        let e = header.endian;
        let seconds = u64::from(e.u32(&record[0..4]));
        let fraction = u64::from(e.u32(&record[4..8]));
        let captured = u64::from(e.u32(&record[8..12]));
        if captured > MAX_BLOCK {
            return Err(CaptureError::TooLarge {
                offset: start,
                what: "pcap record",
                length: captured,
            });
        }
        let ts_nanos = seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(fraction.saturating_mul(header.fraction_nanos));
        self.last_ts = ts_nanos;
        let data = self.read_slice(captured, "pcap record data")?;
        Ok(Some(Block::Packet(Packet {
            ts_nanos,
            link: header.link,
            data: Cow::Borrowed(data),
        })))
    }

    fn next_pcapng(&mut self) -> Result<Option<Block<'_>>, CaptureError> {
        loop {
            let start = self.offset;
            let Some(head) = self.read_or_eof::<8>("pcapng block header")? else {
                return Ok(None);
            };
            if u32::from_be_bytes([head[0], head[1], head[2], head[3]]) == SHB_TYPE {
                // The block type is a palindrome; its byte order comes after the length.
                self.read_shb_after_type(start, [head[4], head[5], head[6], head[7]])?;
                continue;
            }
            let Format::Pcapng(section) = &self.format else {
                return Ok(None);
            };
            let e = section.endian;
            let block_type = e.u32(&head[0..4]);
            let total = u64::from(e.u32(&head[4..8]));
            check_block_length(start, total)?;
            // Body and trailer in one piece, so the body can be lent out of the window.
            let body_len = (total - 12) as usize;
            let available = self.input.fill(body_len + 4, self.offset)?;
            if available < body_len + 4 {
                let (what, needed, present) = if available < body_len {
                    ("pcapng block body", body_len, available)
                } else {
                    ("pcapng block trailer", 4, available - body_len)
                };
                return Err(CaptureError::Truncated {
                    offset: self.offset + available as u64,
                    what,
                    needed: needed as u64,
                    present: present as u64,
                });
            }
            self.offset += total - 8;
            let at = self.input.take_range(body_len + 4);
            let rest = &self.input.buf[at.clone()];
            let (body, trailer) = rest.split_at(body_len);
            if u64::from(e.u32(trailer)) != total {
                return Err(CaptureError::Malformed {
                    offset: start,
                    what: "pcapng block",
                    reason: format!(
                        "leading length {total} and trailing length {} differ",
                        e.u32(trailer)
                    ),
                });
            }
            let Format::Pcapng(section) = &mut self.format else {
                return Ok(None);
            };
            // What the block holds, as a range of the body: the packet is lent out of the
            // window after the loop (a borrow returned from inside it would hold the reader).
            match decode_block(section, block_type, body, self.last_ts) {
                Ok(Some(Found::Packet {
                    ts_nanos,
                    link,
                    data,
                })) => {
                    self.last_ts = ts_nanos;
                    let data = &self.input.buf[at.start + data.start..at.start + data.end];
                    return Ok(Some(Block::Packet(Packet {
                        ts_nanos,
                        link,
                        data: Cow::Borrowed(data),
                    })));
                }
                Ok(Some(Found::KeyLog(text))) => return Ok(Some(Block::KeyLog(text))),
                Ok(None) => continue,
                Err((what, reason)) => {
                    return Err(CaptureError::Malformed {
                        offset: start,
                        what,
                        reason,
                    });
                }
            }
        }
    }

    /// Read a Section Header Block whose 4-byte type has been read at `start`.
    fn read_shb(&mut self, start: u64) -> Result<(), CaptureError> {
        let length = self.read_array::<4>("pcapng section header")?;
        self.read_shb_after_type(start, length)
    }

    fn read_shb_after_type(&mut self, start: u64, length: [u8; 4]) -> Result<(), CaptureError> {
        self.offset = start + 8;
        let magic = self.read_array::<4>("pcapng byte-order magic")?;
        let endian = match u32::from_be_bytes(magic) {
            0x1a2b_3c4d => Endian::Big,
            0x4d3c_2b1a => Endian::Little,
            _ => {
                return Err(CaptureError::Malformed {
                    offset: start,
                    what: "pcapng section header",
                    reason: format!("byte-order magic {magic:02x?}"),
                });
            }
        };
        let total = u64::from(endian.u32(&length));
        check_block_length(start, total)?;
        if total < 28 {
            return Err(CaptureError::Malformed {
                offset: start,
                what: "pcapng section header",
                reason: format!("length {total} is below the 28-byte minimum"),
            });
        }
        // Version, section length and options: nothing in them changes how packets read.
        let rest = self.read_slice(total - 12, "pcapng section header")?;
        let trailer = rest.get(rest.len().saturating_sub(4)..).unwrap_or_default();
        if u64::from(endian.u32(trailer)) != total {
            return Err(CaptureError::Malformed {
                offset: start,
                what: "pcapng section header",
                reason: "leading and trailing lengths differ".into(),
            });
        }
        self.format = Format::Pcapng(Section {
            endian,
            interfaces: Vec::new(),
        });
        Ok(())
    }

    /// The next `N` bytes, or `None` at a clean end of input (none of them present).
    fn read_or_eof<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<Option<[u8; N]>, CaptureError> {
        if self.input.fill(N, self.offset)? == 0 {
            return Ok(None);
        }
        self.read_array(what).map(Some)
    }

    fn read_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CaptureError> {
        let bytes = self.read_slice(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The next `len` bytes (already checked against [`MAX_BLOCK`]), lent from the window.
    fn read_slice(&mut self, len: u64, what: &'static str) -> Result<&[u8], CaptureError> {
        let want = len as usize;
        let available = self.input.fill(want, self.offset)?;
        if available < want {
            self.offset += available as u64;
            return Err(CaptureError::Truncated {
                offset: self.offset,
                what,
                needed: len,
                present: available as u64,
            });
        }
        self.offset += len;
        Ok(self.input.take(want))
    }
}

/// The part of the input read but not yet used: `buf[start..end]`.
struct Window<R: Read> {
    input: Input<R>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// The window's usual size; it grows (doubling, with the data) only for a larger block.
const WINDOW: usize = 1 << 20;

impl<R: Read> Window<R> {
    fn new(input: Input<R>) -> Self {
        Window {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Make at least `n` bytes available unless the input ends first; the count available.
    /// `offset` is the capture offset of the window's start, for errors.
    fn fill(&mut self, n: usize, offset: u64) -> Result<usize, CaptureError> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        if self.start + n > self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.end == self.buf.len() {
                // Grow with the data actually read, so a lying length costs nothing.
                let grown = (self.buf.len() * 2).clamp(WINDOW, (self.start + n).max(WINDOW));
                self.buf.resize(grown, 0);
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(got) => self.end += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Io {
                        offset: offset + (self.end - self.start) as u64,
                        source,
                    });
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// The next `n` bytes, which [`Window::fill`] made available.
    fn take(&mut self, n: usize) -> &[u8] {
        let range = self.take_range(n);
        &self.buf[range]
    }

    /// Where in `buf` the next `n` bytes are; they count as used.
    fn take_range(&mut self, n: usize) -> std::ops::Range<usize> {
        let from = self.start;
        self.start = (from + n).min(self.end);
        from..self.start
    }
}

const SHB_TYPE: u32 = 0x0a0d_0d0a;
const IDB_TYPE: u32 = 1;
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const DSB_TYPE: u32 = 0x0a;
const TLS_KEY_LOG: u32 = 0x544c_534b;

enum Input<R: Read> {
    Plain(Chain<Cursor<Vec<u8>>, R>),
    Gzip(Box<MultiGzDecoder<Chain<Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Big,
    Little,
}

impl Endian {
    /// Decode up to 4 bytes; callers pass slices they have sized (a short slice reads as 0).
    fn u32(self, b: &[u8]) -> u32 {
        let mut a = [0u8; 4];
        let n = b.len().min(4);
        a[..n].copy_from_slice(&b[..n]);
        match self {
            Endian::Big => u32::from_be_bytes(a),
            Endian::Little => u32::from_le_bytes(a),
        }
    }

    fn u16(self, b: &[u8]) -> u16 {
        let mut a = [0u8; 2];
        let n = b.len().min(2);
        a[..n].copy_from_slice(&b[..n]);
        match self {
            Endian::Big => u16::from_be_bytes(a),
            Endian::Little => u16::from_le_bytes(a),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PcapHeader {
    endian: Endian,
    /// Nanoseconds per unit of the record's fraction field (1000 for µs files, 1 for ns).
    fraction_nanos: u64,
    link: LinkType,
}

impl PcapHeader {
    fn start(endian: Endian, fraction_nanos: u64) -> PcapHeader {
        PcapHeader {
            endian,
            fraction_nanos,
            link: LinkType::Other(u32::MAX),
        }
    }
}

#[derive(Debug)]
enum Format {
    Pcap(PcapHeader),
    Pcapng(Section),
}

#[derive(Debug)]
struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            endian: Endian::Little,
            interfaces: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    resolution: Resolution,
    /// if_tsoffset: seconds to add to every timestamp.
    offset_seconds: i64,
}

/// if_tsresol: a timestamp unit of 10^-n or 2^-n seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn to_nanos(self, units: u64) -> u64 {
        match self {
            Resolution::Decimal(n) if n <= 9 => units.saturating_mul(10u64.pow(u32::from(9 - n))),
            Resolution::Decimal(n) => {
                // 10^(n-9) overflows u64 for n > 28; such a unit rounds every stamp to 0.
                10u64.checked_pow(u32::from(n - 9)).map_or(0, |d| units / d)
            }
            Resolution::Binary(n) => {
                let nanos = (u128::from(units) * 1_000_000_000) >> u32::from(n.min(127));
                u64::try_from(nanos).unwrap_or(u64::MAX)
            }
        }
    }
}

fn check_block_length(start: u64, total: u64) -> Result<(), CaptureError> {
    if total > MAX_BLOCK {
        return Err(CaptureError::TooLarge {
            offset: start,
            what: "pcapng block",
            length: total,
        });
    }
    if total < 12 || !total.is_multiple_of(4) {
        return Err(CaptureError::Malformed {
            offset: start,
            what: "pcapng block",
            reason: format!("length {total} is not a multiple of 4 of at least 12"),
        });
    }
    Ok(())
}

/// What a pcapng block holds for the reader's caller.
enum Found {
    /// A packet whose bytes are `data` of the block's body.
    Packet {
        ts_nanos: u64,
        link: LinkType,
        data: std::ops::Range<usize>,
    },
    KeyLog(String),
}

type BlockResult = Result<Option<Found>, (&'static str, String)>;

/// Decode one pcapng block body (without type, lengths); `None` for blocks that carry
/// nothing for us (interfaces are recorded in `section`, unknown types skipped).
fn decode_block(section: &mut Section, block_type: u32, body: &[u8], last_ts: u64) -> BlockResult {
    let e = section.endian;
    match block_type {
        IDB_TYPE => {
            let what = "pcapng interface description";
            let fixed = body
                .get(..8)
                .ok_or((what, "shorter than 8 bytes".to_string()))?;
            let mut interface = Interface {
                link: LinkType::from_raw(u32::from(e.u16(&fixed[0..2]))),
                snaplen: e.u32(&fixed[4..8]),
                resolution: Resolution::Decimal(6),
                offset_seconds: 0,
            };
            for (code, value) in options(e, body.get(8..).unwrap_or_default()) {
                match (code, value.len()) {
                    (9, 1) => {
                        let v = value[0];
                        interface.resolution = if v & 0x80 == 0 {
                            Resolution::Decimal(v)
                        } else {
                            Resolution::Binary(v & 0x7f)
                        };
                    }
                    (14, 8) => {
                        let hi = u64::from(e.u32(&value[0..4]));
                        let lo = u64::from(e.u32(&value[4..8]));
                        let raw = match e {
                            Endian::Big => (hi << 32) | lo,
                            Endian::Little => (lo << 32) | hi,
                        };
                        interface.offset_seconds = raw as i64;
                    }
                    _ => {}
                }
            }
            section.interfaces.push(interface);
            Ok(None)
        }
        EPB_TYPE | PB_TYPE => {
            let what = if block_type == EPB_TYPE {
                "pcapng enhanced packet"
            } else {
                "pcapng packet block"
            };
            let fixed = body
                .get(..20)
                .ok_or((what, "shorter than 20 bytes".to_string()))?;
            let id = if block_type == EPB_TYPE {
                e.u32(&fixed[0..4])
            } else {
                u32::from(e.u16(&fixed[0..2]))
            };
            let interface = interface(section, id, what)?;
            let units = (u64::from(e.u32(&fixed[4..8])) << 32) | u64::from(e.u32(&fixed[8..12]));
            let captured = e.u32(&fixed[12..16]) as usize;
            let data = 20..20usize.saturating_add(captured);
            if data.end > body.len() {
                return Err((
                    what,
                    format!("captured length {captured} exceeds the block"),
                ));
            }
            let ts = interface.resolution.to_nanos(units);
            let ts_nanos = if interface.offset_seconds >= 0 {
                ts.saturating_add((interface.offset_seconds as u64).saturating_mul(1_000_000_000))
            } else {
                ts.saturating_sub(
                    interface
                        .offset_seconds
                        .unsigned_abs()
                        .saturating_mul(1_000_000_000),
                )
            };
            Ok(Some(Found::Packet {
                ts_nanos,
                link: interface.link,
                data,
            }))
        }
        SPB_TYPE => {
            let what = "pcapng simple packet";
            let interface = interface(section, 0, what)?;
            let fixed = body
                .get(..4)
                .ok_or((what, "shorter than 4 bytes".to_string()))?;
            let original = e.u32(fixed) as usize;
            let mut captured = original.min(body.len() - 4);
            if interface.snaplen != 0 {
                captured = captured.min(interface.snaplen as usize);
            }
            Ok(Some(Found::Packet {
                ts_nanos: last_ts,
                link: interface.link,
                data: 4..4 + captured,
            }))
        }
        DSB_TYPE => {
            let what = "pcapng decryption secrets";
            let fixed = body
                .get(..8)
                .ok_or((what, "shorter than 8 bytes".to_string()))?;
            if e.u32(&fixed[0..4]) != TLS_KEY_LOG {
                return Ok(None);
            }
            let len = e.u32(&fixed[4..8]) as usize;
            let secrets = body
                .get(8..8usize.saturating_add(len))
                .ok_or((what, format!("secrets length {len} exceeds the block")))?;
            let text = String::from_utf8(secrets.to_vec())
                .map_err(|_| (what, "the TLS key log is not UTF-8".to_string()))?;
            Ok(Some(Found::KeyLog(text)))
        }
        _ => Ok(None),
    }
}

fn interface(
    section: &Section,
    id: u32,
    what: &'static str,
) -> Result<Interface, (&'static str, String)> {
    section.interfaces.get(id as usize).copied().ok_or_else(|| {
        (
            what,
            format!(
                "interface {id} was not described ({} known)",
                section.interfaces.len()
            ),
        )
    })
}

/// pcapng options: (code, value) pairs, stopping at opt_endofopt or at the first one that
/// does not fit (options are informational, a bad one should not cost the packet).
fn options(e: Endian, mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let code = e.u16(&bytes[0..2]);
        let len = usize::from(e.u16(&bytes[2..4]));
        if code == 0 {
            break;
        }
        let Some(value) = bytes.get(4..4 + len) else {
            break;
        };
        out.push((code, value));
        let padded = 4 + len.div_ceil(4) * 4;
        bytes = bytes.get(padded..).unwrap_or_default();
    }
    out
}

/// Read until `buf` is full or the input ends; the count read.
fn read_full(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<usize, CaptureError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CaptureError::Io {
                    offset: offset + got as u64,
                    source,
                });
            }
        }
    }
    Ok(got)
}
