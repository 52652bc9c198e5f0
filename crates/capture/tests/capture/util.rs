//! Byte-by-byte builders of frames and capture files, so every test states its input.

use std::net::{IpAddr, SocketAddr};

use mtls_capture::{Segment, TcpFlags};

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;

/// A TCP header (with `options` bytes of NOP options) followed by `payload`.
pub fn tcp(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: usize,
    payload: &[u8],
) -> Vec<u8> {
    assert!(options.is_multiple_of(4));
    let mut b = Vec::new();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ack.to_be_bytes());
    b.push((((20 + options) / 4) as u8) << 4);
    b.push(flags);
    b.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
    b.extend(std::iter::repeat_n(1u8, options)); // NOP
    b.extend_from_slice(payload);
    b
}

/// An IPv4 header with `options` bytes of options; `fragment` is the flags+offset field.
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    options: usize,
    fragment: u16,
    payload: &[u8],
) -> Vec<u8> {
    let header = 20 + options;
    let mut b = vec![0x40 | (header / 4) as u8, 0];
    b.extend_from_slice(&((header + payload.len()) as u16).to_be_bytes());
    b.extend_from_slice(&[0x12, 0x34]);
    b.extend_from_slice(&fragment.to_be_bytes());
    b.extend_from_slice(&[64, protocol, 0, 0]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend(std::iter::repeat_n(1u8, options)); // NOP options
    b.extend_from_slice(payload);
    b
}

/// An IPv6 header followed by extension headers `(type, 8-byte units - 1)` and the payload.
pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    protocol: u8,
    extensions: &[(u8, u8)],
    payload: &[u8],
) -> Vec<u8> {
    let mut ext = Vec::new();
    for (i, (_, len)) in extensions.iter().enumerate() {
        let next = extensions.get(i + 1).map_or(protocol, |(t, _)| *t);
        let mut h = vec![next, *len];
        h.resize((usize::from(*len) + 1) * 8, 0);
        ext.extend_from_slice(&h);
    }
    let first = extensions.first().map_or(protocol, |(t, _)| *t);
    let mut b = vec![0x60, 0, 0, 0];
    b.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
    b.extend_from_slice(&[first, 64]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&ext);
    b.extend_from_slice(payload);
    b
}

/// An Ethernet frame with VLAN tags `(tpid, vlan id)`, padded to the 60-byte minimum.
pub fn ethernet(vlans: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for (tpid, id) in vlans {
        b.extend_from_slice(&tpid.to_be_bytes());
        b.extend_from_slice(&id.to_be_bytes());
    }
    b.extend_from_slice(&ethertype.to_be_bytes());
    b.extend_from_slice(payload);
    if b.len() < 60 {
        b.resize(60, 0);
    }
    b
}

/// A Linux cooked v1 (SLL) frame.
pub fn sll(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    b.extend_from_slice(&ethertype.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A Linux cooked v2 (SLL2) frame.
pub fn sll2(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = ethertype.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    b.extend_from_slice(payload);
    b
}

/// A pcap file.
pub fn pcap(big_endian: bool, nanos: bool, link: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut b = Vec::new();
    b.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    b.extend_from_slice(&u16b(2));
    b.extend_from_slice(&u16b(4));
    b.extend_from_slice(&u32b(0));
    b.extend_from_slice(&u32b(0));
    b.extend_from_slice(&u32b(65535));
    b.extend_from_slice(&u32b(link));
    for (sec, frac, data) in records {
        b.extend_from_slice(&u32b(*sec));
        b.extend_from_slice(&u32b(*frac));
        b.extend_from_slice(&u32b(data.len() as u32));
        b.extend_from_slice(&u32b(data.len() as u32));
        b.extend_from_slice(data);
    }
    b
}

/// A pcapng file under construction.
pub struct Ng {
    pub big_endian: bool,
    pub bytes: Vec<u8>,
}

impl Ng {
    /// A file starting with a Section Header Block.
    pub fn new(big_endian: bool) -> Ng {
        let mut ng = Ng {
            big_endian,
            bytes: Vec::new(),
        };
        ng.shb();
        ng
    }

    pub fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Append a block: type, total length, body padded to 4, total length.
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Ng {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        let t = self.u32(block_type);
        let l = self.u32(total);
        self.bytes.extend_from_slice(&t);
        self.bytes.extend_from_slice(&l);
        self.bytes.extend_from_slice(&body);
        self.bytes.extend_from_slice(&l);
        self
    }

    /// A Section Header Block (byte order of `self`), with one comment option.
    pub fn shb(&mut self) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(0x1a2b_3c4d));
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xff; 8]); // section length unknown
        body.extend_from_slice(&self.option(1, b"built by a test"));
        body.extend_from_slice(&self.option(0, b""));
        self.block(0x0a0d_0d0a, &body)
    }

    /// An option, padded.
    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut b = self.u16(code).to_vec();
        b.extend_from_slice(&self.u16(value.len() as u16));
        b.extend_from_slice(value);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        b
    }

    /// An Interface Description Block, with if_tsresol when given.
    pub fn idb(&mut self, link: u16, tsresol: Option<u8>) -> &mut Ng {
        let mut body = self.u16(link).to_vec();
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(0));
        body.extend_from_slice(&self.option(2, b"eth0"));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.option(9, &[r]));
        }
        body.extend_from_slice(&self.option(0, b""));
        self.block(1, &body)
    }

    /// An Enhanced Packet Block.
    pub fn epb(&mut self, interface: u32, units: u64, data: &[u8]) -> &mut Ng {
        let mut body = self.u32(interface).to_vec();
        body.extend_from_slice(&self.u32((units >> 32) as u32));
        body.extend_from_slice(&self.u32(units as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(data);
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        body.extend_from_slice(&self.option(1, b"a packet comment"));
        self.block(6, &body)
    }

    /// A Simple Packet Block.
    pub fn spb(&mut self, data: &[u8]) -> &mut Ng {
        let mut body = self.u32(data.len() as u32).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// A Decryption Secrets Block.
    pub fn dsb(&mut self, secrets_type: u32, secrets: &[u8]) -> &mut Ng {
        let mut body = self.u32(secrets_type).to_vec();
        body.extend_from_slice(&self.u32(secrets.len() as u32));
        body.extend_from_slice(secrets);
        self.block(0x0a, &body)
    }
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a test address")
}

/// A segment from flags bits.
pub fn seg<'a>(src: &str, dst: &str, seq: u32, flags: u8, payload: &'a [u8]) -> Segment<'a> {
    Segment {
        src: addr(src),
        dst: addr(dst),
        seq,
        ack: 0,
        flags: TcpFlags {
            syn: flags & SYN != 0,
            ack: flags & ACK != 0,
            fin: flags & FIN != 0,
            rst: flags & RST != 0,
        },
        payload,
    }
}

pub fn ip4(a: &str) -> [u8; 4] {
    match a.parse::<IpAddr>() {
        Ok(IpAddr::V4(v)) => v.octets(),
        _ => panic!("not IPv4: {a}"),
    }
}

pub fn ip6(a: &str) -> [u8; 16] {
    match a.parse::<IpAddr>() {
        Ok(IpAddr::V6(v)) => v.octets(),
        _ => panic!("not IPv6: {a}"),
    }
}

/// A TLS ClientHello record header and the handshake type byte, enough for client detection.
pub const CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03];
/// The same for a ServerHello.
pub const SERVER_HELLO: &[u8] = &[0x16, 0x03, 0x03, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x03];
